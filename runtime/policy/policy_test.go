package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

// ruleModule is a native policy used to exercise chains: it answers from
// tables and counts its calls.
type ruleModule struct {
	authn map[string]AuthnResult // by username
	authz map[string]AuthzResult // by topic
	err   error
	calls atomic.Int64
}

func (m *ruleModule) Authenticate(_ context.Context, req *AuthnRequest) (AuthnResult, error) {
	m.calls.Add(1)
	if m.err != nil {
		return AuthnResult{}, m.err
	}
	if r, ok := m.authn[req.Client.Username]; ok {
		return r, nil
	}
	return AuthnResult{Verdict: Ignore}, nil
}

func (m *ruleModule) Authorize(_ context.Context, req *AuthzRequest) (AuthzResult, error) {
	m.calls.Add(1)
	if m.err != nil {
		return AuthzResult{}, m.err
	}
	if r, ok := m.authz[req.Topic]; ok {
		return r, nil
	}
	return AuthzResult{Verdict: Ignore}, nil
}

func (m *ruleModule) Payload(_ context.Context, req *PayloadRequest) (PayloadResult, error) {
	m.calls.Add(1)
	if m.err != nil {
		return PayloadResult{}, m.err
	}
	if strings.HasPrefix(req.Topic, "enc/") {
		return PayloadResult{Verdict: Allow, Mode: ModeAtRest}, nil
	}
	return PayloadResult{Verdict: Ignore}, nil
}

func authnChain(ms ...*ruleModule) []Step[Authenticator] {
	var s []Step[Authenticator]
	for i, m := range ms {
		s = append(s, Step[Authenticator]{Name: string(rune('a' + i)), Module: m})
	}
	return s
}

func authzChain(ms ...*ruleModule) []Step[Authorizer] {
	var s []Step[Authorizer]
	for i, m := range ms {
		s = append(s, Step[Authorizer]{Name: string(rune('a' + i)), Module: m})
	}
	return s
}

func TestAuthenticateChain(t *testing.T) {
	first := &ruleModule{authn: map[string]AuthnResult{
		"alice":   {Verdict: Allow, Attributes: []Attribute{{"tenant", "t1"}}},
		"mallory": {Verdict: Deny},
	}}
	second := &ruleModule{authn: map[string]AuthnResult{"bob": {Verdict: Allow, Superuser: true}, "alice": {Verdict: Deny}}}
	broken := &ruleModule{err: errors.New("trap")}

	tests := []struct {
		name     string
		authn    []Step[Authenticator]
		opts     Options
		user     string
		password []byte
		want     Verdict
		module   string
		reason   byte
	}{
		{"first allows", authnChain(first, second), Options{}, "alice", []byte("x"), Allow, "a", 0},
		{"first denies with default reason", authnChain(first, second), Options{}, "mallory", []byte("x"), Deny, "a", ReasonBadUserNameOrPass},
		{"ignore falls through", authnChain(first, second), Options{}, "bob", []byte("x"), Allow, "b", 0},
		{"no match denies", authnChain(first, second), Options{}, "eve", []byte("x"), Deny, "", ReasonNotAuthorized},
		{"no match allow", authnChain(first, second), Options{NoMatch: Allow}, "eve", []byte("x"), Allow, "", 0},
		{"anonymous refused by default", nil, Options{}, "", nil, Deny, "", ReasonNotAuthorized},
		{"anonymous allowed", nil, Options{AllowAnonymous: true}, "", nil, Allow, "", 0},
		{"username without modules is not anonymous", nil, Options{AllowAnonymous: true}, "eve", nil, Deny, "", ReasonNotAuthorized},
		{"password without username is not anonymous", nil, Options{AllowAnonymous: true}, "", []byte("pw"), Deny, "", ReasonNotAuthorized},
		{"no_match allow needs a module", nil, Options{NoMatch: Allow}, "eve", nil, Deny, "", ReasonNotAuthorized},
		{"error denies by default", authnChain(broken, second), Options{}, "bob", nil, Deny, "a", ReasonNotAuthorized},
		{"error ignore", []Step[Authenticator]{{Name: "x", Module: broken, OnError: ErrorIgnore}, {Name: "y", Module: second}}, Options{}, "bob", nil, Allow, "y", 0},
		{"error allow", []Step[Authenticator]{{Name: "x", Module: broken, OnError: ErrorAllow}}, Options{}, "eve", nil, Allow, "x", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecider(New(tc.authn, nil, tc.opts), CacheOptions{}, nil)
			defer d.Close()
			res := d.Authenticate(context.Background(), &AuthnRequest{Client: &Client{Username: tc.user}, Password: tc.password})
			if res.Verdict != tc.want || res.Module != tc.module || res.Reason != tc.reason {
				t.Fatalf("got %v module %q reason %#x, want %v %q %#x", res.Verdict, res.Module, res.Reason, tc.want, tc.module, tc.reason)
			}
		})
	}
}

