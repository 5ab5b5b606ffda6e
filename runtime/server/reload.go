package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/config"
)

// Trigger sources: what asked for a reload.
const (
	// TriggerFile is the file watcher (Watcher): the config, a module or a
	// granted file changed.
	TriggerFile = "file"
	// TriggerSignal is SIGHUP to `moat serve`.
	TriggerSignal = "signal"
	// TriggerAdmin is a request to the admin endpoint (`moat reload`).
	TriggerAdmin = "admin"
	// TriggerAPI is any other caller of Reload.
	TriggerAPI = "api"
)

// Trigger says who or what asked for a reload, for the audit record.
type Trigger struct {
	// Source is one of TriggerFile, TriggerSignal, TriggerAdmin, TriggerAPI.
	Source string `json:"source"`
	// Paths are the changed files (TriggerFile).
	Paths []string `json:"paths,omitempty"`
	// Signal is the signal's name (TriggerSignal).
	Signal string `json:"signal,omitempty"`
	// Endpoint is the admin endpoint the request came through:
	// "unix:<path>" or "http:<host:port>" (TriggerAdmin).
	Endpoint string `json:"endpoint,omitempty"`
	// PeerUID and PeerPID identify the process at the other end of the
	// admin socket, from SO_PEERCRED (Linux); nil and 0 when unknown.
	PeerUID *int `json:"peer_uid,omitempty"`
	PeerPID int  `json:"peer_pid,omitempty"`
	// Remote is the client address of an HTTP admin request.
	Remote string `json:"remote,omitempty"`
}

// String describes the trigger in one line, e.g. "admin unix:/etc/moat/moat.sock
// uid=1000 pid=4242".
func (t Trigger) String() string {
	var b strings.Builder
	b.WriteString(t.Source)
	add := func(s string) {
		if s != "" {
			b.WriteByte(' ')
			b.WriteString(s)
		}
	}
	add(strings.Join(t.Paths, " "))
	add(t.Signal)
	add(t.Endpoint)
	if t.PeerUID != nil {
		add("uid=" + strconv.Itoa(*t.PeerUID))
	}
	if t.PeerPID != 0 {
		add("pid=" + strconv.Itoa(t.PeerPID))
	}
	add(t.Remote)
	return b.String()
}

// LogValue implements slog.LogValuer: the set fields as a group.
func (t Trigger) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("source", t.Source)}
	if len(t.Paths) > 0 {
		attrs = append(attrs, slog.Any("paths", t.Paths))
	}
	if t.Signal != "" {
		attrs = append(attrs, slog.String("signal", t.Signal))
	}
	if t.Endpoint != "" {
		attrs = append(attrs, slog.String("endpoint", t.Endpoint))
	}
	if t.PeerUID != nil {
		attrs = append(attrs, slog.Int("peer_uid", *t.PeerUID))
	}
	if t.PeerPID != 0 {
		attrs = append(attrs, slog.Int("peer_pid", t.PeerPID))
	}
	if t.Remote != "" {
		attrs = append(attrs, slog.String("remote", t.Remote))
	}
	return slog.GroupValue(attrs...)
}

// ReloadResult is the outcome of one reload, as logged in the audit record
// and returned to `moat reload` (as JSON).
type ReloadResult struct {
	Trigger Trigger `json:"trigger"`
	// Applied is true when the new policy is in force.
	Applied bool `json:"applied"`
	// Errors lists every problem that kept the new version out; the running
	// version is untouched when there are any.
	Errors []string `json:"errors,omitempty"`
	// Modules reports each plugin of the new version. When the reload was
	// refused after the config was read, it lists the digest of each
	// module file the new config names, as far as it could be read.
	Modules []ModuleReport `json:"modules,omitempty"`
	// OldModules reports the plugins of the version replaced, or of the
	// version still in force when the reload was refused.
	OldModules []ModuleReport `json:"old_modules,omitempty"`
	// NeedsRestart lists each changed setting that a reload cannot apply
	// (see restartOnly), with its running and its new value. It is filled
	// in whenever the new config could be read, applied or not; the
	// running broker keeps the old values until it restarts.
	NeedsRestart []Change `json:"needs_restart,omitempty"`
	// Notes says where an applied change takes effect only in part.
	Notes []string `json:"notes,omitempty"`
	// Revoked counts subscriptions removed because the new policy no
	// longer allows them; Disconnected counts clients refused by
	// re-authentication; Dropped counts messages waiting in sessions,
	// not yet sent, that their receiver may no longer read.
	Revoked      int           `json:"revoked_subscriptions"`
	Disconnected int           `json:"disconnected_clients"`
	Dropped      int           `json:"dropped_messages"`
	Took         time.Duration `json:"took_ns"`
	// Certificates reports the certificate of each tls and wss listener,
	// read again from its files at every reload whatever becomes of the
	// policy: a new valid pair serves new handshakes, a bad one is refused
	// and the pair in force stays.
	Certificates []CertReport `json:"certificates,omitempty"`
}

