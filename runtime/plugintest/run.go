package plugintest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

var (
	actions = map[string]policy.Action{
		"publish": policy.ActionPublish, "subscribe": policy.ActionSubscribe,
		"deliver": policy.ActionDeliver, "decrypt": policy.ActionDecrypt,
	}
	modes = map[string]policy.Mode{
		"": 0, "plaintext": policy.ModePlaintext, "require-e2e": policy.ModeRequireE2E,
		"at-rest": policy.ModeAtRest, "reencrypt": policy.ModeReencrypt,
	}
	verdicts = map[string]policy.Verdict{
		"allow": policy.Allow, "deny": policy.Deny, "ignore": policy.Ignore, "continue": policy.Continue,
	}
)

// Options configure Run.
type Options struct {
	// ConfigJSON replaces the suite's [config] when not nil.
	ConfigJSON []byte
	// Name is the plugin's name in errors; default "plugin".
	Name string
}

// Report is the outcome of a run: one Result per case, in file order.
type Report struct {
	Suite   *Suite
	Module  string
	Results []Result
}

// Result is the outcome of one case. Diffs is empty when it passed.
type Result struct {
	Case  *Case
	Diffs []string
}

// Failed returns the number of cases that did not pass.
func (r *Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if len(res.Diffs) > 0 {
			n++
		}
	}
	return n
}

// Write prints every failing case with its request and each difference,
// "got" against "want", then a summary line.
func (r *Report) Write(w io.Writer) {
	for i, res := range r.Results {
		if len(res.Diffs) == 0 {
			continue
		}
		fmt.Fprintf(w, "FAIL %s:%d: %s\n", r.Suite.Path, res.Case.Line, res.Case.where(i))
		fmt.Fprintf(w, "    request: %s\n", res.Case.describe())
		for _, d := range res.Diffs {
			fmt.Fprintf(w, "    %s\n", d)
		}
	}
	if n := r.Failed(); n > 0 {
		fmt.Fprintf(w, "FAIL %s: %d of %d cases failed (%s)\n", r.Module, n, len(r.Results), r.Suite.Path)
	} else {
		fmt.Fprintf(w, "ok %s: %d cases passed (%s)\n", r.Module, len(r.Results), r.Suite.Path)
	}
}

// Run loads the module at path into e, with the suite's config (or
// opts.ConfigJSON) and the decisions its cases use, and runs every case.
// The error is a load failure (the module is refused, or refuses its
// config); a case whose call fails is a failed case, not an error, so one
// plugin error does not hide the other results.
func Run(ctx context.Context, e *wasm.Engine, path string, s *Suite, opts Options) (*Report, error) {
	cfg := opts.ConfigJSON
	if cfg == nil {
		var err error
		if cfg, err = s.ConfigJSON(); err != nil {
			return nil, err
		}
	}
	name := opts.Name
	if name == "" {
		name = "plugin"
	}
	m, err := e.Load(ctx, wasm.ModuleConfig{
		Name:         name,
		Path:         path,
		Decisions:    s.Decisions(),
		Instances:    1,
		ConfigJSON:   cfg,
		Files:        s.Files,
		AllowPayload: s.AllowPayload,
	})
	if err != nil {
		return nil, fmt.Errorf("plugintest: %w", err)
	}
	defer m.Close()
	rep := &Report{Suite: s, Module: path}
	for i := range s.Cases {
		c := &s.Cases[i]
		rep.Results = append(rep.Results, Result{Case: c, Diffs: runCase(ctx, m, c)})
	}
	return rep, nil
}

func (c *Case) client() *policy.Client {
	cl := &policy.Client{
		ClientID:        c.ClientID,
		Username:        c.Username,
		RemoteAddr:      c.RemoteAddr,
		Listener:        c.Listener,
		ProtocolVersion: c.Protocol,
		Superuser:       c.Superuser,
		Attributes:      sortedPairs[policy.Attribute](c.Attributes),
	}
	if c.CertCN != "" || len(c.CertSANs) > 0 {
		cl.Cert = &policy.Cert{SubjectCN: c.CertCN, SANs: c.CertSANs}
	}
	return cl
}

