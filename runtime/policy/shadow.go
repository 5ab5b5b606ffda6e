package policy

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A shadow plugin is a trial of a new policy: it is asked the questions
// the live chains are asked, its answers are compared with the live
// verdicts, and it never decides anything.
//
// It runs off the hot path. The Decider hands each question, after the
// live verdict is known, to the shadow's bounded queue without waiting:
// when the queue is full the question is dropped and counted, so a slow
// or stuck shadow costs the broker one failed channel send, never a
// delay. One worker per shadow drains the queue; each call is bounded by
// the plugin's own timeout and instance pool, as any plugin's.
//
// A shadow is asked what the live chain is asked: authorization requests
// that missed the decision cache (a cached verdict was decided by the
// chain, and the shadow, already), never those of a superuser (no module
// is), CONNECTs (round 0 only: later rounds of enhanced authentication
// carry the live module's state) and payload decisions (only when the
// live policy has a payload chain: without one the broker asks no payload
// question).
//
// A shadow that takes authn decisions gets the CONNECT's credentials, as a
// live authn plugin does: a copy waits in its queue, in memory only, until
// the worker asks the module; it is never logged or recorded.
//
// A shadow's answer is compared as if it were the whole chain: "ignore"
// becomes the no_match verdict of the version (authz_no_match, or
// allow_anonymous and no_match for authn; plaintext for payload), and an
// error its own on_error. A Continue on either side of an authentication
// is not compared (skipped).

// ShadowOptions configure a shadow plugin.
type ShadowOptions struct {
	// Sample is the fraction of requests the shadow is asked about, 0 to
	// 1. Sampling is random per request.
	Sample float64
	// Queue is how many questions may wait for the worker; default 256.
	Queue int
	// ReadsPayload says that the module reads payloads (allow_payload):
	// its payload requests carry a copy of the payload. Otherwise they
	// carry none, which is all such a module would see.
	ReadsPayload bool
	// OnError is what an error of the shadow means for the comparison.
	OnError OnError
}

// Shadow is one shadow plugin of a policy version. Build it with
// NewShadow and hand it to New in Options.Shadows; the Policy starts its
// worker on its first question and stops it in Close.
type Shadow struct {
	name    string
	authn   Authenticator
	authz   Authorizer
	payload Payloader
	opts    ShadowOptions

	// Set by New from the version's settings, then read-only.
	noMatch        Verdict
	authzNoMatch   Verdict
	allowAnonymous bool

	queue chan shadowJob
	// queuedPayload bounds the payload bytes copied into the queue.
	queuedPayload atomic.Int64

	mu      sync.Mutex // guards started, stopped, cancel
	started bool
	stopped bool
	cancel  context.CancelFunc
	done    chan struct{}
	running atomic.Bool

	sampled, dropped, agreed, disagreed, errs, skipped atomic.Uint64

	// limiter state, used by the worker only.
	window     time.Time
	logged     int
	suppressed int
}

// Disagreements are logged at most shadowLogBurst times per second per
// shadow; the rest are counted and the next record says how many.
const shadowLogBurst = 10

// maxShadowPayload bounds the payload bytes waiting in one shadow's queue:
// past it, payload questions are dropped, so that a full queue of large
// messages cannot pin queue times the maximum packet size.
const maxShadowPayload = 4 << 20

// NewShadow returns a shadow plugin named name asking authn, authz and
// payload, each nil when the plugin is not asked that kind of question.
func NewShadow(name string, authn Authenticator, authz Authorizer, payload Payloader, opts ShadowOptions) *Shadow {
	if opts.Queue <= 0 {
		opts.Queue = 256
	}
	return &Shadow{name: name, authn: authn, authz: authz, payload: payload, opts: opts,
		queue: make(chan shadowJob, opts.Queue), done: make(chan struct{})}
}

// ShadowStats counts what a shadow plugin did since its version was put in
// force.
type ShadowStats struct {
	Name string `json:"name"`
	// Sampled counts the questions queued; Dropped those sampled but not
	// queued because the queue (or its payload budget) was full.
	Sampled uint64 `json:"sampled"`
	Dropped uint64 `json:"dropped"`
	// Agreed and Disagreed count the answers compared with the live
	// verdict; Skipped those that could not be (a Continue); Errors the
	// calls that failed (their on_error answer is compared too).
	Agreed    uint64 `json:"agreed"`
	Disagreed uint64 `json:"disagreed"`
	Skipped   uint64 `json:"skipped"`
	Errors    uint64 `json:"errors"`
}

// Stats returns the shadow's counters.
func (sh *Shadow) Stats() ShadowStats {
	return ShadowStats{Name: sh.name, Sampled: sh.sampled.Load(), Dropped: sh.dropped.Load(),
		Agreed: sh.agreed.Load(), Disagreed: sh.disagreed.Load(), Skipped: sh.skipped.Load(), Errors: sh.errs.Load()}
}

