//go:build wasip1

package moat

import (
	"runtime"
	"unsafe"
)

// The exports of sdk/ABI.md §1. Go links them into every module that
// imports this package, whichever handlers it registers.

// buffer is the guest-owned buffer of sdk/ABI.md §2. The package variable
// keeps it referenced, so the garbage collector (which never moves objects)
// neither frees nor moves it while the host writes into it.
var buffer []byte

// dec decodes every request: see decoder for what it reuses and what not.
var dec decoder

// minBuffer is the smallest buffer allocated, the size the host asks for
// first; growing in bigger steps saves reallocations.
const minBuffer = 4096

//go:wasmexport moat_abi_v1
func moatABIv1() {}

// moatBuffer returns the address of at least size bytes. A negative size
// is a host bug: the panic ends the call with a trap, a plugin error.
//
//go:wasmexport moat_buffer
func moatBuffer(size int32) int32 {
	if size < 0 {
		panic("moat: moat_buffer: negative size")
	}
	if int(size) > len(buffer) {
		buffer = make([]byte, max(int(size), minBuffer, 2*len(buffer)))
	}
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(buffer))))
}

// requestBytes returns the request the host wrote into the buffer; a
// length beyond the buffer decodes as an empty, malformed request.
func requestBytes(n int32) []byte {
	if n < 0 || int(n) > len(buffer) {
		return nil
	}
	return buffer[:n]
}

//go:wasmexport moat_authenticate
func moatAuthenticate(n int32) int32 {
	res := runAuthn(wasmHost{}, &dec, handlers.authn, requestBytes(n))
	finishGC()
	return int32(res)
}

//go:wasmexport moat_authorize
func moatAuthorize(n int32) int32 {
	res := runAuthz(wasmHost{}, &dec, handlers.authz, requestBytes(n))
	finishGC()
	return int32(res)
}

//go:wasmexport moat_payload
func moatPayload(n int32) int32 {
	res := runPayload(wasmHost{}, &dec, handlers.payload, requestBytes(n))
	finishGC()
	return int32(res)
}

//go:wasmexport moat_configure
func moatConfigure(n int32) int32 {
	b := requestBytes(n)
	if b == nil && n != 0 {
		wasmHost{}.setMessage("moat: configuration length beyond the buffer")
		return 1
	}
	res := runConfigure(wasmHost{}, handlers.config, b)
	finishGC()
	return int32(res)
}

// writeBarrier is the runtime's flag that a garbage collection cycle is
// marking. The runtime keeps it linkable for outside packages
// (go.dev/issue/67401); only its first field is read.
//
//go:linkname writeBarrier runtime.writeBarrier
var writeBarrier struct {
	enabled bool
	pad     [3]byte
	alignme uint64
}

// maxYields bounds the work finishGC does in one call: about 35 µs of
// marking a yield for a small heap.
const maxYields = 64

// finishGC lets a garbage collection cycle that the module's allocations
// started run to its end before the call returns to the host.
//
// Go's collector marks in goroutines the scheduler runs beside the
// program. A wasm module built with -buildmode=c-shared runs Go code only
// inside calls from the host and never yields in between, so once an
// allocation starts a cycle, nothing but more allocation moves it on: the
// write barrier stays on for every later call, making pointer writes
// about ten times slower, and the garbage of the cycle is never freed.
// Yielding to the scheduler when a cycle is marking lets its workers
// finish it (about twenty yields for a small heap); when no cycle is
// running this costs one load.
func finishGC() {
	for i := 0; writeBarrier.enabled && i < maxYields; i++ {
		runtime.Gosched()
	}
}
