package broker

import (
	"net/netip"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"

	"github.com/moat-mqtt/moat/runtime/config"
)

// refuseAuthnRate refuses a CONNECT from an address whose failed
// authentications used up [limits] authn_failure_burst_per_ip. The same
// codes as connection_rate_per_ip: a device that shares its address (NAT)
// with a failing one learns that the refusal is transient and retries,
// where "not authorized" makes some device firmware give up for good. An
// attacker learns nothing of the password: no module ran.
var refuseAuthnRate = &connRefusal{"authn_failure_rate_per_ip", packets.ErrConnectionRateExceeded, 3}

// maxFailAddrs bounds the addresses authnFailures tracks. Past it (after
// pruning) a new address is not tracked, so not limited: a storm from more
// addresses than that costs at most the memory of this many buckets (a few
// MB), and never refuses a newcomer for what others did.
const maxFailAddrs = 16 * ipPruneAt

// authnFailures is [limits] authn_failure_rate_per_ip: a token bucket of
// failed authentications per remote address (exact address, as the gate's
// per-address limits). Only failures take tokens; while an address has
// none left, its CONNECTs are refused before any authn module runs.
//
// The authn failure cache (policy.AuthnGuard) refuses the same attempt
// repeated; this bounds attempts that differ, such as a storm rotating
// client ids, each of which would cost a password hash. It is safe for
// concurrent use; a nil *authnFailures limits nothing.
type authnFailures struct {
	rate  rate.Limit
	burst int

	mu        sync.Mutex
	m         map[netip.Addr]*failBucket
	lastPrune time.Time
}

type failBucket struct {
	lim  *rate.Limiter
	seen time.Time // the last failure
}

// newAuthnFailures returns the limiter of lim, nil when it is off.
func newAuthnFailures(lim config.Limits) *authnFailures {
	if lim.AuthnFailureRatePerIP <= 0 {
		return nil
	}
	return &authnFailures{rate: rate.Limit(lim.AuthnFailureRatePerIP), burst: max(lim.AuthnFailureBurstPerIP, 1),
		m: map[netip.Addr]*failBucket{}}
}

// exhausted reports whether addr has no failure left at now: its CONNECT
// is then refused without authenticating.
func (f *authnFailures) exhausted(addr netip.Addr, now time.Time) bool {
	if f == nil || !addr.IsValid() {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.m[addr]
	return b != nil && b.lim.TokensAt(now) < 1
}

// failed takes a token from addr's bucket for an authentication it failed.
func (f *authnFailures) failed(addr netip.Addr, now time.Time) {
	if f == nil || !addr.IsValid() {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.m[addr]
	if b == nil {
		if len(f.m) >= ipPruneAt && now.Sub(f.lastPrune) > time.Second {
			f.prune(now)
		}
		if len(f.m) >= maxFailAddrs {
			return
		}
		b = &failBucket{lim: rate.NewLimiter(f.rate, f.burst)}
		f.m[addr] = b
	}
	b.lim.AllowN(now, 1)
	b.seen = now
}

// prune drops the buckets that have refilled since their last failure:
// forgetting them changes nothing. f.mu is held.
func (f *authnFailures) prune(now time.Time) {
	f.lastPrune = now
	refill := float64(f.burst) / float64(f.rate) // seconds
	for a, b := range f.m {
		if now.Sub(b.seen).Seconds() > refill {
			delete(f.m, a)
		}
	}
}

// tracked returns how many addresses f holds, for tests.
func (f *authnFailures) tracked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}