// shadowJob is one question, copied out of the broker's memory, with the
// live answer.
type shadowJob struct {
	authn   *AuthnRequest
	authz   *AuthzRequest
	payload *PayloadRequest

	live       Verdict
	liveMode   Mode
	liveModule string
}

// sample decides whether this request is asked about.
func (sh *Shadow) sample() bool {
	s := sh.opts.Sample
	return s >= 1 || (s > 0 && rand.Float64() < s)
}

// offer queues j without blocking. The caller holds the version (it is
// pinned by Decider.acquire), so Close has not begun.
func (sh *Shadow) offer(log *slog.Logger, j shadowJob, payloadBytes int) {
	if !sh.running.Load() {
		sh.start(log)
	}
	if payloadBytes > 0 && sh.queuedPayload.Add(int64(payloadBytes)) > maxShadowPayload {
		sh.queuedPayload.Add(-int64(payloadBytes))
		sh.dropped.Add(1)
		return
	}
	select {
	case sh.queue <- j:
		sh.sampled.Add(1)
	default:
		sh.queuedPayload.Add(-int64(payloadBytes))
		sh.dropped.Add(1)
	}
}

// start starts the worker once; never after stop.
func (sh *Shadow) start(log *slog.Logger) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.started || sh.stopped {
		return
	}
	sh.started = true
	ctx, cancel := context.WithCancel(context.Background())
	sh.cancel = cancel
	go sh.run(ctx, log)
	sh.running.Store(true)
}

// stop cancels the call in progress, stops the worker and waits for it.
// Questions still queued are dropped uncounted.
func (sh *Shadow) stop() {
	sh.mu.Lock()
	sh.stopped = true
	started := sh.started
	if started {
		sh.cancel()
	}
	sh.mu.Unlock()
	if started {
		<-sh.done
	}
}

func (sh *Shadow) run(ctx context.Context, log *slog.Logger) {
	defer close(sh.done)
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-sh.queue:
			if j.payload != nil {
				sh.queuedPayload.Add(-int64(len(j.payload.Payload)))
			}
			sh.decide(ctx, log, j)
		}
	}
}

// decide asks the module and compares.
func (sh *Shadow) decide(ctx context.Context, log *slog.Logger, j shadowJob) {
	var (
		got     Verdict
		gotMode Mode
		err     error
	)
	switch {
	case j.authn != nil:
		var res AuthnResult
		res, err = sh.authn.Authenticate(ctx, j.authn)
		got = res.Verdict
		if err == nil && got == Ignore {
			got = sh.authnNoMatch(j.authn)
		}
	case j.authz != nil:
		var res AuthzResult
		res, err = sh.authz.Authorize(ctx, j.authz)
		got = res.Verdict
		if err == nil && got == Ignore {
			got = sh.authzNoMatch
		}
	case j.payload != nil:
		var res PayloadResult
		res, err = sh.payload.Payload(ctx, j.payload)
		got, gotMode = res.Verdict, res.Mode
		if err == nil && got == Ignore {
			got, gotMode = Allow, ModePlaintext
		}
		if got == Allow && gotMode == 0 {
			gotMode = ModePlaintext
		}
	}
	if ctx.Err() != nil {
		return // stopped: the version is being closed
	}
	if err != nil {
		sh.errs.Add(1)
		log.Debug("shadow plugin failed", "module", sh.name, "err", err)
		switch sh.opts.OnError {
		case ErrorAllow:
			got, gotMode = Allow, ModePlaintext
		case ErrorIgnore:
			switch {
			case j.authn != nil:
				got = sh.authnNoMatch(j.authn)
			case j.authz != nil:
				got = sh.authzNoMatch
			default:
				got, gotMode = Allow, ModePlaintext
			}
		default:
			got = Deny
		}
	}
	if got == Continue || j.live == Continue || (got != Allow && got != Deny) {
		sh.skipped.Add(1)
		return
	}
	same := got == j.live
	if same && j.payload != nil && got == Allow {
		same = gotMode == j.liveMode
	}
	if same {
		sh.agreed.Add(1)
		return
	}
	sh.disagreed.Add(1)
	sh.logDisagreement(ctx, log, j, got, gotMode)
}

// authnNoMatch is what the version decides for a CONNECT no module decides.
func (sh *Shadow) authnNoMatch(req *AuthnRequest) Verdict {
	if sh.allowAnonymous && req.Client.Username == "" && req.Password == nil && req.AuthMethod == "" {
		return Allow
	}
	return sh.noMatch
}