// sortedPairs turns a TOML table into pairs in key order, so that a
// module sees the same request on every run.
func sortedPairs[T ~struct{ Key, Value string }](m map[string]string) []T {
	var out []T
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, T{Key: k, Value: m[k]})
	}
	return out
}

func runCase(ctx context.Context, m *wasm.Module, c *Case) []string {
	var d diffs
	want := &c.Expect
	switch c.Kind {
	case "authn":
		req := &policy.AuthnRequest{
			Client:         c.client(),
			UserProperties: sortedPairs[policy.Property](c.UserProperties),
			AuthMethod:     c.AuthMethod,
			Round:          c.Round,
		}
		if c.Password != nil {
			req.Password = []byte(*c.Password)
		}
		if c.AuthData != "" {
			req.AuthData = []byte(c.AuthData)
		}
		if c.AuthState != "" {
			req.AuthState = []byte(c.AuthState)
		}
		res, err := m.Authenticate(ctx, req)
		if err != nil {
			return []string{"plugin error: " + err.Error()}
		}
		d.verdict(res.Verdict, want.Verdict)
		d.int("reason", int(res.Reason), want.Reason, hexCode)
		d.str("superuser", fmt.Sprint(res.Superuser), fmt.Sprint(want.Superuser))
		got := map[string]string{}
		for _, a := range res.Attributes {
			if _, dup := got[a.Key]; dup {
				d.add("attributes: %q set twice", a.Key)
			}
			got[a.Key] = a.Value
		}
		if res.Verdict == policy.Allow {
			d.str("attributes", pairs(got), pairs(want.Attributes))
		}
		d.message(res.Message, want.Message)
	case "authz":
		req := &policy.AuthzRequest{
			Client:     c.client(),
			Action:     actions[c.Action],
			Topic:      c.Topic,
			QoS:        c.QoS,
			Retain:     c.Retain,
			ShareGroup: c.ShareGroup,
		}
		res, err := m.Authorize(ctx, req)
		if err != nil {
			return []string{"plugin error: " + err.Error()}
		}
		d.verdict(res.Verdict, want.Verdict)
		d.int("reason", int(res.Reason), want.Reason, hexCode)
		d.message(res.Message, want.Message)
	case "payload":
		req := &policy.PayloadRequest{
			Client:         c.client(),
			Action:         actions[c.Action],
			Topic:          c.Topic,
			QoS:            c.QoS,
			Retain:         c.Retain,
			ContentType:    c.ContentType,
			UserProperties: sortedPairs[policy.Property](c.UserProperties),
			Payload:        []byte(c.Payload),
			EnvelopeKeyID:  c.EnvelopeKeyID,
			Mode:           modes[c.Mode],
		}
		res, err := m.Payload(ctx, req)
		if err != nil {
			return []string{"plugin error: " + err.Error()}
		}
		d.verdict(res.Verdict, want.Verdict)
		d.int("reason", int(res.Reason), want.Reason, hexCode)
		if res.Verdict == policy.Allow {
			d.str("mode", modeName(res.Mode), want.Mode)
			d.str("key_id", res.KeyID, want.KeyID)
		}
		d.message(res.Message, want.Message)
	}
	return d
}

type diffs []string

func (d *diffs) add(format string, args ...any) { *d = append(*d, fmt.Sprintf(format, args...)) }

func (d *diffs) verdict(got policy.Verdict, want string) {
	if got.String() != want {
		d.add("verdict: got %s, want %s", got, want)
	}
}

func (d *diffs) str(what, got, want string) {
	if got != want {
		d.add("%s: got %s, want %s", what, show(got), show(want))
	}
}

func (d *diffs) int(what string, got, want int, f func(int) string) {
	if got != want {
		d.add("%s: got %s, want %s", what, f(got), f(want))
	}
}

func (d *diffs) message(got string, want *string) {
	if want != nil && got != *want {
		d.add("message: got %q, want %q", got, *want)
	}
}

func show(s string) string {
	if s == "" {
		return "(none)"
	}
	if strings.HasPrefix(s, "{") {
		return s
	}
	return fmt.Sprintf("%q", s)
}

func hexCode(v int) string {
	if v == 0 {
		return "0 (default)"
	}
	return fmt.Sprintf("%#02x", v)
}

func modeName(m policy.Mode) string {
	if m == 0 {
		return ""
	}
	return m.String()
}
