// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2026 moat authors (patch for mochi v2.7.9, see PATCHES.md)

//go:build !race

package mqtt

// raceEnabled reports a build with the race detector, which doubles the
// runtime's stack guard; see TestIdleClientStack.
const raceEnabled = false