// logDisagreement writes one record, unless this second's burst is spent.
// It names the request, never its password, authentication data or payload.
func (sh *Shadow) logDisagreement(ctx context.Context, log *slog.Logger, j shadowJob, got Verdict, gotMode Mode) {
	now := time.Now()
	if now.Sub(sh.window) >= time.Second {
		sh.window, sh.logged = now, 0
	}
	if sh.logged >= shadowLogBurst {
		sh.suppressed++
		return
	}
	sh.logged++
	attrs := []any{"module", sh.name}
	switch {
	case j.authn != nil:
		attrs = append(attrs, "chain", "authn", "client_id", j.authn.Client.ClientID, "username", j.authn.Client.Username,
			"remote", j.authn.Client.RemoteAddr)
	case j.authz != nil:
		attrs = append(attrs, "chain", "authz", "client_id", j.authz.Client.ClientID, "username", j.authz.Client.Username,
			"action", j.authz.Action.String(), "topic", j.authz.Topic)
		if j.authz.ShareGroup != "" {
			attrs = append(attrs, "share_group", j.authz.ShareGroup)
		}
	case j.payload != nil:
		attrs = append(attrs, "chain", "payload", "client_id", j.payload.Client.ClientID, "username", j.payload.Client.Username,
			"action", j.payload.Action.String(), "topic", j.payload.Topic)
	}
	attrs = append(attrs, "live", j.live.String(), "live_module", j.liveModule, "shadow", got.String())
	if j.payload != nil {
		attrs = append(attrs, "live_mode", j.liveMode.String(), "shadow_mode", gotMode.String())
	}
	if sh.suppressed > 0 {
		attrs = append(attrs, "suppressed", sh.suppressed)
		sh.suppressed = 0
	}
	log.InfoContext(ctx, "shadow plugin disagrees", attrs...)
}

// The observe methods are called by the Decider with the version pinned,
// after the live verdict is known.

func (p *Policy) observeAuthn(log *slog.Logger, req *AuthnRequest, res AuthnResult) {
	if req.Round != 0 {
		return
	}
	var j *AuthnRequest
	for _, sh := range p.shadows {
		if sh.authn == nil || !sh.sample() {
			continue
		}
		if j == nil {
			// The broker completes the Client after authentication and
			// reuses the packet's memory: the shadow gets copies.
			c := *req.Client
			j = &AuthnRequest{Client: &c, Password: bytes.Clone(req.Password),
				UserProperties: cloneProps(req.UserProperties),
				AuthMethod:     strings.Clone(req.AuthMethod), AuthData: bytes.Clone(req.AuthData)}
		}
		sh.offer(log, shadowJob{authn: j, live: res.Verdict, liveModule: res.Module}, 0)
	}
}

func (p *Policy) observeAuthz(log *slog.Logger, req *AuthzRequest, res AuthzResult) {
	var j *AuthzRequest
	for _, sh := range p.shadows {
		if sh.authz == nil || !sh.sample() {
			continue
		}
		if j == nil {
			j = &AuthzRequest{Client: req.Client, Action: req.Action, Topic: strings.Clone(req.Topic),
				QoS: req.QoS, Retain: req.Retain, ShareGroup: strings.Clone(req.ShareGroup)}
		}
		sh.offer(log, shadowJob{authz: j, live: res.Verdict, liveModule: res.Module}, 0)
	}
}

func (p *Policy) observePayload(log *slog.Logger, req *PayloadRequest, res PayloadResult) {
	for _, sh := range p.shadows {
		if sh.payload == nil || !sh.sample() {
			continue
		}
		j := &PayloadRequest{Client: req.Client, Action: req.Action, Topic: strings.Clone(req.Topic),
			QoS: req.QoS, Retain: req.Retain, ContentType: strings.Clone(req.ContentType),
			UserProperties: cloneProps(req.UserProperties), EnvelopeKeyID: strings.Clone(req.EnvelopeKeyID), Mode: req.Mode}
		if sh.opts.ReadsPayload {
			j.Payload = bytes.Clone(req.Payload)
		}
		sh.offer(log, shadowJob{payload: j, live: res.Verdict, liveMode: res.Mode, liveModule: res.Module}, len(j.Payload))
	}
}

func cloneProps(ps []Property) []Property {
	if ps == nil {
		return nil
	}
	out := make([]Property, len(ps))
	for i, p := range ps {
		out[i] = Property{Key: strings.Clone(p.Key), Value: strings.Clone(p.Value)}
	}
	return out
}

// ShadowStats returns the counters of the version's shadow plugins, in
// file order.
func (p *Policy) ShadowStats() []ShadowStats {
	out := make([]ShadowStats, len(p.shadows))
	for i, sh := range p.shadows {
		out[i] = sh.Stats()
	}
	return out
}
