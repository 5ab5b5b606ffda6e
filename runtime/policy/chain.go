package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"
)

// Authenticator decides CONNECTs. runtime/wasm implements it for modules;
// outsiders may implement it too (tests, native Go policies). Implementations
// must be safe for concurrent use and must not keep req or anything it points
// to after returning.
type Authenticator interface {
	Authenticate(ctx context.Context, req *AuthnRequest) (AuthnResult, error)
}

// Payloader decides what happens to message payloads (the payload policy),
// with the same rules as Authenticator.
type Payloader interface {
	Payload(ctx context.Context, req *PayloadRequest) (PayloadResult, error)
}

// Authorizer decides publishes, subscriptions and deliveries, with the same
// rules as Authenticator.
type Authorizer interface {
	Authorize(ctx context.Context, req *AuthzRequest) (AuthzResult, error)
}

// OnError says what a module's error (a trap, a timeout, a malformed result)
// means. It is never a panic and never silently "allow" unless configured.
type OnError uint8

const (
	// ErrorDeny fails closed; the default.
	ErrorDeny OnError = iota
	// ErrorAllow fails open: for a module whose outage must not lock out a
	// fleet, chosen explicitly in moat.toml.
	ErrorAllow
	// ErrorIgnore passes the request to the next module.
	ErrorIgnore
)

// ParseOnError parses the on_error setting of moat.toml.
func ParseOnError(s string) (OnError, error) {
	switch s {
	case "", "deny":
		return ErrorDeny, nil
	case "allow":
		return ErrorAllow, nil
	case "ignore":
		return ErrorIgnore, nil
	}
	return 0, fmt.Errorf("policy: on_error %q: want \"deny\", \"allow\" or \"ignore\"", s)
}

// Step is one module in a chain.
type Step[T any] struct {
	Name    string
	Module  T
	OnError OnError

	// brk holds the step's circuit breakers, one per action; set by New
	// for authz and payload steps, nil when breakers are disabled.
	brk *[5]breaker
	// obs records the step's calls (Options.Observer); nil records nothing.
	obs StepObserver
	// conc caps the step's concurrent calls (authnguard.go); nil: no cap.
	conc *concLimit
}

// call runs one decision of the step through its breaker: when the breaker
// is open, decide is not called and the result is errBreakerOpen.
func stepCall[T, R any](s *Step[T], a Action, log *slog.Logger, chain string, decide func() (R, error)) (R, error) {
	if s.brk == nil || int(a) >= len(s.brk) {
		return concCall(s.conc, decide)
	}
	b := &s.brk[a]
	ok, probe := b.allow()
	if !ok {
		var zero R
		return zero, errBreakerOpen
	}
	res, err := concCall(s.conc, decide)
	b.done(err, probe, log, chain, s.Name)
	return res, err
}

// concCall runs decide within the step's concurrency cap.
func concCall[R any](c *concLimit, decide func() (R, error)) (R, error) {
	if !c.acquire() {
		var zero R
		return zero, errOverloaded
	}
	defer c.release()
	return decide()
}

// errLevel is the level a module error is logged at: an answer of an open
// breaker is at debug, since the opening was logged and every request
// until the cooldown ends gets the same answer.
func errLevel(err error) slog.Level {
	if err == errBreakerOpen {
		return slog.LevelDebug
	}
	return slog.LevelError
}

// withBreakers returns a copy of steps, each with breakers of its own.
func withBreakers[T any](steps []Step[T], opts *BreakerOptions) []Step[T] {
	out := make([]Step[T], len(steps))
	for i, s := range steps {
		if opts.Failures > 0 {
			s.brk = new([5]breaker)
			for j := range s.brk {
				s.brk[j].opts = opts
			}
		}
		out[i] = s
	}
	return out
}

// Policy is one immutable version of the whole policy: the chains and the
// settings that govern them. A reload builds a new Policy and swaps it in
// with Decider.Swap; the old one serves the calls that started on it and is
// then closed.
type Policy struct {
	authn          []Step[Authenticator]
	authz          []Step[Authorizer]
	payload        []Step[Payloader]
	noMatch        Verdict
	authzNoMatch   Verdict
	allowAnonymous bool
	authnTimeout   time.Duration
	closers        []io.Closer
	shadows        []*Shadow

	inflight atomic.Int64
	closed   atomic.Bool
}

