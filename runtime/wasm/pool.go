package wasm

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"
)

// pool is an array of up to cap(slots) instances, each behind an atomic
// state word. The first live slots hold instances; the rest are empty and
// permanently busy, so a caller holding a stale live count only ever finds
// them taken. A caller tries one slot picked by a cheap hint, then scans
// the others, and only when every live slot is busy does it spin briefly,
// ask the module's manager goroutine for another instance and block until
// a slot is released (by a caller or by the manager, new) or its timeout
// passes.
//
// The pool is elastic (issue 12): it starts with one instance, grows with
// demand up to the module's instances, and the manager closes instances
// left unused for an idle period, keeping one. Only the manager changes
// live or moves instances between slots; callers never instantiate, so a
// decision never pays for an instantiation (70 µs for a Rust module,
// milliseconds for a Go one) on its own path. See RATIONALE.md, "The pool".
//
// Why not a channel of instances: a buffered channel costs a lock and,
// under contention, a goroutine hand-off per call, 50-150 ns on two cores,
// several times a whole decision. Why not sync.Pool: it drops items at
// every GC, and a dropped wazero instance is never closed, so its memory
// leaks until the runtime closes.
type pool struct {
	slots []slot
	live  atomic.Uint32 // slots[:live] hold instances; written by the manager only
	min   uint32        // idle never shrinks live below min
	mode  hintMode
	next  atomic.Uint32 // round-robin cursor (hintRoundRobin)
	last  atomic.Uint32 // last slot released (hintLastFreed)

	waiters atomic.Int32  // callers blocked in acquireSlow
	wake    chan struct{} // one token per release while someone waits
	grow    chan struct{} // a caller found every live slot busy
	closing chan struct{} // closed by Module.Close: waiters give up
}

// Slot states. A slot's state is slotBusy while someone owns it, and
// otherwise slotFree or slotUsed: slotUsed records a release since the
// manager last looked, which is how the manager tells an idle instance
// without a clock read on the hot path.
const (
	slotFree uint32 = 0
	slotBusy uint32 = 1
	slotUsed uint32 = 2
)

// slot holds one instance. Whoever sets slotBusy owns the slot and its
// instance until it stores a free state. A broken instance's slot stays
// busy until the manager has installed a new instance; an empty slot
// (at or beyond live) stays busy until the manager fills it.
type slot struct {
	state atomic.Uint32
	idx   uint32
	in    *instance
	_     [64 - 4 - 4 - 8]byte // one slot per cache line: flags of different slots do not false-share
}

func (s *slot) busy() bool { return s.state.Load()&slotBusy != 0 }

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

// init makes a pool of up to n slots, all empty (busy), that idle keeps
// at min or more once filled.
func (p *pool) init(n, min int) {
	p.slots = make([]slot, n)
	p.min = uint32(max(min, 1))
	for i := range p.slots {
		p.slots[i].idx = uint32(i)
		p.slots[i].state.Store(slotBusy)
	}
	p.wake = make(chan struct{}, n)
	p.grow = make(chan struct{}, 1)
	p.closing = make(chan struct{})
}

// add puts in into the first empty slot and releases it; false when the
// pool is full. Manager only.
func (p *pool) add(in *instance) bool {
	n := p.live.Load()
	if int(n) == len(p.slots) {
		return false
	}
	s := &p.slots[n]
	s.in = in
	p.live.Store(n + 1)
	p.release(s)
	return true
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

// claim takes s if it is free.
func (p *pool) claim(s *slot) bool {
	v := s.state.Load()
	return v&slotBusy == 0 && s.state.CompareAndSwap(v, slotBusy)
}

// try claims a free live slot, starting at h.
func (p *pool) try(h uint32) *slot {
	n := p.live.Load()
	if n == 0 {
		return nil
	}
	i := h % n
	for range n {
		s := &p.slots[i]
		if p.claim(s) {
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
		// Every live slot stayed busy through the spins: demand exceeds
		// the pool, so ask the manager for one more instance. Whichever
		// comes first, a release or the new instance, serves this caller.
		if int(p.live.Load()) < len(p.slots) {
			select {
			case p.grow <- struct{}{}:
			default:
			}
		}
		select {
		case <-p.wake:
		case <-t.C:
			return nil, fmt.Errorf("all %d instances busy for %v", p.live.Load(), timeout)
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
	s.state.Store(slotUsed)
	if p.waiters.Load() > 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// idle takes out of the pool, keeping at least min live slots, every
// instance that no caller has released since the previous call to idle,
// and returns them for the manager to close. The instance of the last
// live slot moves into the freed slot, so live slots stay a prefix.
// Manager only.
func (p *pool) idle() []*instance {
	var out []*instance
	for k := int(p.live.Load()) - 1; k >= 0 && p.live.Load() > p.min; k-- {
		s := &p.slots[k]
		if !s.state.CompareAndSwap(slotFree, slotBusy) {
			// Busy, or used since the last look: look again next time.
			s.state.CompareAndSwap(slotUsed, slotFree)
			continue
		}
		top := &p.slots[p.live.Load()-1]
		if top == s {
			out = append(out, s.in)
			s.in = nil
			p.live.Add(^uint32(0)) // s stays busy, now empty
			continue
		}
		v := top.state.Load()
		if v&slotBusy != 0 || !top.state.CompareAndSwap(v, slotBusy) {
			s.state.Store(slotFree) // still idle; the top is in use: next time
			continue
		}
		out = append(out, s.in)
		s.in, top.in = top.in, nil
		p.live.Add(^uint32(0)) // top stays busy, now empty
		s.state.Store(v)       // s carries top's instance and its used mark
		if p.waiters.Load() > 0 {
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
	}
	return out
}
