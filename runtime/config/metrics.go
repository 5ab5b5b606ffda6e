package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
)

// Metrics configures the observability listener: Prometheus metrics at
// /metrics, liveness at /healthz and readiness at /readyz.
//
// It is off by default, and unlike [admin] http it may listen on any
// address: a Prometheus server usually scrapes from another machine, and
// the listener serves only counters and health, never client identities,
// topics or secrets, and accepts no request that changes anything. Bind it
// to a private interface or firewall it as any exporter.
//
// The listener is opened once at start: a reload reports a change here as
// needing a restart.
type Metrics struct {
	// Listen is host:port, e.g. "127.0.0.1:9464" (the port Prometheus's
	// exporter list gives moat's neighbours); "" (default) is off. Port 0
	// picks a free port (tests).
	Listen string `toml:"listen"`
}

// validateMetrics checks [metrics] listen is host:port with a numeric port.
func (c *Config) validateMetrics(p *problems) {
	addr := c.Metrics.Listen
	if addr == "" {
		return
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		p.add("metrics.listen", fmt.Errorf("%q: want host:port, e.g. \"127.0.0.1:9464\": %w", addr, err))
		return
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port == "" {
		p.add("metrics.listen", fmt.Errorf("%q: port %q: want a number from 0 to 65535", addr, port))
	} else if n != 0 {
		for i, l := range c.Listeners {
			if l.Address == addr {
				p.add("metrics.listen", fmt.Errorf("%q is the address of listener[%d]", addr, i))
			}
		}
	}
}

// validateAuditSample checks [log] audit_allow_sample is a rate.
func (c *Config) validateAuditSample(p *problems) {
	r := c.Log.AuditAllowSample
	if math.IsNaN(r) || r < 0 || r > 1 {
		p.add("log.audit_allow_sample", errors.New("want a rate from 0.0 (no allow is logged, the default) to 1.0 (every allow is)"))
	}
}