// CertReport is one listener's certificate in a ReloadResult.
type CertReport struct {
	Listener string `json:"listener"`
	CertFile string `json:"cert_file"`
	// Reloaded is true when new handshakes use a new pair.
	Reloaded bool `json:"reloaded"`
	// Error says why the files were refused; the pair in force stays.
	Error string `json:"error,omitempty"`
}

// reloadCertificates has the broker read every listener certificate again.
func (s *Server) reloadCertificates() []CertReport {
	var out []CertReport
	for _, c := range s.broker.ReloadCertificates() {
		r := CertReport{Listener: c.Listener, CertFile: c.CertFile, Reloaded: c.Changed}
		if c.Err != nil {
			r.Error = c.Err.Error()
		}
		out = append(out, r)
	}
	return out
}

// Change is one setting whose value differs between the running config
// and the config file.
type Change struct {
	// Key is the setting's key path, as config errors write it:
	// "mqtt.maximum_inflight", "listener[1].address".
	Key string `json:"key"`
	// Old is the running value, New the value in the file, each as TOML
	// would write it ("" for an absent listener).
	Old string `json:"old"`
	New string `json:"new"`
}

func (c Change) String() string { return fmt.Sprintf("%s: %s -> %s", c.Key, c.Old, c.New) }

// ModuleReport says what a policy build did with one plugin, for the
// reload audit record.
type ModuleReport struct {
	Name string `json:"name"`
	// Digest is the SHA-256 of the module's binary, in hex.
	Digest string `json:"sha256"`
	// Previous is the digest of the plugin of the same name in the version
	// replaced; "" when the plugin is new. Set in ReloadResult.Modules.
	Previous string `json:"previous_sha256,omitempty"`
	// Reused is true when the compiled code and warm instances of the
	// version replaced serve the new one: same binary, same settings, same
	// granted files.
	Reused bool `json:"reused"`
	// Shadow is true for a shadow plugin ([[plugin]] shadow = true),
	// which decides nothing (shadow.go).
	Shadow bool `json:"shadow,omitempty"`
}

// Reload re-reads the config file and, if the new version is good in every
// part, puts its policy in force atomically. It is a transaction:
//
//  1. parse and validate the whole file (config.Load);
//  2. load every changed module: compile, instantiate its pool, and hand
//     each instance its [plugin.config] (unchanged modules are reused);
//  3. only when everything succeeded, swap the new policy in with one
//     pointer swap (policy.Decider.Swap), which also invalidates every
//     cached decision;
//  4. re-check existing subscriptions (and with [reload] reauthenticate,
//     connected clients) against the new policy: revocation does not wait
//     for a reconnect;
//  5. close the version replaced once its in-flight calls have returned.
//
// In-flight decisions finish on the version they started with; new ones
// use the new version. Anything wrong in steps 1-2 leaves the running
// version untouched and is reported in full in the result and the log.
// Settings that cannot change while the broker runs are reported in
// NeedsRestart and keep their running values.
//
// Reloads are serialised. Every reload writes one audit record to the log.
// ctx bounds loading; once the swap is done the rest runs to the end.
func (s *Server) Reload(ctx context.Context, trigger Trigger) ReloadResult {
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

	if s.closed {
		return fail(errors.New("server: reload: the server is closed"))
	}
	// Certificates first, and whatever becomes of the policy: renewing a
	// certificate must not wait for a config to be right.
	res.Certificates = s.reloadCertificates()
	if s.cfg.Path == "" {
		return fail(errors.New("server: reload: the config was not loaded from a file"))
	}
	// The watcher watches what this version names even if it is refused:
	// the fix for a missing module is to create it.
	cfg, err := config.Load(s.cfg.Path)
	if err != nil {
		s.attempted = namedFiles(s.cfg.Path)
		s.notifyWatchers()
		return fail(err)
	}
	s.attempted = pluginFiles(cfg.Plugins)
	s.notifyWatchers()
	res.NeedsRestart = restartOnly(s.cfg, cfg)
	// [limits] needs a restart, plugin_concurrency (read by buildPolicy)
	// included: the new policy keeps the running value.
	cfg.Limits = s.cfg.Limits

	p, reports, err := buildPolicy(ctx, s.engine, s.modules, cfg, s.observer())
	if err != nil {
		res.Modules = s.previous(fileDigests(cfg))
		return fail(err)
	}
	// The payload key ring ([[key]], [keys]) is part of the transaction:
	// every key file is read before anything is swapped.
	ring, err := broker.LoadRing(ctx, cfg, nil)
	if err != nil {
		res.Modules = s.previous(reports)
		return fail(errors.Join(err, p.Close(context.Background())))
	}
	res.Modules = s.previous(reports)

	// The ring goes first: a key the new policy names is there before the
	// policy is, and during a rotation the old keys stay in the new ring
	// for what the old policy still seals.
	s.ring.Store(ring)
	old := s.decider.Swap(p)
	if cfg.Reload.Reauthenticate && !s.cfg.Reload.Reauthenticate {
		res.Notes = append(res.Notes, "reload.reauthenticate: turned on; clients connected before this reload "+
			"are re-authenticated only after they reconnect (their credentials were not kept)")
	}
	// Only the live sections change; the others keep their running
	// values, so that the next reload reports them again.
	s.cfg.Plugins, s.cfg.Auth, s.cfg.Reload = cfg.Plugins, cfg.Auth, cfg.Reload
	s.cfg.Payload.Keys, s.cfg.Payload.Active = cfg.Payload.Keys, cfg.Payload.Active
	s.reports = reports
	res.Applied = true
	res.Notes = append(res.Notes, s.warn(cfg)...)

	s.decider.SetHistory(cfg.Reload.DryRunHistory)
	s.broker.SetReauthenticate(cfg.Reload.Reauthenticate)
	rc := s.broker.Recheck(ctx, cfg.Reload.Reauthenticate)
	res.Revoked, res.Disconnected, res.Dropped = rc.Revoked, rc.Disconnected, rc.Dropped

	// The old version closes once its last in-flight call returns (each is
	// bounded by its module's timeout); its modules that the new version
	// reuses stay open. Close waits for this.
	s.closing.Add(1)
	go func() {
		defer s.closing.Done()
		if err := old.Close(context.Background()); err != nil {
			s.log.Error("closing replaced policy", "err", err)
		}
		logShadowTotals(s.log, old)
	}()
	res.Took = time.Since(start)
	s.audit(res)
	return res
}

