package wasm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/policy"
)

func TestAuthorize(t *testing.T) {
	e := newEngine(t, nil)
	m := testModule(t, e, "basic", ModuleConfig{})
	long := "public/" + strings.Repeat("x", 10000) // grows the guest buffer
	tests := []struct {
		topic   string
		verdict policy.Verdict
		reason  byte
		message string
	}{
		{"public/a", policy.Allow, 0, ""},
		{"deny/a", policy.Deny, 0x87, "denied by basic"},
		{"private/a", policy.Ignore, 0, ""},
		{"", policy.Ignore, 0, ""},
		{long, policy.Allow, 0, ""},
		{"public/b", policy.Allow, 0, ""}, // back to the large buffer
	}
	for _, tc := range tests {
		t.Run(tc.topic[:min(len(tc.topic), 12)], func(t *testing.T) {
			res, err := m.Authorize(context.Background(), authz(tc.topic))
			if err != nil {
				t.Fatal(err)
			}
			want := policy.AuthzResult{Verdict: tc.verdict, Reason: tc.reason, Message: tc.message}
			if res != want {
				t.Errorf("got %+v, want %+v", res, want)
			}
		})
	}
	if _, err := m.Authenticate(context.Background(), authn("alice")); err == nil || !strings.Contains(err.Error(), "not a decision of this plugin") {
		t.Errorf("authenticate on an authz plugin: %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	log, logs := debugLogger()
	e := newEngine(t, log)
	m := testModule(t, e, "basic", ModuleConfig{Decisions: []string{"authn"}})
	tests := []struct {
		user   string
		method string
		round  int
		state  []byte
		want   policy.AuthnResult
	}{
		{user: "alice", want: policy.AuthnResult{Verdict: policy.Allow,
			Attributes: []policy.Attribute{{Key: "role", Value: "admin"}},
			Expiry:     time.Unix(4102444800, 0)}},
		{user: "bob", want: policy.AuthnResult{Verdict: policy.Deny, Reason: 0x86, Message: "bad password"}},
		{user: "sam", want: policy.AuthnResult{Verdict: policy.Allow, Superuser: true}},
		{user: "dave", want: policy.AuthnResult{Verdict: policy.Deny}}, // attributes of a deny are dropped
		{user: "zed", want: policy.AuthnResult{Verdict: policy.Ignore}},
		{user: "", want: policy.AuthnResult{Verdict: policy.Ignore}},
		{user: "carol", method: "SCRAM-SHA-256", want: policy.AuthnResult{Verdict: policy.Continue,
			AuthData: []byte("server-first"), AuthState: []byte("state-1")}},
		{user: "carol", method: "SCRAM-SHA-256", round: 1, state: []byte("state-1"), want: policy.AuthnResult{Verdict: policy.Allow}},
		{user: "carol", method: "SCRAM-SHA-256", round: 1, state: []byte("x"), want: policy.AuthnResult{Verdict: policy.Deny}},
	}
	for _, tc := range tests {
		t.Run(tc.user+tc.method, func(t *testing.T) {
			req := authn(tc.user)
			req.AuthMethod, req.Round, req.AuthState = tc.method, tc.round, tc.state
			res, err := m.Authenticate(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if !equalAuthn(res, tc.want) {
				t.Errorf("got %+v, want %+v", res, tc.want)
			}
		})
	}
	if !strings.Contains(logs.String(), `msg=authenticating module=basic source=guest`) {
		t.Errorf("guest debug log line missing:\n%s", logs)
	}
	// continue without an auth_method is a malformed result.
	_, err := m.Authenticate(context.Background(), authn("carol"))
	wantErr(t, err, `wasm: plugin "basic": authenticate: malformed result 0x00000004: continue (4)`)
}

func equalAuthn(a, b policy.AuthnResult) bool {
	return a.Verdict == b.Verdict && a.Reason == b.Reason && a.Superuser == b.Superuser &&
		a.Expiry.Equal(b.Expiry) && a.Message == b.Message &&
		string(a.AuthData) == string(b.AuthData) && (a.AuthData == nil) == (b.AuthData == nil) &&
		string(a.AuthState) == string(b.AuthState) && (a.AuthState == nil) == (b.AuthState == nil) &&
		len(a.Attributes) == len(b.Attributes) && (len(a.Attributes) == 0 || a.Attributes[0] == b.Attributes[0])
}

func TestConfigHandoff(t *testing.T) {
	log, logs := debugLogger()
	e := newEngine(t, log)
	testModule(t, e, "basic", ModuleConfig{Instances: 1, ConfigJSON: []byte(` {"topics": ["a/#"], "n": 1} `)})
	if !strings.Contains(logs.String(), `level=INFO msg="{\"topics\": [\"a/#\"], \"n\": 1}" module=basic source=guest`) {
		t.Errorf("config not seen by the guest:\n%s", logs)
	}
}

// TestHostile makes a module misbehave in every way a call can, and checks
// that each is a plugin error naming the plugin, and that the module keeps
// serving afterwards on a fresh instance.
func TestHostile(t *testing.T) {
	guardGC(t)
	e := newEngine(t, nil)
	m := testModule(t, e, "hostile", ModuleConfig{Decisions: []string{"authn", "authz"}, Instances: 1, MemoryLimit: 1 << 20})
	tests := []struct {
		name  string
		topic string // authz when set
		user  string // authn otherwise
		want  string
	}{
		{"infinite loop", "loop", "", "deadline exceeded (timeout 50ms)"},
		{"trap", "unreachable", "", "wasm error: unreachable"},
		{"out of bounds load", "oob", "", "wasm error: out of bounds memory access"},
		{"memory grab traps", "Grab", "", "wasm error: unreachable"},
		{"wild set_message pointer", "msg", "", "moat.set_message: [0xfffffff0, +100) is outside memory (65536 bytes)"},
		{"wild set_message length", "ptr", "", "moat.set_message: [0x0, +4294967295) is outside memory"},
		{"wild log pointer", "wlog", "", "moat.log: [0x7fff0000, +10) is outside memory"},
		{"wild add_attribute key", "", "attr", "moat.add_attribute: [0xfffffff0, +4) is outside memory"},
		{"wild add_attribute value", "", "value", "moat.add_attribute: [0x0, +131072) is outside memory"},
		{"set_message past the end", "", "msg", "moat.set_message: [0x10000, +1) is outside memory"},
		{"verdict 0", "0", "", "malformed result 0x00000000: verdict 0"},
		{"verdict 9", "9", "", "malformed result 0x00000009: verdict 9"},
		{"reserved bit", "x", "", "malformed result 0x00800001: reserved bits 0x00800000 set"},
		{"continue from authorize", "cont", "", "malformed result 0x00000004: continue (4) is valid only from moat_authenticate"},
		{"superuser from authorize", "su", "", "malformed result 0x00010001: superuser bit (16)"},
		{"deny reason below 0x80", "k", "", "deny reason code 0x42 (bits 8-15) is below 0x80"},
		{"continue without auth_method", "", "cont", "malformed result 0x00000004"},
		{"proc_exit", "exit", "", "proc_exit(3)"},
		{"wild moat_buffer", strings.Repeat("f", 5000), "", "returned 0xffff0000: [0xffff0000, 0xffff1420) is outside memory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := m.pool.slots[0].in
			var err error
			op := "authorize"
			if tc.topic != "" {
				_, err = m.Authorize(context.Background(), authz(tc.topic))
			} else {
				op = "authenticate"
				_, err = m.Authenticate(context.Background(), authn(tc.user))
			}
			wantErr(t, err, `wasm: plugin "hostile": `+op+": ", tc.want)
			res, err := m.Authorize(context.Background(), authz("fine"))
			if err != nil || res.Verdict != policy.Allow {
				t.Fatalf("normal call after the hostile one: %+v, %v", res, err)
			}
			if m.pool.slots[0].in == before {
				t.Error("the failed instance was not replaced")
			}
		})
	}
	// A handled memory.grow failure is not an error, and memory stays
	// within the limit.
	res, err := m.Authorize(context.Background(), authz("grow"))
	if err != nil || res.Verdict != policy.Deny {
		t.Fatalf("grow: %+v, %v", res, err)
	}
	if size := m.pool.slots[0].in.mem.Size(); size > 1<<20 {
		t.Errorf("memory is %d bytes, over the 1 MiB limit", size)
	}
}

// TestStackOverflow recurses without end; the stack guard stops it with
// a trap before the (long) deadline, and names the limit.
func TestStackOverflow(t *testing.T) {
	guardGC(t)
	e := newEngine(t, nil)
	m := testModule(t, e, "hostile", ModuleConfig{Instances: 1, Timeout: 10 * time.Second})
	_, err := m.Authorize(context.Background(), authz("recurse"))
	wantErr(t, err, `wasm: plugin "hostile": authorize: `, "call depth exceeded (stack limit 8192 KiB)")
	var se *StackError
	if !errors.As(err, &se) || se.Limit != MaxStack {
		t.Errorf("error %v is not a *StackError with limit %d", err, MaxStack)
	}
	if res, err := m.Authorize(context.Background(), authz("fine")); err != nil || res.Verdict != policy.Allow {
		t.Fatalf("after: %+v, %v", res, err)
	}
}

// TestLoopDoesNotBlockOthers runs a guest into an infinite loop on one
// instance and shows that the other instance keeps serving meanwhile, and
// that the loop is stopped at its deadline.
func TestLoopDoesNotBlockOthers(t *testing.T) {
	guardGC(t)
	e := newEngine(t, nil)
	const timeout = 300 * time.Millisecond
	m := testModule(t, e, "hostile", ModuleConfig{Instances: 2, Timeout: timeout})
	start := time.Now()
	looped := make(chan error, 1)
	go func() {
		_, err := m.Authorize(context.Background(), authz("loop"))
		looped <- err
	}()
	for !m.pool.slots[0].busy() && !m.pool.slots[1].busy() {
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	var served, failed int64
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for range 50 {
				res, err := m.Authorize(context.Background(), authz("fine"))
				mu.Lock()
				if err != nil || res.Verdict != policy.Allow {
					failed++
				} else {
					served++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	select {
	case err := <-looped:
		t.Fatalf("the looping call returned before the others were served: %v", err)
	default:
	}
	if failed > 0 || served != 200 {
		t.Fatalf("served %d, failed %d while a guest looped", served, failed)
	}
	err := <-looped
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("looping call: %v, want a deadline error", err)
	}
	wantErr(t, err, `wasm: plugin "hostile": authorize: deadline exceeded (timeout 300ms)`)
	// The epoch lags when the ticker goroutine is starved (a loaded
	// machine, -race), so allow slack either way.
	if d := time.Since(start); d < timeout/2 || d > timeout+time.Second {
		t.Errorf("loop stopped after %v, want about %v", d, timeout)
	}
}

// TestContextDeadline shortens a call's deadline with its context.
func TestContextDeadline(t *testing.T) {
	guardGC(t)
	e := newEngine(t, nil)
	m := testModule(t, e, "hostile", ModuleConfig{Instances: 1, Timeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := m.Authorize(ctx, authz("loop"))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl.txt")
	if err := os.WriteFile(acl, []byte("alice: read a/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, nil)
	m := testModule(t, e, "files", ModuleConfig{Files: map[string]string{
		"acl":     acl,
		"missing": filepath.Join(dir, "missing.txt"),
	}})
	tests := []struct {
		name    string
		verdict policy.Verdict
		message string
	}{
		{"acl", policy.Allow, "alice: read a/#\n"},
		{"acl.txt", policy.Deny, ""},     // not a granted name
		{acl, policy.Deny, ""},           // a host path is not a name
		{"missing", policy.Deny, ""},     // granted, but unreadable: -3
		{"/etc/passwd", policy.Deny, ""}, // never granted
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := m.Authorize(context.Background(), authz(tc.name))
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict != tc.verdict || res.Message != tc.message {
				t.Errorf("got %+v, want %v %q", res, tc.verdict, tc.message)
			}
		})
	}
	// The file is read at call time.
	if err := os.WriteFile(acl, []byte("changed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res, err := m.Authorize(context.Background(), authz("acl")); err != nil || res.Message != "changed" {
		t.Errorf("after change: %+v, %v", res, err)
	}
}

func TestWASI(t *testing.T) {
	log, logs := debugLogger()
	e := newEngine(t, log)
	m := testModule(t, e, "wasi", ModuleConfig{Instances: 1})
	res, err := m.Authorize(context.Background(), authz("a"))
	if err != nil || res.Verdict != policy.Allow {
		t.Fatalf("%+v, %v", res, err)
	}
	if !strings.Contains(logs.String(), `level=DEBUG msg="hello from wasi" module=wasi source=stdout`) {
		t.Errorf("stdout line missing:\n%s", logs)
	}
}

func TestClose(t *testing.T) {
	guardGC(t)
	e := newEngine(t, nil)
	m := testModule(t, e, "hostile", ModuleConfig{Instances: 1, Timeout: 100 * time.Millisecond})
	looped := make(chan error, 1)
	go func() {
		_, err := m.Authorize(context.Background(), authz("loop"))
		looped <- err
	}()
	for !m.pool.slots[0].busy() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-looped: // Close waited for the call in flight
		wantErr(t, err, "deadline exceeded")
	default:
		t.Fatal("Close returned before the call in flight ended")
	}
	_, err := m.Authorize(context.Background(), authz("fine"))
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
