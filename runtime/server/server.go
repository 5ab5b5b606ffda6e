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
	"os"
	"path/filepath"
	"slices"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/config"
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
}

// New compiles and checks every module of cfg, builds the policy and the
// broker, but opens no socket: Start does. On error everything New made is
// released again.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger) (s *Server, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s = &Server{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.cleanup(context.Background()))
			s = nil
		}
	}()

	s.engine, err = wasm.NewEngine(ctx, wasm.EngineOptions{CacheDir: cacheDir(cfg.Wasm.CacheDir), Logger: log})
	if err != nil {
		return nil, err
	}
	p, err := BuildPolicy(ctx, s.engine, cfg)
	if err != nil {
		return nil, err
	}
	s.decider = policy.NewDecider(p, cacheOptions(cfg.Cache), log)
	s.broker, err = broker.New(broker.Options{Config: cfg, Decider: s.decider, Logger: log})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Start opens the listeners and serves until Close.
func (s *Server) Start(ctx context.Context) error {
	return s.broker.Start(ctx)
}

// Broker returns the broker, for tests and tools that need its addresses.
func (s *Server) Broker() *broker.Broker { return s.broker }

// Decider returns the policy entry point, for reload.
func (s *Server) Decider() *policy.Decider { return s.decider }

// Engine returns the wasm engine, for reload.
func (s *Server) Engine() *wasm.Engine { return s.engine }

// Close shuts the broker down gracefully within ctx, then releases the
// policy and the engine.
func (s *Server) Close(ctx context.Context) error {
	return s.cleanup(ctx)
}

// cleanup works on a half-built Server too.
func (s *Server) cleanup(ctx context.Context) error {
	var errs []error
	if s.broker != nil {
		errs = append(errs, s.broker.Close(ctx))
		s.broker = nil
	}
	if s.decider != nil {
		s.decider.Close()
		errs = append(errs, s.decider.Policy().Close(ctx))
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
	p, err := BuildPolicy(ctx, engine, cfg)
	if err == nil {
		err = p.Close(ctx)
	}
	return errors.Join(err, engine.Close(ctx))
}

// BuildPolicy loads every [[plugin]] of cfg with engine and arranges them in
// chains, in file order. Every plugin is tried even after one fails, so the
// error lists all of them; on error the modules loaded are closed.
func BuildPolicy(ctx context.Context, engine *wasm.Engine, cfg *config.Config) (*policy.Policy, error) {
	var (
		authn   []policy.Step[policy.Authenticator]
		authz   []policy.Step[policy.Authorizer]
		closers []io.Closer
		errs    []error
	)
	for i, pc := range cfg.Plugins {
		onError, err := policy.ParseOnError(pc.OnError)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: plugin[%d].on_error: %w", cfg.Path, i, err))
			continue
		}
		m, err := engine.Load(ctx, ModuleConfig(pc))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		closers = append(closers, m)
		if slices.Contains(pc.Decisions, "authn") {
			authn = append(authn, policy.Step[policy.Authenticator]{Name: pc.Name, Module: m, OnError: onError})
		}
		if slices.Contains(pc.Decisions, "authz") {
			authz = append(authz, policy.Step[policy.Authorizer]{Name: pc.Name, Module: m, OnError: onError})
		}
	}
	if len(errs) > 0 {
		for _, c := range closers {
			errs = append(errs, c.Close())
		}
		return nil, errors.Join(errs...)
	}
	noMatch := policy.Deny
	if cfg.Auth.NoMatch == "allow" {
		noMatch = policy.Allow
	}
	return policy.New(authn, authz, policy.Options{
		AllowAnonymous: cfg.Auth.AllowAnonymous,
		NoMatch:        noMatch,
		Closers:        closers,
	}), nil
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
		Disabled:     c.Enabled != nil && !*c.Enabled,
		TTL:          c.TTL.Duration,
		MaxPerClient: c.Size,
	}
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
