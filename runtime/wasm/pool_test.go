package wasm

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/moat-mqtt/moat/runtime/policy"
)

func TestSlotIsOneCacheLine(t *testing.T) {
	if s := unsafe.Sizeof(slot{}); s != 64 {
		t.Fatalf("slot is %d bytes, want 64", s)
	}
}

// fullPool returns a pool of n slots, all live, with distinct instances.
func fullPool(n int, mode hintMode) *pool {
	p := &pool{mode: mode}
	p.init(n, 1)
	for range n {
		p.add(&instance{})
	}
	return p
}

// TestPoolHammer has many goroutines claim and release a small pool and
// checks that no slot is ever held twice and that waiters time out.
func TestPoolHammer(t *testing.T) {
	for _, mode := range []hintMode{hintStack, hintRoundRobin, hintLastFreed} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			p := fullPool(2, mode)
			holders := make([]atomic.Int32, 2)
			var wg sync.WaitGroup
			var got atomic.Int64
			for range 50 {
				wg.Go(func() {
					for range 200 {
						s, err := p.acquire(context.Background(), 10*time.Second)
						if err != nil {
							t.Error(err)
							return
						}
						if n := holders[s.idx].Add(1); n != 1 {
							t.Errorf("slot %d held by %d callers", s.idx, n)
						}
						got.Add(1)
						holders[s.idx].Add(-1)
						p.release(s)
					}
				})
			}
			wg.Wait()
			if got.Load() != 50*200 {
				t.Fatalf("%d acquisitions", got.Load())
			}
			// Both slots held: a waiter gives up after its timeout, or when
			// its context ends, or when the pool closes.
			a, _ := p.acquire(context.Background(), time.Second)
			b, _ := p.acquire(context.Background(), time.Second)
			if _, err := p.acquire(context.Background(), 5*time.Millisecond); err == nil || !strings.Contains(err.Error(), "all 2 instances busy for 5ms") {
				t.Errorf("full pool: %v", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := p.acquire(ctx, time.Second); !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled: %v", err)
			}
			done := make(chan error)
			go func() {
				s, err := p.acquire(context.Background(), 5*time.Second)
				if err == nil {
					p.release(s)
				}
				done <- err
			}()
			time.Sleep(10 * time.Millisecond) // let it block
			p.release(a)
			if err := <-done; err != nil {
				t.Errorf("waiter not woken by release: %v", err)
			}
			p.release(b)
			close(p.closing)
			for range 2 { // the pool is full again
				if _, err := p.acquire(context.Background(), time.Second); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := p.acquire(context.Background(), 5*time.Second); !errors.Is(err, ErrClosed) {
				t.Errorf("closed pool: %v", err)
			}
		})
	}
}

// TestPoolElasticHammer has callers claim and release instances while a
// manager goroutine, as Module.manage does, adds instances on request and
// takes idle ones out, with no idle time at all so that it shrinks as
// often as it can. No instance may be held by two callers, none may be
// handed out after the manager took it out, and the pool stays within
// 1..cap.
func TestPoolElasticHammer(t *testing.T) {
	for _, mode := range []hintMode{hintStack, hintRoundRobin, hintLastFreed} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			p := &pool{mode: mode}
			p.init(4, 1)
			p.add(&instance{})
			var holders sync.Map // *instance -> *atomic.Int32
			var closed sync.Map  // *instance -> true
			stop := make(chan struct{})
			managed := make(chan struct{})
			var grown, shrunk atomic.Int64
			go func() { // the manager
				defer close(managed)
				for {
					select {
					case <-stop:
						return
					case <-p.grow:
						if p.add(&instance{}) {
							grown.Add(1)
						}
					default:
						for _, in := range p.idle() {
							closed.Store(in, true)
							shrunk.Add(1)
						}
						if n := p.live.Load(); n < 1 || n > 4 {
							t.Errorf("live = %d", n)
						}
						runtime.Gosched()
					}
				}
			}()
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for i := range 300 {
						s, err := p.acquire(context.Background(), 10*time.Second)
						if err != nil {
							t.Error(err)
							return
						}
						in := s.in
						if _, ok := closed.Load(in); ok {
							t.Error("a closed instance was handed out")
						}
						h, _ := holders.LoadOrStore(in, new(atomic.Int32))
						if n := h.(*atomic.Int32).Add(1); n != 1 {
							t.Errorf("instance held by %d callers", n)
						}
						if i%3 == 0 {
							runtime.Gosched() // hold it a little: others must wait or grow
						}
						h.(*atomic.Int32).Add(-1)
						p.release(s)
						if i%50 == 0 {
							time.Sleep(100 * time.Microsecond) // a lull: the manager may shrink
						}
					}
				})
			}
			wg.Wait()
			// Idle now: the manager takes every instance but one out.
			deadline := time.Now().Add(5 * time.Second)
			for p.live.Load() > 1 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			idleLive := p.live.Load() // before stop: a late grow request may still add one
			close(stop)
			<-managed
			if idleLive != 1 {
				t.Errorf("idle pool: %d live, want 1", idleLive)
			}
			if grown.Load() == 0 || shrunk.Load() == 0 {
				t.Errorf("grown %d times, shrunk %d times: the hammer did not exercise both", grown.Load(), shrunk.Load())
			}
			t.Logf("grown %d, shrunk %d", grown.Load(), shrunk.Load())
		})
	}
}