func TestAuthorizeChainAndCache(t *testing.T) {
	m := &ruleModule{authz: map[string]AuthzResult{"a/1": {Verdict: Allow}, "a/2": {Verdict: Deny, Reason: 0x97}}}
	d := NewDecider(New(nil, authzChain(m), Options{}), CacheOptions{}, nil)
	defer d.Close()
	ctx := context.Background()
	s := d.NewSession(&Client{ClientID: "c"})
	ask := func(topic string) AuthzResult {
		return d.Authorize(ctx, s, &AuthzRequest{Action: ActionPublish, Topic: topic, QoS: 1})
	}
	if r := ask("a/1"); r.Verdict != Allow {
		t.Fatalf("a/1: %v", r.Verdict)
	}
	if r := ask("a/2"); r.Verdict != Deny || r.Reason != 0x97 {
		t.Fatalf("a/2: %v %#x", r.Verdict, r.Reason)
	}
	if r := ask("b"); r.Verdict != Deny || r.Reason != ReasonNotAuthorized {
		t.Fatalf("no match: %v", r.Verdict)
	}
	calls := m.calls.Load()
	for range 10 {
		ask("a/1")
		ask("a/2")
	}
	if got := m.calls.Load(); got != calls {
		t.Fatalf("cached verdicts reached the module: %d calls, want %d", got, calls)
	}
	// QoS is part of the key.
	d.Authorize(ctx, s, &AuthzRequest{Action: ActionPublish, Topic: "a/1", QoS: 2})
	if m.calls.Load() != calls+1 {
		t.Fatal("a different QoS was answered from the cache")
	}
	// Swap invalidates.
	m2 := &ruleModule{authz: map[string]AuthzResult{"a/1": {Verdict: Deny}}}
	old := d.Swap(New(nil, authzChain(m2), Options{}))
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if r := ask("a/1"); r.Verdict != Deny {
		t.Fatalf("after swap a/1 = %v, want deny", r.Verdict)
	}
	// Superusers skip authz; an empty chain allows.
	su := d.NewSession(&Client{ClientID: "root", Superuser: true})
	if r := d.Authorize(ctx, su, &AuthzRequest{Action: ActionPublish, Topic: "a/1"}); r.Verdict != Allow {
		t.Fatal("superuser denied")
	}
	// An empty chain decides by AuthzNoMatch: deny unless it says allow.
	d.Swap(New(nil, nil, Options{}))
	if r := ask("anything"); r.Verdict != Deny || r.Reason != ReasonNotAuthorized {
		t.Fatalf("empty authz chain: %v %#x, want deny 0x87", r.Verdict, r.Reason)
	}
	d.Swap(New(nil, nil, Options{NoMatch: Allow}))
	if r := ask("anything"); r.Verdict != Deny {
		t.Fatal("authn's no_match allowed an authz request")
	}
	d.Swap(New(nil, nil, Options{AuthzNoMatch: Allow}))
	if r := ask("anything"); r.Verdict != Allow {
		t.Fatal("empty authz chain with AuthzNoMatch allow denied")
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	m := &ruleModule{err: errors.New("timeout")}
	d := NewDecider(New(nil, authzChain(m), Options{}), CacheOptions{}, nil)
	defer d.Close()
	s := d.NewSession(&Client{ClientID: "c"})
	for range 3 {
		if r := d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionPublish, Topic: "t"}); r.Verdict != Deny {
			t.Fatal("module error did not deny")
		}
	}
	if m.calls.Load() != 3 {
		t.Fatalf("a module error was cached: %d calls", m.calls.Load())
	}
}

