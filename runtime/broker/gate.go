package broker

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"

	"github.com/moat-mqtt/moat/runtime/config"
)

// connRefusal is why an accepted socket will be refused, with the CONNACK
// codes that say so. A refused socket is still read up to its CONNECT (for
// at most refusedDeadline), so that the client learns why in a
// protocol-correct CONNACK instead of seeing a reset it would retry at once.
type connRefusal struct {
	reason string       // for logs and counters: "max_connections", ...
	v5     packets.Code // MQTT 5 CONNACK reason code
	v3     byte         // MQTT 3.1.1 CONNACK return code, 1..5
}

var (
	refuseBusy     = &connRefusal{"max_connections", packets.ErrServerBusy, 3}
	refuseListener = &connRefusal{"listener.max_connections", packets.ErrServerBusy, 3}
	refuseIPCap    = &connRefusal{"max_connections_per_ip", packets.ErrQuotaExceeded, 3}
	refuseRate     = &connRefusal{"listener.connection_rate", packets.ErrConnectionRateExceeded, 3}
	refuseIPRate   = &connRefusal{"connection_rate_per_ip", packets.ErrConnectionRateExceeded, 3}
	refuseBanned   = &connRefusal{"banned", packets.ErrBanned, 5}
	// refuseTimeout is no refusal in CONNACK: the socket sent no complete
	// CONNECT within connect_timeout and was cut. It is counted and
	// logged as the refusals are.
	refuseTimeout = &connRefusal{reason: "connect_timeout"}
)

const (
	// refusedDeadline bounds how long a refused socket may take to send
	// its CONNECT before it is cut without an answer.
	refusedDeadline = 2 * time.Second
	// maxRefusing bounds the refused sockets waiting for their CONNECT;
	// past it a refused socket is closed at once, so that refusing costs
	// no more than a fixed number of descriptors.
	maxRefusing = 256
	// episodeGap is the quiet time that ends an episode of refusals: each
	// kind of refusal is logged once per episode.
	episodeGap = 10 * time.Second
	// ipPruneAt is the size of the per-address table past which idle
	// entries are dropped.
	ipPruneAt = 4096
)

// gate admits or refuses sockets as they are accepted (connection caps,
// connection rates, address bans), and keeps the flapping counts. It is
// shared by every listener of a broker and safe for concurrent use.
type gate struct {
	log  *slog.Logger
	lim  config.Limits
	bans *banList
	// fails is authn_failure_rate_per_ip (authnrate.go); nil when off.
	fails *authnFailures

	mu        sync.Mutex
	total     int
	refusing  int
	perIP     map[netip.Addr]*ipEntry
	lastPrune time.Time
	flaps     map[string]*flapEntry

	// stats counts refusals by reason.
	stats sync.Map // string -> *atomic.Int64
	// episodes holds, per reason, when the last refusal was, for logging
	// once per episode.
	episodes sync.Map // string -> *episode
}

type ipEntry struct {
	conns int
	lim   *rate.Limiter // nil without connection_rate_per_ip
	seen  time.Time
}

type flapEntry struct {
	start time.Time
	n     int
}

type episode struct {
	mu    sync.Mutex
	last  time.Time
	count int64 // refusals in the current episode
}

// listenerGate is a listener's share of the gate: its own cap and rate.
type listenerGate struct {
	g    *gate
	name string
	max  int
	n    int           // guarded by g.mu
	lim  *rate.Limiter // nil without connection_rate
}

func newGate(lim config.Limits, bans *banList, log *slog.Logger) *gate {
	return &gate{log: log, lim: lim, bans: bans, fails: newAuthnFailures(lim), perIP: map[netip.Addr]*ipEntry{}, flaps: map[string]*flapEntry{}}
}

func (g *gate) forListener(lc config.Listener) *listenerGate {
	lg := &listenerGate{g: g, name: lc.Name, max: lc.MaxConnections}
	if lc.ConnectionRate > 0 {
		lg.lim = rate.NewLimiter(rate.Limit(lc.ConnectionRate), max(lc.ConnectionBurst, 1))
	}
	return lg
}

