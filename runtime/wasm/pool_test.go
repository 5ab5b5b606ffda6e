package wasm

import (
	"context"
	"errors"
	"fmt"
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

// TestPoolHammer has many goroutines claim and release a small pool and
// checks that no slot is ever held twice and that waiters time out.
func TestPoolHammer(t *testing.T) {
	for _, mode := range []hintMode{hintStack, hintRoundRobin, hintLastFreed} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			var p pool
			p.mode = mode
			p.init(2)
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