// TestIgnoredErrorsAreNotCached: with on_error = "ignore", a module's
// error passes the request on; what the next module or no_match then says
// is returned but not cached, so the module is asked again next time.
func TestIgnoredErrorsAreNotCached(t *testing.T) {
	for _, tc := range []struct {
		name string
		next []*ruleModule
		opts Options
		want Verdict
	}{
		{"next module allows", []*ruleModule{{authz: map[string]AuthzResult{"t": {Verdict: Allow}}}}, Options{}, Allow},
		{"next module denies", []*ruleModule{{authz: map[string]AuthzResult{"t": {Verdict: Deny}}}}, Options{}, Deny},
		{"no_match allow", nil, Options{AuthzNoMatch: Allow}, Allow},
		{"no_match deny", nil, Options{}, Deny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := &ruleModule{err: errors.New("timeout")}
			chain := authzChain(append([]*ruleModule{broken}, tc.next...)...)
			chain[0].OnError = ErrorIgnore
			d := NewDecider(New(nil, chain, tc.opts), CacheOptions{}, nil)
			defer d.Close()
			s := d.NewSession(&Client{ClientID: "c"})
			for range 3 {
				if r := d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionPublish, Topic: "t"}); r.Verdict != tc.want {
					t.Fatalf("verdict %v, want %v", r.Verdict, tc.want)
				}
			}
			if n := broken.calls.Load(); n != 3 {
				t.Fatalf("the failing module was called %d times in 3 requests: a verdict after its error was cached", n)
			}
			if n := s.cached(); n != 0 {
				t.Fatalf("%d verdicts cached after an ignored error", n)
			}
		})
	}
}

func TestCacheTTLAndBound(t *testing.T) {
	m := &ruleModule{authz: map[string]AuthzResult{}}
	for _, tp := range []string{"t0", "t1", "t2", "t3"} {
		m.authz[tp] = AuthzResult{Verdict: Allow}
	}
	d := NewDecider(New(nil, authzChain(m), Options{}), CacheOptions{TTL: 100 * time.Millisecond, MaxPerClient: 2}, nil)
	defer d.Close()
	s := d.NewSession(&Client{})
	ctx := context.Background()
	for _, tp := range []string{"t0", "t1", "t2"} {
		d.Authorize(ctx, s, &AuthzRequest{Action: ActionDeliver, Topic: tp})
	}
	n := s.cached()
	if n > 2 {
		t.Fatalf("cache holds %d entries, bound is 2", n)
	}
	before := m.calls.Load()
	d.Authorize(ctx, s, &AuthzRequest{Action: ActionDeliver, Topic: "t2"})
	if m.calls.Load() != before {
		t.Fatal("fresh entry missed")
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.calls.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("entry never expired")
		}
		time.Sleep(20 * time.Millisecond)
		d.Authorize(ctx, s, &AuthzRequest{Action: ActionDeliver, Topic: "t2"})
	}
}

func TestPayloadChain(t *testing.T) {
	m := &ruleModule{}
	d := NewDecider(New(nil, nil, Options{Payload: []Step[Payloader]{{Name: "p", Module: m}}}), CacheOptions{}, nil)
	defer d.Close()
	s := d.NewSession(&Client{})
	if r := d.Payload(context.Background(), s, &PayloadRequest{Action: ActionPublish, Topic: "enc/1"}); r.Mode != ModeAtRest || r.Module != "p" {
		t.Fatalf("enc/1: %+v", r)
	}
	if r := d.Payload(context.Background(), s, &PayloadRequest{Action: ActionPublish, Topic: "x"}); r.Verdict != Allow || r.Mode != ModePlaintext {
		t.Fatalf("ignored payload: %+v", r)
	}
	if !d.Policy().HasPayload() {
		t.Fatal("HasPayload false")
	}
}

// slowModule blocks until released, to show Close waits for running calls.
type slowModule struct{ release chan struct{} }

func (m *slowModule) Authorize(context.Context, *AuthzRequest) (AuthzResult, error) {
	<-m.release
	return AuthzResult{Verdict: Allow}, nil
}

