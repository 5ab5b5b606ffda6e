package policy

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// The Decider keeps a bounded ring of the decisions its chains took most
// recently, so that a new configuration can be tried against them before
// it is put in force (`moat reload --dry-run`, Policy.Replay). It holds
// what a decision was about, never a secret: a CONNECT is kept without its
// password, authentication data, authentication state or user properties
// (only whether it had them), and no payload decision is kept at all.
//
// It records what the chains decide: authorization requests that missed
// the cache (at most one per client, action and topic per cache TTL, which
// is the variety a dry run needs), CONNECTs (round 0), but not a
// superuser's authorization, which no module sees, nor a verdict forced by
// a module error (on_error).

// Record kinds.
const (
	RecordAuthn = "authn"
	RecordAuthz = "authz"
)

// Record is one recorded decision.
type Record struct {
	Time time.Time
	// Kind is RecordAuthn or RecordAuthz.
	Kind string
	// Client is who asked; read-only. For an authn record it is the
	// identity before authentication (no attributes, not superuser).
	Client *Client

	// Of a CONNECT: whether it carried a password, enhanced
	// authentication (its method) or user properties; the values are not
	// kept.
	HadPassword       bool
	AuthMethod        string
	HadUserProperties bool

	// Of an authorization.
	Action     Action
	Topic      string
	QoS        uint8
	Retain     bool
	ShareGroup string

	// Verdict and Module are what the live policy decided.
	Verdict Verdict
	Module  string
}

// Replayable reports whether r can be decided again as it was asked: an
// authorization always, a CONNECT only when it carried nothing that was
// not kept (no password, no enhanced authentication, no user properties),
// such as an anonymous or certificate-only client.
func (r *Record) Replayable() bool {
	return r.Kind == RecordAuthz || (!r.HadPassword && r.AuthMethod == "" && !r.HadUserProperties)
}

// recorder is the ring. It is safe for concurrent use; a record costs one
// uncontended mutex on a path that just called a module.
type recorder struct {
	mu   sync.Mutex
	buf  []Record
	next int
	full bool
}

func (r *recorder) add(rec Record) {
	r.mu.Lock()
	r.buf[r.next] = rec
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// records returns the ring's records, oldest first.
func (r *recorder) records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]Record(nil), r.buf[:r.next]...)
	}
	out := make([]Record, 0, len(r.buf))
	out = append(out, r.buf[r.next:]...)
	return append(out, r.buf[:r.next]...)
}

// SetHistory makes the Decider keep the last n decisions (0 keeps none).
// The newest records of the ring replaced are kept. Safe to call while
// deciding, but not concurrently with itself: the server calls it at
// start and under its reload lock with [reload] dry_run_history.
func (d *Decider) SetHistory(n int) {
	old := d.rec.Load()
	if old != nil && len(old.buf) == n {
		return
	}
	if n <= 0 {
		d.rec.Store(nil)
		return
	}
	r := &recorder{buf: make([]Record, n)}
	if old != nil {
		for _, rec := range old.records() {
			r.add(rec)
		}
	}
	d.rec.Store(r)
}

// History returns the recorded decisions, oldest first.
func (d *Decider) History() []Record {
	r := d.rec.Load()
	if r == nil {
		return nil
	}
	return r.records()
}

func (d *Decider) recordAuthn(req *AuthnRequest, res AuthnResult) {
	r := d.rec.Load()
	if r == nil || req.Round != 0 {
		return
	}
	// The broker completes its Client after authentication: keep a copy.
	c := *req.Client
	r.add(Record{Time: time.Now(), Kind: RecordAuthn, Client: &c,
		HadPassword: req.Password != nil, AuthMethod: strings.Clone(req.AuthMethod), HadUserProperties: len(req.UserProperties) > 0,
		Verdict: res.Verdict, Module: res.Module})
}

func (d *Decider) recordAuthz(req *AuthzRequest, res AuthzResult) {
	r := d.rec.Load()
	if r == nil {
		return
	}
	r.add(Record{Time: time.Unix(0, d.now.Load()), Kind: RecordAuthz, Client: req.Client,
		Action: req.Action, Topic: strings.Clone(req.Topic), QoS: req.QoS, Retain: req.Retain,
		ShareGroup: strings.Clone(req.ShareGroup), Verdict: res.Verdict, Module: res.Module})
}

// Replay decides rec again on p, which need not be in force: nothing is
// cached, recorded or shown to shadow plugins. ok is false, and nothing
// is decided, when rec is not Replayable.
func (p *Policy) Replay(ctx context.Context, log *slog.Logger, rec Record) (v Verdict, module, message string, ok bool) {
	if !rec.Replayable() {
		return 0, "", "", false
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch rec.Kind {
	case RecordAuthn:
		c := *rec.Client
		if p.authnTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, p.authnTimeout)
			defer cancel()
		}
		res := p.authenticate(ctx, log, &AuthnRequest{Client: &c})
		return res.Verdict, res.Module, res.Message, true
	default:
		res := p.Authorize(ctx, log, &AuthzRequest{Client: rec.Client, Action: rec.Action, Topic: rec.Topic,
			QoS: rec.QoS, Retain: rec.Retain, ShareGroup: rec.ShareGroup})
		return res.Verdict, res.Module, res.Message, true
	}
}

// Authorize decides req on p without the cache, the recorder or the
// shadow plugins: for judging a version that is not (or not yet) in force.
// req.Client must be set.
func (p *Policy) Authorize(ctx context.Context, log *slog.Logger, req *AuthzRequest) AuthzResult {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return p.authorize(ctx, log, req)
}
