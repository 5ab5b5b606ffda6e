package server

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// BenchmarkReload measures the time from the trigger (the Reload call) to
// the new policy in force (Reload returns), per kind of change:
//
//   - wat/changed: a small module's binary changes every iteration
//     (compile, instantiate the pool, swap, recheck);
//   - wat/unchanged: nothing changed (every module reused; swap and recheck
//     only);
//   - demo/config: the Go demo plugin's [plugin.config] changes (compiled
//     code from the cache, new instances of a Go guest configured afresh).
//
// Writing the files is not timed. One connected client with a
// subscription makes the recheck do some work.
func BenchmarkReload(b *testing.B) {
	allow := wat(b, "allow")
	b.Run("wat/changed", func(b *testing.B) {
		e := startEnv(b, map[string][]byte{"gate.wasm": allow}, anonymous+gate("gate", "gate.wasm"))
		benchClient(b, e)
		benchReloads(b, e, func(i int) { e.write("gate.wasm", withSection(allow, i)) }, false)
	})
	b.Run("wat/unchanged", func(b *testing.B) {
		e := startEnv(b, map[string][]byte{"gate.wasm": allow}, anonymous+gate("gate", "gate.wasm"))
		benchClient(b, e)
		benchReloads(b, e, func(int) {}, true)
	})
	b.Run("demo/config", func(b *testing.B) {
		users := []demoUser{{"u", "p"}}
		e := startEnv(b, map[string][]byte{"demo.wasm": demoWasm(b)}, demo(users, nil))
		benchReloads(b, e, func(i int) { e.config(demo(users, []demoRule{{"u", "all", fmt.Sprint("t/", i)}})) }, false)
	})
}

// benchClient connects a client subscribed to a topic.
func benchClient(b *testing.B, e *env) {
	c := testutil.MustConnectV3(b, e.url, testutil.V3Options{})
	c.Subscribe(b, "bench/#", 1)
}

func benchReloads(b *testing.B, e *env, change func(i int), reused bool) {
	b.ReportAllocs()
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		change(i)
		b.StartTimer()
		start := time.Now()
		res := e.s.Reload(context.Background(), Trigger{Source: TriggerAPI})
		total += time.Since(start)
		if !res.Applied || res.Modules[0].Reused != reused {
			b.Fatalf("reload %d: applied %v, modules %+v, errors %q", i, res.Applied, res.Modules, res.Errors)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/reload")
}

// BenchmarkPublishDuringReloadStorm measures QoS 1 publish throughput
// through the broker (publisher -> broker -> subscriber, both authorized by
// a wasm module) at steady state and then while the policy is reloaded,
// each reload swapping a changed module in (and so flushing every cached
// decision): every 50ms (a deployment pushing edits as fast as a person or
// a pipeline would), and back to back without pause (the worst case: one
// core does nothing but reload). It reports both rates and their ratio,
// storm/steady: 1.0 is no dip at all.
func BenchmarkPublishDuringReloadStorm(b *testing.B) {
	b.Run("every-50ms", func(b *testing.B) { benchStorm(b, 50*time.Millisecond) })
	b.Run("continuous", func(b *testing.B) { benchStorm(b, 0) })
}

func benchStorm(b *testing.B, pause time.Duration) {
	allow := wat(b, "allow")
	e := startEnv(b, map[string][]byte{"gate.wasm": allow}, anonymous+gate("gate", "gate.wasm"))
	sub := testutil.MustConnectV3(b, e.url, testutil.V3Options{})
	var received atomic.Int64
	tok := sub.Client.Subscribe("storm/#", 1, func(pahov3.Client, pahov3.Message) { received.Add(1) })
	if !tok.WaitTimeout(testutil.Wait) || tok.Error() != nil {
		b.Fatal(tok.Error())
	}
	pub := testutil.MustConnectV3(b, e.url, testutil.V3Options{})

	// run publishes n messages with up to 64 in flight and waits until the
	// subscriber has them all; it returns messages per second.
	run := func(n int) float64 {
		start := time.Now()
		base := received.Load()
		window := make(chan pahov3.Token, 64)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tok := range window {
				if !tok.WaitTimeout(testutil.Wait) || tok.Error() != nil {
					b.Errorf("publish: %v", tok.Error())
				}
			}
		}()
		for i := range n {
			window <- pub.Client.Publish(fmt.Sprint("storm/", i%16), 1, false, "x")
		}
		close(window)
		wg.Wait()
		deadline := time.Now().Add(testutil.Wait)
		for received.Load()-base < int64(n) {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d messages received", received.Load()-base, n)
			}
			time.Sleep(100 * time.Microsecond)
		}
		return float64(n) / time.Since(start).Seconds()
	}

	// Steady and storm phases alternate in rounds, so that a change in
	// the machine's load during the run affects both alike.
	const rounds = 4
	chunk := max(b.N, 2000) / rounds
	run(200) // warm up: connections, caches, instances

	var storming atomic.Bool
	stop := make(chan struct{})
	var reloads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if !storming.Load() {
				time.Sleep(time.Millisecond)
				continue
			}
			e.write("gate.wasm", withSection(allow, i))
			if res := e.s.Reload(context.Background(), Trigger{Source: TriggerAPI}); !res.Applied {
				b.Errorf("reload: %q", res.Errors)
				return
			}
			reloads.Add(1)
			select {
			case <-stop:
				return
			case <-time.After(pause):
			}
		}
	}()
	b.ResetTimer()
	var steadyT, stormT time.Duration
	for range rounds {
		t0 := time.Now()
		run(chunk)
		steadyT += time.Since(t0)
		storming.Store(true)
		t0 = time.Now()
		run(chunk)
		stormT += time.Since(t0)
		storming.Store(false)
	}
	close(stop)
	wg.Wait()
	b.StopTimer()
	steady := float64(rounds*chunk) / steadyT.Seconds()
	storm := float64(rounds*chunk) / stormT.Seconds()
	stormTook := stormT

	b.ReportMetric(steady, "msg/s-steady")
	b.ReportMetric(storm, "msg/s-storm")
	b.ReportMetric(storm/steady, "storm/steady")
	b.ReportMetric(float64(reloads.Load())/stormTook.Seconds(), "reloads/s")
}
