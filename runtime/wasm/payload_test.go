package wasm

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// TestPayloadDecision runs payload decisions through the example payload
// module (examples/plugins/payload, Go SDK): the request reaches the guest
// whole (topic, attributes, envelope key id, user properties), the result's
// mode and set_key_id come back, and payload_read works only with
// allow_payload.
func TestPayloadDecision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go wasm module")
	}
	path := testutil.Example(t, "payload")
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const cfg = `{"deliver_key_attribute": "payload_key", "rules": [
		{"topic": "plain/#", "mode": "plaintext"},
		{"topic": "devices/#", "mode": "require-e2e", "keys": ["device-1"]},
		{"topic": "secure/#", "mode": "at-rest", "key": "k2", "deny_if_contains": ["secret"]},
		{"topic": "tenants/#", "mode": "reencrypt"},
		{"topic": "blocked/#", "mode": "deny"}]}`
	e := newEngine(t, nil)
	load := func(name string, allowPayload bool) *Module {
		return testModule(t, e, "payload", ModuleConfig{Name: name, Path: path, Binary: bin,
			Decisions: []string{"payload"}, Timeout: time.Second, AllowPayload: allowPayload, ConfigJSON: []byte(cfg)})
	}
	reader, blind := load("payload", true), load("payload-blind", false)
	ctx := context.Background()
	pub := &policy.Client{ClientID: "c1", Username: "device", ProtocolVersion: 5}
	tenant := &policy.Client{ClientID: "c2", Username: "alice", ProtocolVersion: 4,
		Attributes: []policy.Attribute{{Key: "role", Value: "x"}, {Key: "payload_key", Value: "tenant-a"}}}

	tests := []struct {
		name string
		m    *Module
		req  policy.PayloadRequest
		want policy.PayloadResult
	}{
		{"plaintext", reader, policy.PayloadRequest{Client: pub, Action: policy.ActionPublish, Topic: "plain/a", Payload: []byte("x")},
			policy.PayloadResult{Verdict: policy.Allow, Mode: policy.ModePlaintext}},
		{"e2e, accepted key", reader, policy.PayloadRequest{Client: pub, Action: policy.ActionPublish, Topic: "devices/a", EnvelopeKeyID: "device-1",
			QoS: 1, Retain: true, ContentType: "application/octet-stream", UserProperties: []policy.Property{{Key: "a", Value: "b"}}},
			policy.PayloadResult{Verdict: policy.Allow, Mode: policy.ModeRequireE2E, KeyID: "device-1"}},
		{"e2e, other key", reader, policy.PayloadRequest{Client: pub, Action: policy.ActionPublish, Topic: "devices/a", EnvelopeKeyID: "k9"},
			policy.PayloadResult{Verdict: policy.Deny, Reason: policy.ReasonPayloadFormatInvalid, Message: "envelope key not accepted"}},
		{"at-rest, payload read", reader, policy.PayloadRequest{Client: pub, Action: policy.ActionPublish, Topic: "secure/a", Payload: []byte("all fine")},
			policy.PayloadResult{Verdict: policy.Allow, Mode: policy.ModeAtRest, KeyID: "k2"}},
		{"at-rest, forbidden word", reader, policy.PayloadRequest{Client: pub, Action: policy.ActionPublish, Topic: "secure/a", Payload: []byte("a secret!")},
			policy.PayloadResult{Verdict: policy.Deny, Reason: policy.ReasonPayloadFormatInvalid, Message: "payload holds a forbidden word"}},
		{"at-rest, empty payload", reader, policy.PayloadRequest{Client: pub, Action: policy.ActionPublish, Topic: "secure/a"},
			policy.PayloadResult{Verdict: policy.Allow, Mode: policy.ModeAtRest, KeyID: "k2"}},
		{"at-rest without allow_payload", blind, policy.PayloadRequest{Client: pub, Action: policy.ActionPublish, Topic: "secure/a", Payload: []byte("all fine")},
			policy.PayloadResult{Verdict: policy.Deny, Reason: policy.ReasonPayloadFormatInvalid, Message: "payload not readable: grant allow_payload"}},
		{"reencrypt", reader, policy.PayloadRequest{Client: pub, Action: policy.ActionPublish, Topic: "tenants/a", EnvelopeKeyID: "device-1"},
			policy.PayloadResult{Verdict: policy.Allow, Mode: policy.ModeReencrypt}},
		{"deliver to a tenant", reader, policy.PayloadRequest{Client: tenant, Action: policy.ActionDeliver, Topic: "tenants/a",
			Mode: policy.ModeReencrypt, EnvelopeKeyID: "k1"},
			policy.PayloadResult{Verdict: policy.Allow, KeyID: "tenant-a"}},
		{"deliver without a key", reader, policy.PayloadRequest{Client: pub, Action: policy.ActionDeliver, Topic: "tenants/a", Mode: policy.ModeReencrypt},
			policy.PayloadResult{Verdict: policy.Deny, Message: "no subscriber key"}},
		{"deny", reader, policy.PayloadRequest{Client: pub, Action: policy.ActionPublish, Topic: "blocked/a"},
			policy.PayloadResult{Verdict: policy.Deny, Reason: policy.ReasonNotAuthorized, Message: "payload refused on this topic"}},
		{"no rule", reader, policy.PayloadRequest{Client: pub, Action: policy.ActionPublish, Topic: "other/a"},
			policy.PayloadResult{Verdict: policy.Ignore}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.m.Payload(ctx, &tc.req)
			if err != nil || got != tc.want {
				t.Errorf("Payload = %+v, %v\n want %+v", got, err, tc.want)
			}
		})
	}

	// A module loaded without the payload decision is not asked.
	other := testModule(t, e, "payload", ModuleConfig{Name: "authz-only", Path: path, Binary: bin,
		Decisions: []string{"authz"}, Timeout: time.Second, ConfigJSON: []byte(cfg)})
	if _, err := other.Payload(ctx, &tests[0].req); err == nil {
		t.Error("Payload on a module without the payload decision: no error")
	}
}

