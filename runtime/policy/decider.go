package policy

import (
	"context"
	"log/slog"
	"strings"
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
	// MaxBytesPerClient bounds the topic bytes the cached entries of one
	// connection keep; default 256 KiB. A topic may be 64 KiB long, so
	// MaxPerClient alone would let one client pin 64 MiB. A full cache is
	// emptied as for MaxPerClient; a topic longer than the whole bound is
	// not cached at all.
	MaxBytesPerClient int
	// Stats, when set, counts cache hits and misses; nil counts nothing,
	// so that a broker without metrics pays no shared atomic per hit.
	Stats *CacheStats
	// AuthnFailureTTL is how long a refused authentication is remembered
	// (authnguard.go); 0: not at all.
	AuthnFailureTTL time.Duration
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
	rec  atomic.Pointer[recorder] // nil: no history kept (recorder.go)

	guard     authnGuard // authnguard.go
	negHits   atomic.Int64
	coalesced atomic.Int64

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
	if opts.MaxBytesPerClient <= 0 {
		opts.MaxBytesPerClient = 256 << 10
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

// Authenticate runs the authentication chain of the version in force,
// bounded by its AuthnTimeout.
func (d *Decider) Authenticate(ctx context.Context, req *AuthnRequest) AuthnResult {
	p := d.acquire()
	defer p.inflight.Add(-1)
	if p.authnTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.authnTimeout)
		defer cancel()
	}
	return d.authenticateGuarded(ctx, req, func() AuthnResult {
		res := p.authenticate(ctx, d.log, req)
		d.recordAuthn(req, res)
		if len(p.shadows) > 0 {
			p.observeAuthn(d.log, req, res)
		}
		return res
	})
}

// Session is the policy state of one connection: who the client is and its
// cached verdicts. The broker creates one after authentication succeeds.
//
// The cache is read on every publish and every delivery, often by many
// goroutines at once (deliveries to one subscriber run on the publishers'
// goroutines), so a hit takes no lock: snap is an immutable table read
// through an atomic pointer. Verdicts decided since the snapshot wait in
// pending, under mu, and are folded into a new snapshot once pending holds
// an eighth of it (at least foldMin): each entry is copied a bounded number
// of times on average, and a hit on a fresh entry costs one mutex.
type Session struct {
	client  *Client
	snap    atomic.Pointer[cacheTable]
	mu      sync.Mutex
	pending *cacheTable
}

// foldMin is the smallest pending table that is folded into the snapshot:
// small caches are copied on every insert, which costs less than the lock
// a hit on pending would take.
const foldMin = 1

// cacheTable holds one map per (action, QoS, retain), keyed by topic, so
// that a lookup hashes only a string: a struct key with the same fields
// doubled the cost of a hit. n counts entries across all maps, bytes the
// length of their keys.
type cacheTable struct {
	m     [5][3][2]map[string]cacheEntry
	n     int
	bytes int
}

func (t *cacheTable) get(a Action, qos uint8, retain int, key string) (cacheEntry, bool) {
	e, ok := t.m[a][qos][retain][key]
	return e, ok
}

func (t *cacheTable) put(a Action, qos uint8, retain int, key string, e cacheEntry) {
	m := t.m[a][qos][retain]
	if m == nil {
		m = make(map[string]cacheEntry)
		t.m[a][qos][retain] = m
	}
	if _, exists := m[key]; !exists {
		t.n++
		t.bytes += len(key)
	}
	m[key] = e
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
	return &Session{client: c, pending: new(cacheTable)}
}

// Client returns the identity the session was created with.
func (s *Session) Client() *Client { return s.client }

// cached returns the number of cached verdicts, for tests.
func (s *Session) cached() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.pending.n
	if t := s.snap.Load(); t != nil {
		n += t.n
	}
	return n
}

