package policy

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// BreakerOptions configure the circuit breaker of every plugin.
//
// A plugin in trouble (a trap, a deadline, a malformed result, or no free
// instance within its timeout) costs every caller its whole timeout, and
// mochi decides the deliveries of one message one subscriber after another
// on the publisher's goroutine: ten subscribers whose deliver decisions
// time out stall the publisher for ten timeouts per message, whatever the
// other subscribers and publishers are. The breaker bounds that cost: after
// Failures consecutive errors it opens, and for Cooldown every request of
// that kind is answered by the plugin's on_error without calling it. Then
// one request is let through as a probe (half-open): a success closes the
// breaker, an error opens it for another Cooldown.
//
// A breaker is kept per plugin, per chain and per action, so that deliver
// decisions in trouble do not cut publishes and subscriptions off. Each
// policy version (reload) starts with closed breakers. The authn chain has
// none: a CONNECT is decided on the connecting client's own goroutine,
// bounded by [auth] timeout, so a slow module delays only that client,
// while a breaker would refuse every client for the cooldown after five
// failed logins.
//
// While a breaker is open, the requests it answers are those of every
// client, not only of the one whose requests failed: with on_error =
// "deny", an uncached delivery to a subscriber is not made, as if the
// plugin had timed out for it. That is the price of bounding the stall; a
// decision already cached is not affected.
type BreakerOptions struct {
	// Failures is the number of consecutive errors that opens the
	// breaker; default 5. Negative disables the breaker.
	Failures int
	// Cooldown is how long an open breaker answers without calling the
	// plugin; default 5s.
	Cooldown time.Duration
}

const (
	defaultBreakerFailures = 5
	defaultBreakerCooldown = 5 * time.Second
)

// breaker is one circuit breaker. It is safe for concurrent use and costs
// a closed breaker one atomic load per call and, after a success, one more.
type breaker struct {
	failures  atomic.Int32
	openUntil atomic.Int64 // unix nanoseconds; 0 while closed
	probing   atomic.Bool  // a half-open probe is running
	opts      *BreakerOptions
	obs       StepObserver // nil records nothing
}

// allow reports whether the plugin may be called now. probe is true for the
// one call let through after the cooldown; its outcome decides the state.
func (b *breaker) allow() (ok, probe bool) {
	until := b.openUntil.Load()
	if until == 0 {
		return true, false
	}
	if time.Now().UnixNano() < until {
		return false, false
	}
	if b.probing.CompareAndSwap(false, true) {
		return true, true
	}
	return false, false
}

// done records the outcome of a call that allow let through.
func (b *breaker) done(err error, probe bool, log *slog.Logger, chain, module string) {
	if err == nil {
		if b.failures.Load() != 0 {
			b.failures.Store(0)
		}
		if probe {
			b.openUntil.Store(0)
			b.probing.Store(false)
			log.Info("plugin circuit breaker closed", "module", module, "chain", chain)
			if b.obs != nil {
				b.obs.BreakerClosed()
			}
		}
		return
	}
	n := b.failures.Add(1)
	switch {
	case probe:
		b.openUntil.Store(time.Now().Add(b.opts.Cooldown).UnixNano())
		b.probing.Store(false)
		if b.obs != nil {
			b.obs.BreakerOpened(true)
		}
	case int(n) == b.opts.Failures && b.openUntil.Load() == 0:
		b.openUntil.Store(time.Now().Add(b.opts.Cooldown).UnixNano())
		log.Warn("plugin circuit breaker open: its on_error answers without calling it",
			"module", module, "chain", chain, "failures", n, "cooldown", b.opts.Cooldown)
		if b.obs != nil {
			b.obs.BreakerOpened(false)
		}
	}
}

// errBreakerOpen is the module error of a request answered by on_error
// because the plugin's circuit breaker is open.
var errBreakerOpen = errors.New("policy: circuit breaker open after repeated errors")
