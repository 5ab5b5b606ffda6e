package moat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/sdk/go/internal/sdktest"
)

var fingerprint = [32]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

// fullAuthn sets every field an authn request can carry.
func fullAuthn() *sdktest.Request {
	r := &sdktest.Request{Kind: sdktest.KindAuthn, Flags: sdktest.FlagCert | sdktest.FlagPassword, Protocol: 5, Number: 2}
	r.SetString(sdktest.FieldClientID, "client-1").
		SetString(sdktest.FieldUsername, "alice").
		SetString(sdktest.FieldPassword, "s3cret\x00bytes").
		SetString(sdktest.FieldRemoteAddr, "192.0.2.1:50000").
		SetString(sdktest.FieldListener, "tls").
		SetString(sdktest.FieldCertCN, "alice.example").
		Set(sdktest.FieldCertSANs, sdktest.Strings("alice.example", "alice@example.com", "", "192.0.2.1")).
		Set(sdktest.FieldCertSHA256, fingerprint[:]).
		Set(sdktest.FieldUserProperties, sdktest.Pairs("k", "v", "k", "v2", "", "")).
		SetString(sdktest.FieldAuthMethod, "SCRAM-SHA-256").
		SetString(sdktest.FieldAuthData, "client-first").
		SetString(sdktest.FieldAuthState, "state")
	return r
}

func TestDecodeAuthn(t *testing.T) { forLayouts(t, testDecodeAuthn) }

func testDecodeAuthn(t *testing.T) {
	tests := []struct {
		name string
		req  *sdktest.Request
		want *AuthnRequest
	}{{
		name: "every field",
		req:  fullAuthn(),
		want: &AuthnRequest{
			Client: Client{
				ClientID: "client-1", Username: "alice", RemoteAddr: "192.0.2.1:50000", Listener: "tls", Protocol: 5,
				Cert: &Cert{
					CommonName: "alice.example",
					SANs:       []string{"alice.example", "alice@example.com", "", "192.0.2.1"},
					SHA256:     fingerprint,
				},
			},
			Password:       []byte("s3cret\x00bytes"),
			UserProperties: Properties{{"k", "v"}, {"k", "v2"}, {"", ""}},
			AuthMethod:     "SCRAM-SHA-256",
			AuthData:       []byte("client-first"),
			AuthState:      []byte("state"),
			Round:          2,
		},
	}, {
		name: "no fields at all",
		req:  &sdktest.Request{Kind: sdktest.KindAuthn, Protocol: 4},
		want: &AuthnRequest{Client: Client{Protocol: 4}},
	}, {
		name: "absent fields",
		req: (&sdktest.Request{Kind: sdktest.KindAuthn, Protocol: 3}).
			SetString(sdktest.FieldClientID, "c").
			Set(sdktest.FieldAuthState, nil),
		want: &AuthnRequest{Client: Client{ClientID: "c", Protocol: 3}},
	}, {
		name: "present but empty fields",
		req: (&sdktest.Request{Kind: sdktest.KindAuthn, Protocol: 5, Flags: sdktest.FlagPassword}).
			SetString(sdktest.FieldClientID, "").
			SetString(sdktest.FieldUsername, "").
			SetString(sdktest.FieldPassword, "").
			SetString(sdktest.FieldAuthData, "").
			SetString(sdktest.FieldAuthState, "").
			Set(sdktest.FieldUserProperties, sdktest.Pairs()),
		want: &AuthnRequest{
			Client:    Client{Protocol: 5},
			Password:  []byte{},
			AuthData:  []byte{},
			AuthState: []byte{},
		},
	}, {
		name: "certificate flag without certificate fields",
		req:  &sdktest.Request{Kind: sdktest.KindAuthn, Flags: sdktest.FlagCert, Protocol: 5},
		want: &AuthnRequest{Client: Client{Protocol: 5, Cert: &Cert{}}},
	}, {
		name: "certificate fields without the flag are ignored",
		req: (&sdktest.Request{Kind: sdktest.KindAuthn, Protocol: 5}).
			SetString(sdktest.FieldCertCN, "x"),
		want: &AuthnRequest{Client: Client{Protocol: 5}},
	}, {
		name: "unknown field ids from a newer host are skipped",
		req: (&sdktest.Request{Kind: sdktest.KindAuthn, Protocol: 5}).
			SetString(sdktest.FieldUsername, "bob").
			SetString(40, "future"),
		want: &AuthnRequest{Client: Client{Username: "bob", Protocol: 5}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := layout(t, tc.req)
			got, err := new(decoder).decodeAuthn(b)
			if err != nil {
				t.Fatalf("decodeAuthn: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decodeAuthn:\n got %#v\nwant %#v", got, tc.want)
			}
			checkNilness(t, "Password", got.Password, tc.want.Password)
			checkNilness(t, "AuthData", got.AuthData, tc.want.AuthData)
			checkNilness(t, "AuthState", got.AuthState, tc.want.AuthState)
		})
	}
}

