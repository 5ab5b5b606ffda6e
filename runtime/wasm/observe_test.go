package wasm

import (
	"context"
	"sync"
	"testing"
	"time"
)

type waitRecorder struct {
	mu    sync.Mutex
	waits map[string]int
	errs  int
}

func (r *waitRecorder) PoolWait(module string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.waits[module]++
	if err != nil {
		r.errs++
	}
}

// TestPoolObserver holds the only instance of a module and checks that a
// call that must wait for it is reported, and that one that finds it free
// is not.
func TestPoolObserver(t *testing.T) {
	rec := &waitRecorder{waits: map[string]int{}}
	e, err := NewEngine(context.Background(), EngineOptions{PoolObserver: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	m := testModule(t, e, "basic", ModuleConfig{Name: "acl", Instances: 1, Timeout: 2 * time.Second})
	ctx := context.Background()
	if _, err := m.Authorize(ctx, authz("a")); err != nil {
		t.Fatal(err)
	}
	if len(rec.waits) != 0 {
		t.Fatalf("waits with a free instance: %v", rec.waits)
	}
	s, err := m.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := m.Authorize(ctx, authz("a"))
		done <- err
	}()
	for m.pool.waiters.Load() == 0 { // blocked, past its spins
		time.Sleep(time.Millisecond)
	}
	m.pool.release(s)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.waits["acl"] != 1 || rec.errs != 0 {
		t.Fatalf("waits %v, %d failed: want acl 1, 0 failed", rec.waits, rec.errs)
	}
}
