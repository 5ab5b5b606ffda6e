// Package reftest checks a build of the reference policy (examples/reference)
// through the real runtime: the module is loaded by runtime/wasm, as the
// broker loads it, and asked the authn, authz and payload questions of one
// table. The C, C++ and AssemblyScript SDK tests run it on their builds;
// the shared conformance file (`moat plugin test`) supersedes it once every
// language runs there.
package reftest

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// Config is the reference policy's configuration used by every case.
const Config = `{"users":[
	{"name":"alice","password":"alice-pw","tenant":"acme"},
	{"name":"bob","password":"bob-pw","tenant":"globex"},
	{"name":"carol","password":"c\u00e4rol \"pw\" \ud83d\ude00","tenant":""},
	{"name":"alice","password":"second-alice","tenant":"globex"}
]}`

// Build makes target (a path under bin/ such as
// "bin/examples/reference-c.wasm") with the repository's Makefile, which
// rebuilds it only when a source is newer, and returns its absolute path.
// Tests thus always run a module built from the sources they test.
func Build(t testing.TB, target string) string {
	t.Helper()
	root := repoRoot(t)
	buildMu.Lock()
	defer buildMu.Unlock()
	cmd := exec.Command("make", "--no-print-directory", target)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("reftest: make %s: %v\n%s", target, err, out)
	}
	return filepath.Join(root, target)
}

var buildMu sync.Mutex

func repoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatalf("reftest: no go.mod above %s", wd)
		}
	}
}

// Log collects a module's log lines (the guest's and the engine's).
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// NewEngine starts an engine whose log lines go to the returned Log; it
// is closed when the test ends. Modules loaded on one engine share its
// compilation cache.
func NewEngine(t testing.TB) (*wasm.Engine, *Log) {
	t.Helper()
	log := &Log{}
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	return e, log
}

// Load loads the module at path on an engine of its own (NewEngine), with
// LoadOn's defaults.
func Load(t testing.TB, path string, cfg *wasm.ModuleConfig) (*wasm.Module, *Log, error) {
	t.Helper()
	e, log := NewEngine(t)
	m, err := LoadOn(t, e, path, cfg)
	return m, log, err
}

// LoadOn loads the module at path on e, deciding authn, authz and payload
// with Config as its config, a pool of one and a 5s timeout, unless cfg
// says otherwise. The module is closed when the test ends. Load errors are
// returned, so that a test can check a refused config.
func LoadOn(t testing.TB, e *wasm.Engine, path string, cfg *wasm.ModuleConfig) (*wasm.Module, error) {
	t.Helper()
	mc := wasm.ModuleConfig{}
	if cfg != nil {
		mc = *cfg
	}
	mc.Name = "reference"
	mc.Path = path
	if mc.Decisions == nil {
		mc.Decisions = []string{"authn", "authz", "payload"}
	}
	if mc.ConfigJSON == nil {
		mc.ConfigJSON = []byte(Config)
	}
	if mc.Instances == 0 {
		mc.Instances = 1
	}
	if mc.Timeout == 0 {
		// These tests check decisions, not deadlines: a loaded machine
		// (or the race detector) must not turn a slow call into an error.
		mc.Timeout = 5 * time.Second
	}
	m, err := e.Load(context.Background(), mc)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { m.Close() })
	return m, nil
}

type authnCase struct {
	name     string
	username string
	password []byte // nil: no password field
	verdict  policy.Verdict
	message  string
	attrs    []policy.Attribute
}

type authzCase struct {
	name     string
	username string
	clientID string
	attrs    []policy.Attribute
	action   policy.Action
	topic    string
	verdict  policy.Verdict
}

type payloadCase struct {
	name    string
	action  policy.Action
	topic   string
	verdict policy.Verdict
	mode    policy.Mode
	keyID   string
}

var (
	acme     = []policy.Attribute{{Key: "tenant", Value: "acme"}}
	globex   = []policy.Attribute{{Key: "tenant", Value: "globex"}}
	bigTopic = "devices/alice/" + strings.Repeat("x", 100_000)
)

const badLogin = "bad user name or password"