type closeRecorder struct{ closed atomic.Bool }

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestCloseWaitsForInflight(t *testing.T) {
	slow := &slowModule{release: make(chan struct{})}
	rec := &closeRecorder{}
	d := NewDecider(New(nil, []Step[Authorizer]{{Name: "slow", Module: slow}}, Options{Closers: []io.Closer{rec}}), CacheOptions{Disabled: true}, nil)
	defer d.Close()
	s := d.NewSession(&Client{})
	done := make(chan AuthzResult)
	go func() { done <- d.Authorize(context.Background(), s, &AuthzRequest{Topic: "x"}) }()
	for d.Policy().inflight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	old := d.Swap(New(nil, nil, Options{}))
	closed := make(chan error)
	go func() { closed <- old.Close(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	if rec.closed.Load() {
		t.Fatal("modules closed while a call was running")
	}
	close(slow.release)
	if r := <-done; r.Verdict != Allow {
		t.Fatalf("in-flight call: %v", r.Verdict)
	}
	if err := <-closed; err != nil || !rec.closed.Load() {
		t.Fatalf("close: %v", err)
	}
}

// A hammer test for Swap against concurrent decisions: every decision is
// made by a version that was not closed while it ran.
func TestSwapHammer(t *testing.T) {
	if testing.Short() {
		t.Skip("hammer test")
	}
	type version struct {
		m      *checkedModule
		policy *Policy
	}
	newVersion := func() version {
		m := &checkedModule{}
		return version{m, New(nil, []Step[Authorizer]{{Name: "v", Module: m}}, Options{Closers: []io.Closer{m}})}
	}
	v := newVersion()
	d := NewDecider(v.policy, CacheOptions{Disabled: true}, nil)
	defer d.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			s := d.NewSession(&Client{})
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r := d.Authorize(context.Background(), s, &AuthzRequest{Topic: "t"}); r.Verdict != Allow {
					t.Error("call reached a closed version")
					return
				}
			}
		})
	}
	for range 200 {
		nv := newVersion()
		old := d.Swap(nv.policy)
		if err := old.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

type checkedModule struct{ closed atomic.Bool }

func (m *checkedModule) Authorize(context.Context, *AuthzRequest) (AuthzResult, error) {
	if m.closed.Load() {
		return AuthzResult{Verdict: Deny}, nil
	}
	return AuthzResult{Verdict: Allow}, nil
}

func (m *checkedModule) Close() error { m.closed.Store(true); return nil }

func BenchmarkAuthorizeCached(b *testing.B) {
	m := &ruleModule{authz: map[string]AuthzResult{"sensors/1/temp": {Verdict: Allow}}}
	d := NewDecider(New(nil, authzChain(m), Options{}), CacheOptions{}, nil)
	defer d.Close()
	s := d.NewSession(&Client{ClientID: "c1"})
	ctx := context.Background()
	req := &AuthzRequest{Action: ActionPublish, Topic: "sensors/1/temp", QoS: 1}
	d.Authorize(ctx, s, req)
	b.ReportAllocs()
	for b.Loop() {
		if d.Authorize(ctx, s, req).Verdict != Allow {
			b.Fatal("deny")
		}
	}
}

func BenchmarkAuthorizeCachedParallel(b *testing.B) {
	m := &ruleModule{authz: map[string]AuthzResult{"sensors/1/temp": {Verdict: Allow}}}
	d := NewDecider(New(nil, authzChain(m), Options{}), CacheOptions{}, nil)
	defer d.Close()
	s := d.NewSession(&Client{ClientID: "c1"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := &AuthzRequest{Action: ActionDeliver, Topic: "sensors/1/temp"}
		for pb.Next() {
			d.Authorize(context.Background(), s, req)
		}
	})
}

// TestCacheHammer reads and fills one session's cache from many goroutines,
// across folds and resets, and checks every verdict against the module.
func TestCacheHammer(t *testing.T) {
	m := &ruleModule{authz: map[string]AuthzResult{}}
	for i := range 300 {
		v := Allow
		if i%3 == 0 {
			v = Deny
		}
		m.authz[fmt.Sprintf("t/%d", i)] = AuthzResult{Verdict: v}
	}
	d := NewDecider(New(nil, authzChain(m), Options{}), CacheOptions{MaxPerClient: 64}, nil)
	defer d.Close()
	s := d.NewSession(&Client{ClientID: "c"})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 3000 {
				n := (i*7 + g*13) % 300
				want := Allow
				if n%3 == 0 {
					want = Deny
				}
				if got := d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionDeliver, Topic: fmt.Sprintf("t/%d", n)}); got.Verdict != want {
					t.Errorf("t/%d: %v, want %v", n, got.Verdict, want)
					return
				}
				if i%500 == 0 && g == 0 {
					d.Flush()
				}
			}
		})
	}
	wg.Wait()
	if n := s.cached(); n > 64 {
		t.Fatalf("cache holds %d entries, bound is 64", n)
	}
}

