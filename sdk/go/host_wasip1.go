//go:build wasip1

package moat

import (
	"time"
	"unsafe"
)

// Host functions of sdk/ABI.md §6, module "moat". Go imports a function
// only if the module can reach a call to it.

//go:wasmimport moat log
func hostLog(level int32, ptr unsafe.Pointer, n int32)

//go:wasmimport moat time_now
func hostTimeNow() int64

//go:wasmimport moat random
func hostRandom(ptr unsafe.Pointer, n int32) int32

//go:wasmimport moat set_message
func hostSetMessage(ptr unsafe.Pointer, n int32) int32

//go:wasmimport moat add_attribute
func hostAddAttribute(kptr unsafe.Pointer, klen int32, vptr unsafe.Pointer, vlen int32) int32

//go:wasmimport moat set_expiry
func hostSetExpiry(unixNano int64) int32

//go:wasmimport moat set_auth_data
func hostSetAuthData(ptr unsafe.Pointer, n int32) int32

//go:wasmimport moat set_auth_state
func hostSetAuthState(ptr unsafe.Pointer, n int32) int32

//go:wasmimport moat set_key_id
func hostSetKeyID(ptr unsafe.Pointer, n int32) int32

//go:wasmimport moat payload_read
func hostPayloadRead(offset int32, ptr unsafe.Pointer, n int32) int32

func strPtr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

func bytesPtr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

// Lengths below come from Go strings and slices that fit in wasm32 memory,
// so the int32 conversions do not overflow.

// wasmHost implements host with the host imports.
type wasmHost struct{}

func (wasmHost) log(level Level, msg string) { Log(level, msg) }

func (wasmHost) setMessage(msg string) int32 { return hostSetMessage(strPtr(msg), int32(len(msg))) }

func (wasmHost) addAttribute(k, v string) int32 {
	return hostAddAttribute(strPtr(k), int32(len(k)), strPtr(v), int32(len(v)))
}

func (wasmHost) setExpiry(ns int64) int32 { return hostSetExpiry(ns) }

func (wasmHost) setAuthData(b []byte) int32 { return hostSetAuthData(bytesPtr(b), int32(len(b))) }

func (wasmHost) setAuthState(b []byte) int32 { return hostSetAuthState(bytesPtr(b), int32(len(b))) }

func (wasmHost) setKeyID(id string) int32 { return hostSetKeyID(strPtr(id), int32(len(id))) }

// Log sends a line to the broker's log, tagged with the plugin's name.
// Debug lines are dropped unless the broker logs at debug. Never log
// passwords, tokens, keys or payloads.
func Log(level Level, msg string) { hostLog(int32(level), strPtr(msg), int32(len(msg))) }

// Now returns the broker's wall clock.
func Now() time.Time { return time.Unix(0, hostTimeNow()) }

// maxRandom is the most bytes the random host function fills per call.
const maxRandom = 65536

// Random fills b with cryptographically secure random bytes from the
// broker. It cannot fail: a host that refuses is broken, and Random panics.
func Random(b []byte) {
	for len(b) > 0 {
		n := min(len(b), maxRandom)
		if st := hostRandom(bytesPtr(b), int32(n)); st < 0 {
			panic("moat: random host function failed")
		}
		b = b[n:]
	}
}

// payloadRead copies payload bytes from offset into p and returns the
// count, 0 at the end, -1 when the plugin may not read payloads.
func payloadRead(offset int, p []byte) int32 {
	if offset < 0 || offset > 1<<31-1 {
		return 0
	}
	return hostPayloadRead(int32(offset), bytesPtr(p), int32(min(len(p), 1<<31-1)))
}
