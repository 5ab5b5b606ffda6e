package broker

import (
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// refusalLog bounds the audit records of refused CONNECTs. Each refusal is
// an audit record (audit.go), but a storm of wrong-password CONNECTs from
// one address would write one record per attempt: hundreds or thousands a
// second, which cost the broker (and journald) CPU that established
// clients need, and fill disks. So, per remote address, the first
// refusalBurst refusals of an episode are logged one by one; later ones are
// only counted, and a summary record ("connections refused, not logged one
// by one", audit "deny", with remote and count) gives their number once per
// episodeGap. An episode ends after episodeGap without a refusal from the
// address. Every refusal is still counted in metrics
// (moat_connections_refused_total). Mosquitto logs each refusal; this is a
// deliberate difference, documented in runtime/RATIONALE.md.
//
// It is safe for concurrent use; a nil refusalLog logs every refusal.
type refusalLog struct {
	log *slog.Logger

	mu     sync.Mutex
	m      map[netip.Addr]*refusalEpisode
	closed bool
}

type refusalEpisode struct {
	logged     int       // refusals logged one by one in this episode
	suppressed int64     // refusals counted since the last summary
	last       time.Time // the last refusal
	timer      *time.Timer
}

const (
	// refusalBurst is how many refusals of one address an episode logs
	// one by one.
	refusalBurst = 10
	// refusalSummary is the message of the summary record.
	refusalSummary = "connections refused, not logged one by one"
)

func newRefusalLog(log *slog.Logger) *refusalLog {
	return &refusalLog{log: log, m: map[netip.Addr]*refusalEpisode{}}
}

// allow reports whether a refusal of a CONNECT from addr at now is logged
// one by one; if not, it is counted for the address's next summary.
// Addresses beyond ipPruneAt tracked ones share one entry, the zero Addr,
// so that rotating addresses cannot grow the table.
func (l *refusalLog) allow(addr netip.Addr, now time.Time) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[addr]
	if e == nil {
		if len(l.m) >= ipPruneAt {
			l.prune(now)
		}
		if len(l.m) >= ipPruneAt {
			addr = netip.Addr{}
			e = l.m[addr]
		}
		if e == nil {
			e = &refusalEpisode{}
			l.m[addr] = e
		}
	}
	if now.Sub(e.last) > episodeGap && e.timer == nil {
		e.logged = 0 // a new episode
	}
	e.last = now
	if e.logged < refusalBurst {
		e.logged++
		return true
	}
	e.suppressed++
	if e.timer == nil && !l.closed {
		e.timer = time.AfterFunc(episodeGap, func() { l.summarise(addr) })
	}
	return false
}

// prune drops the episodes that have ended. l.mu is held.
func (l *refusalLog) prune(now time.Time) {
	for a, e := range l.m {
		if e.timer == nil && now.Sub(e.last) > episodeGap {
			delete(l.m, a)
		}
	}
}

// summarise logs the refusals of addr counted since its last summary.
func (l *refusalLog) summarise(addr netip.Addr) {
	l.mu.Lock()
	e := l.m[addr]
	var n int64
	if e != nil {
		n, e.suppressed, e.timer = e.suppressed, 0, nil
	}
	l.mu.Unlock()
	l.logSummary(addr, n)
}

func (l *refusalLog) logSummary(addr netip.Addr, n int64) {
	if n == 0 {
		return
	}
	remote := addr.String()
	if !addr.IsValid() {
		remote = "other addresses"
	}
	l.log.Info(refusalSummary, "audit", "deny", "decision", "authn", "remote", remote,
		"count", n, "period", episodeGap.String())
}

// close stops the timers and logs what they would have.
func (l *refusalLog) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.closed = true
	type pending struct {
		addr netip.Addr
		n    int64
	}
	var ps []pending
	for a, e := range l.m {
		if e.timer != nil {
			e.timer.Stop()
			e.timer = nil
		}
		if e.suppressed > 0 {
			ps = append(ps, pending{a, e.suppressed})
			e.suppressed = 0
		}
	}
	l.mu.Unlock()
	for _, p := range ps {
		l.logSummary(p.addr, p.n)
	}
}