// TestCacheCopiesTopics: a cached key does not point into the request's
// topic, which the broker reads without copying from the packet buffer (up
// to the maximum packet size), and the keys of one client are bounded in
// bytes.
func TestCacheCopiesTopics(t *testing.T) {
	m := &ruleModule{authz: map[string]AuthzResult{}}
	for _, tp := range []string{"a/1", "a/2"} {
		m.authz[tp] = AuthzResult{Verdict: Allow}
	}
	d := NewDecider(New(nil, authzChain(m), Options{AuthzNoMatch: Allow}), CacheOptions{MaxBytesPerClient: 100}, nil)
	defer d.Close()
	s := d.NewSession(&Client{ClientID: "c"})
	packet := make([]byte, 256<<10)
	copy(packet[100:], "a/1")
	topic := unsafe.String(&packet[100], 3)
	d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionPublish, Topic: topic})
	lo, hi := uintptr(unsafe.Pointer(&packet[0])), uintptr(unsafe.Pointer(&packet[len(packet)-1]))
	keys := 0
	for _, tb := range []*cacheTable{s.snap.Load(), s.pending} {
		if tb == nil {
			continue
		}
		for a := range tb.m {
			for q := range tb.m[a] {
				for _, mm := range tb.m[a][q] {
					for k := range mm {
						keys++
						if p := uintptr(unsafe.Pointer(unsafe.StringData(k))); p >= lo && p <= hi {
							t.Errorf("cached key %q points into the packet", k)
						}
					}
				}
			}
		}
	}
	if keys != 1 {
		t.Fatalf("%d cached keys, want 1", keys)
	}

	// 100 bytes per client: a 101-byte topic is not cached, and many
	// 40-byte topics never hold more than 100 bytes.
	long := strings.Repeat("x", 101)
	d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionPublish, Topic: long})
	for i := range 10 {
		d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionPublish, Topic: fmt.Sprintf("%039d", i)})
		s.mu.Lock()
		n := s.pending.bytes
		if sn := s.snap.Load(); sn != nil {
			n += sn.bytes
		}
		s.mu.Unlock()
		if n > 100 {
			t.Fatalf("after %d topics the cache keeps %d bytes of keys, bound 100", i+1, n)
		}
	}
}

// deadlineModule records the deadline of the context it is called with.
type deadlineModule struct{ left atomic.Int64 }

func (m *deadlineModule) Authenticate(ctx context.Context, _ *AuthnRequest) (AuthnResult, error) {
	dl, ok := ctx.Deadline()
	if !ok {
		m.left.Store(-1)
	} else {
		m.left.Store(int64(time.Until(dl)))
	}
	return AuthnResult{Verdict: Allow}, nil
}

// TestAuthnTimeoutPerVersion: [auth] timeout belongs to the policy version,
// so a reload (Swap) changes the deadline of the next authentication.
func TestAuthnTimeoutPerVersion(t *testing.T) {
	m := &deadlineModule{}
	chain := []Step[Authenticator]{{Name: "d", Module: m}}
	d := NewDecider(New(chain, nil, Options{AuthnTimeout: time.Second}), CacheOptions{}, nil)
	defer d.Close()
	req := &AuthnRequest{Client: &Client{ClientID: "c"}}
	for _, tc := range []struct {
		timeout  time.Duration
		min, max time.Duration
	}{
		{time.Second, 500 * time.Millisecond, time.Second},
		{time.Minute, 50 * time.Second, time.Minute},
		{0, -1, -1}, // no deadline
	} {
		if tc.timeout != time.Second {
			d.Swap(New(chain, nil, Options{AuthnTimeout: tc.timeout}))
		}
		d.Authenticate(context.Background(), req)
		left := time.Duration(m.left.Load())
		if left < tc.min || left > tc.max {
			t.Errorf("timeout %v: the module's context had %v left, want %v..%v", tc.timeout, left, tc.min, tc.max)
		}
	}
}
