package policy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// Plugin budgets: what keeps a storm of CONNECTs, or one slow module, from
// taking the broker down.
//
//   - Failed authentications are remembered for CacheOptions.AuthnFailureTTL
//     per (username, client id, remote IP, password, certificate): the same
//     attempt again is refused without calling a module. The password is in
//     the key so that a user who mistyped is not locked out by the cache;
//     guessing passwords is what connection rates and bans are for.
//   - Identical authentications running at the same time are coalesced:
//     one runs the chain, the others wait for its result (a client that
//     reconnects in a loop, a fleet restarted with one credential).
//   - Each plugin has at most Options.PluginConcurrency calls running or
//     waiting for an instance; past it a call fails at once with
//     errOverloaded and the plugin's on_error decides, as for a timeout.
//     The circuit breaker (breaker.go) then counts it as a failure.
//
// The first two hold only for plain CONNECTs: enhanced authentication
// (AuthMethod) is a conversation with state, decided round by round.

// errOverloaded is the module error of a call refused by the plugin's
// concurrency cap.
var errOverloaded = errors.New("policy: plugin concurrency limit reached")

// concLimit caps the concurrent calls of one step; nil: no cap.
type concLimit struct {
	max int64
	n   atomic.Int64
}

func (c *concLimit) acquire() bool {
	if c == nil {
		return true
	}
	if c.n.Add(1) > c.max {
		c.n.Add(-1)
		return false
	}
	return true
}

func (c *concLimit) release() {
	if c != nil {
		c.n.Add(-1)
	}
}

// withConcurrency returns a copy of steps, each with a cap of its own.
func withConcurrency[T any](steps []Step[T], max int) []Step[T] {
	if max <= 0 {
		return steps
	}
	out := make([]Step[T], len(steps))
	for i, s := range steps {
		s.conc = &concLimit{max: int64(max)}
		out[i] = s
	}
	return out
}

// authnKey identifies an authentication attempt: every field a module sees
// that a client controls, except the source port.
type authnKey [32]byte

func keyOf(req *AuthnRequest) (authnKey, bool) {
	if req.AuthMethod != "" || req.Round != 0 || req.Client == nil {
		return authnKey{}, false
	}
	c := req.Client
	h := sha256.New()
	field := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	ip := c.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	field([]byte(c.Username))
	field([]byte(c.ClientID))
	field([]byte(ip))
	field([]byte(c.Listener))
	field([]byte{c.ProtocolVersion})
	if req.Password == nil {
		field(nil)
	} else {
		field(append([]byte{1}, req.Password...))
	}
	if c.Cert != nil {
		field(c.Cert.Fingerprint[:])
	} else {
		field(nil)
	}
	for _, p := range req.UserProperties {
		field([]byte(p.Key))
		field([]byte(p.Value))
	}
	var k authnKey
	h.Sum(k[:0])
	return k, true
}

// maxFailures bounds the negative cache; a full cache is emptied of
// expired entries, then cleared if that freed nothing.
const maxFailures = 1 << 16

// authnGuard is the Decider's negative cache and coalescing of
// authentications. Entries are stamped with the Decider's generation, so a
// reload (Swap) forgets every failure: a user just added gets in.
type authnGuard struct {
	mu       sync.Mutex
	failures map[authnKey]failure
	calls    map[authnKey]*authnCall
}

type failure struct {
	until int64 // unix nanoseconds
	gen   uint64
	res   AuthnResult
}

type authnCall struct {
	done chan struct{}
	res  AuthnResult
}

// authenticateGuarded is Authenticate behind the negative cache and the
// coalescing of identical requests; run runs the chain.
func (d *Decider) authenticateGuarded(ctx context.Context, req *AuthnRequest, run func() AuthnResult) AuthnResult {
	key, ok := keyOf(req)
	if !ok {
		return run()
	}
	g := &d.guard
	gen := d.gen.Load()
	g.mu.Lock()
	if d.opts.AuthnFailureTTL > 0 {
		if f, hit := g.failures[key]; hit {
			if f.gen == gen && d.now.Load() < f.until {
				g.mu.Unlock()
				d.negHits.Add(1)
				return f.res
			}
			delete(g.failures, key)
		}
	}
	if c, running := g.calls[key]; running {
		g.mu.Unlock()
		select {
		case <-c.done:
			d.coalesced.Add(1)
			return c.res
		case <-ctx.Done():
			return AuthnResult{Verdict: Deny, Reason: ReasonServerUnavailable, Message: "authentication timed out waiting for an identical one"}
		}
	}
	c := &authnCall{done: make(chan struct{})}
	if g.calls == nil {
		g.calls = map[authnKey]*authnCall{}
	}
	g.calls[key] = c
	g.mu.Unlock()

	c.res = run()

	g.mu.Lock()
	delete(g.calls, key)
	if c.res.Verdict == Deny && !c.res.transient && d.opts.AuthnFailureTTL > 0 {
		if g.failures == nil {
			g.failures = map[authnKey]failure{}
		}
		if len(g.failures) >= maxFailures {
			now := d.now.Load()
			for k, f := range g.failures {
				if now >= f.until {
					delete(g.failures, k)
				}
			}
			if len(g.failures) >= maxFailures {
				clear(g.failures)
			}
		}
		g.failures[key] = failure{until: d.now.Load() + int64(d.opts.AuthnFailureTTL), gen: gen, res: c.res}
	}
	g.mu.Unlock()
	close(c.done)
	return c.res
}

// AuthnStats reports how many authentications the negative cache answered
// and how many waited for an identical one, since the Decider was made.
func (d *Decider) AuthnStats() (negativeHits, coalesced int64) {
	return d.negHits.Load(), d.coalesced.Load()
}
