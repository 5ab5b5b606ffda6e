package wasm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// decoded is a request read back by a small decoder written from
// sdk/ABI.md §3 alone.
type decoded struct {
	kind, action, qos, flags, protocol byte
	number                             uint32
	fields                             map[int]string // present fields by id
}

func decodeRequest(b []byte) (decoded, error) {
	var d decoded
	if len(b) < HeaderSize {
		return d, fmt.Errorf("short header")
	}
	d.kind, d.action, d.qos, d.flags, d.protocol = b[0], b[1], b[2], b[3], b[4]
	if b[5] != 0 {
		return d, fmt.Errorf("reserved byte %d", b[5])
	}
	n := int(binary.LittleEndian.Uint16(b[6:]))
	d.number = binary.LittleEndian.Uint32(b[8:])
	if total := binary.LittleEndian.Uint32(b[12:]); int(total) != len(b) {
		return d, fmt.Errorf("total %d, buffer %d", total, len(b))
	}
	d.fields = map[int]string{}
	end := HeaderSize + DescriptorSize*n
	for i := range n {
		off := binary.LittleEndian.Uint32(b[HeaderSize+8*i:])
		l := binary.LittleEndian.Uint32(b[HeaderSize+8*i+4:])
		if off == 0 {
			if l != 0 {
				return d, fmt.Errorf("absent field %d has length %d", i, l)
			}
			continue
		}
		if int(off) < end || int(off)+int(l) > len(b) {
			return d, fmt.Errorf("field %d [%d,+%d) outside the data", i, off, l)
		}
		d.fields[i] = string(b[off : off+l])
	}
	return d, nil
}

// pairs and list encode the expected bytes of a pair list and a string
// list, independently of the encoder.
func pairs(kv ...string) string {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint32(len(kv)/2))
	for _, s := range kv {
		binary.Write(&b, binary.LittleEndian, uint32(len(s)))
		b.WriteString(s)
	}
	return b.String()
}

func list(ss ...string) string {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, uint32(len(ss)))
	for _, s := range ss {
		binary.Write(&b, binary.LittleEndian, uint32(len(s)))
		b.WriteString(s)
	}
	return b.String()
}

