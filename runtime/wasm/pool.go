package wasm

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// pool is a fixed array of warm instances, each behind an atomic busy
// flag. A caller tries one slot picked by a cheap hint, then scans the
// others, and only when every slot is busy does it spin briefly and then
// block until a slot is released or its timeout passes.
//
// Why not a channel of instances: a buffered channel costs a lock and,
// under contention, a goroutine hand-off per call, 50-150 ns on two cores,
// several times a whole decision. Why not sync.Pool: it drops items at
// every GC, and a dropped wazero instance is never closed, so its memory
// leaks until the runtime closes. See RATIONALE.md, "Wasm engine".
type pool struct {
	slots []slot
	mode  hintMode
	next  atomic.Uint32 // round-robin cursor (hintRoundRobin)
	last  atomic.Uint32 // last slot released (hintLastFreed)

	waiters atomic.Int32  // callers blocked in acquireSlow
	wake    chan struct{} // one token per release while someone waits
	closing chan struct{} // closed by Module.Close: waiters give up
}

// slot holds one instance. Whoever sets busy owns the slot and its
// instance until it clears busy. A broken instance's slot stays busy until
// the replacer has installed a new instance.
type slot struct {
	busy atomic.Bool
	in   *instance
	idx  uint32
	_    [64 - 8 - 8 - 4]byte // one slot per cache line: flags of different slots do not false-share
}

// hintMode chooses the first slot a caller tries. BenchmarkPoolHint
// compares them; hintStack is the default (see RATIONALE.md).
type hintMode uint8

const (
	// hintStack derives the slot from the caller's stack address: stable
	// for one goroutine (mochi runs one per connection), spread across
	// goroutines, and free of any shared write.
	hintStack hintMode = iota
	// hintRoundRobin: an atomic counter, one shared read-modify-write per
	// call.
	hintRoundRobin
	// hintLastFreed: the slot released last, one shared store per call.
	hintLastFreed
)

func (p *pool) init(n int) {
	p.slots = make([]slot, n)
	for i := range p.slots {
		p.slots[i].idx = uint32(i)
	}
	p.wake = make(chan struct{}, n)
	p.closing = make(chan struct{})
}

func (p *pool) hint() uint32 {
	switch p.mode {
	case hintRoundRobin:
		return p.next.Add(1)
	case hintLastFreed:
		return p.last.Load()
	}
	var local byte
	// Goroutine stacks start at least 2 KiB apart; mix the bits above
	// that so that neighbouring stacks land on different slots.
	a := uint32(uintptr(unsafe.Pointer(&local)) >> 11)
	return a * 0x9e3779b1 >> 16
}

// try claims a free slot, starting at h.
func (p *pool) try(h uint32) *slot {
	n := uint32(len(p.slots))
	i := h % n
	for range n {
		s := &p.slots[i]
		if !s.busy.Load() && s.busy.CompareAndSwap(false, true) {
			return s
		}
		if i++; i == n {
			i = 0
		}
	}
	return nil
}

// acquire claims a slot, waiting up to timeout (or ctx) when all are busy.
func (p *pool) acquire(ctx context.Context, timeout time.Duration) (*slot, error) {
	if s := p.try(p.hint()); s != nil {
		return s, nil
	}
	return p.acquireSlow(ctx, timeout)
}

// spins is how many times a caller yields and rescans before blocking. A
// decision takes well under a microsecond, so a slot usually frees up
// within a yield or two, and parking costs more than that.
const spins = 4

func (p *pool) acquireSlow(ctx context.Context, timeout time.Duration) (*slot, error) {
	for range spins {
		runtime.Gosched()
		if s := p.try(p.hint()); s != nil {
			return s, nil
		}
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	// Announce the wait before the last scan, so that a release between the
	// scan and the select sees a waiter and leaves a token.
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	for {
		if s := p.try(p.hint()); s != nil {
			return s, nil
		}
		select {
		case <-p.wake:
		case <-t.C:
			return nil, fmt.Errorf("all %d instances busy for %v", len(p.slots), timeout)
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for an instance: %w", ctx.Err())
		case <-p.closing:
			return nil, ErrClosed
		}
	}
}

// release frees a slot and wakes one waiter, if any.
func (p *pool) release(s *slot) {
	if p.mode == hintLastFreed {
		p.last.Store(s.idx)
	}
	s.busy.Store(false)
	if p.waiters.Load() > 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}
