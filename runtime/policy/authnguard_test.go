package policy

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingAuthn allows password "right" and counts its calls; while gate is
// set, every call waits for it.
type countingAuthn struct {
	calls atomic.Int64
	gate  chan struct{}
	err   error
}

func (m *countingAuthn) Authenticate(ctx context.Context, req *AuthnRequest) (AuthnResult, error) {
	m.calls.Add(1)
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return AuthnResult{}, ctx.Err()
		}
	}
	if m.err != nil {
		return AuthnResult{}, m.err
	}
	if string(req.Password) == "right" {
		return AuthnResult{Verdict: Allow}, nil
	}
	return AuthnResult{Verdict: Deny}, nil
}

func authnReq(user, id, addr, pw string) *AuthnRequest {
	return &AuthnRequest{Client: &Client{Username: user, ClientID: id, RemoteAddr: addr}, Password: []byte(pw)}
}

func TestAuthnNegativeCache(t *testing.T) {
	m := &countingAuthn{}
	p := New([]Step[Authenticator]{{Name: "m", Module: m}}, nil, Options{})
	d := NewDecider(p, CacheOptions{AuthnFailureTTL: time.Hour}, nil)
	defer d.Close()
	ctx := context.Background()

	for i := range 5 {
		// The source port changes between attempts; the address does not.
		if res := d.Authenticate(ctx, authnReq("u", "c", "10.0.0.1:"+string(rune('1'+i))+"000", "wrong")); res.Verdict != Deny {
			t.Fatalf("attempt %d: %v", i, res.Verdict)
		}
	}
	if n := m.calls.Load(); n != 1 {
		t.Errorf("5 identical failed attempts called the module %d times, want 1", n)
	}
	if hits, _ := d.AuthnStats(); hits != 4 {
		t.Errorf("negative hits = %d, want 4", hits)
	}
	// Another password, client id or address is tried.
	for _, r := range []*AuthnRequest{
		authnReq("u", "c", "10.0.0.1:1", "right"),
		authnReq("u", "c2", "10.0.0.1:1", "wrong"),
		authnReq("u", "c", "10.0.0.2:1", "wrong"),
	} {
		before := m.calls.Load()
		d.Authenticate(ctx, r)
		if m.calls.Load() != before+1 {
			t.Errorf("%+v %q: answered from the cache", *r.Client, r.Password)
		}
	}
	if res := d.Authenticate(ctx, authnReq("u", "c", "10.0.0.1:1", "right")); res.Verdict != Allow {
		t.Errorf("right password: %v", res.Verdict)
	}
	// A reload forgets failures.
	before := m.calls.Load()
	d.Swap(New([]Step[Authenticator]{{Name: "m", Module: m}}, nil, Options{}))
	d.Authenticate(ctx, authnReq("u", "c", "10.0.0.1:1", "wrong"))
	if m.calls.Load() != before+1 {
		t.Error("a failure was remembered across Swap")
	}

	// A module error is not remembered.
	em := &countingAuthn{err: context.DeadlineExceeded}
	d2 := NewDecider(New([]Step[Authenticator]{{Name: "e", Module: em}}, nil, Options{}), CacheOptions{AuthnFailureTTL: time.Hour}, nil)
	defer d2.Close()
	for range 3 {
		d2.Authenticate(ctx, authnReq("u", "c", "10.0.0.1:1", "x"))
	}
	if n := em.calls.Load(); n != 3 {
		t.Errorf("a module error was cached: %d calls for 3 attempts", n)
	}
}

func TestAuthnCoalesced(t *testing.T) {
	m := &countingAuthn{gate: make(chan struct{})}
	d := NewDecider(New([]Step[Authenticator]{{Name: "m", Module: m}}, nil, Options{}), CacheOptions{}, nil)
	defer d.Close()
	const n = 20
	var wg sync.WaitGroup
	results := make(chan Verdict, n)
	for range n {
		wg.Go(func() {
			results <- d.Authenticate(context.Background(), authnReq("u", "c", "10.0.0.1:5", "right")).Verdict
		})
	}
	// Wait until the leader is in the module and the others queue behind.
	deadline := time.Now().Add(5 * time.Second)
	for m.calls.Load() == 0 || func() bool { _, c := d.AuthnStats(); return c > 0 }() {
		if time.Now().After(deadline) {
			t.Fatal("no call reached the module")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the others reach the wait
	close(m.gate)
	wg.Wait()
	close(results)
	for v := range results {
		if v != Allow {
			t.Errorf("coalesced verdict %v", v)
		}
	}
	_, coalesced := d.AuthnStats()
	if calls := m.calls.Load(); calls+coalesced != n || calls >= n {
		t.Errorf("%d module calls and %d coalesced for %d identical requests", calls, coalesced, n)
	}
}

func TestPluginConcurrency(t *testing.T) {
	slow := &countingAuthn{gate: make(chan struct{})}
	p := New([]Step[Authenticator]{{Name: "slow", Module: slow, OnError: ErrorDeny}}, nil, Options{PluginConcurrency: 2})
	d := NewDecider(p, CacheOptions{}, nil)
	defer d.Close()
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			d.Authenticate(context.Background(), authnReq("u", string(rune('a'+i)), "10.0.0.1:1", "right"))
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for slow.calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("calls did not start")
		}
		time.Sleep(time.Millisecond)
	}
	// The third distinct call is refused at once and on_error decides.
	res := d.Authenticate(context.Background(), authnReq("u", "third", "10.0.0.1:1", "right"))
	if res.Verdict != Deny || res.Message != "module error" || slow.calls.Load() != 2 {
		t.Errorf("third call: %+v, module calls %d", res, slow.calls.Load())
	}
	close(slow.gate)
	wg.Wait()
	if res := d.Authenticate(context.Background(), authnReq("u", "fourth", "10.0.0.1:1", "right")); res.Verdict != Allow {
		t.Errorf("after the cap freed: %+v", res)
	}
}