func TestEncodeAuthz(t *testing.T) {
	cert := &policy.Cert{SubjectCN: "dev-1", SANs: []string{"dev-1.example", "10.0.0.1"}, Fingerprint: [32]byte{1, 2, 3}}
	tests := []struct {
		name string
		req  policy.AuthzRequest
		want decoded
	}{
		{"minimal", policy.AuthzRequest{Client: &policy.Client{ProtocolVersion: 4}, Action: policy.ActionSubscribe, Topic: "a/#"},
			decoded{KindAuthz, 2, 0, 0, 4, 0, map[int]string{FieldClientID: "", FieldUsername: "", FieldTopic: "a/#"}}},
		{"full", policy.AuthzRequest{
			Client: &policy.Client{ClientID: "c", Username: "u", RemoteAddr: "1.2.3.4:5", Listener: "tls", ProtocolVersion: 5,
				Cert: cert, Superuser: true, Attributes: []policy.Attribute{{Key: "tenant", Value: "acme"}, {Key: "role", Value: ""}}},
			Action: policy.ActionDeliver, Topic: "t/1", QoS: 2, Retain: true, ShareGroup: "g"},
			decoded{KindAuthz, 3, 2, FlagRetain | FlagSuperuser | FlagCert, 5, 0, map[int]string{
				FieldClientID: "c", FieldUsername: "u", FieldRemoteAddr: "1.2.3.4:5", FieldListener: "tls",
				FieldTopic: "t/1", FieldShareGroup: "g", FieldAttributes: pairs("tenant", "acme", "role", ""),
				FieldCertCN: "dev-1", FieldCertSANs: list("dev-1.example", "10.0.0.1"), FieldCertSHA256: string(cert.Fingerprint[:]),
			}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size := authzSize(&tc.req)
			b := make([]byte, size+7) // slack must stay untouched
			if n := encodeAuthz(b, &tc.req, size, &clientPrefix{}); int(n) != size {
				t.Fatalf("wrote %d bytes, size %d", n, size)
			}
			if !bytes.Equal(b[size:], make([]byte, 7)) {
				t.Error("wrote past the request")
			}
			got, err := decodeRequest(b[:size])
			if err != nil {
				t.Fatal(err)
			}
			if binary.LittleEndian.Uint16(b[6:]) != FieldCertSHA256+1 {
				t.Errorf("nfields %d", binary.LittleEndian.Uint16(b[6:]))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestEncodeAuthn(t *testing.T) {
	tests := []struct {
		name string
		req  policy.AuthnRequest
		want decoded
	}{
		{"no password", policy.AuthnRequest{Client: &policy.Client{ClientID: "c", ProtocolVersion: 3, Superuser: true}},
			decoded{KindAuthn, 0, 0, 0, 3, 0, map[int]string{FieldClientID: "c", FieldUsername: ""}}},
		{"empty password", policy.AuthnRequest{Client: &policy.Client{ClientID: "c", Username: "u", ProtocolVersion: 4}, Password: []byte{}},
			decoded{KindAuthn, 0, 0, FlagPassword, 4, 0, map[int]string{FieldClientID: "c", FieldUsername: "u", FieldPassword: ""}}},
		{"enhanced round 2", policy.AuthnRequest{
			Client:   &policy.Client{ClientID: "c", Username: "u", ProtocolVersion: 5, Listener: "ws", Cert: &policy.Cert{}},
			Password: []byte("p\x00w"), UserProperties: []policy.Property{{Key: "k", Value: "v"}},
			AuthMethod: "SCRAM-SHA-256", AuthData: []byte("c-final"), AuthState: []byte("s"), Round: 2},
			decoded{KindAuthn, 0, 0, FlagPassword | FlagCert, 5, 2, map[int]string{
				FieldClientID: "c", FieldUsername: "u", FieldPassword: "p\x00w", FieldListener: "ws",
				FieldCertSHA256: string(make([]byte, 32)), FieldUserProperties: pairs("k", "v"),
				FieldAuthMethod: "SCRAM-SHA-256", FieldAuthData: "c-final", FieldAuthState: "s"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			size := authnSize(&tc.req)
			b := make([]byte, size)
			if n := encodeAuthn(b, &tc.req, size); int(n) != size {
				t.Fatalf("wrote %d bytes, size %d", n, size)
			}
			got, err := decodeRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestEncodeReusedBuffer encodes a large request then a small one into the
// same buffer: stale descriptors must not survive.
func TestEncodeReusedBuffer(t *testing.T) {
	b := make([]byte, 4096)
	var p clientPrefix
	big := policy.AuthzRequest{Client: testClient, Topic: "x", ShareGroup: "g"}
	small := policy.AuthzRequest{Client: &policy.Client{}, Topic: "y"}
	for range 2 { // each client twice: from the cached prefix too
		encodeAuthz(b, &big, authzSize(&big), &p)
		size := authzSize(&big)
		encodeAuthz(b, &big, size, &p)
		got, err := decodeRequest(b[:size])
		if err != nil {
			t.Fatal(err)
		}
		if got.fields[FieldShareGroup] != "g" || got.fields[FieldAttributes] != pairs("tenant", "acme") || got.fields[FieldClientID] != "c1" {
			t.Errorf("big: %v", got.fields)
		}
		size = authzSize(&small)
		encodeAuthz(b, &small, size, &p)
		if got, err = decodeRequest(b[:size]); err != nil {
			t.Fatal(err)
		}
		if len(got.fields) != 3 || got.fields[FieldTopic] != "y" {
			t.Errorf("small: %v", got.fields)
		}
	}
}

func TestDecodeResult(t *testing.T) {
	tests := []struct {
		kind     byte
		r        uint32
		enhanced bool
		want     result
		err      string
	}{
		{KindAuthz, 1, false, result{verdict: 1}, ""},
		{KindAuthz, 0x8702, false, result{verdict: 2, reason: 0x87}, ""},
		{KindAuthz, 2, false, result{verdict: 2}, ""},
		{KindAuthz, 3, false, result{verdict: 3}, ""},
		{KindAuthn, 0x10001, false, result{verdict: 1, superuser: true}, ""},
		{KindAuthn, 4, true, result{verdict: 4}, ""},
		{KindPayload, 0x03000001, false, result{verdict: 1, mode: 3}, ""},
		{KindAuthz, 0, false, result{}, "malformed result 0x00000000: verdict 0 (bits 0-7)"},
		{KindAuthz, 9, false, result{}, "verdict 9 (bits 0-7)"},
		{KindAuthz, 0xff, false, result{}, "verdict 255"},
		{KindAuthz, 0x00020001, false, result{}, "reserved bits 0x00020000 set"},
		{KindAuthz, 0x00fe0001, false, result{}, "reserved bits 0x00fe0000"},
		{KindAuthz, 4, false, result{}, "continue (4) is valid only from moat_authenticate"},
		{KindAuthn, 4, false, result{}, "continue (4) is valid only"},
		{KindAuthz, 0x7f02, false, result{}, "deny reason code 0x7f (bits 8-15) is below 0x80"},
		{KindAuthz, 0x8701, false, result{}, "reason code 0x87 (bits 8-15) with verdict allow"},
		{KindAuthn, 0x8703, false, result{}, "with verdict ignore"},
		{KindAuthz, 0x10001, false, result{}, "superuser bit (16) with verdict allow of moat_authorize"},
		{KindAuthn, 0x10002, false, result{}, "superuser bit (16) with verdict deny of moat_authenticate"},
		{KindAuthz, 0x01000001, false, result{}, "payload mode 1 (bits 24-31) in a result of moat_authorize"},
		{KindPayload, 0x01000002, false, result{}, "payload mode 1 (bits 24-31) with verdict deny"},
		{KindPayload, 0x05000001, false, result{}, "payload mode 5 (bits 24-31) is not 1-4"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d/%#x", tc.kind, tc.r), func(t *testing.T) {
			got, err := decodeResult(tc.kind, tc.r, tc.enhanced)
			if tc.err != "" {
				wantErr(t, err, tc.err)
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