// hold claims an instance of m for the test, so that decisions must wait
// for another one; release ends the hold (at the latest at cleanup, before
// the module closes).
func hold(t *testing.T, m *Module) (release func()) {
	t.Helper()
	s, err := m.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { m.done(s) }) }
	t.Cleanup(release)
	return release
}

// TestPoolGrows loads a module, which starts with one instance, holds
// instances so that each decision must wait, and checks that the module
// added one instance to serve each, up to its cap, beyond which a caller
// waits and times out.
func TestPoolGrows(t *testing.T) {
	e := newEngine(t, nil)
	m := testModule(t, e, "basic", ModuleConfig{Instances: 3, IdleTimeout: time.Hour, Timeout: 5 * time.Second})
	if n := m.pool.live.Load(); n != 1 {
		t.Fatalf("after load: %d instances, want 1", n)
	}
	for want := uint32(2); want <= 3; want++ {
		hold(t, m)
		res, err := m.Authorize(context.Background(), authz("public/x"))
		if err != nil || res.Verdict != policy.Allow {
			t.Fatalf("with %d instances held: %+v, %v", want-1, res, err)
		}
		if n := m.pool.live.Load(); n != want {
			t.Fatalf("after a decision that waited: %d instances, want %d", n, want)
		}
	}
	hold(t, m)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.Authorize(ctx, authz("public/x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("beyond the cap: %v", err)
	}
	if n := m.pool.live.Load(); n != 3 {
		t.Fatalf("beyond the cap: %d instances", n)
	}
}

// TestPoolShrinks grows a module's pool to its cap, lets it idle, and
// checks that it closes the extra instances, keeping one that still
// decides.
func TestPoolShrinks(t *testing.T) {
	e := newEngine(t, nil)
	const idle = 20 * time.Millisecond
	m := testModule(t, e, "basic", ModuleConfig{Instances: 3, IdleTimeout: idle, Timeout: 5 * time.Second})
	r1, r2 := hold(t, m), hold(t, m) // the second hold waits for growth
	if _, err := m.Authorize(context.Background(), authz("public/x")); err != nil {
		t.Fatal(err)
	}
	if n := m.pool.live.Load(); n < 2 {
		t.Fatalf("under load: %d instances", n)
	}
	r1()
	r2()
	// Idle, the pool shrinks to one instance within two idle periods of
	// the last call; give it far longer before failing.
	deadline := time.Now().Add(5 * time.Second)
	for m.pool.live.Load() > 1 && time.Now().Before(deadline) {
		time.Sleep(idle)
	}
	if n := m.pool.live.Load(); n != 1 {
		t.Fatalf("idle: %d instances, want 1", n)
	}
	e.mu.Lock()
	ticked := len(e.live)
	e.mu.Unlock()
	if n := ticked; n != 1 {
		t.Fatalf("the engine still ticks %d instances, want 1", n)
	}
	res, err := m.Authorize(context.Background(), authz("public/x"))
	if err != nil || res.Verdict != policy.Allow {
		t.Fatalf("after shrinking: %+v, %v", res, err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	// MinInstances: all created by Load, kept however idle.
	m = testModule(t, e, "basic", ModuleConfig{Instances: 3, MinInstances: 2, IdleTimeout: idle, Timeout: 5 * time.Second})
	if n := m.pool.live.Load(); n != 2 {
		t.Fatalf("min 2, after load: %d instances", n)
	}
	r1, r2 = hold(t, m), hold(t, m)
	if _, err := m.Authorize(context.Background(), authz("public/x")); err != nil {
		t.Fatal(err)
	}
	if n := m.pool.live.Load(); n != 3 {
		t.Fatalf("min 2, under load: %d instances", n)
	}
	r1()
	r2()
	deadline = time.Now().Add(5 * time.Second)
	for m.pool.live.Load() > 2 && time.Now().Before(deadline) {
		time.Sleep(idle)
	}
	time.Sleep(3 * idle) // and no further
	if n := m.pool.live.Load(); n != 2 {
		t.Fatalf("min 2, idle: %d instances, want 2", n)
	}
}

// TestPoolLiveBusyModuleHammer runs decisions, failing ones among them,
// from many goroutines against a module whose pool grows and shrinks all
// the while (idle time 1 ms), then checks that it settles at one instance
// and closes cleanly.
func TestPoolLiveBusyModuleHammer(t *testing.T) {
	e := newEngine(t, nil)
	m := testModule(t, e, "hostile", ModuleConfig{Decisions: []string{"authz"}, Instances: 4, IdleTimeout: time.Millisecond, Timeout: 5 * time.Second})
	var wg sync.WaitGroup
	var maxLive atomic.Uint32
	for g := range 20 {
		wg.Go(func() {
			for i := range 100 {
				if n := m.pool.live.Load(); n > maxLive.Load() {
					maxLive.Store(n)
				}
				if (g+i)%40 == 0 {
					if _, err := m.Authorize(context.Background(), authz("unreachable")); err == nil {
						t.Error("trap not reported")
					}
					continue
				}
				res, err := m.Authorize(context.Background(), authz("fine"))
				if err != nil || res.Verdict != policy.Allow {
					t.Errorf("fine: %+v, %v", res, err)
				}
				if i%10 == 0 {
					time.Sleep(2 * time.Millisecond) // let the pool shrink now and then
				}
			}
		})
	}
	wg.Wait()
	if n := maxLive.Load(); n < 2 || n > 4 {
		t.Errorf("at most %d instances live under load, want 2..4", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.pool.live.Load() > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := m.pool.live.Load(); n != 1 {
		t.Fatalf("idle: %d instances, want 1", n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentCalls runs 50 goroutines against a pool of 2, with good
// and failing calls mixed, so that instances are replaced under load.
func TestConcurrentCalls(t *testing.T) {
	e := newEngine(t, nil)
	m := testModule(t, e, "hostile", ModuleConfig{Decisions: []string{"authn", "authz"}, Timeout: 5 * time.Second})
	b := testModule(t, e, "basic", ModuleConfig{Decisions: []string{"authn", "authz"}, Timeout: 5 * time.Second})
	var wg sync.WaitGroup
	var traps atomic.Int64
	for g := range 50 {
		wg.Go(func() {
			for i := range 100 {
				ctx := context.Background()
				switch {
				case i%25 == 0:
					if _, err := m.Authorize(ctx, authz("unreachable")); err == nil {
						t.Error("trap not reported")
					}
					traps.Add(1)
				case i%2 == 0:
					res, err := b.Authorize(ctx, authz(fmt.Sprintf("public/%d/%d", g, i)))
					if err != nil || res.Verdict != policy.Allow {
						t.Errorf("authorize: %+v, %v", res, err)
					}
				case i%3 == 0:
					res, err := b.Authenticate(ctx, authn("alice"))
					if err != nil || res.Verdict != policy.Allow || len(res.Attributes) != 1 {
						t.Errorf("authenticate: %+v, %v", res, err)
					}
				default:
					res, err := m.Authorize(ctx, authz("fine"))
					if err != nil || res.Verdict != policy.Allow {
						t.Errorf("hostile, fine: %+v, %v", res, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if traps.Load() != 200 {
		t.Fatalf("%d traps", traps.Load())
	}
}