// Options are the settings of a Policy besides its chains.
type Options struct {
	// AllowAnonymous lets a client without username and password in when no
	// authentication module decides.
	AllowAnonymous bool
	// NoMatch is the authentication verdict when every module of a
	// non-empty authn chain ignores a CONNECT: Deny (the default, when
	// zero) or Allow. Without authn modules AllowAnonymous alone decides.
	NoMatch Verdict
	// AuthzNoMatch is the authorization verdict when no authz module
	// decides: every module ignored the request, or the chain is empty.
	// Deny (the default, when zero) or Allow: authorization that is not
	// configured denies unless the operator says otherwise.
	AuthzNoMatch Verdict
	// Closers are closed, in order, by Close: the modules of this version.
	Closers []io.Closer
	// Payload is the payload-policy chain.
	Payload []Step[Payloader]
	// Breaker configures each plugin's circuit breaker.
	Breaker BreakerOptions
	// AuthnTimeout bounds one run of the authentication chain, every
	// module together ([auth] timeout); 0 leaves it to each module's own
	// timeout. It belongs to the version so that a reload changes it.
	AuthnTimeout time.Duration
	// Shadows are the version's shadow plugins (shadow.go): asked what
	// the chains are asked, deciding nothing. Close stops them before it
	// closes Closers.
	Shadows []*Shadow
	// Observer, when set, is told of every plugin call (outcome and
	// latency) and breaker transition; see Observer.
	Observer Observer
	// PluginConcurrency caps the calls each plugin may have running or
	// waiting for an instance ([limits] plugin_concurrency); 0: no cap.
	PluginConcurrency int
}

// New builds a Policy. The chains run in the order given.
func New(authn []Step[Authenticator], authz []Step[Authorizer], opts Options) *Policy {
	if opts.NoMatch != Allow {
		opts.NoMatch = Deny
	}
	if opts.AuthzNoMatch != Allow {
		opts.AuthzNoMatch = Deny
	}
	if opts.Breaker.Failures == 0 {
		opts.Breaker.Failures = defaultBreakerFailures
	}
	if opts.Breaker.Cooldown <= 0 {
		opts.Breaker.Cooldown = defaultBreakerCooldown
	}
	bo := &opts.Breaker
	for _, sh := range opts.Shadows {
		sh.noMatch, sh.authzNoMatch, sh.allowAnonymous = opts.NoMatch, opts.AuthzNoMatch, opts.AllowAnonymous
	}
	p := &Policy{
		authn:          withConcurrency(withBreakers(authn, &BreakerOptions{}), opts.PluginConcurrency), // a copy, no breaker: see BreakerOptions
		authz:          withConcurrency(withBreakers(authz, bo), opts.PluginConcurrency),
		payload:        withConcurrency(withBreakers(opts.Payload, bo), opts.PluginConcurrency),
		noMatch:        opts.NoMatch,
		authzNoMatch:   opts.AuthzNoMatch,
		allowAnonymous: opts.AllowAnonymous,
		authnTimeout:   opts.AuthnTimeout,
		closers:        opts.Closers,
		shadows:        opts.Shadows,
	}
	withObservers(p.authn, opts.Observer, "authn")
	withObservers(p.authz, opts.Observer, "authz")
	withObservers(p.payload, opts.Observer, "payload")
	return p
}

