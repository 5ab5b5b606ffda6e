// Package metrics exports moat's counters to Prometheus and serves them,
// with liveness and readiness, on the opt-in [metrics] listener.
//
// It is the only package that imports the Prometheus client. The packages
// that count keep plain Go types: runtime/policy reports plugin calls
// through policy.Observer and counts cache lookups in policy.CacheStats,
// runtime/wasm reports pool waits through wasm.PoolObserver, and
// runtime/broker keeps atomic traffic counters read by Broker.Stats. This
// package adapts them, so that a build or a test without metrics carries
// none of it, and so that each package stays testable on its own.
//
// The protections (connection limits and bans, rate limits, the failed
// login cache, overload handling, shadow plugins) count for their own
// logs and status already; Sources hands this package functions that read
// those counters, called at scrape time only (operations.go). Exposing
// them adds no work to the paths that count.
//
// There is one Registry per Metrics, never the Prometheus default: two
// servers in one process (tests) do not share counters, and nothing is
// global.
//
// Names follow the Prometheus conventions: the moat_ prefix, _total on
// counters, base units (seconds, bytes) in the name.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// decisionBuckets span a cached-instance wasm call (a microsecond) to a
// plugin's default timeout and beyond (100ms, at most 60s): factors of 4
// keep the histogram to 12 series per plugin and decision kind.
var decisionBuckets = prometheus.ExponentialBuckets(1e-6, 4, 12)

// Metrics holds the registry and the collectors of one server. It is safe
// for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	decisions    *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	breakerOpens *prometheus.CounterVec
	breakersOpen *prometheus.GaugeVec
	poolWaits    *prometheus.CounterVec
	poolWaitTime *prometheus.HistogramVec
	reloads      *prometheus.CounterVec
	bansAdded    prometheus.Counter
	bansRemoved  prometheus.Counter

	cache policy.CacheStats

	mu      sync.Mutex
	broker  func() broker.Stats // set by SetBroker
	sources Sources             // set by SetSources
}

var (
	_ policy.Observer   = (*Metrics)(nil)
	_ wasm.PoolObserver = (*Metrics)(nil)
)

// New builds the registry with moat's collectors and those of the Go
// runtime and the process.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "moat_plugin_decisions_total",
		Help: "Calls into a plugin by decision kind (authn, authz, payload) and outcome (allow, deny, ignore, continue, error). Cached verdicts are not calls.",
	}, []string{"plugin", "decision", "verdict"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "moat_plugin_decision_duration_seconds",
		Help:    "Time of one call into a plugin, waiting for an instance included.",
		Buckets: decisionBuckets,
	}, []string{"plugin", "decision"})
	m.breakerOpens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "moat_plugin_breaker_opens_total",
		Help: "Times a plugin's circuit breaker opened (reopens after a failed probe included).",
	}, []string{"plugin", "decision"})
	m.breakersOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "moat_plugin_breakers_open",
		Help: "Circuit breakers of a plugin open now (one per action); on_error answers for it.",
	}, []string{"plugin", "decision"})
	m.poolWaits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "moat_plugin_instance_waits_total",
		Help: "Calls that found every instance of a plugin busy and waited, by result (acquired, gave_up).",
	}, []string{"plugin", "result"})
	m.poolWaitTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "moat_plugin_instance_wait_duration_seconds",
		Help:    "Time a call waited for a busy plugin's instance.",
		Buckets: decisionBuckets,
	}, []string{"plugin"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "moat_reloads_total",
		Help: "Policy reloads by outcome (applied, failed).",
	}, []string{"outcome"})
	m.bansAdded = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "moat_bans_added_total",
		Help: "Bans an operator added or replaced through the admin API (flapping bans are moat_flapping_bans_total).",
	})
	m.bansRemoved = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "moat_bans_removed_total",
		Help: "Bans an operator lifted through the admin API.",
	})
	cache := func(name, help string, c func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(c()) })
	}
	m.reg.MustRegister(
		m.decisions, m.latency, m.breakerOpens, m.breakersOpen, m.poolWaits, m.poolWaitTime, m.reloads,
		cache("moat_decision_cache_hits_total", "Authorization decisions answered from the decision cache.", m.cache.Hits.Load),
		cache("moat_decision_cache_misses_total", "Authorization decisions the decision cache could not answer.", m.cache.Misses.Load),
		m.bansAdded, m.bansRemoved,
		&brokerCollector{m: m},
		&opsCollector{m: m},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, o := range []string{ReloadApplied, ReloadFailed} {
		m.reloads.WithLabelValues(o) // a counter at 0 is a counter that exists
	}
	return m
}

// Registry returns the registry, for the HTTP handler and for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// CacheStats returns the counters to give the Decider (CacheOptions.Stats).
func (m *Metrics) CacheStats() *policy.CacheStats { return &m.cache }

// SetBroker makes the broker's traffic counters part of every scrape.
func (m *Metrics) SetBroker(stats func() broker.Stats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.broker = stats
}

// Reload outcomes, as the outcome label of moat_reloads_total.
const (
	ReloadApplied = "applied"
	ReloadFailed  = "failed"
)

// Reload counts one reload.
func (m *Metrics) Reload(outcome string) { m.reloads.WithLabelValues(outcome).Inc() }

// Step implements policy.Observer: it resolves the plugin's series once, so
// that Observe is two atomic adds and a bucket search.
func (m *Metrics) Step(kind, plugin string) policy.StepObserver {
	s := &step{
		latency: m.latency.WithLabelValues(plugin, kind),
		opens:   m.breakerOpens.WithLabelValues(plugin, kind),
		open:    m.breakersOpen.WithLabelValues(plugin, kind),
	}
	for o := range s.n {
		s.n[o] = m.decisions.WithLabelValues(plugin, kind, policy.Outcome(o).String())
	}
	// The plugin's pool series exist from its load on, at 0, so that a
	// dashboard shows "no waits" rather than "no data".
	m.poolWaits.WithLabelValues(plugin, "acquired")
	m.poolWaits.WithLabelValues(plugin, "gave_up")
	m.poolWaitTime.WithLabelValues(plugin)
	return s
}

// PoolWait implements wasm.PoolObserver. It runs on the slow path only, so
// the label lookup is affordable.
func (m *Metrics) PoolWait(module string, d time.Duration, err error) {
	result := "acquired"
	if err != nil {
		result = "gave_up"
	}
	m.poolWaits.WithLabelValues(module, result).Inc()
	m.poolWaitTime.WithLabelValues(module).Observe(d.Seconds())
}

type step struct {
	n       [policy.NumOutcomes]prometheus.Counter
	latency prometheus.Observer
	opens   prometheus.Counter
	open    prometheus.Gauge
}

func (s *step) Observe(o policy.Outcome, d time.Duration) {
	if o < policy.NumOutcomes {
		s.n[o].Inc()
	}
	if d >= 0 { // negative: answered by the open breaker, not a call
		s.latency.Observe(d.Seconds())
	}
}

func (s *step) BreakerOpened(reopened bool) {
	s.opens.Inc()
	if !reopened {
		s.open.Inc()
	}
}

func (s *step) BreakerClosed() { s.open.Dec() }
