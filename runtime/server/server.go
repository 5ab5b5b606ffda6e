// Package server assembles a running moat from a validated config: it loads
// every wasm module, builds the policy chains from them, and starts the MQTT
// broker that consults them. It owns the lifecycle of all three, so that
// cmd/moat stays a thin command line and reload has one place to live.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/crypto"
	"github.com/moat-mqtt/moat/runtime/metrics"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// Server is a configured moat: engine, policy and broker.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	engine  *wasm.Engine
	decider *policy.Decider
	broker  *broker.Broker
	modules *modules
	// ring holds the payload keys ([[key]], [keys]); storing a new ring
	// rotates keys without a restart.
	ring crypto.RingHolder

	// reloadMu serialises reloads and Close. Under it: reports describes
	// the modules of the version in force; attempted lists the module and
	// granted files named by the config file at the last reload (the
	// watcher watches them too); closed is set by Close. Lock order:
	// reloadMu, then modules.mu.
	reloadMu  sync.Mutex
	reports   []ModuleReport
	attempted []string
	closed    bool
	watchers  []chan struct{} // see Watcher.reloaded

	// closing tracks the replaced policy versions still being closed;
	// Close waits for them before it closes the engine.
	closing sync.WaitGroup

	// peerCred reads the credentials of an admin socket peer; nil means
	// the platform's (peerCred in admin.go). Tests replace it to make the
	// read fail, which no real Unix socket on Linux does.
	peerCred func(net.Conn) (uid, pid int, err error)
	// version is moat's, for $SYS/broker/version (WithVersion).
	version string
	// warnings checks each config put in force (WithLoadWarnings).
	warnings func(*config.Config) []string

	// metrics is nil unless [metrics] listen is set (metrics.go);
	// metricsLn is its listener, opened by Start.
	metrics   *metrics.Metrics
	metricsLn *metrics.Listener

	// recent keeps the last denials and reloads for the status page
	// (recent.go); started is when New was called.
	recent  *recent
	started time.Time
}

// Option tunes New.
type Option func(*Server)

// WithVersion sets the version the broker reports in $SYS/broker/version.
func WithVersion(v string) Option { return func(s *Server) { s.version = v } }

// WithLoadWarnings has f check every config put in force, at New and at
// each applied reload; each warning it returns is logged, and a reload's
// are also in its Notes. cmd/moat checks password files with it, whose
// costliest line must finish within its plugin's timeout.
func WithLoadWarnings(f func(*config.Config) []string) Option {
	return func(s *Server) { s.warnings = f }
}

// warn logs the load warnings of cfg and returns them.
func (s *Server) warn(cfg *config.Config) []string {
	if s.warnings == nil {
		return nil
	}
	ws := s.warnings(cfg)
	for _, w := range ws {
		s.log.Warn("config warning", "warning", w)
	}
	return ws
}

// New compiles and checks every module of cfg, builds the policy and the
// broker, but opens no socket: Start does. On error everything New made is
// released again.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rec := newRecent()
	log = slog.New(rec.tap(log.Handler()))
	s := &Server{cfg: cfg, log: log, modules: newModules(), recent: rec, started: time.Now()}
	for _, o := range opts {
		o(s)
	}
	if err := s.provision(ctx); err != nil {
		return nil, errors.Join(err, s.cleanup(context.Background()))
	}
	return s, nil
}

func (s *Server) provision(ctx context.Context) error {
	var err error
	if s.cfg.Metrics.Listen != "" {
		s.metrics = metrics.New()
	}
	s.engine, err = wasm.NewEngine(ctx, wasm.EngineOptions{CacheDir: cacheDir(s.cfg.Wasm.CacheDir), Logger: s.log, PoolObserver: s.poolObserver()})
	if err != nil {
		return err
	}
	p, reports, err := buildPolicy(ctx, s.engine, s.modules, s.cfg, s.observer())
	if err != nil {
		return err
	}
	s.reports = reports
	s.warn(s.cfg)
	copts := s.cacheOptions()
	copts.AuthnFailureTTL = s.cfg.Limits.AuthnFailureTTL.Duration // [limits]
	s.decider = policy.NewDecider(p, copts, s.log)
	s.decider.SetHistory(s.cfg.Reload.DryRunHistory)
	ring, err := broker.LoadRing(ctx, s.cfg, nil)
	if err != nil {
		return err
	}
	s.ring.Store(ring)
	s.broker, err = broker.New(broker.Options{Config: s.cfg, Decider: s.decider, Logger: s.log, Ring: &s.ring, Version: s.version, Stats: s.metrics != nil})
	if err == nil {
		logSummary(s.log, s.cfg)
		if s.metrics != nil {
			s.metrics.SetBroker(s.broker.Stats)
		}
	}
	return err
}

