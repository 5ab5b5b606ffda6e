package sdktest

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// The tests in this file run the SDK's modules in the broker's own engine
// (runtime/wasm), as moat.toml would load them: with its import checks,
// its instrumentation for deadlines and its pool. The tests in sdk_test.go
// drive the ABI directly, to see what a policy-level API hides.

var engine struct {
	once sync.Once
	e    *wasm.Engine
	err  error
}

// sharedEngine starts one engine for the test binary, with a compilation
// cache on disk beside the tiny host's (see compilationCache).
func sharedEngine(t testing.TB) *wasm.Engine {
	t.Helper()
	engine.once.Do(func() {
		dir, err := os.UserCacheDir()
		opts := wasm.EngineOptions{}
		if err == nil {
			opts.CacheDir = filepath.Join(dir, "moat", "sdktest-engine")
		}
		engine.e, engine.err = wasm.NewEngine(context.Background(), opts)
	})
	if engine.err != nil {
		t.Fatal(engine.err)
	}
	return engine.e
}

func load(t testing.TB, cfg wasm.ModuleConfig) (*wasm.Module, error) {
	t.Helper()
	bin, ok := env.binaries[cfg.Name]
	if !ok {
		t.Fatalf("module %q was not built", cfg.Name)
	}
	cfg.Binary, cfg.Path = bin, cfg.Name+".wasm"
	m, err := sharedEngine(t).Load(context.Background(), cfg)
	if err == nil {
		t.Cleanup(func() { m.Close() })
	}
	return m, err
}

const demoConfig = `{"users":[{"username":"demo","password":"demo","attributes":{"tenant":"acme"}}],
	"rules":[{"username":"demo","action":"all","topic":"demo/#"}]}`

func TestEngineDemo(t *testing.T) {
	m, err := load(t, wasm.ModuleConfig{
		Name: "demo", Decisions: []string{"authn", "authz"}, Instances: 2, ConfigJSON: []byte(demoConfig),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client := func(user string) *policy.Client {
		return &policy.Client{ClientID: "c1", Username: user, RemoteAddr: "127.0.0.1:5000", Listener: "mqtt", ProtocolVersion: 5}
	}
	authn := []struct {
		name     string
		user     string
		password []byte
		want     policy.AuthnResult
	}{
		{"right password", "demo", []byte("demo"), policy.AuthnResult{
			Verdict: policy.Allow, Attributes: []policy.Attribute{{Key: "tenant", Value: "acme"}},
		}},
		{"wrong password", "demo", []byte("nope"), policy.AuthnResult{
			Verdict: policy.Deny, Reason: policy.ReasonBadUserNameOrPass, Message: "bad username or password",
		}},
		{"no password", "demo", nil, policy.AuthnResult{
			Verdict: policy.Deny, Reason: policy.ReasonBadUserNameOrPass, Message: "bad username or password",
		}},
		{"unknown user", "eve", []byte("demo"), policy.AuthnResult{Verdict: policy.Ignore}},
	}
	for _, tc := range authn {
		t.Run("authn "+tc.name, func(t *testing.T) {
			got, err := m.Authenticate(ctx, &policy.AuthnRequest{Client: client(tc.user), Password: tc.password})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Authenticate:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	authz := []struct {
		name   string
		action policy.Action
		topic  string
		want   policy.Verdict
	}{
		{"publish", policy.ActionPublish, "demo/a", policy.Allow},
		{"subscribe", policy.ActionSubscribe, "demo/+/x", policy.Allow},
		{"deliver elsewhere", policy.ActionDeliver, "other", policy.Ignore},
	}
	for _, tc := range authz {
		t.Run("authz "+tc.name, func(t *testing.T) {
			c := client("demo")
			c.Attributes = []policy.Attribute{{Key: "tenant", Value: "acme"}}
			got, err := m.Authorize(ctx, &policy.AuthzRequest{Client: c, Action: tc.action, Topic: tc.topic, QoS: 1})
			if err != nil {
				t.Fatal(err)
			}
			if got.Verdict != tc.want {
				t.Errorf("Authorize = %v, want %v", got.Verdict, tc.want)
			}
		})
	}
}

// TestEngineLoad checks what the engine says about SDK modules at load:
// the file capability is imported only by modules that use sdk/go/files,
// and a configuration the module refuses stops the load with its message.
func TestEngineLoad(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte("granted content"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     wasm.ModuleConfig
		wantErr []string
	}{
		{"files without a grant", wasm.ModuleConfig{Name: "files", Decisions: []string{"authz"}},
			[]string{`plugin "files"`, "file_"}},
		{"refused config", wasm.ModuleConfig{Name: "probe", Decisions: []string{"authz"},
			ConfigJSON: []byte(`{"refuse":1}`)}, []string{`probe: config: unknown key "refuse"`}},
		{"config for a module without a config handler", wasm.ModuleConfig{Name: "files", Decisions: []string{"authz"},
			Files: map[string]string{"acl": acl}, ConfigJSON: []byte(`{"a":1}`)},
			[]string{"the module takes no configuration"}},
		// The demo, which reads no file, loads without a grant in
		// TestEngineDemo.
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Instances = 1
			_, err := load(t, tc.cfg)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			t.Log(err)
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Load error %q does not contain %q", err, want)
				}
			}
		})
	}
	t.Run("files with a grant reads the file", func(t *testing.T) {
		m, err := load(t, wasm.ModuleConfig{Name: "files", Decisions: []string{"authz"}, Instances: 1,
			Files: map[string]string{"acl": acl}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Authorize(context.Background(), &policy.AuthzRequest{
			Client: &policy.Client{}, Action: policy.ActionPublish, Topic: "acl"})
		if err != nil || got.Message != "granted content" {
			t.Errorf("Authorize = %+v, %v; want the file's content as message", got, err)
		}
	})
}

// BenchmarkEngineAuthorize is one authorization through the broker's
// engine into the demo module: request encoding, the pool, the deadline
// instrumentation and the SDK, as the broker pays it without its cache.
// The request and the demo's rules are those of
// BenchmarkGoGuestAuthorize/demo-allow.
func BenchmarkEngineAuthorize(b *testing.B) {
	m, err := load(b, wasm.ModuleConfig{Name: "demo", Decisions: []string{"authz"}, Instances: 1,
		ConfigJSON: []byte(benchDemoConfig)})
	if err != nil {
		b.Fatal(err)
	}
	req := &policy.AuthzRequest{
		Client: &policy.Client{
			ClientID: "sensor-0042", Username: "demo", RemoteAddr: "127.0.0.1:50000", Listener: "tcp", ProtocolVersion: 5,
			Attributes: []policy.Attribute{{Key: "tenant", Value: "acme"}},
		},
		Action: policy.ActionPublish, Topic: "demo/sensors/0042/temperature", QoS: 1,
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := m.Authorize(ctx, req)
		if err != nil || res.Verdict != policy.Allow {
			b.Fatal(res, err)
		}
	}
}
