package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// DryRunPath is the admin path of a dry run (`moat reload --dry-run`):
// POST, answered with a DryRunResult as JSON, status 200 when the new
// config would be applied and 422 when a reload would refuse it.
const DryRunPath = AdminPath + "/dry-run"

// DryRunResult says what a reload of the config file would change, and
// that nothing was changed.
type DryRunResult struct {
	Trigger Trigger `json:"trigger"`
	// Config is the file tried: the broker's config file, or the
	// candidate the request named.
	Config string `json:"config"`
	// Loadable is true when the new config was read and every module
	// compiled and configured: a reload now would be applied.
	Loadable bool `json:"loadable"`
	// Errors lists every problem a reload would refuse the file for.
	Errors       []string       `json:"errors,omitempty"`
	Modules      []ModuleReport `json:"modules,omitempty"`
	NeedsRestart []Change       `json:"needs_restart,omitempty"`
	// Recorded counts the decisions in the history ([reload]
	// dry_run_history); Replayed the distinct ones decided again (a
	// repeated request is replayed once); NotReplayable the CONNECTs
	// that carried what the history does not keep (password, enhanced
	// authentication, user properties).
	Recorded      int `json:"recorded"`
	Replayed      int `json:"replayed"`
	NotReplayable int `json:"not_replayable"`
	// Changes lists each replayed decision the new config decides
	// otherwise: who would be refused, and who let in.
	Changes []DecisionChange `json:"changes,omitempty"`
	// Revoked lists the current subscriptions the new config refuses,
	// which a reload would remove.
	Revoked []RevokedSubscription `json:"revoked,omitempty"`
	Notes   []string              `json:"notes,omitempty"`
	Took    time.Duration         `json:"took_ns"`
}

// DecisionChange is one recorded decision decided otherwise by the new
// config.
type DecisionChange struct {
	// Kind is "authn" (a CONNECT) or "authz".
	Kind       string `json:"kind"`
	ClientID   string `json:"client_id"`
	Username   string `json:"username,omitempty"`
	Action     string `json:"action,omitempty"`
	Topic      string `json:"topic,omitempty"`
	ShareGroup string `json:"share_group,omitempty"`
	QoS        uint8  `json:"qos"`
	// Old is the live verdict, New the new config's; Module and Message
	// come from the new config's decision.
	Old     string `json:"old"`
	New     string `json:"new"`
	Module  string `json:"module,omitempty"`
	Message string `json:"message,omitempty"`
	// Count is how many times the request was recorded.
	Count int `json:"count"`
}

// RevokedSubscription is a current subscription the new config refuses.
type RevokedSubscription struct {
	ClientID  string `json:"client_id"`
	Username  string `json:"username,omitempty"`
	Filter    string `json:"filter"`
	QoS       uint8  `json:"qos"`
	Connected bool   `json:"connected"`
	Module    string `json:"module,omitempty"`
	Message   string `json:"message,omitempty"`
}

// DryRun loads the config file as Reload would (parse, validate, compile
// and configure every changed module, read the key ring), then, instead of
// swapping, judges the new policy against what the running broker has
// seen: it replays the recorded decisions (policy.Decider.History) and
// authorizes every current subscription as Recheck would, and reports the
// differences. The running policy, its cache, the broker's sessions and
// the watcher are untouched; the new version is closed before DryRun
// returns. Modules the new config leaves unchanged are the running ones,
// shared: the replay takes instances from their pools like live traffic.
//
// path names the file to try; "" means the broker's own config file. A
// candidate beside it lets an operator try an edit while the file watcher
// is on (it would apply an edit of the config file itself at once). The
// candidate is judged as the next version of the running config: what
// needs a restart is what differs from the running values.
//
// It is serialised with reloads and writes one audit record.
func (s *Server) DryRun(ctx context.Context, trigger Trigger, path string) DryRunResult {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	start := time.Now()
	res := DryRunResult{Trigger: trigger}
	fail := func(err error) DryRunResult {
		for _, e := range config.Problems(err) {
			res.Errors = append(res.Errors, e.Error())
		}
		res.Took = time.Since(start)
		s.auditDryRun(res)
		return res
	}
	if s.closed {
		return fail(errors.New("server: dry run: the server is closed"))
	}
	if path == "" {
		path = s.cfg.Path
	}
	res.Config = path
	if path == "" {
		return fail(errors.New("server: dry run: the config was not loaded from a file"))
	}
	cfg, err := config.Load(path)
	if err != nil {
		return fail(err)
	}
	res.NeedsRestart = restartOnly(s.cfg, cfg)
	p, reports, err := buildPolicy(ctx, s.engine, s.modules, cfg, nil) // a candidate is not counted in the metrics
	if err != nil {
		res.Modules = s.previous(fileDigests(cfg))
		return fail(err)
	}
	res.Modules = s.previous(reports)
	if _, err := broker.LoadRing(ctx, cfg, nil); err != nil {
		return fail(errors.Join(err, p.Close(context.Background())))
	}
	res.Loadable = true

	log := s.log.With("dry_run", true)
	s.replay(ctx, log, p, &res)
	for _, sub := range s.broker.Grants() {
		if sub.Superuser {
			continue
		}
		ar := p.Authorize(ctx, log, &policy.AuthzRequest{Client: sub.Client, Action: policy.ActionSubscribe,
			Topic: sub.Topic, QoS: sub.QoS, ShareGroup: sub.ShareGroup})
		if ar.Verdict == policy.Allow {
			continue
		}
		res.Revoked = append(res.Revoked, RevokedSubscription{ClientID: sub.Client.ClientID, Username: sub.Client.Username,
			Filter: sub.Filter, QoS: sub.QoS, Connected: sub.Connected, Module: ar.Module, Message: ar.Message})
	}
	if err := p.Close(context.Background()); err != nil {
		s.log.Error("dry run: closing the new policy", "err", err)
	}

	if cfg.Reload.Reauthenticate {
		res.Notes = append(res.Notes, "reload.reauthenticate: re-authentication of connected clients is not simulated; "+
			"the credentials it would replay are not shown to a dry run")
	}
	if res.NotReplayable > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("%d recorded CONNECT%s carried a password, enhanced authentication or user properties, "+
			"which the history does not keep: not replayed", res.NotReplayable, plural(res.NotReplayable)))
	}
	if s.cfg.Reload.DryRunHistory == 0 {
		res.Notes = append(res.Notes, "reload.dry_run_history = 0: no decision was recorded to replay")
	}
	res.Took = time.Since(start)
	s.auditDryRun(res)
	return res
}

