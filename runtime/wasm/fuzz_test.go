package wasm

import (
	"testing"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// FuzzDecodeResult checks that whatever a guest returns, decodeResult
// either refuses it or accepts exactly the bits sdk/ABI.md §4 allows.
func FuzzDecodeResult(f *testing.F) {
	for _, r := range []uint32{1, 2, 3, 4, 0x8702, 0x10001, 0x03000001, 0, 9, 0x00800001} {
		f.Add(r, byte(KindAuthz), false)
		f.Add(r, byte(KindAuthn), true)
		f.Add(r, byte(KindPayload), false)
	}
	f.Fuzz(func(t *testing.T, r uint32, kind byte, enhanced bool) {
		if kind < KindAuthn || kind > KindPayload {
			return
		}
		res, err := decodeResult(kind, r, enhanced)
		if err != nil {
			return
		}
		back := uint32(res.verdict) | uint32(res.reason)<<ResultReasonShift | uint32(res.mode)<<ResultModeShift
		if res.superuser {
			back |= ResultSuperuser
		}
		switch {
		case back != r:
			t.Fatalf("%#x accepted as %+v", r, res)
		case res.verdict < VerdictAllow || res.verdict > VerdictContinue:
			t.Fatalf("%#x: verdict %d accepted", r, res.verdict)
		case res.reason != 0 && (res.verdict != VerdictDeny || res.reason < 0x80):
			t.Fatalf("%#x: reason accepted", r)
		case res.superuser && (kind != KindAuthn || res.verdict != VerdictAllow):
			t.Fatalf("%#x: superuser accepted", r)
		case res.verdict == VerdictContinue && (kind != KindAuthn || !enhanced):
			t.Fatalf("%#x: continue accepted", r)
		}
	})
}

// FuzzEncodeAuthz encodes arbitrary requests, twice through the same
// client prefix, and decodes them back with the spec-only test decoder.
func FuzzEncodeAuthz(f *testing.F) {
	f.Add("c1", "alice", "a/b", "", "tenant", "acme", true)
	f.Add("", "", "", "g", "", "", false)
	f.Fuzz(func(t *testing.T, id, user, topic, share, k, v string, cert bool) {
		c := &policy.Client{ClientID: id, Username: user, RemoteAddr: k, ProtocolVersion: 5}
		if k != "" || v != "" {
			c.Attributes = []policy.Attribute{{Key: k, Value: v}}
		}
		if cert {
			c.Cert = &policy.Cert{SubjectCN: v, SANs: []string{k, v}}
		}
		req := &policy.AuthzRequest{Client: c, Action: policy.ActionSubscribe, Topic: topic, ShareGroup: share}
		var p clientPrefix
		for range 2 {
			size := authzSize(req)
			b := make([]byte, size)
			if n := encodeAuthz(b, req, size, &p); int(n) != size {
				t.Fatalf("wrote %d of %d", n, size)
			}
			d, err := decodeRequest(b)
			if err != nil {
				t.Fatal(err)
			}
			if d.fields[FieldClientID] != id || d.fields[FieldUsername] != user || d.fields[FieldTopic] != topic ||
				d.fields[FieldShareGroup] != share || d.fields[FieldRemoteAddr] != k {
				t.Fatalf("decoded %+v", d)
			}
		}
	})
}
