package reftest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// Benchmark measures an authn, an authz and a payload decision of the
// reference policy's builds (name -> module path), and, as the baseline
// of the same run, the authn and authz decisions of the hand-written
// module runtime/wasm/testdata/basic.wasm, a guest that does almost
// nothing: the difference is what the language and its SDK cost.
func Benchmark(b *testing.B, modules map[string]string) {
	ctx := context.Background()
	e, _ := NewEngine(b)
	alice := &policy.Client{ClientID: "alice-1", Username: "alice", ProtocolVersion: 5, Attributes: acme}
	authn := &policy.AuthnRequest{Client: &policy.Client{ClientID: "alice-1", Username: "alice", ProtocolVersion: 5}, Password: []byte("alice-pw")}
	authz := &policy.AuthzRequest{Client: alice, Action: policy.ActionPublish, Topic: "tenants/acme/orders", QoS: 1}
	payload := &policy.PayloadRequest{Client: alice, Action: policy.ActionPublish, Topic: "secure/vault", QoS: 1}
	run := func(b *testing.B, m *wasm.Module, kind string, want policy.Verdict) {
		b.Helper()
		b.ReportAllocs()
		for b.Loop() {
			var v policy.Verdict
			var err error
			switch kind {
			case "authn":
				var r policy.AuthnResult
				r, err = m.Authenticate(ctx, authn)
				v = r.Verdict
			case "authz":
				var r policy.AuthzResult
				r, err = m.Authorize(ctx, authz)
				v = r.Verdict
			default:
				var r policy.PayloadResult
				r, err = m.Payload(ctx, payload)
				v = r.Verdict
			}
			if err != nil || v != want {
				b.Fatalf("%s: %v %v, want %v", kind, v, err, want)
			}
		}
	}
	base, err := LoadOn(b, e, filepath.Join(repoRoot(b), "runtime", "wasm", "testdata", "basic.wasm"),
		&wasm.ModuleConfig{Decisions: []string{"authn", "authz"}, ConfigJSON: []byte("{}")})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("wat/authn", func(b *testing.B) { run(b, base, "authn", policy.Allow) })
	baseAuthz := *authz
	baseAuthz.Topic = "public/orders"
	b.Run("wat/authz", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if r, err := base.Authorize(ctx, &baseAuthz); err != nil || r.Verdict != policy.Allow {
				b.Fatalf("authz: %v %v", r.Verdict, err)
			}
		}
	})
	for name, path := range modules {
		m, err := LoadOn(b, e, path, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, kind := range []string{"authn", "authz", "payload"} {
			b.Run(name+"/"+kind, func(b *testing.B) { run(b, m, kind, policy.Allow) })
		}
	}
}
