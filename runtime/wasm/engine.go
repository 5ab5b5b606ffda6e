// Package wasm runs moat's policy modules: it compiles WebAssembly binaries
// with wazero, checks them against moat ABI v1 (sdk/ABI.md), keeps a pool of
// warm instances per module and calls them with a deadline that stops even
// a guest in an infinite loop. A loaded Module implements
// policy.Authenticator, policy.Authorizer and policy.Payloader.
//
// It is the only package that imports wazero, and it knows nothing of MQTT
// packets: requests arrive as policy types.
//
// See runtime/RATIONALE.md, "Wasm engine", for why calls are preempted by
// epoch interruption rather than by wazero's WithCloseOnContextDone, and
// why the pool is an array of busy flags.
package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
)

// tick is the period of the epoch ticker. A deadline is accurate to one
// tick, so 1 ms keeps a 5 ms timeout meaningful; each tick costs one timer
// wake-up plus one global write per live instance (BenchmarkTick: 1.6 µs
// for 64 instances), 0.1-0.5% of one core.
const tick = time.Millisecond

// EngineOptions configure an Engine.
type EngineOptions struct {
	// CacheDir keeps compiled machine code on disk across restarts; ""
	// keeps it in memory only, shared by every module of the Engine (which
	// still makes a reload's recompile of an unchanged module cheap).
	CacheDir string
	// Logger receives engine and guest log lines; nil discards them.
	Logger *slog.Logger
	// PoolObserver, when set, is told of every call that found all
	// instances of its module busy (observe.go).
	PoolObserver PoolObserver
}

// Engine compiles and runs modules. There is one per broker: it owns the
// compilation cache shared by all modules and the epoch ticker that
// enforces every call's deadline. It is safe for concurrent use.
type Engine struct {
	log     *slog.Logger
	poolObs PoolObserver // nil: not observed
	cache   wazero.CompilationCache
	start   time.Time // origin of the epoch and of time_monotonic

	// epoch counts ticks since start. Only the ticker writes it.
	epoch atomic.Uint64
	// argon2Rate is the time argon2id takes, in ns per argon2RateUnit
	// KiB-passes, last confirmed at argon2Seen (ns since start); see
	// argon2Fits.
	argon2Rate atomic.Int64
	argon2Seen atomic.Int64

	// mu guards live, modules and closed.
	mu      sync.Mutex
	live    map[*instance]struct{}
	modules int // loading or open: they use cache and ticker
	closed  bool

	stop chan struct{}
	done chan struct{}

	// noStackGuard loads modules without the meter's stack guard, for
	// the benchmark that measures what the guard costs.
	noStackGuard bool
}

// NewEngine starts an Engine. The caller must Close it after closing its
// modules.
func NewEngine(ctx context.Context, opts EngineOptions) (*Engine, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var cache wazero.CompilationCache
	if opts.CacheDir != "" {
		c, err := wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("wasm: compilation cache %s: %w", opts.CacheDir, err)
		}
		cache = c
	} else {
		cache = wazero.NewCompilationCache()
	}
	e := &Engine{
		log:     log,
		poolObs: opts.PoolObserver,
		cache:   cache,
		start:   time.Now(),
		live:    make(map[*instance]struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	e.argon2Rate.Store(argon2InitialRate)
	go e.run()
	return e, nil
}

// run is the ticker: it advances the epoch from the monotonic clock (so a
// late tick catches up instead of stretching deadlines) and publishes it to
// every live instance. It never writes a deadline and callers never write
// an epoch, so the two goroutines touching an instance's globals write
// different words.
func (e *Engine) run() {
	defer close(e.done)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			ep := uint64(time.Since(e.start) / tick)
			if ep <= e.epoch.Load() {
				continue
			}
			e.epoch.Store(ep)
			e.publish(ep)
		}
	}
}

func (e *Engine) publish(ep uint64) {
	e.mu.Lock()
	for in := range e.live {
		in.epoch.Set(ep)
	}
	e.mu.Unlock()
}

// register adds an instance to the ticker's set and publishes the current
// epoch to it, so that its first deadline is measured from now.
func (e *Engine) register(in *instance) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errEngineClosed
	}
	in.epoch.Set(e.epoch.Load())
	e.live[in] = struct{}{}
	return nil
}

// unregister removes an instance; after it returns the ticker no longer
// touches the instance, which may then be closed.
func (e *Engine) unregister(in *instance) {
	e.mu.Lock()
	delete(e.live, in)
	e.mu.Unlock()
}

var errEngineClosed = errors.New("wasm: engine closed")

// acquire counts a module in, so that Close waits for it; release counts
// it out.
func (e *Engine) acquire() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errEngineClosed
	}
	e.modules++
	return nil
}

func (e *Engine) release() {
	e.mu.Lock()
	e.modules--
	e.mu.Unlock()
}

// deadline returns the guest-visible deadline for a call that may run for
// timeout, or until ctxDeadline when that is earlier. It rounds up and adds
// one tick, because the current tick may be nearly over: a call gets at
// least its timeout, and at most one tick more.
func (e *Engine) deadline(timeoutTicks uint64, ctxDeadline time.Time, hasCtxDeadline bool) uint64 {
	d := e.epoch.Load() + timeoutTicks + 1
	if hasCtxDeadline {
		c := uint64(0)
		if s := ctxDeadline.Sub(e.start); s > 0 {
			c = uint64((s + tick - 1) / tick)
		}
		if c < d {
			d = c
		}
	}
	return d
}

// expired tells whether the epoch has reached the deadline of the call in
// flight on in: a call that failed then ran out of time rather than
// trapped, and one that returned did so too late. Only the calling
// goroutine reads or writes an instance's deadline, so this read does not
// race with the ticker.
func (e *Engine) expired(in *instance) bool {
	return in.until <= e.epoch.Load()
}

// remaining is the time left before the deadline of the call in flight on
// in, to within one tick; 0 once it has passed.
func (e *Engine) remaining(in *instance) time.Duration {
	now := e.epoch.Load()
	if in.until <= now {
		return 0
	}
	return time.Duration(in.until-now) * tick
}

// Close stops the ticker and releases the compilation cache. Modules must
// be closed first: their instances would no longer be preempted, so Close
// refuses to stop while any module is open or loading.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	if e.modules > 0 {
		n := e.modules
		e.mu.Unlock()
		return fmt.Errorf("wasm: engine close: %d modules still open", n)
	}
	e.closed = true
	e.mu.Unlock()
	close(e.stop)
	<-e.done
	return e.cache.Close(ctx)
}
