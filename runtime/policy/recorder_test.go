package policy

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestShadowHammer decides from many goroutines while versions with
// shadows are swapped in and closed and the history is resized: run with
// -race. Every question a shadow queued is answered or dropped with its
// version, and nothing blocks.
func TestShadowHammer(t *testing.T) {
	newVersion := func() (*Policy, *Shadow) {
		live := &ruleModule{authz: map[string]AuthzResult{"t0": {Verdict: Allow}}, authn: map[string]AuthnResult{"u": {Verdict: Allow}}}
		trial := &ruleModule{authz: map[string]AuthzResult{"t1": {Verdict: Deny}}, authn: map[string]AuthnResult{"u": {Verdict: Deny}}}
		sh := NewShadow("trial", trial, trial, nil, ShadowOptions{Sample: 0.5, Queue: 8})
		return New(authnChain(live), authzChain(live), Options{AuthzNoMatch: Allow, Shadows: []*Shadow{sh}}), sh
	}
	p, sh := newVersion()
	shadows := []*Shadow{sh}
	d := NewDecider(p, CacheOptions{MaxPerClient: 4}, nil)
	defer d.Close()
	d.SetHistory(64)

	n := 2000
	if testing.Short() {
		n = 300
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &Client{ClientID: fmt.Sprint("c", g), Username: "u"}
			s := d.NewSession(c)
			for i := range n {
				if i%50 == 0 {
					d.Authenticate(ctx, &AuthnRequest{Client: &Client{ClientID: c.ClientID, Username: "u"}, Password: []byte("pw")})
				}
				d.Authorize(ctx, s, &AuthzRequest{Action: ActionPublish, Topic: fmt.Sprint("t", i%7)})
			}
		}()
	}
	stop := make(chan struct{})
	var side sync.WaitGroup
	side.Add(1)
	go func() {
		defer side.Done()
		sizes := []int{32, 0, 128, 64}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			d.SetHistory(sizes[i%len(sizes)])
			_ = d.History()
			if i%10 == 0 {
				np, nsh := newVersion()
				shadows = append(shadows, nsh)
				old := d.Swap(np)
				if err := old.Close(ctx); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	wg.Wait()
	close(stop)
	side.Wait()
	if err := d.Swap(New(nil, nil, Options{})).Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, sh := range shadows {
		st := sh.Stats()
		if done := st.Agreed + st.Disagreed + st.Skipped; done > st.Sampled {
			t.Errorf("%+v: more answers than questions", st)
		}
	}
}

// BenchmarkAuthorizeUncachedHistory is BenchmarkAuthorizeUncached with
// the decision history on, and with a shadow that samples nothing, and
// one that samples everything: compare each with "off" of the same run.
func BenchmarkAuthorizeUncachedHistory(b *testing.B) {
	for _, tc := range []struct {
		name    string
		history int
		sample  float64
		shadow  bool
	}{
		{"off", 0, 0, false},
		{"history", 1024, 0, false},
		{"history+shadow-sample-0", 1024, 0, true},
		{"history+shadow-sample-1", 1024, 1, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			m := &ruleModule{authz: map[string]AuthzResult{"a/1": {Verdict: Allow}}}
			var opts Options
			if tc.shadow {
				opts.Shadows = []*Shadow{NewShadow("s", nil, m, nil, ShadowOptions{Sample: tc.sample})}
			}
			p := New(nil, authzChain(m), opts)
			d := NewDecider(p, CacheOptions{Disabled: true}, nil)
			defer d.Close()
			defer p.Close(context.Background())
			d.SetHistory(tc.history)
			s := d.NewSession(&Client{ClientID: "c"})
			req := &AuthzRequest{Action: ActionDeliver, Topic: "a/1"}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				d.Authorize(ctx, s, req)
			}
		})
	}
}
