//go:build 386 || amd64 || arm || arm64 || loong64 || mips64le || mipsle || ppc64le || riscv64 || wasm

package moat

import "unsafe"

// desc returns the descriptor at byte p of t, offset in the low half and
// length in the high half, in one load: wasm (and every machine this file
// builds for) is little-endian, and allows unaligned loads.
func desc(t *descTable, p int) uint64 { return *(*uint64)(unsafe.Pointer(&t[p])) }

// u64 reads the little-endian uint64 at p, which has 8 bytes behind it.
func u64(p *byte) uint64 { return *(*uint64)(unsafe.Pointer(p)) }