// TestEncodePayload checks the request layout of a payload decision
// against sdk/ABI.md §3 byte by byte for the fields the payload kind adds.
func TestEncodePayload(t *testing.T) {
	req := &policy.PayloadRequest{
		Client:         &policy.Client{ClientID: "c", Username: "u", ProtocolVersion: 5},
		Action:         policy.ActionDeliver,
		Topic:          "t/1",
		QoS:            2,
		Retain:         true,
		ContentType:    "ct",
		UserProperties: []policy.Property{{Key: "k", Value: "v"}},
		Payload:        make([]byte, 300),
		EnvelopeKeyID:  "k1",
		Mode:           policy.ModeReencrypt,
	}
	size := payloadSize(req)
	b := make([]byte, size+8)
	for i := range b {
		b[i] = 0xEE // garbage the encoder must overwrite
	}
	n := encodePayload(b, req, size)
	if int(n) != size {
		t.Fatalf("wrote %d bytes, size says %d", n, size)
	}
	le32 := func(o int) int { return int(b[o]) | int(b[o+1])<<8 | int(b[o+2])<<16 | int(b[o+3])<<24 }
	if b[0] != KindPayload || b[1] != 3 || b[2] != 2 || b[3]&FlagRetain == 0 || b[4] != 5 ||
		int(b[6])|int(b[7])<<8 != FieldMode+1 || le32(8) != 300 || le32(12) != size {
		t.Fatalf("header % x", b[:16])
	}
	field := func(id int) []byte {
		off, l := le32(HeaderSize+DescriptorSize*id), le32(HeaderSize+DescriptorSize*id+4)
		if off == 0 {
			return nil
		}
		return b[off : off+l]
	}
	for id, want := range map[int]string{
		FieldClientID: "c", FieldUsername: "u", FieldTopic: "t/1", FieldContentType: "ct",
		FieldEnvelopeKeyID: "k1", FieldMode: "\x04",
		FieldUserProperties: "\x01\x00\x00\x00\x01\x00\x00\x00k\x01\x00\x00\x00v",
	} {
		if got := string(field(id)); got != want {
			t.Errorf("field %d = %q, want %q", id, got, want)
		}
	}
	for _, id := range []int{FieldPassword, FieldShareGroup, FieldAttributes, FieldCertCN, FieldCertSANs,
		FieldCertSHA256, FieldAuthMethod, FieldAuthData, FieldAuthState, FieldRemoteAddr, FieldListener} {
		if field(id) != nil {
			t.Errorf("field %d present", id)
		}
	}
	req.Mode = 0
	if size := payloadSize(req); int(encodePayload(b, req, size)) != size || field(FieldMode) != nil {
		t.Error("publish request carries a mode")
	}
}