// admit decides on a socket just accepted. It returns the socket to serve
// (wrapped so that closing it releases what it holds), or nil when it was
// refused and closed at once.
func (lg *listenerGate) admit(c net.Conn) net.Conn {
	g := lg.g
	addr := addrOf(c.RemoteAddr())
	now := time.Now()
	var r *connRefusal
	if _, banned := g.bans.matchAddr(addr, now); banned {
		r = refuseBanned
	}

	g.mu.Lock()
	ip := g.ipEntry(addr, now)
	switch {
	case r != nil:
	case g.lim.MaxConnections > 0 && g.total >= g.lim.MaxConnections:
		r = refuseBusy
	case lg.max > 0 && lg.n >= lg.max:
		r = refuseListener
	case ip != nil && g.lim.MaxConnectionsPerIP > 0 && ip.conns >= g.lim.MaxConnectionsPerIP:
		r = refuseIPCap
	case lg.lim != nil && !lg.lim.AllowN(now, 1):
		r = refuseRate
	case ip != nil && ip.lim != nil && !ip.lim.AllowN(now, 1):
		r = refuseIPRate
	}
	if r == nil {
		g.total++
		lg.n++
		if ip != nil {
			ip.conns++
		}
		g.mu.Unlock()
		return &gatedConn{Conn: c, lg: lg, ip: ip}
	}
	closeNow := g.refusing >= maxRefusing
	if !closeNow {
		g.refusing++
	}
	g.mu.Unlock()

	g.note(r, addr, lg.name)
	if closeNow {
		_ = c.Close()
		return nil
	}
	return &gatedConn{Conn: c, lg: lg, refusal: r, until: now.Add(refusedDeadline)}
}

// connectTimedOut counts and logs (once per episode) an admitted socket
// cut by connect_timeout before its CONNECT was read. A refused socket
// that times out was counted when it was refused.
func (g *gate) connectTimedOut(c net.Conn, listener string) {
	if gc := gatedOf(c); gc != nil && gc.refusal != nil {
		return
	}
	g.note(refuseTimeout, addrOf(c.RemoteAddr()), listener)
}

// release gives back what an admitted or refused socket held.
func (c *gatedConn) release() {
	g := c.lg.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.refusal != nil {
		g.refusing--
		return
	}
	g.total--
	c.lg.n--
	if c.ip != nil {
		c.ip.conns--
		c.ip.seen = time.Now()
	}
}

// ipEntry returns the table entry of addr, creating it; nil when neither a
// per-address cap nor rate is configured. g.mu is held.
func (g *gate) ipEntry(addr netip.Addr, now time.Time) *ipEntry {
	if !addr.IsValid() || (g.lim.MaxConnectionsPerIP == 0 && g.lim.ConnectionRatePerIP == 0) {
		return nil
	}
	e := g.perIP[addr]
	if e == nil {
		if len(g.perIP) >= ipPruneAt && now.Sub(g.lastPrune) > time.Second {
			g.pruneIPs(now)
		}
		e = &ipEntry{}
		if g.lim.ConnectionRatePerIP > 0 {
			e.lim = rate.NewLimiter(rate.Limit(g.lim.ConnectionRatePerIP), max(g.lim.ConnectionBurstPerIP, 1))
		}
		g.perIP[addr] = e
	}
	e.seen = now
	return e
}

// pruneIPs drops entries without connections whose bucket has refilled,
// since forgetting them changes nothing. g.mu is held.
func (g *gate) pruneIPs(now time.Time) {
	g.lastPrune = now
	refill := time.Minute
	if r := g.lim.ConnectionRatePerIP; r > 0 {
		refill = time.Duration(float64(max(g.lim.ConnectionBurstPerIP, 1)) / r * float64(time.Second))
	}
	for a, e := range g.perIP {
		if e.conns == 0 && now.Sub(e.seen) > refill {
			delete(g.perIP, a)
		}
	}
}

