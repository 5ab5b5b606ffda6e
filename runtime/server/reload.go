package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/moat-mqtt/moat/runtime/config"
)

// ReloadResult is the outcome of one reload, as logged in the audit record
// and returned to `moat reload`.
type ReloadResult struct {
	Trigger string `json:"trigger"`
	// Applied is true when the new policy is in force.
	Applied bool `json:"applied"`
	// Errors lists every problem that kept the new version out; the running
	// version is untouched when there are any.
	Errors []string `json:"errors,omitempty"`
	// Modules reports each plugin of the new version: its digest and
	// whether its compiled code and instances were reused.
	Modules []ModuleReport `json:"modules,omitempty"`
	// OldModules reports the plugins of the version replaced.
	OldModules []ModuleReport `json:"old_modules,omitempty"`
	// NeedsRestart lists changed settings that a reload cannot apply
	// (listeners, [mqtt], [persistence], [wasm]); they take effect at the
	// next restart and are named here rather than silently ignored.
	NeedsRestart []string `json:"needs_restart,omitempty"`
	// Revoked counts subscriptions removed because the new policy no
	// longer allows them; Disconnected counts clients refused by
	// re-authentication.
	Revoked      int           `json:"revoked_subscriptions"`
	Disconnected int           `json:"disconnected_clients"`
	Took         time.Duration `json:"took_ns"`
}

// Reload re-reads the config file and, if the new version is good in every
// part, puts its policy in force atomically. In-flight decisions finish on
// the version they started with; new ones use the new version. Anything
// wrong leaves the running version untouched and is reported in full.
// Reloads are serialised.
func (s *Server) Reload(ctx context.Context, trigger string) ReloadResult {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	start := time.Now()
	res := ReloadResult{Trigger: trigger, OldModules: s.reports}

	fail := func(err error) ReloadResult {
		for _, e := range config.Problems(err) {
			res.Errors = append(res.Errors, e.Error())
		}
		res.Took = time.Since(start)
		s.audit(res)
		return res
	}

	if s.cfg.Path == "" {
		return fail(errors.New("server: reload: the config was not loaded from a file"))
	}
	cfg, err := config.Load(s.cfg.Path)
	if err != nil {
		return fail(err)
	}
	res.NeedsRestart = restartOnly(s.cfg, cfg)

	p, reports, err := buildPolicy(ctx, s.engine, s.modules, cfg)
	if err != nil {
		return fail(err)
	}
	res.Modules = reports

	old := s.decider.Swap(p)
	s.cfg.Plugins, s.cfg.Auth, s.cfg.Cache = cfg.Plugins, cfg.Auth, cfg.Cache
	s.reports = reports
	res.Applied = true

	// Revocation must not wait for clients to reconnect.
	res.Revoked, res.Disconnected = s.broker.Recheck(ctx, cfg.Reload.Reauthenticate)

	// The old version closes once its last in-flight call returns; its
	// modules that the new version reuses stay open.
	go func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := old.Close(cctx); err != nil {
			s.log.Error("closing replaced policy", "err", err)
		}
	}()
	res.Took = time.Since(start)
	s.audit(res)
	return res
}

// audit writes the reload's audit record.
func (s *Server) audit(res ReloadResult) {
	attrs := []any{"trigger", res.Trigger, "applied", res.Applied, "took", res.Took}
	for _, m := range res.OldModules {
		attrs = append(attrs, slog.Group("old", "module", m.Name, "sha256", m.Digest))
	}
	for _, m := range res.Modules {
		attrs = append(attrs, slog.Group("new", "module", m.Name, "sha256", m.Digest, "reused", m.Reused))
	}
	if len(res.NeedsRestart) > 0 {
		attrs = append(attrs, "needs_restart", res.NeedsRestart)
	}
	if res.Applied {
		attrs = append(attrs, "revoked_subscriptions", res.Revoked, "disconnected_clients", res.Disconnected)
		s.log.Info("reload", attrs...)
		return
	}
	attrs = append(attrs, "errors", res.Errors)
	s.log.Error("reload refused", attrs...)
}

// restartOnly names the settings that differ between a and b but cannot
// change while the broker runs.
func restartOnly(a, b *config.Config) []string {
	var out []string
	if !reflect.DeepEqual(a.Listeners, b.Listeners) {
		out = append(out, fmt.Sprintf("listener: %d listener(s) configured, %d running; listeners change at restart", len(b.Listeners), len(a.Listeners)))
	}
	if !reflect.DeepEqual(a.MQTT, b.MQTT) {
		out = append(out, "mqtt")
	}
	if !reflect.DeepEqual(a.Persistence, b.Persistence) {
		out = append(out, "persistence")
	}
	if !reflect.DeepEqual(a.Wasm, b.Wasm) {
		out = append(out, "wasm")
	}
	if !reflect.DeepEqual(a.Log, b.Log) {
		out = append(out, "log")
	}
	return out
}
