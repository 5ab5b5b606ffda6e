package broker

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/config"
)

// addrConn is one end of a pipe with a TCP remote address.
type addrConn struct {
	net.Conn
	ra net.Addr
}

func (c addrConn) RemoteAddr() net.Addr { return c.ra }

// TestGateHammer admits and releases sockets from many goroutines at once,
// with every cap and rate on, and counts flaps meanwhile: the counts never
// pass their caps and come back to zero.
func TestGateHammer(t *testing.T) {
	lim := config.Limits{MaxConnections: 50, MaxConnectionsPerIP: 10, ConnectionRatePerIP: 1e6, ConnectionBurstPerIP: 1000,
		FlapCount: 1000000, FlapWindow: config.Duration{Duration: time.Minute}, FlapBan: config.Duration{Duration: time.Minute}}
	g := newGate(lim, newBanList(""), slog.New(slog.DiscardHandler))
	lg := g.forListener(config.Listener{Name: "l", MaxConnections: 40, ConnectionRate: 1e6, ConnectionBurst: 1000})
	var wg sync.WaitGroup
	var mu sync.Mutex
	maxTotal := 0
	for w := range 16 {
		wg.Go(func() {
			ra := &net.TCPAddr{IP: net.IPv4(10, 0, 0, byte(w%8)), Port: 1000 + w}
			for i := range 300 {
				a, b := net.Pipe()
				c := lg.admit(addrConn{a, ra})
				g.mu.Lock()
				if g.total > maxTotal {
					mu.Lock()
					maxTotal = g.total
					mu.Unlock()
				}
				g.mu.Unlock()
				g.flap("c", netip.Addr{}, time.Now()) // no address: the id only
				if i%3 == 0 {
					time.Sleep(time.Microsecond)
				}
				if c != nil {
					_ = c.Close()
					_ = c.Close() // released once
				}
				_ = b.Close()
			}
		})
	}
	wg.Wait()
	if maxTotal > 40 {
		t.Errorf("total reached %d, over the listener's cap of 40", maxTotal)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.total != 0 || lg.n != 0 || g.refusing != 0 {
		t.Errorf("after every close: total %d, listener %d, refusing %d", g.total, lg.n, g.refusing)
	}
	for a, e := range g.perIP {
		if e.conns != 0 {
			t.Errorf("%v: %d connections after every close", a, e.conns)
		}
	}
}
