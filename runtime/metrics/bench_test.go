package metrics

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// BenchmarkDecision measures one authorization through the Decider with a
// real wasm module (runtime/server/testdata/allow.wasm), with metrics off
// (no observer, no cache stats) and on (this package's observer and
// counters), uncached (every call reaches the module: observer + latency
// histogram) and cached (a cache hit: one shared atomic add). Compare on
// with off in the same run:
//
//	go test -run '^$' -bench BenchmarkDecision -benchtime 200000x -count 3 ./runtime/metrics
func BenchmarkDecision(b *testing.B) {
	bin, err := os.ReadFile("../server/testdata/allow.wasm")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, cached := range []bool{false, true} {
		for _, on := range []bool{false, true} {
			name := map[bool]string{false: "uncached", true: "cached"}[cached] + "/" + map[bool]string{false: "off", true: "on"}[on]
			b.Run(name, func(b *testing.B) {
				var m *Metrics
				var pobs wasm.PoolObserver
				var obs policy.Observer
				if on {
					m = New()
					pobs, obs = m, m
				}
				e, err := wasm.NewEngine(ctx, wasm.EngineOptions{PoolObserver: pobs})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close(ctx)
				mod, err := e.Load(ctx, wasm.ModuleConfig{Name: "allow", Path: "allow.wasm", Binary: bin,
					Decisions: []string{"authz"}, Instances: 2, Timeout: time.Second})
				if err != nil {
					b.Fatal(err)
				}
				defer mod.Close()
				p := policy.New(nil, []policy.Step[policy.Authorizer]{{Name: "allow", Module: mod}}, policy.Options{Observer: obs})
				co := policy.CacheOptions{Disabled: !cached}
				if on {
					co.Stats = m.CacheStats()
				}
				d := policy.NewDecider(p, co, nil)
				defer d.Close()
				s := d.NewSession(&policy.Client{ClientID: "c", Username: "u"})
				req := &policy.AuthzRequest{Action: policy.ActionPublish, Topic: "a/b", QoS: 1}
				d.Authorize(ctx, s, req)
				b.ReportAllocs()
				for b.Loop() {
					if d.Authorize(ctx, s, req).Verdict != policy.Allow {
						b.Fatal("not allowed")
					}
				}
			})
		}
	}
}

// BenchmarkObserveOverhead is what metrics add to one uncached plugin call,
// alone: the two clock reads of policy's observe wrapper and this
// package's StepObserver (a counter and a histogram), against the clock
// reads only. It isolates the cost that BenchmarkDecision/uncached
// measures inside the noise of a wasm call.
func BenchmarkObserveOverhead(b *testing.B) {
	s := New().Step("authz", "acl")
	b.Run("clock", func(b *testing.B) {
		var sink time.Duration
		for b.Loop() {
			start := time.Now()
			sink += time.Since(start)
		}
		_ = sink
	})
	b.Run("clock+observe", func(b *testing.B) {
		for b.Loop() {
			start := time.Now()
			s.Observe(policy.OutcomeAllow, time.Since(start))
		}
	})
}
