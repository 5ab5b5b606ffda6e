package policy

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// flakyModule fails while fail is set, allowing otherwise.
type flakyModule struct {
	fail  atomic.Bool
	calls atomic.Int64
}

func (m *flakyModule) Authorize(context.Context, *AuthzRequest) (AuthzResult, error) {
	m.calls.Add(1)
	if m.fail.Load() {
		return AuthzResult{}, errors.New("deadline exceeded")
	}
	return AuthzResult{Verdict: Allow}, nil
}

func TestBreaker(t *testing.T) {
	for _, onError := range []OnError{ErrorDeny, ErrorAllow} {
		want := map[OnError]Verdict{ErrorDeny: Deny, ErrorAllow: Allow}[onError]
		t.Run(want.String(), func(t *testing.T) {
			m := &flakyModule{}
			m.fail.Store(true)
			chain := []Step[Authorizer]{{Name: "flaky", Module: m, OnError: onError}}
			d := NewDecider(New(nil, chain, Options{Breaker: BreakerOptions{Failures: 3, Cooldown: 200 * time.Millisecond}}), CacheOptions{Disabled: true}, nil)
			defer d.Close()
			s := d.NewSession(&Client{ClientID: "c"})
			ask := func(a Action) Verdict {
				return d.Authorize(context.Background(), s, &AuthzRequest{Action: a, Topic: "t"}).Verdict
			}
			for i := range 10 {
				if v := ask(ActionDeliver); v != want {
					t.Fatalf("deliver %d: %v, want on_error's %v", i, v, want)
				}
			}
			if n := m.calls.Load(); n != 3 {
				t.Fatalf("the module was called %d times for 10 failing requests, want 3 (then the breaker opens)", n)
			}
			// Another action has a breaker of its own.
			m.fail.Store(false)
			if v := ask(ActionPublish); v != Allow || m.calls.Load() != 4 {
				t.Fatalf("publish while deliver's breaker is open: %v after %d calls", v, m.calls.Load())
			}
			// After the cooldown one probe goes through; it fails and the
			// breaker opens again.
			m.fail.Store(true)
			time.Sleep(250 * time.Millisecond)
			ask(ActionDeliver)
			ask(ActionDeliver)
			if n := m.calls.Load(); n != 5 {
				t.Fatalf("half-open: %d calls, want 5 (one probe)", n)
			}
			// A successful probe closes it.
			m.fail.Store(false)
			time.Sleep(250 * time.Millisecond)
			for range 3 {
				if v := ask(ActionDeliver); v != Allow {
					t.Fatalf("after a successful probe: %v", v)
				}
			}
			if n := m.calls.Load(); n != 8 {
				t.Fatalf("closed again: %d calls, want 8", n)
			}
		})
	}
}

// TestBreakerDisabled: with Failures < 0 every request reaches the module.
func TestBreakerDisabled(t *testing.T) {
	m := &flakyModule{}
	m.fail.Store(true)
	d := NewDecider(New(nil, []Step[Authorizer]{{Name: "flaky", Module: m}}, Options{Breaker: BreakerOptions{Failures: -1}}), CacheOptions{Disabled: true}, nil)
	defer d.Close()
	s := d.NewSession(&Client{})
	for range 20 {
		d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionDeliver, Topic: "t"})
	}
	if n := m.calls.Load(); n != 20 {
		t.Fatalf("%d calls, want 20", n)
	}
}

// TestBreakerHammer flips the module between failing and working while
// many goroutines decide: run with -race. Every answer is the module's or
// on_error's, and once the module works again the breaker closes.
func TestBreakerHammer(t *testing.T) {
	m := &flakyModule{}
	d := NewDecider(New(nil, []Step[Authorizer]{{Name: "flaky", Module: m, OnError: ErrorDeny}},
		Options{Breaker: BreakerOptions{Failures: 2, Cooldown: time.Millisecond}}), CacheOptions{Disabled: true}, nil)
	defer d.Close()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := d.NewSession(&Client{})
			for i := range 2000 {
				if g == 0 && i%100 == 0 {
					m.fail.Store(!m.fail.Load())
				}
				v := d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionDeliver, Topic: "t"}).Verdict
				if v != Allow && v != Deny {
					t.Errorf("verdict %v", v)
					return
				}
			}
		}()
	}
	wg.Wait()
	m.fail.Store(false)
	s := d.NewSession(&Client{})
	deadline := time.Now().Add(5 * time.Second)
	for d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionDeliver, Topic: "t"}).Verdict != Allow {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never closed after the module recovered")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestNoBreakerForAuthn: every CONNECT reaches the authn module, however
// many failed before: a breaker there would refuse every client.
func TestNoBreakerForAuthn(t *testing.T) {
	m := &ruleModule{err: errors.New("deadline exceeded")}
	d := NewDecider(New(authnChain(m), nil, Options{}), CacheOptions{}, nil)
	defer d.Close()
	for range 20 {
		d.Authenticate(context.Background(), &AuthnRequest{Client: &Client{Username: "u"}})
	}
	if n := m.calls.Load(); n != 20 {
		t.Fatalf("%d calls for 20 CONNECTs", n)
	}
}