// Close waits for the calls that are running on this version to return,
// then closes its modules. The caller must have swapped it out first.
func (p *Policy) Close(ctx context.Context) error {
	if p.closed.Swap(true) {
		return nil
	}
	for p.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("policy: close: %d calls still running: %w", p.inflight.Load(), ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	for _, sh := range p.shadows {
		sh.stop()
	}
	closeBreakers(p.authz)
	closeBreakers(p.payload)
	var errs []error
	for _, c := range p.closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// authenticate runs the authn chain. Errors are resolved here by each step's
// OnError and logged; the result always carries a final verdict.
func (p *Policy) authenticate(ctx context.Context, log *slog.Logger, req *AuthnRequest) (res AuthnResult) {
	// erred: a module's error was ignored, so what the rest of the chain
	// decides is not to be remembered as a failure.
	erred := false
	defer func() { res.transient = res.transient || erred }()
	for i := range p.authn {
		s := &p.authn[i]
		res, err := observe(s, authnVerdict, func() (AuthnResult, error) {
			return concCall(s.conc, func() (AuthnResult, error) { return s.Module.Authenticate(ctx, req) })
		})
		if err != nil {
			log.Log(ctx, errLevel(err), "authn module failed", "audit", "plugin_error", "module", s.Name, "client_id", req.Client.ClientID, "err", err)
			erred = true
			switch s.OnError {
			case ErrorAllow:
				return AuthnResult{Verdict: Allow, Module: s.Name, Message: "module error, on_error = allow"}
			case ErrorIgnore:
				continue
			default:
				return AuthnResult{Verdict: Deny, Reason: ReasonNotAuthorized, Module: s.Name, Message: "module error", transient: true}
			}
		}
		switch res.Verdict {
		case Allow, Deny, Continue:
			res.Module = s.Name
			if res.Verdict == Deny && res.Reason == 0 {
				res.Reason = ReasonBadUserNameOrPass
			}
			return res
		case Ignore:
			continue
		}
	}
	if p.allowAnonymous && req.Client.Username == "" && req.Password == nil && req.AuthMethod == "" {
		return AuthnResult{Verdict: Allow, Message: "anonymous"}
	}
	if p.noMatch == Allow && len(p.authn) > 0 {
		return AuthnResult{Verdict: Allow, Message: "no module matched; no_match = allow"}
	}
	return AuthnResult{Verdict: Deny, Reason: ReasonNotAuthorized, Message: "no module matched"}
}

// authorize runs the authz chain. A superuser is not asked about. When no
// module decides, and when there is no module at all, AuthzNoMatch does:
// unlike Mosquitto without an acl_file, authorization that is not
// configured denies unless the operator chose allow (see
// Options.AuthzNoMatch).
func (p *Policy) authorize(ctx context.Context, log *slog.Logger, req *AuthzRequest) AuthzResult {
	if req.Client.Superuser {
		return AuthzResult{Verdict: Allow}
	}
	// erred is set once a module's error was ignored (on_error =
	// "ignore"): whatever the rest of the chain decides then depends on
	// that error and must not be cached, or one timeout would turn into a
	// verdict of the next module, or of no_match, for a whole TTL.
	erred := false
	for i := range p.authz {
		s := &p.authz[i]
		res, err := observe(s, authzVerdict, func() (AuthzResult, error) {
			return stepCall(s, req.Action, log, "authz", func() (AuthzResult, error) { return s.Module.Authorize(ctx, req) })
		})
		if err != nil {
			if err != errBreakerOpen { // logged as it opened; its answers are counted (observe), not logged one by one
				log.Log(ctx, slog.LevelError, "authz module failed", "audit", "plugin_error", "module", s.Name, "client_id", req.Client.ClientID,
					"action", req.Action.String(), "topic", req.Topic, "err", err)
			}
			switch s.OnError {
			case ErrorAllow:
				return AuthzResult{Verdict: Allow, Module: s.Name, transient: true}
			case ErrorIgnore:
				erred = true
				continue
			default:
				return AuthzResult{Verdict: Deny, Reason: ReasonNotAuthorized, Module: s.Name, Message: "module error", transient: true}
			}
		}
		switch res.Verdict {
		case Allow, Deny:
			res.Module = s.Name
			if res.Verdict == Deny && res.Reason == 0 {
				res.Reason = ReasonNotAuthorized
			}
			res.transient = erred
			return res
		}
	}
	if p.authzNoMatch == Allow {
		return AuthzResult{Verdict: Allow, transient: erred}
	}
	msg := "no module matched"
	if len(p.authz) == 0 {
		msg = "no authz module; authz no_match = deny"
	}
	return AuthzResult{Verdict: Deny, Reason: ReasonNotAuthorized, Message: msg, transient: erred}
}

// HasPayload reports whether a payload policy is configured; without one
// every payload is plaintext and the broker skips the payload hooks.
func (p *Policy) HasPayload() bool { return len(p.payload) > 0 }

// payloadDecision runs the payload chain. When every module ignores, the
// message is plaintext: the publish itself was already authorized.
func (p *Policy) payloadDecision(ctx context.Context, log *slog.Logger, req *PayloadRequest) PayloadResult {
	for i := range p.payload {
		s := &p.payload[i]
		res, err := observe(s, payloadVerdict, func() (PayloadResult, error) {
			return stepCall(s, req.Action, log, "payload", func() (PayloadResult, error) { return s.Module.Payload(ctx, req) })
		})
		if err != nil {
			log.Log(ctx, errLevel(err), "payload module failed", "audit", "plugin_error", "module", s.Name, "client_id", req.Client.ClientID,
				"topic", req.Topic, "err", err)
			switch s.OnError {
			case ErrorAllow:
				return PayloadResult{Verdict: Allow, Mode: ModePlaintext, Module: s.Name}
			case ErrorIgnore:
				continue
			default:
				return PayloadResult{Verdict: Deny, Reason: ReasonNotAuthorized, Module: s.Name, Message: "module error"}
			}
		}
		switch res.Verdict {
		case Allow, Deny:
			res.Module = s.Name
			if res.Verdict == Deny && res.Reason == 0 {
				res.Reason = ReasonNotAuthorized
			}
			if res.Verdict == Allow && res.Mode == 0 {
				res.Mode = ModePlaintext
			}
			return res
		}
	}
	return PayloadResult{Verdict: Allow, Mode: ModePlaintext}
}
