package policy

import "time"

// Outcome is what one call into a plugin came to, as counted by a
// StepObserver.
type Outcome uint8

// Outcomes of a plugin call. OutcomeError covers traps, timeouts, malformed
// results and answers of an open circuit breaker, whatever the plugin's
// on_error made of them.
const (
	OutcomeAllow Outcome = iota
	OutcomeDeny
	OutcomeIgnore
	OutcomeContinue // authn only: an MQTT 5 AUTH exchange goes on
	OutcomeError
	NumOutcomes // the number of outcomes, for tables indexed by Outcome
)

// String returns the outcome as a metric label: "allow", "deny", "ignore",
// "continue" or "error".
func (o Outcome) String() string {
	switch o {
	case OutcomeAllow:
		return "allow"
	case OutcomeDeny:
		return "deny"
	case OutcomeIgnore:
		return "ignore"
	case OutcomeContinue:
		return "continue"
	}
	return "error"
}

func outcomeOf(v Verdict, err error) Outcome {
	if err != nil {
		return OutcomeError
	}
	switch v {
	case Allow:
		return OutcomeAllow
	case Deny:
		return OutcomeDeny
	case Continue:
		return OutcomeContinue
	case Ignore:
		return OutcomeIgnore
	}
	return OutcomeError // a verdict no chain accepts
}

// StepObserver records the calls into one plugin for one kind of decision.
// It runs on the decision hot path, so implementations resolve everything
// they need (metric children, labels) when Observer.Step returns them and
// do no lookup per call. Implementations must be safe for concurrent use;
// outsiders may implement it.
type StepObserver interface {
	// Observe records one call: its outcome and how long it took. d is
	// negative when the plugin was not called because its circuit breaker
	// is open (the outcome is then OutcomeError): no latency to record.
	Observe(o Outcome, d time.Duration)
	// BreakerOpened records that one of the plugin's circuit breakers (one
	// per action) opened, or opened again after a failed probe (reopened).
	BreakerOpened(reopened bool)
	// BreakerClosed records that an open breaker closed: its probe
	// succeeded, or its policy version was closed while it was open.
	BreakerClosed()
}

// Observer hands out the StepObserver of each plugin and decision kind
// ("authn", "authz", "payload"). It is asked once per step when a Policy
// is built (so once per reload), never per decision.
type Observer interface {
	Step(kind, plugin string) StepObserver
}

// CacheStats counts the lookups of the authorization decision cache. A
// Decider given one (CacheOptions.Stats) adds to it; readers load the
// fields at any time. Requests the cache cannot hold (cache disabled,
// unknown action) are neither.
type CacheStats struct {
	Hits   atomicCounter
	Misses atomicCounter
}

// observe wraps a plugin call with the step's observer: it times decide
// and records its outcome. Without an observer it costs one nil check.
func observe[T, R any](s *Step[T], verdict func(R) Verdict, decide func() (R, error)) (R, error) {
	if s.obs == nil {
		return decide()
	}
	start := time.Now()
	res, err := decide()
	d := time.Since(start)
	if err == errBreakerOpen {
		d = -1
	}
	s.obs.Observe(outcomeOf(verdict(res), err), d)
	return res, err
}

// withObservers sets each step's observer from o, for kind.
func withObservers[T any](steps []Step[T], o Observer, kind string) {
	if o == nil {
		return
	}
	for i := range steps {
		steps[i].obs = o.Step(kind, steps[i].Name)
		if b := steps[i].brk; b != nil {
			for j := range b {
				b[j].obs = steps[i].obs
			}
		}
	}
}

func authnVerdict(r AuthnResult) Verdict     { return r.Verdict }
func authzVerdict(r AuthzResult) Verdict     { return r.Verdict }
func payloadVerdict(r PayloadResult) Verdict { return r.Verdict }

// closeBreakers tells the observers of the steps' open breakers that they
// are gone with their policy version, so that an "open breakers" gauge does
// not keep counting them after a reload.
func closeBreakers[T any](steps []Step[T]) {
	for i := range steps {
		b := steps[i].brk
		if b == nil || steps[i].obs == nil {
			continue
		}
		for j := range b {
			if b[j].openUntil.Load() != 0 {
				steps[i].obs.BreakerClosed()
			}
		}
	}
}
