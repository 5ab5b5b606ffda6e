// Package sdktest holds what the SDK's tests share: an encoder of moat ABI
// v1 requests written from sdk/ABI.md §3 alone (so that it checks the
// SDK's decoder rather than mirroring it), and, in its test files, tests
// that build real wasm modules with the SDK and run them in wazero.
//
// Only test files import wazero, so the SDK package never depends on it.
package sdktest

import "encoding/binary"

// Request kinds and field ids of sdk/ABI.md §3.
const (
	KindAuthn   = 1
	KindAuthz   = 2
	KindPayload = 3

	FieldClientID       = 0
	FieldUsername       = 1
	FieldPassword       = 2
	FieldRemoteAddr     = 3
	FieldListener       = 4
	FieldTopic          = 5
	FieldShareGroup     = 6
	FieldAttributes     = 7
	FieldCertCN         = 8
	FieldCertSANs       = 9
	FieldCertSHA256     = 10
	FieldUserProperties = 11
	FieldAuthMethod     = 12
	FieldAuthData       = 13
	FieldAuthState      = 14
	FieldContentType    = 15
	FieldEnvelopeKeyID  = 16
	FieldMode           = 17

	FlagRetain    = 1 << 0
	FlagSuperuser = 1 << 1
	FlagCert      = 1 << 2
	FlagPassword  = 1 << 3
)

// Request is a request before encoding. Fields[i] == nil means field i is
// absent; a non-nil empty slice is a present, empty field.
type Request struct {
	Kind, Action, QoS, Flags, Protocol uint8
	Number                             uint32
	Fields                             [][]byte
}

// Set sets field id to v, growing Fields as needed, and returns r.
func (r *Request) Set(id int, v []byte) *Request {
	for len(r.Fields) <= id {
		r.Fields = append(r.Fields, nil)
	}
	r.Fields[id] = v
	return r
}

// KindFields is the number of descriptors the broker sends for each kind:
// one more than the highest field id the kind defines.
var KindFields = [...]int{KindAuthn: FieldAuthState + 1, KindAuthz: FieldCertSHA256 + 1, KindPayload: FieldMode + 1}

// Full gives r every descriptor of its kind, the absent ones absent, as
// the broker lays requests out, and returns r. Without it a request has
// descriptors up to its highest field set, as an older host's would.
func (r *Request) Full() *Request {
	for len(r.Fields) < KindFields[r.Kind] {
		r.Fields = append(r.Fields, nil)
	}
	return r
}

// SetString sets field id to the bytes of s (present even when empty).
func (r *Request) SetString(id int, s string) *Request { return r.Set(id, append([]byte{}, s...)) }

// Encode lays r out as sdk/ABI.md §3 says: the 16-byte header, one 8-byte
// descriptor per entry of Fields, then the data of the present fields in
// field order.
func (r *Request) Encode() []byte {
	n := len(r.Fields)
	size := 16 + 8*n
	for _, f := range r.Fields {
		size += len(f)
	}
	b := make([]byte, size)
	b[0], b[1], b[2], b[3], b[4] = r.Kind, r.Action, r.QoS, r.Flags, r.Protocol
	binary.LittleEndian.PutUint16(b[6:], uint16(n))
	binary.LittleEndian.PutUint32(b[8:], r.Number)
	binary.LittleEndian.PutUint32(b[12:], uint32(size))
	off := 16 + 8*n
	for i, f := range r.Fields {
		if f == nil {
			continue
		}
		binary.LittleEndian.PutUint32(b[16+8*i:], uint32(off))
		binary.LittleEndian.PutUint32(b[20+8*i:], uint32(len(f)))
		off += copy(b[off:], f)
	}
	return b
}

// Pairs encodes a pair list (u32 count, then u32 klen, key, u32 vlen,
// value) from alternating keys and values.
func Pairs(kv ...string) []byte {
	if len(kv)%2 != 0 {
		panic("sdktest: Pairs: odd number of strings")
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(kv)/2))
	for _, s := range kv {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// Strings encodes a string list (u32 count, then u32 len, bytes).
func Strings(ss ...string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(ss)))
	for _, s := range ss {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}