// logSummary logs PolicySummary, one record per line.
func logSummary(log *slog.Logger, cfg *config.Config) {
	for _, line := range PolicySummary(cfg) {
		log.Info("policy: " + line)
	}
}

// Start opens the listeners, and the metrics listener when configured, and
// serves until Close.
func (s *Server) Start(ctx context.Context) error {
	if err := s.broker.Start(ctx); err != nil {
		return err
	}
	return s.startMetrics()
}

// Broker returns the broker, for tests and tools that need its addresses.
func (s *Server) Broker() *broker.Broker { return s.broker }

// Decider returns the policy entry point.
func (s *Server) Decider() *policy.Decider { return s.decider }

// Engine returns the wasm engine.
func (s *Server) Engine() *wasm.Engine { return s.engine }

// Modules reports the plugins of the version in force.
func (s *Server) Modules() []ModuleReport {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	return slices.Clone(s.reports)
}

// Close shuts the broker down gracefully within ctx, then releases the
// policy and the engine.
func (s *Server) Close(ctx context.Context) error {
	return s.cleanup(ctx)
}

// cleanup works on a half-built Server too. It waits for a reload in
// progress, and for the versions replaced by earlier reloads to close.
func (s *Server) cleanup(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.closed = true
	var errs []error
	if s.metricsLn != nil {
		errs = append(errs, s.metricsLn.Close(ctx))
		s.metricsLn = nil
	}
	if s.broker != nil {
		errs = append(errs, s.broker.Close(ctx))
		s.broker = nil
	}
	s.closing.Wait()
	if s.decider != nil {
		s.decider.Close()
		errs = append(errs, s.decider.Policy().Close(ctx))
		logShadowTotals(s.log, s.decider.Policy())
		s.decider = nil
	}
	if s.engine != nil {
		errs = append(errs, s.engine.Close(ctx))
		s.engine = nil
	}
	return errors.Join(errs...)
}

// Check compiles, instantiates and configures every module of cfg without
// serving, and reports every problem it finds.
func Check(ctx context.Context, cfg *config.Config) error {
	engine, err := wasm.NewEngine(ctx, wasm.EngineOptions{CacheDir: cacheDir(cfg.Wasm.CacheDir)})
	if err != nil {
		return err
	}
	p, _, err := buildPolicy(ctx, engine, newModules(), cfg, nil)
	if err == nil {
		err = p.Close(ctx)
	}
	_, ringErr := broker.LoadRing(ctx, cfg, nil) // reads every key file as serve would
	return errors.Join(err, ringErr, engine.Close(ctx))
}

// buildPolicy loads every [[plugin]] of cfg through ms and arranges them in
// chains, in file order. Every plugin is tried even after one fails, so the
// error lists all of them; on error the handles taken are released.
func buildPolicy(ctx context.Context, engine *wasm.Engine, ms *modules, cfg *config.Config, obs policy.Observer) (*policy.Policy, []ModuleReport, error) {
	var (
		authn   []policy.Step[policy.Authenticator]
		authz   []policy.Step[policy.Authorizer]
		payload []policy.Step[policy.Payloader]
		closers []io.Closer
		reports []ModuleReport
		shadows []*policy.Shadow
		errs    []error
	)
	for i, pc := range cfg.Plugins {
		onError, err := policy.ParseOnError(pc.OnError)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: plugin[%d].on_error: %w", cfg.Path, i, err))
			continue
		}
		h, reused, err := ms.acquire(ctx, engine, pc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		closers = append(closers, h)
		reports = append(reports, ModuleReport{Name: pc.Name, Digest: h.ref.digest, Reused: reused, Shadow: pc.Shadow})
		m := h.ref.mod
		if pc.Shadow {
			shadows = append(shadows, newShadow(pc, m, onError))
			continue
		}
		if slices.Contains(pc.Decisions, "authn") {
			authn = append(authn, policy.Step[policy.Authenticator]{Name: pc.Name, Module: m, OnError: onError})
		}
		if slices.Contains(pc.Decisions, "authz") {
			authz = append(authz, policy.Step[policy.Authorizer]{Name: pc.Name, Module: m, OnError: onError})
		}
		if slices.Contains(pc.Decisions, "payload") {
			payload = append(payload, policy.Step[policy.Payloader]{Name: pc.Name, Module: m, OnError: onError})
		}
	}
	if len(errs) > 0 {
		for _, c := range closers {
			errs = append(errs, c.Close())
		}
		return nil, nil, errors.Join(errs...)
	}
	return policy.New(authn, authz, policy.Options{
		AllowAnonymous:    cfg.Auth.AllowAnonymous,
		NoMatch:           verdict(cfg.Auth.NoMatch),
		AuthzNoMatch:      verdict(cfg.Auth.AuthzNoMatch),
		AuthnTimeout:      cfg.Auth.Timeout.Duration,
		Closers:           closers,
		Payload:           payload,
		Shadows:           shadows,
		Observer:          obs,
		PluginConcurrency: cfg.Limits.PluginConcurrency,
	}), reports, nil
}

