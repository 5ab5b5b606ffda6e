package server

import (
	"context"
	"errors"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/metrics"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// The metrics wiring ([metrics] listen, runtime/metrics). Without the
// setting, s.metrics is nil and nothing is observed or counted: the
// observers below return nil interfaces, which the policy, the engine and
// the broker check once per call (or not at all: the broker's stats hook
// is not registered).

// observer returns the policy observer, nil without metrics.
func (s *Server) observer() policy.Observer {
	if s.metrics == nil {
		return nil
	}
	return s.metrics
}

// poolObserver returns the engine's pool observer, nil without metrics.
func (s *Server) poolObserver() wasm.PoolObserver {
	if s.metrics == nil {
		return nil
	}
	return s.metrics
}

// countReload counts a reload by outcome.
func (s *Server) countReload(applied bool) {
	if s.metrics == nil {
		return
	}
	if applied {
		s.metrics.Reload(metrics.ReloadApplied)
	} else {
		s.metrics.Reload(metrics.ReloadFailed)
	}
}

// countBan counts a ban an operator added (added) or lifted.
func (s *Server) countBan(added bool) {
	switch {
	case s.metrics == nil:
	case added:
		s.metrics.BanAdded()
	default:
		s.metrics.BanRemoved()
	}
}

// startMetrics opens the metrics listener, if configured. Start calls it
// after the broker's listeners are open, so that /readyz is never served
// before them.
func (s *Server) startMetrics() error {
	if s.metrics == nil {
		return nil
	}
	b, d := s.broker, s.decider // set by New, unset by Close after the listener is closed
	s.metrics.SetSources(metrics.Sources{
		Limits:   b.LimitStats,
		Overload: b.OverloadStats,
		Authn:    d.AuthnStats,
		Shadow: func() []policy.ShadowStats {
			if p := d.Policy(); p != nil {
				return p.ShadowStats()
			}
			return nil
		},
	})
	ln, err := metrics.Listen(s.cfg.Metrics.Listen, s.metrics, func() error { return ready(b, d) }, s.log)
	if err != nil {
		return err
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.closed {
		return errors.Join(errors.New("server: start: closed"), ln.Close(context.Background()))
	}
	s.metricsLn = ln
	return nil
}

// ready is /readyz: the broker's listeners accept and its store is open,
// and a policy is loaded. It takes no lock: a reload, which holds
// reloadMu for as long as modules compile, leaves the version in force
// serving, and the server is ready meanwhile.
func ready(b *broker.Broker, d *policy.Decider) error {
	if d.Policy() == nil {
		return errors.New("server: no policy loaded")
	}
	return b.Ready()
}

// Metrics returns the metrics of the server, nil without [metrics] listen.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }

// MetricsAddr returns the bound address of the metrics listener, "" when
// it is not open.
func (s *Server) MetricsAddr() string {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if s.metricsLn == nil {
		return ""
	}
	return s.metricsLn.Addr().String()
}