// previous sets the Previous digest of each report from the version in
// force.
func (s *Server) previous(reports []ModuleReport) []ModuleReport {
	for i := range reports {
		for _, o := range s.reports {
			if o.Name == reports[i].Name {
				reports[i].Previous = o.Digest
			}
		}
	}
	return reports
}

// fileDigests reports the digest of each module file cfg names, skipping
// those that cannot be read, for the record of a refused reload.
func fileDigests(cfg *config.Config) []ModuleReport {
	var out []ModuleReport
	for _, pc := range cfg.Plugins {
		bin, err := os.ReadFile(pc.Module)
		if err != nil {
			continue
		}
		sum := sha256.Sum256(bin)
		out = append(out, ModuleReport{Name: pc.Name, Digest: hex.EncodeToString(sum[:])})
	}
	return out
}

// moduleAudit is one plugin in the audit record: its digest before and
// after the reload.
type moduleAudit struct {
	Name   string `json:"name"`
	Old    string `json:"old_sha256,omitempty"`
	New    string `json:"new_sha256,omitempty"`
	Reused bool   `json:"reused,omitempty"`
}

// audit writes the reload's audit record: trigger, outcome, the old and
// new digest of each module, and what needs a restart. Applied reloads log
// at info, refused ones at error.
func (s *Server) audit(res ReloadResult) {
	s.countReload(res.Applied)
	s.recent.addReload(res)
	attrs := []any{"audit", "reload", "trigger", res.Trigger, "applied", res.Applied, "took", res.Took}
	// Refused: New is what was tried, and nothing changed.
	var mods []moduleAudit
	for _, m := range res.Modules {
		mods = append(mods, moduleAudit{Name: m.Name, Old: m.Previous, New: m.Digest, Reused: m.Reused})
	}
	for _, o := range res.OldModules {
		gone := true
		for _, m := range res.Modules {
			gone = gone && m.Name != o.Name
		}
		if gone {
			mods = append(mods, moduleAudit{Name: o.Name, Old: o.Digest})
		}
	}
	attrs = append(attrs, "modules", mods)
	if len(res.Notes) > 0 {
		attrs = append(attrs, "notes", res.Notes)
	}
	if len(res.Certificates) > 0 {
		attrs = append(attrs, "certificates", res.Certificates)
	}
	if len(res.NeedsRestart) > 0 {
		changes := make([]string, len(res.NeedsRestart))
		for i, c := range res.NeedsRestart {
			changes[i] = c.String()
		}
		attrs = append(attrs, "needs_restart", changes)
	}
	if res.Applied {
		attrs = append(attrs, "revoked_subscriptions", res.Revoked, "disconnected_clients", res.Disconnected,
			"dropped_messages", res.Dropped)
		s.log.Info("reload", attrs...)
		return
	}
	attrs = append(attrs, "errors", res.Errors)
	s.log.Error("reload refused", attrs...)
}