// note counts a refusal and logs it when it starts an episode: a storm of
// refused connections logs one line per reason, not one per connection.
func (g *gate) note(r *connRefusal, addr netip.Addr, listener string) {
	g.count(r.reason)
	v, _ := g.episodes.LoadOrStore(r.reason, &episode{})
	e := v.(*episode)
	now := time.Now()
	e.mu.Lock()
	start := now.Sub(e.last) > episodeGap
	prev := e.count
	if start {
		e.count = 0
	}
	e.count++
	e.last = now
	e.mu.Unlock()
	if start {
		g.log.Warn("connections refused; further refusals for this reason are not logged until they stop for "+episodeGap.String(),
			"reason", r.reason, "remote", addr.String(), "listener", listener, "previous_episode", prev)
	}
}

func (g *gate) count(reason string) {
	v, _ := g.stats.LoadOrStore(reason, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// refused returns how many refusals of reason there have been.
func (g *gate) refused(reason string) int64 {
	if v, ok := g.stats.Load(reason); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// flap records a disconnect of clientID from addr and bans the id, or the
// address, that reached flap_count disconnects within flap_window. It
// returns the bans it added.
func (g *gate) flap(clientID string, addr netip.Addr, now time.Time) []Ban {
	if g.lim.FlapCount <= 0 {
		return nil
	}
	keys := []Ban{{Kind: BanClientID, Value: clientID}}
	if addr.IsValid() {
		keys = append(keys, Ban{Kind: BanIP, Value: addr.Unmap().String()})
	}
	var out []Ban
	g.mu.Lock()
	if len(g.flaps) >= ipPruneAt {
		for k, e := range g.flaps {
			if now.Sub(e.start) > g.lim.FlapWindow.Duration {
				delete(g.flaps, k)
			}
		}
	}
	for _, b := range keys {
		k := b.Kind + "\x00" + b.Value
		e := g.flaps[k]
		if e == nil || now.Sub(e.start) > g.lim.FlapWindow.Duration {
			e = &flapEntry{start: now}
			g.flaps[k] = e
		}
		e.n++
		if e.n >= g.lim.FlapCount {
			delete(g.flaps, k)
			b.Reason, b.Created, b.Expires = ReasonFlapping, now, now.Add(g.lim.FlapBan.Duration)
			out = append(out, b)
		}
	}
	g.mu.Unlock()
	for _, b := range out {
		if err := g.bans.add(b); err != nil {
			g.log.Error("flapping ban", "err", err)
			continue
		}
		g.count("flapping")
		g.log.Warn("flapping: temporary ban", "kind", b.Kind, "value", b.Value, "until", b.Expires.Format(time.RFC3339),
			"disconnects", g.lim.FlapCount, "window", g.lim.FlapWindow.Duration.String())
	}
	return out
}

// addrOf returns the IP address of a socket's remote address, or the zero
// Addr when it has none (a pipe in tests).
func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// gatedConn is an admitted or refused socket. Close releases its place in
// the gate's counts once.
type gatedConn struct {
	net.Conn
	lg      *listenerGate
	ip      *ipEntry     // nil without per-IP limits
	refusal *connRefusal // nil when admitted
	until   time.Time    // refused: the deadline no SetDeadline may pass
	once    sync.Once
}

func (c *gatedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// SetDeadline keeps a refused socket's deadline within refusedDeadline of
// its accept, whatever the listener or mochi ask for.
func (c *gatedConn) SetDeadline(t time.Time) error {
	if c.refusal != nil && (t.IsZero() || t.After(c.until)) {
		t = c.until
	}
	return c.Conn.SetDeadline(t)
}

func (c *gatedConn) SetReadDeadline(t time.Time) error {
	if c.refusal != nil && (t.IsZero() || t.After(c.until)) {
		t = c.until
	}
	return c.Conn.SetReadDeadline(t)
}