// replayKey identifies a request in the history, so that repeats are
// replayed once.
type replayKey struct {
	kind, clientID, username string
	action                   policy.Action
	topic, group             string
	qos                      uint8
	retain                   bool
}

// replay decides the history again on p and fills in res. Changes are
// listed in the order their requests were last recorded.
func (s *Server) replay(ctx context.Context, log *slog.Logger, p *policy.Policy, res *DryRunResult) {
	hist := s.decider.History()
	res.Recorded = len(hist)
	latest := make(map[replayKey]int, len(hist)) // index of the last record
	count := make(map[replayKey]int, len(hist))
	keys := make([]replayKey, len(hist))
	for i, r := range hist {
		k := replayKey{kind: r.Kind, clientID: r.Client.ClientID, username: r.Client.Username, action: r.Action,
			topic: r.Topic, group: r.ShareGroup, qos: r.QoS, retain: r.Retain}
		keys[i] = k
		latest[k] = i
		count[k]++
	}
	for i, r := range hist {
		k := keys[i]
		if latest[k] != i {
			continue
		}
		v, module, msg, ok := p.Replay(ctx, log, r)
		if !ok {
			res.NotReplayable++
			continue
		}
		res.Replayed++
		if (v == policy.Allow) == (r.Verdict == policy.Allow) {
			continue
		}
		c := DecisionChange{Kind: r.Kind, ClientID: r.Client.ClientID, Username: r.Client.Username,
			Old: r.Verdict.String(), New: v.String(), Module: module, Message: msg, Count: count[k]}
		if r.Kind == policy.RecordAuthz {
			c.Action, c.Topic, c.ShareGroup, c.QoS = r.Action.String(), r.Topic, r.ShareGroup, r.QoS
		}
		res.Changes = append(res.Changes, c)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// auditDryRun writes the dry run's audit record.
func (s *Server) auditDryRun(res DryRunResult) {
	attrs := []any{"audit", "reload dry run", "trigger", res.Trigger, "config", res.Config, "loadable", res.Loadable, "took", res.Took}
	if !res.Loadable {
		s.log.Info("reload dry run: a reload would be refused", append(attrs, "errors", res.Errors)...)
		return
	}
	s.log.Info("reload dry run", append(attrs, "replayed", res.Replayed, "not_replayable", res.NotReplayable,
		"changed", len(res.Changes), "revoked_subscriptions", len(res.Revoked))...)
}

// dryRun serves POST DryRunPath. The query parameter config names a
// candidate file to try instead of the broker's config file; it must be an
// absolute path (the broker's working directory is not the caller's).
func (a *Admin) dryRun(w http.ResponseWriter, r *http.Request) {
	p, _ := r.Context().Value(peerKey{}).(peer)
	t := Trigger{Source: TriggerAdmin, Endpoint: p.endpoint}
	if p.known {
		uid := p.uid
		t.PeerUID, t.PeerPID = &uid, p.pid
	}
	if strings.HasPrefix(p.endpoint, "http:") {
		t.Remote = r.RemoteAddr
	}
	path := r.URL.Query().Get("config")
	if path != "" && !filepath.IsAbs(path) {
		http.Error(w, "moat: config must be an absolute path", http.StatusBadRequest)
		return
	}
	res := a.s.DryRun(r.Context(), t, path)
	w.Header().Set("Content-Type", "application/json")
	if res.Loadable {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusUnprocessableEntity)
	}
	_ = json.NewEncoder(w).Encode(res)
}
