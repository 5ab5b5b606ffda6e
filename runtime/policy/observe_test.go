package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// countObserver counts what a real metrics adapter would export.
type countObserver struct {
	mu      sync.Mutex
	calls   map[string]int // "kind/plugin/outcome"
	opened  map[string]int // "kind/plugin"
	open    map[string]int // open breakers now
	skipped map[string]int // calls not made: the breaker answered
}

type countStep struct {
	o            *countObserver
	kind, plugin string
}

func (o *countObserver) Step(kind, plugin string) StepObserver {
	return &countStep{o: o, kind: kind, plugin: plugin}
}

func (s *countStep) Observe(oc Outcome, d time.Duration) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	if d < 0 {
		s.o.skipped[s.kind+"/"+s.plugin]++
	}
	s.o.calls[s.kind+"/"+s.plugin+"/"+oc.String()]++
}

func (s *countStep) BreakerOpened(bool) {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	s.o.opened[s.kind+"/"+s.plugin]++
	s.o.open[s.kind+"/"+s.plugin]++
}

func (s *countStep) BreakerClosed() {
	s.o.mu.Lock()
	defer s.o.mu.Unlock()
	s.o.open[s.kind+"/"+s.plugin]--
}

func TestObserver(t *testing.T) {
	ctx := context.Background()
	o := &countObserver{calls: map[string]int{}, opened: map[string]int{}, open: map[string]int{}, skipped: map[string]int{}}
	a := &ruleModule{
		authn: map[string]AuthnResult{"alice": {Verdict: Allow}, "mallory": {Verdict: Deny}},
		authz: map[string]AuthzResult{"ok": {Verdict: Allow}, "no": {Verdict: Deny}},
	}
	broken := &ruleModule{err: errors.New("trap")}
	authz := []Step[Authorizer]{{Name: "broken", Module: broken, OnError: ErrorIgnore}, {Name: "acl", Module: a}}
	stats := new(CacheStats)
	p := New(authnChain(a), authz, Options{Observer: o, Breaker: BreakerOptions{Failures: 2, Cooldown: time.Hour}})
	var logs strings.Builder // one goroutine writes
	d := NewDecider(p, CacheOptions{Stats: stats}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer d.Close()

	d.Authenticate(ctx, &AuthnRequest{Client: &Client{Username: "alice"}})
	d.Authenticate(ctx, &AuthnRequest{Client: &Client{Username: "mallory"}})
	d.Authenticate(ctx, &AuthnRequest{Client: &Client{Username: "nobody"}})
	s := d.NewSession(&Client{ClientID: "c"})
	for range 3 {
		d.Authorize(ctx, s, &AuthzRequest{Action: ActionPublish, Topic: "ok"})
		d.Authorize(ctx, s, &AuthzRequest{Action: ActionPublish, Topic: "no"})
	}
	want := map[string]int{
		"authn/a/allow": 1, "authn/a/deny": 1, "authn/a/ignore": 1,
		// The broken plugin errs twice, then its publish breaker opens and
		// answers every later call as an error, without calling it. Its
		// errors are ignored, so none of the 6 verdicts is cached.
		"authz/broken/error": 6,
		"authz/acl/allow":    3, "authz/acl/deny": 3,
	}
	check := func(want map[string]int) {
		t.Helper()
		o.mu.Lock()
		defer o.mu.Unlock()
		if fmt.Sprint(o.calls) != fmt.Sprint(want) {
			t.Errorf("calls\n got %v\nwant %v", o.calls, want)
		}
	}
	check(want)
	if o.skipped["authz/broken"] != 4 || o.skipped["authz/acl"] != 0 {
		t.Errorf("calls answered by the breaker: %v, want broken 4 (with a negative duration)", o.skipped)
	}
	if broken.calls.Load() != 2 || o.opened["authz/broken"] != 1 || o.open["authz/broken"] != 1 {
		t.Errorf("broken called %d times, breaker opened %d, open %d: want 2, 1, 1", broken.calls.Load(), o.opened["authz/broken"], o.open["authz/broken"])
	}
	// Each plugin error is one audit record at error level; the open
	// breaker's four answers are counted above, not logged one by one
	// (a failing module would otherwise write a record per message to
	// each subscriber).
	if n := strings.Count(logs.String(), "audit=plugin_error module=broken"); n != 2 {
		t.Errorf("%d plugin_error audit records, want 2:\n%s", n, logs.String())
	}
	if h, m := stats.Hits.Load(), stats.Misses.Load(); h != 0 || m != 6 {
		t.Errorf("cache: %d hits, %d misses; want 0, 6 (transient verdicts are not cached)", h, m)
	}

	// A version without the broken plugin: verdicts are cached now, and the
	// old version's open breaker is no longer counted once it is closed.
	old := d.Swap(New(nil, authzChain(a), Options{Observer: o}))
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if o.open["authz/broken"] != 0 {
		t.Errorf("open breakers of a closed version: %d, want 0", o.open["authz/broken"])
	}
	for range 3 {
		d.Authorize(ctx, s, &AuthzRequest{Action: ActionPublish, Topic: "ok"})
	}
	if h, m := stats.Hits.Load(), stats.Misses.Load(); h != 2 || m != 7 {
		t.Errorf("cache: %d hits, %d misses; want 2, 7", h, m)
	}
	want["authz/a/allow"] = 1
	check(want)
}
