// Package rust holds the Go tests of the Rust SDK (moat.rs): they build
// testdata/sdktest.rs with the SDK's recipe and drive it through the
// broker's wasm runtime.
package rust

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/pbkdf2"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// Recipe is the build command of sdk/rust/README.md.
var recipe = []string{"--edition", "2021", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib",
	"-C", "panic=abort", "-C", "opt-level=s", "-C", "link-arg=-zstack-size=65536", "-C", "strip=symbols"}

func rustc() string {
	if r := os.Getenv("RUSTC"); r != "" {
		return r
	}
	return "/usr/bin/rustc"
}

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// sdktest builds testdata/sdktest.rs once per test process.
func sdktest(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "moat-rust-")
		if err != nil {
			buildErr = err
			return
		}
		built = filepath.Join(dir, "sdktest.wasm")
		out, err := exec.Command(rustc(), append(recipe, "testdata/sdktest.rs", "-o", built)...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("%s: %v\n%s", rustc(), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// load loads the test module with config (nil: "{}").
func load(t testing.TB, config string, memLimit int64) (*wasm.Module, *logBuffer, error) {
	t.Helper()
	lb := &logBuffer{}
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{Logger: slog.New(slog.NewTextHandler(lb, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// The module reads files (the "file" authn), so it needs a grant.
	cfg := wasm.ModuleConfig{Name: "sdktest", Path: sdktest(t), Decisions: []string{"authn", "authz"}, Instances: 1, MemoryLimit: memLimit,
		Files: map[string]string{"greeting": "testdata/greeting.txt"}}
	if config != "" {
		cfg.ConfigJSON = []byte(config)
	}
	m, err := e.Load(ctx, cfg)
	t.Cleanup(func() {
		if m != nil {
			m.Close()
		}
		e.Close(ctx)
	})
	return m, lb, err
}

func mustLoad(t testing.TB, config string) (*wasm.Module, *logBuffer) {
	t.Helper()
	m, lb, err := load(t, config, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, lb
}

func authn(t testing.TB, m *wasm.Module, req *policy.AuthnRequest) policy.AuthnResult {
	t.Helper()
	res, err := m.Authenticate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// TestJSON checks the SDK's JSON reader through a module that answers the
// canonical form of the document it is given, or the parse error.
func TestJSON(t *testing.T) {
	m, _ := mustLoad(t, "")
	tests := []struct{ in, want string }{
		{`{}`, `{}`},
		{` { "a" : [ 1 , -20, 3.5e2, "x" , true,false ,null ] } `, `{a:[1,-20,3.5e2,"x",true,false,null]}`},
		{`"\u00e9\u2713\ud83d\ude00 \"\\\/\n"`, "\"é✓😀 \"\\/\n\""},
		{`{"k\u0041y":{"n":[[],{}]}}`, `{kAy:{n:[[],{}]}}`},
		{`"\ud800"`, "\"\uFFFD\""},
		{`9223372036854775807`, `9223372036854775807`},
		{`9223372036854775808`, `9223372036854775808`},
		{`0`, `0`},
		// Errors name the byte.
		{``, `invalid JSON at byte 0: unexpected end`},
		{`{"a":}`, `invalid JSON at byte 5: unexpected character`},
		{`{"a" 1}`, `invalid JSON at byte 5: want ':'`},
		{`[1,]`, `invalid JSON at byte 3: unexpected character`},
		{`{a:1}`, `invalid JSON at byte 1: want a string key`},
		{`"abc`, `invalid JSON at byte 0: unterminated string`},
		{`"\x"`, `invalid JSON at byte 2: invalid escape`},
		{`"\u12g4"`, `invalid JSON at byte 5: invalid \u escape`},
		{"\"a\tb\"", `invalid JSON at byte 2: control character in string`},
		{`01`, `invalid JSON at byte 1: data after the value`},
		{`-`, `invalid JSON at byte 1: invalid number`},
		{`1.`, `invalid JSON at byte 2: invalid number`},
		{`1e`, `invalid JSON at byte 2: invalid number`},
		{`tru`, `invalid JSON at byte 0: invalid literal`},
		{`{} {}`, `invalid JSON at byte 3: data after the value`},
		{strings.Repeat("[", 66) + strings.Repeat("]", 66), `invalid JSON at byte 65: nested too deeply`},
		{"\"\xff\"", `invalid JSON at byte 0: string is not UTF-8`},
	}
	for _, tc := range tests {
		res := authn(t, m, &policy.AuthnRequest{Client: &policy.Client{Username: "json"}, Password: []byte(tc.in)})
		if res.Message != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, res.Message, tc.want)
		}
		wantVerdict := policy.Allow
		if strings.HasPrefix(tc.want, "invalid JSON") {
			wantVerdict = policy.Deny
		}
		if res.Verdict != wantVerdict {
			t.Errorf("%q: verdict %v, want %v", tc.in, res.Verdict, wantVerdict)
		}
	}
}

// FuzzJSON checks the reader against encoding/json: it never traps,
// accepts only valid JSON, and accepts all valid UTF-8 JSON nested at most
// 64 deep.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"users":[{"name":"a","password":"\u0041"}]}`, `[1,2,{"a":null}]`, `"\ud83d\ude00"`, `-0.5e-3`, `[[[]]]`} {
		f.Add([]byte(s))
	}
	m, _ := mustLoad(f, "")
	f.Fuzz(func(t *testing.T, in []byte) {
		res, err := m.Authenticate(context.Background(), &policy.AuthnRequest{Client: &policy.Client{Username: "json"}, Password: in})
		if err != nil {
			t.Fatalf("%q: plugin error: %v", in, err)
		}
		valid := json.Valid(in) && utf8.Valid(in)
		if res.Verdict == policy.Allow && !valid {
			t.Fatalf("%q: accepted invalid JSON as %q", in, res.Message)
		}
		if res.Verdict == policy.Deny && valid && depth(in) <= 64 {
			t.Fatalf("%q: refused valid JSON: %s", in, res.Message)
		}
	})
}

// depth is an upper bound of the nesting of a JSON document.
func depth(b []byte) int {
	d, most := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			d++
			most = max(most, d)
		case ']', '}':
			d--
		}
	}
	return most
}

// TestFilter checks Filter matching, with %u, %c and %{attr}, for names
// and (subscribe) for filters.
func TestFilter(t *testing.T) {
	m, _ := mustLoad(t, "")
	tests := []struct {
		filter, topic string
		sub           bool
		user, client  string
		want          bool
	}{
		{"a/b", "a/b", false, "", "", true},
		{"a/b", "a/c", false, "", "", false},
		{"a/+", "a/b", false, "", "", true},
		{"a/+", "a/b/c", false, "", "", false},
		{"a/#", "a", false, "", "", true},
		{"a/#", "a/b/c", false, "", "", true},
		{"a/#", "ab", false, "", "", false},
		{"#", "$SYS/x", false, "", "", false},
		{"+/x", "$SYS/x", false, "", "", false},
		{"$SYS/#", "$SYS/x", false, "", "", true},
		{"u/%u/#", "u/alice/x", false, "alice", "", true},
		{"u/%u/#", "u/bob/x", false, "alice", "", false},
		{"u/%u/#", "u//x", false, "", "", false},
		{"u/%u", "u/a+b", false, "a+b", "", false},
		{"u/%u", "u/%u", false, "", "", false},
		{"c/%c", "c/dev-1", false, "", "dev-1", true},
		{"c/%c", "c/dev/1", false, "", "dev/1", false},
		{"c/%c-x", "c/dev-x", false, "", "dev", false},
		{"c/%c-x", "c/%c-x", false, "", "dev", true},
		{"t/%{filter}", "t/t/%{filter}", false, "", "", false},
		// Subscriptions: the rule must cover the filter.
		{"a/#", "a/+/b", true, "", "", true},
		{"a/#", "a/#", true, "", "", true},
		{"a/+", "a/#", true, "", "", false},
		{"a/+", "a/+", true, "", "", true},
		{"a/b", "a/+", true, "", "", false},
		{"u/%u/#", "u/+/x", true, "alice", "", false},
		{"u/%u/#", "u/alice/+", true, "alice", "", true},
	}
	for _, tc := range tests {
		action := policy.ActionPublish
		if tc.sub {
			action = policy.ActionSubscribe
		}
		client := &policy.Client{Username: tc.user, ClientID: tc.client, Attributes: []policy.Attribute{{Key: "filter", Value: tc.filter}}}
		res, err := m.Authorize(context.Background(), &policy.AuthzRequest{Client: client, Action: action, Topic: tc.topic})
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Verdict == policy.Allow; got != tc.want {
			t.Errorf("filter %q topic %q (subscribe %v, user %q, client %q): match %v, want %v", tc.filter, tc.topic, tc.sub, tc.user, tc.client, got, tc.want)
		}
	}
}

// TestPairsAndResults checks the pair and string list iterators and the
// result types the host decodes: superuser, attributes, continue.
func TestPairsAndResults(t *testing.T) {
	m, _ := mustLoad(t, "")
	res := authn(t, m, &policy.AuthnRequest{
		Client:         &policy.Client{Username: "props", Cert: &policy.Cert{SANs: []string{"a.example", "b@example"}}},
		UserProperties: []policy.Property{{Key: "k1", Value: "v1"}, {Key: "k2", Value: ""}, {Key: "k1", Value: "v3"}},
	})
	if want := "k1=v1;k2=;k1=v3;san:a.example;san:b@example;"; res.Message != want {
		t.Errorf("message %q, want %q", res.Message, want)
	}
	if res.Verdict != policy.Allow || !res.Superuser || len(res.Attributes) != 1 {
		t.Errorf("got %+v, want a superuser allow with one attribute", res)
	}

	// Enhanced authentication: continue only with an auth method.
	res = authn(t, m, &policy.AuthnRequest{Client: &policy.Client{Username: "enhanced"}, AuthMethod: "X", AuthData: []byte("hi")})
	if res.Verdict != policy.Continue || string(res.AuthState) != "round-1" || string(res.AuthData) != "hi" {
		t.Errorf("round 0: got %+v, want continue with state round-1 and data hi", res)
	}
	res = authn(t, m, &policy.AuthnRequest{Client: &policy.Client{Username: "enhanced"}, AuthMethod: "X", Round: 1, AuthState: res.AuthState})
	if res.Verdict != policy.Allow {
		t.Errorf("round 1: got %+v, want allow", res)
	}
	res = authn(t, m, &policy.AuthnRequest{Client: &policy.Client{Username: "enhanced"}})
	if res.Verdict != policy.Deny || res.Reason != policy.ReasonBadAuthMethod {
		t.Errorf("no auth method: got %+v, want deny 0x8c (continue_auth refused)", res)
	}
}

// TestPanic checks that a panic reaches the log with its message, and
// fails the call as a plugin error; the module keeps serving.
func TestPanic(t *testing.T) {
	m, lb := mustLoad(t, "")
	_, err := m.Authenticate(context.Background(), &policy.AuthnRequest{Client: &policy.Client{Username: "panic", ClientID: "c-17"}})
	if err == nil {
		t.Fatal("a panic returned no error")
	}
	if !strings.Contains(lb.String(), "boom for c-17") || !strings.Contains(lb.String(), "sdktest.rs") {
		t.Errorf("the log lacks the panic message and location:\n%s", lb)
	}
	t.Logf("log:\n%s", lb)
	res := authn(t, m, &policy.AuthnRequest{Client: &policy.Client{Username: "nobody"}})
	if res.Verdict != policy.Ignore {
		t.Errorf("after a panic: got %v, want ignore", res.Verdict)
	}

	_, lb, err = load(t, `{"panic": true}`, 0)
	if err == nil || !strings.Contains(lb.String(), "config asked for a panic (42)") {
		t.Errorf("a panic in configure: err %v, log:\n%s", err, lb)
	}
}

// TestConfigRefused checks that configure's Err reaches the operator.
func TestConfigRefused(t *testing.T) {
	_, _, err := load(t, `{"refuse": "users[3].name: want a string"}`, 0)
	if err == nil || !strings.Contains(err.Error(), "config refused") || !strings.Contains(err.Error(), "users[3].name: want a string") {
		t.Errorf("got %v, want the refusal's message", err)
	}
}

// TestBufferGrows sends requests far beyond the first 4 KiB buffer, with
// arena allocations after it so that growing must move it, and checks
// the module reads them whole.
func TestBufferGrows(t *testing.T) {
	m, _ := mustLoad(t, `{"keep": 1000}`)
	for _, n := range []int{100, 5000, 70000, 300000, 1 << 20} {
		big := strings.Repeat("x", n)
		client := &policy.Client{Attributes: []policy.Attribute{{Key: "big", Value: big}}}
		res, err := m.Authorize(context.Background(), &policy.AuthzRequest{Client: client, Action: policy.ActionPublish, Topic: "size"})
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		var total, got int
		if _, err := fmt.Sscanf(res.Message, "%d %d", &total, &got); err != nil || got != n || total < n {
			t.Errorf("%d bytes: module saw %q", n, res.Message)
		}
	}
}

// TestBufferLimit checks the defined failure of moat_buffer: when memory
// cannot grow, the call fails as a plugin error and the log says why.
func TestBufferLimit(t *testing.T) {
	m, lb, err := load(t, "", 2<<20)
	if err != nil {
		t.Fatal(err)
	}
	client := &policy.Client{Attributes: []policy.Attribute{{Key: "big", Value: strings.Repeat("x", 3<<20)}}}
	_, err = m.Authorize(context.Background(), &policy.AuthzRequest{Client: client, Action: policy.ActionPublish, Topic: "size"})
	if err == nil {
		t.Fatal("a request beyond memory_limit succeeded")
	}
	if !regexp.MustCompile(`moat_buffer: cannot grow the request buffer to \d{7} bytes \(memory_limit\)`).MatchString(lb.String()) {
		t.Errorf("log lacks the buffer failure:\n%s", lb)
	}
}

// FuzzFilter compares the SDK's Filter with goMatch, a Go statement of
// the same rules (the one examples/plugins/demo uses), on random rules,
// topics and names.
func FuzzFilter(f *testing.F) {
	f.Add("a/#", "a/b/c", false, "", "")
	f.Add("u/%u/#", "u/alice/+", true, "alice", "c")
	f.Add("+/x", "$SYS/x", false, "", "")
	f.Add("c/%c", "c/dev-1", false, "u", "dev-1")
	f.Add("a/+", "a/#", true, "", "")
	f.Add("%u/%c/#", "x/y", false, "x", "y")
	m, _ := mustLoad(f, "")
	f.Fuzz(func(t *testing.T, rule, topic string, sub bool, user, client string) {
		if !utf8.ValidString(rule) || !utf8.ValidString(topic) || strings.Contains(rule, "%{") {
			return
		}
		action := policy.ActionPublish
		if sub {
			action = policy.ActionSubscribe
		}
		c := &policy.Client{Username: user, ClientID: client, Attributes: []policy.Attribute{{Key: "filter", Value: rule}}}
		res, err := m.Authorize(context.Background(), &policy.AuthzRequest{Client: c, Action: action, Topic: topic})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := res.Verdict == policy.Allow, goMatch(strings.Split(rule, "/"), topic, sub, user, client); got != want {
			t.Fatalf("rule %q topic %q (subscribe %v, user %q, client %q): SDK %v, Go %v", rule, topic, sub, user, client, got, want)
		}
	})
}

func goMatch(filter []string, topic string, isFilter bool, username, clientID string) bool {
	if len(filter) > 0 && (filter[0] == "#" || filter[0] == "+") && strings.HasPrefix(topic, "$") {
		return false
	}
	nameLevel := func(s string) bool { return s != "" && !strings.ContainsAny(s, "/+#") }
	rest, done := topic, false
	for i, f := range filter {
		if done {
			return f == "#" && i == len(filter)-1
		}
		level, after, found := strings.Cut(rest, "/")
		rest, done = after, !found
		switch f {
		case "#":
			return true
		case "+":
			if isFilter && level == "#" {
				return false
			}
		case "%u":
			if !nameLevel(username) || level != username {
				return false
			}
		case "%c":
			if !nameLevel(clientID) || level != clientID {
				return false
			}
		default:
			if level != f {
				return false
			}
		}
	}
	return done
}

// TestHostFunctions checks the SDK's wrappers of the host functions
// against Go's implementations and the ABI's status codes.
func TestHostFunctions(t *testing.T) {
	m, _ := mustLoad(t, "")
	pw := []byte("correct horse")
	bh, err := bcrypt.GenerateFromPassword(pw, 4)
	if err != nil {
		t.Fatal(err)
	}
	res := authn(t, m, &policy.AuthnRequest{Client: &policy.Client{Username: "host"}, Password: pw, AuthData: bh})
	want := fmt.Sprintf("pbkdf2 Ok(()) %x argon2id Ok(()) %x bcrypt Ok(true) random Ok(()) true time true expiry Err(Invalid) Ok(()) key Err(NotAvailable)",
		pbkdf2.Key(pw, []byte("salt"), 1000, 32, sha256.New), argon2.IDKey(pw, []byte("saltsalt"), 1, 64, 1, 16))
	if res.Message != want {
		t.Errorf("got  %s\nwant %s", res.Message, want)
	}
	if res.Expiry.IsZero() {
		t.Error("set_expiry did not reach the result")
	}

	res = authn(t, m, &policy.AuthnRequest{Client: &policy.Client{Username: "file"}, Password: []byte("greeting")})
	if want := "6 hello\n"; res.Message != want {
		t.Errorf("file: got %q, want %q", res.Message, want)
	}
	res = authn(t, m, &policy.AuthnRequest{Client: &policy.Client{Username: "file"}, Password: []byte("passwords")})
	if want := "Some(NotAvailable) Some(NotAvailable)"; res.Message != want {
		t.Errorf("file not granted: got %q, want %q", res.Message, want)
	}
}