// layouts are the two ways a request's descriptor table can end: at the
// highest field set (an older host's request, which the decoder widens)
// and with every field of the kind (the broker's, decoded in place).
var layouts = []string{"short", "full"}

// forLayouts runs f in a subtest per layout.
func forLayouts(t *testing.T, f func(t *testing.T)) {
	for _, l := range layouts {
		t.Run(l, f)
	}
}

// layout encodes r as the layout of the enclosing forLayouts subtest
// says: its name ends in "/full" or "/short" followed by the test case.
func layout(t *testing.T, r *sdktest.Request) []byte {
	if strings.Contains(t.Name(), "/full") {
		c := *r
		c.Fields = slices.Clone(r.Fields)
		return c.Full().Encode()
	}
	return r.Encode()
}

// checkNilness checks what reflect.DeepEqual does not: absent (nil) and
// empty byte fields differ.
func checkNilness(t *testing.T, name string, got, want []byte) {
	t.Helper()
	if (got == nil) != (want == nil) {
		t.Errorf("%s: got nil=%v, want nil=%v", name, got == nil, want == nil)
	}
}

func TestDecodeAuthz(t *testing.T) { forLayouts(t, testDecodeAuthz) }

func testDecodeAuthz(t *testing.T) {
	tests := []struct {
		name string
		req  *sdktest.Request
		want *AuthzRequest
	}{{
		name: "publish with attributes",
		req: (&sdktest.Request{Kind: sdktest.KindAuthz, Action: 1, QoS: 2, Flags: sdktest.FlagRetain, Protocol: 5}).
			SetString(sdktest.FieldClientID, "c1").
			SetString(sdktest.FieldUsername, "alice").
			SetString(sdktest.FieldRemoteAddr, "[2001:db8::1]:1883").
			SetString(sdktest.FieldListener, "tcp").
			SetString(sdktest.FieldTopic, "acme/sensors/1").
			Set(sdktest.FieldAttributes, sdktest.Pairs("tenant", "acme", "role", "")),
		want: &AuthzRequest{
			Client: Client{
				ClientID: "c1", Username: "alice", RemoteAddr: "[2001:db8::1]:1883", Listener: "tcp", Protocol: 5,
				Attributes: Attributes{{"tenant", "acme"}, {"role", ""}},
			},
			Action: ActionPublish, Topic: "acme/sensors/1", QoS: 2, Retain: true,
		},
	}, {
		name: "shared subscription of a superuser with a certificate",
		req: (&sdktest.Request{Kind: sdktest.KindAuthz, Action: 2, QoS: 1, Flags: sdktest.FlagSuperuser | sdktest.FlagCert, Protocol: 4}).
			SetString(sdktest.FieldTopic, "a/+/#").
			SetString(sdktest.FieldShareGroup, "g1").
			SetString(sdktest.FieldCertCN, "cn").
			Set(sdktest.FieldCertSANs, sdktest.Strings()).
			Set(sdktest.FieldCertSHA256, fingerprint[:]),
		want: &AuthzRequest{
			Client: Client{Protocol: 4, Superuser: true, Cert: &Cert{CommonName: "cn", SHA256: fingerprint}},
			Action: ActionSubscribe, Topic: "a/+/#", QoS: 1, ShareGroup: "g1",
		},
	}, {
		name: "deliver",
		req: (&sdktest.Request{Kind: sdktest.KindAuthz, Action: 3, Protocol: 5}).
			SetString(sdktest.FieldTopic, "t").SetString(sdktest.FieldClientID, "id"),
		want: &AuthzRequest{Client: Client{ClientID: "id", Protocol: 5}, Action: ActionDeliver, Topic: "t"},
	}, {
		name: "action from a newer host passes through",
		req:  (&sdktest.Request{Kind: sdktest.KindAuthz, Action: 9}).SetString(sdktest.FieldTopic, "t"),
		want: &AuthzRequest{Action: 9, Topic: "t"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := new(decoder).decodeAuthz(layout(t, tc.req))
			if err != nil {
				t.Fatalf("decodeAuthz: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decodeAuthz:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// TestDecodeUnknownFields checks that fields this SDK does not know, such
// as those a newer v1 host adds, are never read, even with descriptors
// this SDK would refuse.
func TestDecodeUnknownFields(t *testing.T) {
	b := (&sdktest.Request{Kind: sdktest.KindAuthz}).SetString(sdktest.FieldTopic, "t").SetString(40, "x").Encode()
	binary.LittleEndian.PutUint32(b[16+8*40:], uint32(len(b)+100))
	got, err := new(decoder).decodeAuthz(b)
	if err != nil || got.Topic != "t" {
		t.Errorf("decodeAuthz = %#v, %v; want topic \"t\"", got, err)
	}
}

func TestDecodeFieldOrder(t *testing.T) {
	// Hand-built: topic's data before client_id's, and 3 unused bytes.
	b := make([]byte, 16+8*6+3+1+2)
	b[0], b[1] = sdktest.KindAuthz, 1
	binary.LittleEndian.PutUint16(b[6:], 6)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(b)))
	data := 16 + 8*6
	copy(b[data+3:], "t")
	copy(b[data+4:], "id")
	binary.LittleEndian.PutUint32(b[16+8*0:], uint32(data+4)) // client_id
	binary.LittleEndian.PutUint32(b[20+8*0:], 2)
	binary.LittleEndian.PutUint32(b[16+8*5:], uint32(data+3)) // topic
	binary.LittleEndian.PutUint32(b[20+8*5:], 1)
	got, err := new(decoder).decodeAuthz(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClientID != "id" || got.Topic != "t" {
		t.Errorf("got client %q topic %q, want \"id\" and \"t\"", got.ClientID, got.Topic)
	}
}

func TestDecodePayload(t *testing.T) { forLayouts(t, testDecodePayload) }

func testDecodePayload(t *testing.T) {
	r := (&sdktest.Request{Kind: sdktest.KindPayload, Action: 3, QoS: 1, Flags: sdktest.FlagRetain, Protocol: 5, Number: 1234}).
		SetString(sdktest.FieldClientID, "sub").
		SetString(sdktest.FieldUsername, "u").
		SetString(sdktest.FieldTopic, "x/y").
		Set(sdktest.FieldAttributes, sdktest.Pairs("tenant", "acme")).
		Set(sdktest.FieldUserProperties, sdktest.Pairs("trace", "1")).
		SetString(sdktest.FieldContentType, "application/json").
		SetString(sdktest.FieldEnvelopeKeyID, "k1").
		Set(sdktest.FieldMode, []byte{3})
	want := &PayloadRequest{
		Client:         Client{ClientID: "sub", Username: "u", Protocol: 5, Attributes: Attributes{{"tenant", "acme"}}},
		Action:         ActionDeliver,
		Topic:          "x/y",
		QoS:            1,
		Retain:         true,
		UserProperties: Properties{{"trace", "1"}},
		ContentType:    "application/json",
		EnvelopeKeyID:  "k1",
		PublishedMode:  ModeAtRest,
		PayloadSize:    1234,
	}
	got, err := new(decoder).decodePayload(layout(t, r))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decodePayload:\n got %#v\nwant %#v", got, want)
	}
}

// TestDecodeResets checks that the request struct a decoder reuses keeps
// nothing of the previous request.
func TestDecodeResets(t *testing.T) {
	full := map[uint8][]byte{
		sdktest.KindAuthn: fullAuthn().Encode(),
		sdktest.KindAuthz: (&sdktest.Request{Kind: sdktest.KindAuthz, Action: 2, QoS: 2, Flags: 7, Protocol: 5}).
			SetString(sdktest.FieldClientID, "c").SetString(sdktest.FieldUsername, "u").
			SetString(sdktest.FieldRemoteAddr, "r").SetString(sdktest.FieldListener, "l").
			SetString(sdktest.FieldTopic, "a/#").SetString(sdktest.FieldShareGroup, "g").
			Set(sdktest.FieldAttributes, sdktest.Pairs("k", "v")).SetString(sdktest.FieldCertCN, "cn").Encode(),
		sdktest.KindPayload: (&sdktest.Request{Kind: sdktest.KindPayload, Action: 3, QoS: 1, Flags: 7, Protocol: 5, Number: 9}).
			SetString(sdktest.FieldClientID, "c").SetString(sdktest.FieldTopic, "t").
			Set(sdktest.FieldAttributes, sdktest.Pairs("k", "v")).Set(sdktest.FieldUserProperties, sdktest.Pairs("p", "1")).
			SetString(sdktest.FieldContentType, "ct").SetString(sdktest.FieldEnvelopeKeyID, "k").
			Set(sdktest.FieldMode, []byte{2}).Encode(),
	}
	decode := func(d *decoder, b []byte) (any, error) {
		switch b[0] {
		case sdktest.KindAuthn:
			return d.decodeAuthn(b)
		case sdktest.KindAuthz:
			return d.decodeAuthz(b)
		}
		return d.decodePayload(b)
	}
	for kind, b := range full {
		t.Run(fmt.Sprint("kind ", kind), func(t *testing.T) {
			var d decoder
			if _, err := decode(&d, b); err != nil {
				t.Fatal(err)
			}
			empty := (&sdktest.Request{Kind: kind}).Encode()
			got, err := decode(&d, empty)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := decode(new(decoder), empty)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("after a full request:\n got %#v\nwant %#v", got, want)
			}
		})
	}
}

// TestDecodeKeep checks the promise that lets handlers keep what a request
// holds: its fields share no memory with the buffer it came from, nor with
// any later request of the same decoder, across the decoder's chunks. (The
// request struct itself is reused; a handler keeps a copy of it.)
func TestDecodeKeep(t *testing.T) {
	var d decoder
	buf := make([]byte, 64<<10) // the host's buffer, reused for every request
	type kept struct {
		req  AuthzRequest
		want *AuthzRequest
	}
	var all []kept
	for i := range 300 { // more than a chunk of every slab
		r := (&sdktest.Request{Kind: sdktest.KindAuthz, Action: 1, Flags: sdktest.FlagCert}).
			SetString(sdktest.FieldClientID, fmt.Sprint("client-", i)).
			SetString(sdktest.FieldTopic, strings.Repeat("t/", i%40)).
			Set(sdktest.FieldAttributes, sdktest.Pairs("n", fmt.Sprint(i), "k", "v")).
			Set(sdktest.FieldCertSANs, sdktest.Strings(fmt.Sprint("san-", i))).
			Encode()
		n := copy(buf, r)
		req, err := d.decodeAuthz(buf[:n])
		if err != nil {
			t.Fatal(err)
		}
		want, _ := new(decoder).decodeAuthz(r)
		all = append(all, kept{*req, want})
		for j := range buf[:n] {
			buf[j] = 'X'
		}
	}
	for i, k := range all {
		if !reflect.DeepEqual(&k.req, k.want) {
			t.Fatalf("request %d changed:\n got %#v\nwant %#v", i, k.req, k.want)
		}
	}
}

func TestDecodeMalformed(t *testing.T) { forLayouts(t, testDecodeMalformed) }

func testDecodeMalformed(t *testing.T) {
	valid := func() []byte {
		return layout(t, (&sdktest.Request{Kind: sdktest.KindAuthz, Action: 1}).
			SetString(sdktest.FieldTopic, "t").
			Set(sdktest.FieldAttributes, sdktest.Pairs("k", "v")))
	}
	attrOff := func(b []byte) int { return int(binary.LittleEndian.Uint32(b[16+8*sdktest.FieldAttributes:])) }
	tests := []struct {
		name string
		b    func() []byte
	}{
		{"empty", func() []byte { return nil }},
		{"shorter than the header", func() []byte { return valid()[:15] }},
		{"truncated", func() []byte { b := valid(); return b[:len(b)-1] }},
		{"longer than total", func() []byte { return append(valid(), 0) }},
		{"wrong kind", func() []byte { b := valid(); b[0] = sdktest.KindAuthn; return b }},
		{"kind zero", func() []byte { b := valid(); b[0] = 0; return b }},
		{"descriptors beyond the request", func() []byte {
			b := valid()
			binary.LittleEndian.PutUint16(b[6:], 0xffff)
			return b
		}},
		{"field beyond the request", func() []byte {
			b := valid()
			binary.LittleEndian.PutUint32(b[20+8*sdktest.FieldTopic:], uint32(len(b)))
			return b
		}},
		{"field length overflows", func() []byte {
			b := valid()
			binary.LittleEndian.PutUint32(b[20+8*sdktest.FieldTopic:], 0xffffffff)
			return b
		}},
		{"pair list shorter than its count", func() []byte {
			b := valid()
			binary.LittleEndian.PutUint32(b[20+8*sdktest.FieldAttributes:], 3)
			return b
		}},
		{"pair list count too large", func() []byte {
			b := valid()
			binary.LittleEndian.PutUint32(b[attrOff(b):], 0xffffffff)
			return b
		}},
		{"pair list item too long", func() []byte {
			b := valid()
			binary.LittleEndian.PutUint32(b[attrOff(b)+4:], 100)
			return b
		}},
		{"pair list value length truncated", func() []byte {
			b := valid()
			// Count 1, key "k", then only 2 bytes of the value length.
			binary.LittleEndian.PutUint32(b[20+8*sdktest.FieldAttributes:], 4+4+1+2)
			return b
		}},
		{"bytes after the pair list", func() []byte {
			b := valid()
			binary.LittleEndian.PutUint32(b[attrOff(b):], 0)
			return b
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if req, err := new(decoder).decodeAuthz(tc.b()); !errors.Is(err, errRequest) {
				t.Errorf("decodeAuthz = %#v, %v; want an error matching errRequest", req, err)
			}
		})
	}
	certTests := []struct {
		name string
		req  *sdktest.Request
	}{
		{"fingerprint of 31 bytes", (&sdktest.Request{Kind: sdktest.KindAuthn, Flags: sdktest.FlagCert}).Set(sdktest.FieldCertSHA256, make([]byte, 31))},
		{"string list truncated", (&sdktest.Request{Kind: sdktest.KindAuthn, Flags: sdktest.FlagCert}).Set(sdktest.FieldCertSANs, sdktest.Strings("abc")[:6])},
		{"string list with trailing bytes", (&sdktest.Request{Kind: sdktest.KindAuthn, Flags: sdktest.FlagCert}).Set(sdktest.FieldCertSANs, append(sdktest.Strings("a"), 0))},
		{"user properties malformed", (&sdktest.Request{Kind: sdktest.KindAuthn}).Set(sdktest.FieldUserProperties, []byte{1, 0, 0})},
	}
	for _, tc := range certTests {
		t.Run(tc.name, func(t *testing.T) {
			if req, err := new(decoder).decodeAuthn(layout(t, tc.req)); !errors.Is(err, errRequest) {
				t.Errorf("decodeAuthn = %#v, %v; want an error matching errRequest", req, err)
			}
		})
	}
	t.Run("mode of 2 bytes", func(t *testing.T) {
		r := (&sdktest.Request{Kind: sdktest.KindPayload}).Set(sdktest.FieldMode, []byte{1, 2})
		if _, err := new(decoder).decodePayload(layout(t, r)); !errors.Is(err, errRequest) {
			t.Errorf("decodePayload: %v, want errRequest", err)
		}
	})
}

func TestAttributesGet(t *testing.T) {
	a := Attributes{{"tenant", "acme"}, {"role", "admin"}, {"tenant", "other"}}
	if v, ok := a.Get("tenant"); !ok || v != "acme" {
		t.Errorf("Get(tenant) = %q, %v; want the first, \"acme\"", v, ok)
	}
	if v, ok := a.Get("missing"); ok || v != "" {
		t.Errorf("Get(missing) = %q, %v", v, ok)
	}
	p := Properties{{"k", "1"}}
	if v, ok := p.Get("k"); !ok || v != "1" {
		t.Errorf("Properties.Get(k) = %q, %v", v, ok)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(fullAuthn().Encode())
	f.Add((&sdktest.Request{Kind: sdktest.KindAuthz, Action: 1}).SetString(sdktest.FieldTopic, "a/b").
		Set(sdktest.FieldAttributes, sdktest.Pairs("k", "v")).Full().Encode())
	f.Add((&sdktest.Request{Kind: sdktest.KindPayload, Flags: sdktest.FlagCert}).Set(sdktest.FieldMode, []byte{1}).
		Set(sdktest.FieldCertSANs, sdktest.Strings("x")).Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := bytes.Clone(b)
		// Whatever the bytes, decoding returns a request or an error and
		// never panics or writes to its input.
		for _, decode := range []func([]byte) (any, error){
			func(b []byte) (any, error) { return new(decoder).decodeAuthn(b) },
			func(b []byte) (any, error) { return new(decoder).decodeAuthz(b) },
			func(b []byte) (any, error) { return new(decoder).decodePayload(b) },
		} {
			req, err := decode(b)
			if (err == nil) == reflect.ValueOf(req).IsNil() {
				t.Fatalf("decode returned %v and %v", req, err)
			}
		}
		if !bytes.Equal(b, orig) {
			t.Fatal("decode changed its input")
		}
	})
}

func BenchmarkDecodeAuthz(b *testing.B) {
	req := (&sdktest.Request{Kind: sdktest.KindAuthz, Action: 1, Protocol: 5}).
		SetString(sdktest.FieldClientID, "sensor-0042").
		SetString(sdktest.FieldUsername, "demo").
		SetString(sdktest.FieldRemoteAddr, "127.0.0.1:50000").
		SetString(sdktest.FieldListener, "tcp").
		SetString(sdktest.FieldTopic, "demo/sensors/0042/temperature").
		Set(sdktest.FieldAttributes, sdktest.Pairs("tenant", "acme")).Full().Encode()
	var d decoder
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.decodeAuthz(req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeInPlace checks that a request laid out as the broker sends it
// (every descriptor of its kind) is decoded from a plain copy, while one
// with a short table is widened: the slab hands out the request's length
// (at least a full table's) for the first, a full table more for the
// second.
func TestDecodeInPlace(t *testing.T) {
	const full = headerSize + 8*numFields
	for _, kind := range []uint8{kindAuthn, kindAuthz, kindPayload} {
		r := (&sdktest.Request{Kind: kind}).SetString(sdktest.FieldClientID, strings.Repeat("c", 200))
		for _, tc := range []struct {
			name string
			b    []byte
			want int
		}{
			{"short", r.Encode(), full + len(r.Encode())},
			{"full", r.Full().Encode(), max(len(r.Full().Encode()), full)},
		} {
			var d decoder
			decode := map[uint8]func([]byte) error{
				kindAuthn:   func(b []byte) error { _, err := d.decodeAuthn(b); return err },
				kindAuthz:   func(b []byte) error { _, err := d.decodeAuthz(b); return err },
				kindPayload: func(b []byte) error { _, err := d.decodePayload(b); return err },
			}[kind]
			if err := decode(tc.b); err != nil {
				t.Fatalf("kind %d %s: %v", kind, tc.name, err)
			}
			if used := bytesChunk - len(d.bytes.free); used != tc.want {
				t.Errorf("kind %d %s: the request took %d bytes of the slab, want %d", kind, tc.name, used, tc.want)
			}
		}
	}
}