// Authorize decides req for the session's client, from the cache when it
// holds a current verdict. req.Client is set from s.
func (d *Decider) Authorize(ctx context.Context, s *Session, req *AuthzRequest) AuthzResult {
	req.Client = s.client
	if d.opts.Disabled || req.Action > ActionDecrypt || req.QoS > 2 {
		p := d.acquire()
		defer p.inflight.Add(-1)
		return d.decideAuthz(ctx, p, req)
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
	if t := s.snap.Load(); t != nil {
		if e, ok := t.get(req.Action, req.QoS, retain, key); ok && e.gen == gen && e.expires > now {
			if d.opts.Stats != nil {
				d.opts.Stats.Hits.add()
			}
			return AuthzResult{Verdict: e.verdict, Reason: e.reason}
		}
	}
	s.mu.Lock()
	e, ok := s.pending.get(req.Action, req.QoS, retain, key)
	s.mu.Unlock()
	if ok && e.gen == gen && e.expires > now {
		if d.opts.Stats != nil {
			d.opts.Stats.Hits.add()
		}
		return AuthzResult{Verdict: e.verdict, Reason: e.reason}
	}
	if d.opts.Stats != nil {
		d.opts.Stats.Misses.add()
	}

	p := d.acquire()
	res := d.decideAuthz(ctx, p, req)
	p.inflight.Add(-1)
	if res.transient || len(key) > d.opts.MaxBytesPerClient {
		return res
	}
	// The topic may point into the packet it was read from (mochi decodes
	// strings without copying): a cached key must not keep that packet,
	// up to the maximum packet size, alive for a TTL.
	key = strings.Clone(key)

	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.snap.Load()
	snapN, snapBytes := 0, 0
	if snap != nil {
		snapN, snapBytes = snap.n, snap.bytes
	}
	if snapN+s.pending.n >= d.opts.MaxPerClient || snapBytes+s.pending.bytes+len(key) > d.opts.MaxBytesPerClient {
		s.snap.Store(nil)
		s.pending, snap, snapN = new(cacheTable), nil, 0
	}
	s.pending.put(req.Action, req.QoS, retain, key, cacheEntry{gen: gen, expires: now + int64(d.opts.TTL), verdict: res.Verdict, reason: res.Reason})
	if s.pending.n >= max(foldMin, snapN/8) {
		s.snap.Store(fold(snap, s.pending))
		s.pending = new(cacheTable)
	}
	return res
}

// fold returns a new table with the entries of old and add, add winning.
func fold(old, add *cacheTable) *cacheTable {
	t := new(cacheTable)
	for _, src := range []*cacheTable{old, add} {
		if src == nil {
			continue
		}
		for a := range src.m {
			for q := range src.m[a] {
				for r, m := range src.m[a][q] {
					for k, e := range m {
						t.put(Action(a), uint8(q), r, k, e)
					}
				}
			}
		}
	}
	return t
}

// Payload decides what happens to a payload (see PayloadRequest). req.Client
// is set from s. Payload decisions are not cached: they may depend on the
// payload itself.
func (d *Decider) Payload(ctx context.Context, s *Session, req *PayloadRequest) PayloadResult {
	req.Client = s.client
	p := d.acquire()
	defer p.inflight.Add(-1)
	res := p.payloadDecision(ctx, d.log, req)
	if len(p.shadows) > 0 {
		p.observePayload(d.log, req, res)
	}
	return res
}

// decideAuthz runs p's authz chain for a request the cache did not answer,
// records it (recorder.go) and shows it to the shadow plugins. A
// superuser's request reaches no module, so neither sees it. p is pinned.
func (d *Decider) decideAuthz(ctx context.Context, p *Policy, req *AuthzRequest) AuthzResult {
	res := p.authorize(ctx, d.log, req)
	if req.Client.Superuser {
		return res
	}
	if !res.transient {
		// A verdict forced by a module error is no decision of the
		// policy: replayed, it would only report the error as a change.
		d.recordAuthz(req, res)
	}
	if len(p.shadows) > 0 {
		p.observeAuthz(d.log, req, res)
	}
	return res
}