// verdict maps a no_match setting to its verdict; anything but "allow"
// denies.
func verdict(s string) policy.Verdict {
	if s == "allow" {
		return policy.Allow
	}
	return policy.Deny
}

// PolicySummary says in plain words what cfg lets clients do when no
// module decides, one line per decision: `moat check` prints it and the
// broker logs it at start, so that an
// operator who configured no authz plugin reads that every publish and
// subscription is denied (or, with authz_no_match = "allow", allowed)
// instead of finding out from clients.
func PolicySummary(cfg *config.Config) []string {
	var authn, authz, payload, shadows []string
	for _, pc := range cfg.Plugins {
		if pc.Shadow {
			shadows = append(shadows, pc.Name)
		}
		if pc.Decides(config.DecisionAuthn) {
			authn = append(authn, pc.Name)
		}
		if pc.Decides(config.DecisionAuthz) {
			authz = append(authz, pc.Name)
		}
		if pc.Decides(config.DecisionPayload) {
			payload = append(payload, pc.Name)
		}
	}
	a := cfg.Auth
	var out []string
	switch {
	case len(authn) == 0 && a.AllowAnonymous:
		out = append(out, "authn: no plugin; clients without username and password connect, every other client is refused (auth.allow_anonymous = true)")
	case len(authn) == 0:
		out = append(out, "authn: no plugin; every client is refused (auth.allow_anonymous = false)")
	default:
		line := fmt.Sprintf("authn: plugins %s; a client no plugin decides is ", strings.Join(authn, ", "))
		if a.AllowAnonymous {
			line += "let in if it has no username and password (auth.allow_anonymous = true), otherwise "
		}
		if a.NoMatch == "allow" {
			line += "let in (auth.no_match = allow)"
		} else {
			line += "refused (auth.no_match = deny)"
		}
		out = append(out, line)
	}
	switch {
	case len(authz) == 0 && a.AuthzNoMatch == "allow":
		out = append(out, "authz: no plugin; every client may publish, subscribe and receive on every topic (auth.authz_no_match = allow)")
	case len(authz) == 0:
		out = append(out, "authz: no plugin; every publish, subscribe and delivery is denied, except for superusers (auth.authz_no_match = deny)")
	case a.AuthzNoMatch == "allow":
		out = append(out, fmt.Sprintf("authz: plugins %s; a request no plugin decides is allowed (auth.authz_no_match = allow)", strings.Join(authz, ", ")))
	default:
		out = append(out, fmt.Sprintf("authz: plugins %s; a request no plugin decides is denied (auth.authz_no_match = deny)", strings.Join(authz, ", ")))
	}
	if len(payload) == 0 {
		out = append(out, "payload: no plugin; payloads are passed on as published")
	} else {
		out = append(out, fmt.Sprintf("payload: plugins %s; a message no plugin decides is passed on as published", strings.Join(payload, ", ")))
	}
	if len(shadows) > 0 {
		out = append(out, fmt.Sprintf("shadow: plugins %s; asked what the live chains are asked, they decide nothing (their disagreements are logged)", strings.Join(shadows, ", ")))
	}
	return out
}

// ModuleConfig maps a [[plugin]] entry onto the engine's settings.
func ModuleConfig(pc config.Plugin) wasm.ModuleConfig {
	return wasm.ModuleConfig{
		Name:         pc.Name,
		Path:         pc.Module,
		SHA256:       pc.SHA256,
		Decisions:    pc.Decisions,
		Timeout:      pc.Timeout.Duration,
		MemoryLimit:  int64(pc.MemoryLimit),
		Instances:    pc.Instances,
		Files:        pc.Files,
		AllowPayload: pc.AllowPayload,
		ConfigJSON:   pc.ConfigJSON,
	}
}

func cacheOptions(c config.Cache) policy.CacheOptions {
	return policy.CacheOptions{
		Disabled:     !c.Enabled,
		TTL:          c.TTL.Duration,
		MaxPerClient: c.MaxPerClient,
	}
}

// cacheOptions is cacheOptions(s.cfg.Cache), counted when metrics are on.
func (s *Server) cacheOptions() policy.CacheOptions {
	o := cacheOptions(s.cfg.Cache)
	if s.metrics != nil {
		o.Stats = s.metrics.CacheStats()
	}
	return o
}

// cacheDir resolves [wasm] cache_dir: "off" disables the disk cache, "" means
// the user's cache directory.
func cacheDir(dir string) string {
	switch dir {
	case "off":
		return ""
	case "":
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		return filepath.Join(base, "moat", "wasm")
	}
	return dir
}
