//go:build race

package broker

// raceEnabled reports a build with the race detector, which doubles the
// runtime's stack guard; see TestIdleConnectionStack.
const raceEnabled = true
