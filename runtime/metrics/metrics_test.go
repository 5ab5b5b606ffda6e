package metrics

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// allowAll is a native authorizer: the hammer below tests the counting,
// not a module.
type allowAll struct{}

func (allowAll) Authorize(_ context.Context, req *policy.AuthzRequest) (policy.AuthzResult, error) {
	if strings.HasPrefix(req.Topic, "no/") {
		return policy.AuthzResult{Verdict: policy.Deny}, nil
	}
	return policy.AuthzResult{Verdict: policy.Allow}, nil
}

// TestLint runs Prometheus's own linter (naming conventions: _total on
// counters, base units, help text) over every moat_ metric.
func TestLint(t *testing.T) {
	m := New()
	m.Step("authz", "acl") // creates the per-plugin series
	m.SetBroker(func() broker.Stats {
		return broker.Stats{Listeners: []broker.ListenerStats{{Name: "tcp"}}, Dropped: map[string]uint64{broker.DropSlowSubscriber: 1}}
	})
	m.SetSources(Sources{
		Limits: func() broker.LimitStats {
			return broker.LimitStats{ConnectionsRefused: map[string]uint64{"banned": 1},
				Bans: map[string]int{broker.BanIP: 1}, FlappingBansActive: map[string]int{broker.BanIP: 0}}
		},
		Overload: func() broker.OverloadStats { return broker.OverloadStats{QoS0Dropped: 1} },
		Authn:    func() (int64, int64) { return 1, 2 },
		Shadow:   func() []policy.ShadowStats { return []policy.ShadowStats{{Name: "next", Disagreed: 1}} },
	})
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "moat_") {
			n++
		}
	}
	if n < 35 {
		t.Errorf("%d moat_ metric families, want every one of issue 13", n)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "moat_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

// TestHammer decides from many goroutines at once and checks that no
// count is lost: the observers are shared by every caller.
func TestHammer(t *testing.T) {
	m := New()
	p := policy.New(nil, []policy.Step[policy.Authorizer]{{Name: "acl", Module: allowAll{}}}, policy.Options{Observer: m})
	d := policy.NewDecider(p, policy.CacheOptions{Stats: m.CacheStats()}, nil)
	defer d.Close()
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := d.NewSession(&policy.Client{ClientID: "c"})
			for i := range each {
				topic := "ok/t"
				if w%2 == 1 {
					topic = "no/t"
				}
				if i%2 == 1 { // a new topic every other call: a miss
					topic += "/" + string(rune('a'+i%26)) + strings.Repeat("x", i)
				}
				d.Authorize(context.Background(), s, &policy.AuthzRequest{Action: policy.ActionPublish, Topic: topic})
			}
		}()
	}
	wg.Wait()
	allow := testutil.ToFloat64(m.decisions.WithLabelValues("acl", "authz", "allow"))
	deny := testutil.ToFloat64(m.decisions.WithLabelValues("acl", "authz", "deny"))
	hits, misses := float64(m.cache.Hits.Load()), float64(m.cache.Misses.Load())
	if hits+misses != workers*each {
		t.Errorf("hits %v + misses %v != %d lookups", hits, misses, workers*each)
	}
	if allow+deny != misses || allow == 0 || deny == 0 {
		t.Errorf("allow %v + deny %v: want the %v misses, both non-zero", allow, deny, misses)
	}
	if n := testutil.CollectAndCount(m.latency); n != 1 {
		t.Errorf("%d latency series, want 1", n)
	}
}
