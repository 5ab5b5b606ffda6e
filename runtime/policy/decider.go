package policy

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// CacheOptions configure the authorization decision cache.
type CacheOptions struct {
	// Disabled turns the cache off: every request reaches the modules.
	Disabled bool
	// TTL bounds how long a verdict is reused; default 5 minutes.
	TTL time.Duration
	// MaxPerClient bounds the entries kept per connection; default 1024.
	// A full cache is emptied rather than scanned for victims: clearing is
	// O(1) amortised and a client that touches more than MaxPerClient topics
	// gains little from caching anyway.
	MaxPerClient int
}

// Decider is the broker's single entry point to policy. It is long-lived
// (one per broker) while the Policy it runs can be swapped at any time.
// It is safe for concurrent use.
type Decider struct {
	cur  atomic.Pointer[Policy]
	gen  atomic.Uint64 // bumped by Swap and Flush; older cache entries are stale
	now  atomic.Int64  // coarse clock (unix nanoseconds) for cache TTLs
	log  *slog.Logger
	opts CacheOptions

	stop chan struct{}
	done chan struct{}
}

// coarseTick is how often the cache clock advances. Reading time.Now on
// every cache hit would cost as much as the lookup itself.
const coarseTick = 50 * time.Millisecond

// NewDecider starts a Decider running p. Close stops its clock; it does not
// close p.
func NewDecider(p *Policy, opts CacheOptions, log *slog.Logger) *Decider {
	if opts.TTL <= 0 {
		opts.TTL = 5 * time.Minute
	}
	if opts.MaxPerClient <= 0 {
		opts.MaxPerClient = 1024
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Decider{log: log, opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	d.cur.Store(p)
	d.gen.Store(1)
	d.now.Store(time.Now().UnixNano())
	go d.tick()
	return d
}

func (d *Decider) tick() {
	defer close(d.done)
	t := time.NewTicker(coarseTick)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case now := <-t.C:
			d.now.Store(now.UnixNano())
		}
	}
}

// Close stops the Decider's clock. It is safe to call more than once.
func (d *Decider) Close() {
	select {
	case <-d.stop:
	default:
		close(d.stop)
	}
	<-d.done
}

// Policy returns the version in force.
func (d *Decider) Policy() *Policy { return d.cur.Load() }

// Swap puts p in force and returns the previous version, which the caller
// closes (Policy.Close waits for its running calls). Every cached verdict is
// invalidated: a request after Swap returns is decided by p.
func (d *Decider) Swap(p *Policy) *Policy {
	old := d.cur.Swap(p)
	d.gen.Add(1)
	return old
}

// Flush invalidates every cached verdict.
func (d *Decider) Flush() { d.gen.Add(1) }

// acquire pins the current version so that Close waits for this call.
func (d *Decider) acquire() *Policy {
	for {
		p := d.cur.Load()
		p.inflight.Add(1)
		if d.cur.Load() == p {
			return p
		}
		// Swapped between Load and Add: Close may already be waiting or done.
		p.inflight.Add(-1)
	}
}

// Authenticate runs the authentication chain of the version in force.
func (d *Decider) Authenticate(ctx context.Context, req *AuthnRequest) AuthnResult {
	p := d.acquire()
	defer p.inflight.Add(-1)
	return p.authenticate(ctx, d.log, req)
}

// Session is the policy state of one connection: who the client is and its
// cached verdicts. The broker creates one after authentication succeeds.
type Session struct {
	client *Client
	mu     sync.RWMutex
	// cache holds one map per (action, QoS, retain), keyed by topic, so that
	// a lookup hashes only a string: a struct key with the same fields
	// doubled the cost of a hit. n counts entries across all maps.
	cache [5][3][2]map[string]cacheEntry
	n     int
}

type cacheEntry struct {
	gen     uint64
	expires int64
	verdict Verdict
	reason  byte
}

// NewSession returns the policy state for an authenticated client. c must
// not be modified afterwards.
func (d *Decider) NewSession(c *Client) *Session {
	return &Session{client: c}
}

// Client returns the identity the session was created with.
func (s *Session) Client() *Client { return s.client }

// Authorize decides req for the session's client, from the cache when it
// holds a current verdict. req.Client is set from s.
func (d *Decider) Authorize(ctx context.Context, s *Session, req *AuthzRequest) AuthzResult {
	req.Client = s.client
	if d.opts.Disabled {
		p := d.acquire()
		defer p.inflight.Add(-1)
		return p.authorize(ctx, d.log, req)
	}
	if req.Action > ActionDecrypt || req.QoS > 2 {
		p := d.acquire()
		defer p.inflight.Add(-1)
		return p.authorize(ctx, d.log, req)
	}
	key := req.Topic
	if req.ShareGroup != "" {
		// Rare (shared subscriptions only): worth an allocation to keep
		// the common key a plain topic. "\x00" cannot occur in a topic.
		key = req.ShareGroup + "\x00" + req.Topic
	}
	retain := 0
	if req.Retain {
		retain = 1
	}
	gen, now := d.gen.Load(), d.now.Load()
	s.mu.RLock()
	e, ok := s.cache[req.Action][req.QoS][retain][key]
	s.mu.RUnlock()
	if ok && e.gen == gen && e.expires > now {
		return AuthzResult{Verdict: e.verdict, Reason: e.reason}
	}

	p := d.acquire()
	res := p.authorize(ctx, d.log, req)
	p.inflight.Add(-1)
	if res.transient {
		return res
	}

	s.mu.Lock()
	if s.n >= d.opts.MaxPerClient {
		s.cache = [5][3][2]map[string]cacheEntry{}
		s.n = 0
	}
	m := s.cache[req.Action][req.QoS][retain]
	if m == nil {
		m = make(map[string]cacheEntry)
		s.cache[req.Action][req.QoS][retain] = m
	}
	if _, exists := m[key]; !exists {
		s.n++
	}
	m[key] = cacheEntry{gen: gen, expires: now + int64(d.opts.TTL), verdict: res.Verdict, reason: res.Reason}
	s.mu.Unlock()
	return res
}

// Payload decides what happens to a payload (see PayloadRequest). req.Client
// is set from s. Payload decisions are not cached: they may depend on the
// payload itself.
func (d *Decider) Payload(ctx context.Context, s *Session, req *PayloadRequest) PayloadResult {
	req.Client = s.client
	p := d.acquire()
	defer p.inflight.Add(-1)
	return p.payloadDecision(ctx, d.log, req)
}
