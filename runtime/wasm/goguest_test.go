package wasm

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// TestGoGuest loads the example module, built from examples/plugins/demo
// with the Go SDK (GOOS=wasip1, -buildmode=c-shared): a real toolchain's
// output, with WASI imports, _initialize and a large code section, through
// the meter and every load-time check.
func TestGoGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go wasm module")
	}
	path := testutil.Example(t, "demo")
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, nil)
	m := testModule(t, e, "demo", ModuleConfig{
		Path: path, Binary: bin, Decisions: []string{"authn", "authz"}, Timeout: time.Second,
		ConfigJSON: []byte(`{"users": [{"username": "demo", "password": "pw", "attributes": {"tenant": "acme"}}],
			"rules": [{"username": "demo", "action": "all", "topic": "demo/#"}]}`),
	})
	ctx := context.Background()
	c := &policy.Client{ClientID: "c1", Username: "demo", ProtocolVersion: 5}
	res, err := m.Authenticate(ctx, &policy.AuthnRequest{Client: c, Password: []byte("pw")})
	if err != nil || res.Verdict != policy.Allow || len(res.Attributes) != 1 || res.Attributes[0] != (policy.Attribute{Key: "tenant", Value: "acme"}) {
		t.Fatalf("authenticate: %+v, %v", res, err)
	}
	if res, err := m.Authenticate(ctx, &policy.AuthnRequest{Client: c, Password: []byte("bad")}); err != nil || res.Verdict != policy.Deny {
		t.Fatalf("wrong password: %+v, %v", res, err)
	}
	c.Attributes = res.Attributes
	for topic, want := range map[string]policy.Verdict{"demo/a": policy.Allow, "other/a": policy.Ignore} {
		res, err := m.Authorize(ctx, &policy.AuthzRequest{Client: c, Action: policy.ActionPublish, Topic: topic})
		if err != nil || (res.Verdict != want && !(want == policy.Ignore && res.Verdict == policy.Deny)) {
			t.Errorf("%s: %+v, %v", topic, res, err)
		}
	}
	_, err = e.Load(ctx, moduleConfig(t, "demo", ModuleConfig{Name: "demo2", Path: path, Binary: bin, Timeout: time.Second,
		ConfigJSON: []byte(`{"users": [{"username": ""}]}`)}))
	wantErr(t, err, `wasm: plugin "demo2"`, "config refused", "users[0].username: empty")
}