var authnCases = []authnCase{
	{"right password", "alice", []byte("alice-pw"), policy.Allow, "", acme},
	{"other user", "bob", []byte("bob-pw"), policy.Allow, "", globex},
	{"escaped password, empty tenant", "carol", []byte("c\u00e4rol \"pw\" \U0001F600"), policy.Allow, "", []policy.Attribute{{Key: "tenant", Value: ""}}},
	{"the first user of a name wins", "alice", []byte("second-alice"), policy.Deny, badLogin, nil},
	{"wrong password", "alice", []byte("bob-pw"), policy.Deny, badLogin, nil},
	{"password prefix", "alice", []byte("alice-p"), policy.Deny, badLogin, nil},
	{"password longer", "alice", []byte("alice-pw2"), policy.Deny, badLogin, nil},
	{"empty password", "alice", []byte{}, policy.Deny, badLogin, nil},
	{"no password", "alice", nil, policy.Deny, badLogin, nil},
	{"unknown user", "mallory", []byte("alice-pw"), policy.Ignore, "", nil},
	{"no username", "", []byte("alice-pw"), policy.Ignore, "", nil},
	{"username differs in case", "Alice", []byte("alice-pw"), policy.Ignore, "", nil},
}

var authzCases = []authzCase{
	{"publish own device", "alice", "c1", acme, policy.ActionPublish, "devices/alice/temp", policy.Allow},
	{"own device root", "alice", "c1", acme, policy.ActionPublish, "devices/alice", policy.Allow},
	{"publish other device", "alice", "c1", acme, policy.ActionPublish, "devices/bob/temp", policy.Deny},
	{"device prefix is no level", "alice", "c1", acme, policy.ActionPublish, "devices/alicex/temp", policy.Deny},
	{"subscribe own +", "alice", "c1", acme, policy.ActionSubscribe, "devices/alice/+", policy.Allow},
	{"subscribe own #", "alice", "c1", acme, policy.ActionSubscribe, "devices/alice/#", policy.Allow},
	{"subscribe every device", "alice", "c1", acme, policy.ActionSubscribe, "devices/+/temp", policy.Deny},
	{"subscribe everything", "alice", "c1", acme, policy.ActionSubscribe, "#", policy.Deny},
	{"subscribe devices #", "alice", "c1", acme, policy.ActionSubscribe, "devices/#", policy.Deny},
	{"deliver own device", "alice", "c1", acme, policy.ActionDeliver, "devices/alice/x", policy.Allow},
	{"deliver elsewhere", "alice", "c1", acme, policy.ActionDeliver, "news/x", policy.Deny},
	{"publish tenant", "alice", "c1", acme, policy.ActionPublish, "tenants/acme/orders", policy.Allow},
	{"subscribe tenant", "alice", "c1", acme, policy.ActionSubscribe, "tenants/acme/#", policy.Allow},
	{"subscribe tenant +", "alice", "c1", acme, policy.ActionSubscribe, "tenants/acme/+/x", policy.Allow},
	{"deliver tenant", "alice", "c1", acme, policy.ActionDeliver, "tenants/acme/orders", policy.Allow},
	{"other tenant", "alice", "c1", acme, policy.ActionPublish, "tenants/globex/orders", policy.Deny},
	{"subscribe every tenant", "alice", "c1", acme, policy.ActionSubscribe, "tenants/+/orders", policy.Deny},
	{"tenant from attribute only", "alice", "c1", nil, policy.ActionPublish, "tenants/acme/orders", policy.Deny},
	{"tenant not from the user name", "acme", "c1", globex, policy.ActionPublish, "tenants/acme/orders", policy.Deny},
	{"empty tenant", "carol", "c1", []policy.Attribute{{Key: "tenant", Value: ""}}, policy.ActionPublish, "tenants//x", policy.Deny},
	{"first tenant attribute", "alice", "c1", []policy.Attribute{{Key: "tenant", Value: "acme"}, {Key: "tenant", Value: "globex"}}, policy.ActionPublish, "tenants/globex/x", policy.Deny},
	{"$SYS", "alice", "c1", acme, policy.ActionSubscribe, "$SYS/#", policy.Deny},
	{"empty last level", "alice", "c1", acme, policy.ActionPublish, "devices/alice/", policy.Allow},
	{"tenant of another user", "bob", "c2", globex, policy.ActionPublish, "tenants/globex/orders", policy.Allow},
	{"tenant with a slash", "eve", "c3", []policy.Attribute{{Key: "tenant", Value: "a/b"}}, policy.ActionPublish, "tenants/a/b/x", policy.Deny},
	{"tenant wildcard", "eve", "c3", []policy.Attribute{{Key: "tenant", Value: "+"}}, policy.ActionPublish, "tenants/+/x", policy.Deny},
	{"other attribute", "alice", "c1", []policy.Attribute{{Key: "role", Value: "acme"}}, policy.ActionPublish, "tenants/acme/x", policy.Deny},
	{"wildcard username", "+", "c4", nil, policy.ActionSubscribe, "devices/+/x", policy.Deny},
	{"empty username", "", "c5", nil, policy.ActionPublish, "devices//x", policy.Deny},
	{"client id is not username", "alice", "bob", acme, policy.ActionPublish, "devices/bob/x", policy.Deny},
	{"large topic", "alice", "c1", acme, policy.ActionPublish, bigTopic, policy.Allow},
}

