// Command bare is the floor of a Go module: the exports of sdk/ABI.md §1
// written without the SDK, whose decisions allow at once without reading
// the request. BenchmarkGoCost compares it with the SDK's modules to
// separate what Go's runtime costs (the wasmexport entry and exit, the
// runtime's memory) from what the SDK adds.
package main

import "unsafe"

var buffer []byte

//go:wasmexport moat_abi_v1
func moatABIv1() {}

//go:wasmexport moat_buffer
func moatBuffer(size int32) int32 {
	if int(size) > len(buffer) {
		buffer = make([]byte, size)
	}
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(buffer))))
}

//go:wasmexport moat_authenticate
func moatAuthenticate(n int32) int32 { return 1 }

//go:wasmexport moat_authorize
func moatAuthorize(n int32) int32 { return 1 }

func main() {}