var payloadCases = []payloadCase{
	{"secure topic", policy.ActionPublish, "secure/vault", policy.Allow, policy.ModeAtRest, "default"},
	{"secure root", policy.ActionPublish, "secure", policy.Allow, policy.ModeAtRest, "default"},
	{"deep secure", policy.ActionPublish, "secure/a/b/c", policy.Allow, policy.ModeAtRest, "default"},
	{"plain topic", policy.ActionPublish, "devices/alice/temp", policy.Allow, policy.ModePlaintext, ""},
	{"secure prefix is no level", policy.ActionPublish, "securex/y", policy.Allow, policy.ModePlaintext, ""},
	{"secure below the root", policy.ActionPublish, "a/secure/b", policy.Allow, policy.ModePlaintext, ""},
	{"deliver secure", policy.ActionDeliver, "secure/vault", policy.Allow, policy.ModeAtRest, "default"},
	{"deliver plain", policy.ActionDeliver, "plain", policy.Allow, policy.ModePlaintext, ""},
}

// Run checks the module at path against the reference policy's table.
func Run(t *testing.T, path string) {
	m, log, err := Load(t, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Run("authn", func(t *testing.T) {
		for _, tc := range authnCases {
			t.Run(tc.name, func(t *testing.T) {
				req := &policy.AuthnRequest{
					Client:   &policy.Client{ClientID: "c-" + tc.username, Username: tc.username, ProtocolVersion: 5},
					Password: tc.password,
				}
				res, err := m.Authenticate(ctx, req)
				if err != nil {
					t.Fatalf("plugin error: %v\nlog:\n%s", err, log)
				}
				if res.Verdict != tc.verdict || res.Message != tc.message || res.Reason != 0 || res.Superuser {
					t.Errorf("got %v reason %#x superuser %v message %q, want %v reason 0 message %q",
						res.Verdict, res.Reason, res.Superuser, res.Message, tc.verdict, tc.message)
				}
				if !slices.Equal(res.Attributes, tc.attrs) {
					t.Errorf("attributes %v, want %v", res.Attributes, tc.attrs)
				}
			})
		}
	})
	t.Run("authz", func(t *testing.T) {
		for _, tc := range authzCases {
			t.Run(tc.name, func(t *testing.T) {
				req := &policy.AuthzRequest{
					Client: &policy.Client{ClientID: tc.clientID, Username: tc.username, ProtocolVersion: 4, Attributes: tc.attrs},
					Action: tc.action,
					Topic:  tc.topic,
					QoS:    1,
				}
				res, err := m.Authorize(ctx, req)
				if err != nil {
					t.Fatalf("plugin error: %v\nlog:\n%s", err, log)
				}
				if res.Verdict != tc.verdict || res.Reason != 0 {
					t.Errorf("%v %q: got %v reason %#x, want %v", tc.action, short(tc.topic), res.Verdict, res.Reason, tc.verdict)
				}
			})
		}
		// Every action on the user's own devices, decrypt included.
		for _, a := range []policy.Action{policy.ActionPublish, policy.ActionSubscribe, policy.ActionDeliver, policy.ActionDecrypt} {
			req := &policy.AuthzRequest{Client: &policy.Client{ClientID: "c1", Username: "alice", Attributes: acme}, Action: a, Topic: "devices/alice/x"}
			if res, err := m.Authorize(ctx, req); err != nil || res.Verdict != policy.Allow {
				t.Errorf("%v devices/alice/x: %v %v, want allow", a, res.Verdict, err)
			}
		}
	})
	// The buffer grows for large requests, by pages the module's allocator
	// did not give it: the users it allocated must stay intact.
	t.Run("buffer growth keeps the users", func(t *testing.T) {
		for _, n := range []int{70_000, 300_000, 1_000_000} {
			req := &policy.AuthzRequest{Client: &policy.Client{ClientID: "c1", Username: "alice", Attributes: acme}, Action: policy.ActionPublish, Topic: "tenants/acme/" + strings.Repeat("y", n)}
			if res, err := m.Authorize(ctx, req); err != nil || res.Verdict != policy.Allow {
				t.Fatalf("%d-byte topic: %v %v, want allow\n%s", n, res.Verdict, err, log)
			}
			res, err := m.Authenticate(ctx, &policy.AuthnRequest{Client: &policy.Client{Username: "bob"}, Password: []byte("bob-pw")})
			if err != nil || res.Verdict != policy.Allow || !slices.Equal(res.Attributes, globex) {
				t.Fatalf("after a %d-byte topic: bob %v %v %v, want allow with tenant globex", n, res.Verdict, res.Attributes, err)
			}
		}
	})
	t.Run("payload", func(t *testing.T) {
		for _, tc := range payloadCases {
			t.Run(tc.name, func(t *testing.T) {
				req := &policy.PayloadRequest{
					Client:  &policy.Client{ClientID: "c1", Username: "alice", Attributes: acme},
					Action:  tc.action,
					Topic:   tc.topic,
					QoS:     1,
					Payload: []byte("hello"),
				}
				res, err := m.Payload(ctx, req)
				if err != nil {
					t.Fatalf("plugin error: %v\nlog:\n%s", err, log)
				}
				if res.Verdict != tc.verdict || res.Mode != tc.mode || res.KeyID != tc.keyID {
					t.Errorf("%q: got %v mode %v key id %q, want %v mode %v key id %q",
						tc.topic, res.Verdict, res.Mode, res.KeyID, tc.verdict, tc.mode, tc.keyID)
				}
			})
		}
	})
}

// RefusedConfigs checks that the module at path refuses configs that are
// not the reference policy's, with a message naming the key at fault.
func RefusedConfigs(t *testing.T, path string) {
	tests := []struct {
		name, config string
		want         []string
	}{
		{"not JSON", `{"users":[`, []string{"config is not valid JSON"}},
		{"unknown key", `{"user":[]}`, []string{`unknown key "user"`}},
		{"unknown user key", `{"users":[{"name":"a","password":"b","tenant":"t","role":"x"}]}`, []string{`users[0]`, `unknown key "role"`}},
		{"no password", `{"users":[{"name":"a","password":"b","tenant":"t"},{"name":"c","tenant":"t"}]}`, []string{"users[1].password"}},
		{"no name", `{"users":[{"password":"b","tenant":"t"}]}`, []string{"users[0].name"}},
		{"password not a string", `{"users":[{"name":"a","password":7,"tenant":"t"}]}`, []string{"users[0].password", "expected a string"}},
		{"users not an array", `{"users":{}}`, []string{"users", "expected an array"}},
		{"no tenant", `{"users":[{"name":"a","password":"b"}]}`, []string{"users[0].tenant"}},
	}
	e, log := NewEngine(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadOn(t, e, path, &wasm.ModuleConfig{ConfigJSON: []byte(tc.config)})
			if err == nil {
				t.Fatalf("config %s accepted", tc.config)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// An empty config is no users: every login is left to others.
	m, err := LoadOn(t, e, path, &wasm.ModuleConfig{ConfigJSON: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Authenticate(context.Background(), &policy.AuthnRequest{Client: &policy.Client{Username: "alice"}, Password: []byte("alice-pw")})
	if err != nil || res.Verdict != policy.Ignore {
		t.Errorf("empty config: %v %v, want ignore\n%s", res.Verdict, err, log)
	}
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
