package wasm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// Authorize runs the module's moat_authorize on req. It implements
// policy.Authorizer: a deny is a result, not an error; an error is a
// plugin error (trap, deadline, malformed result, no free instance), after
// which the instance that failed is replaced.
//
// The warm path allocates nothing unless the guest sets a message.
func (m *Module) Authorize(ctx context.Context, req *policy.AuthzRequest) (policy.AuthzResult, error) {
	s, res, err := m.decide(ctx, KindAuthz, request{authz: req})
	if err != nil {
		return policy.AuthzResult{}, err
	}
	st := &s.in.st
	out := policy.AuthzResult{Verdict: policy.Verdict(res.verdict), Reason: res.reason}
	if st.hasMessage {
		out.Message = string(st.message)
	}
	m.done(s)
	return out, nil
}

// Authenticate runs the module's moat_authenticate on req. It implements
// policy.Authenticator, with the same error rules as Authorize.
func (m *Module) Authenticate(ctx context.Context, req *policy.AuthnRequest) (policy.AuthnResult, error) {
	s, res, err := m.decide(ctx, KindAuthn, request{authn: req})
	if err != nil {
		return policy.AuthnResult{}, err
	}
	st := &s.in.st
	out := policy.AuthnResult{
		Verdict:   policy.Verdict(res.verdict),
		Reason:    res.reason,
		Superuser: res.superuser,
		AuthData:  st.authData,
		AuthState: st.authState,
	}
	if res.verdict == VerdictAllow {
		// Attributes and expiry describe an admitted client; from a deny
		// or an ignore they would be attached to nobody.
		out.Attributes = st.attrs
		if st.expiry != 0 {
			out.Expiry = time.Unix(0, st.expiry)
		}
	}
	if st.hasMessage {
		out.Message = string(st.message)
	}
	st.reset(phaseIdle) // the result owns attrs, authData and authState now
	m.done(s)
	return out, nil
}

// request is the request of one decision: the field of its kind is set.
// A struct rather than a closure keeps the call direct and allocation-free.
type request struct {
	authn   *policy.AuthnRequest
	authz   *policy.AuthzRequest
	payload *policy.PayloadRequest
}

// decisionOps names each decision in errors.
var decisionOps = [...]string{KindAuthn: "authenticate", KindAuthz: "authorize", KindPayload: "payload"}

// decisionPhases is the phase of each decision.
var decisionPhases = [...]phase{KindAuthn: phaseAuthn, KindAuthz: phaseAuthz, KindPayload: phasePayload}

// decide is the sequence every decision shares: claim an instance, start
// the clock, encode the request into the guest buffer, call the guest,
// decode its result. On success the caller reads what the guest set from
// s.in.st, then hands the slot back with done; on error the instance has
// gone to the manager already and the error names the plugin and the
// decision.
func (m *Module) decide(ctx context.Context, kind byte, req request) (*slot, result, error) {
	if !m.decides[kind] {
		return nil, result{}, m.callErr(decisionOps[kind], errNotDecided)
	}
	s, err := m.acquire(ctx)
	if err != nil {
		return nil, result{}, m.callErr(decisionOps[kind], err)
	}
	in := s.in
	in.setDeadline(ctx)
	in.st.reset(decisionPhases[kind])
	r, err := in.run(kind, req)
	in.st.payload = nil // the instance forgets the payload when the call ends
	var res result
	if err == nil {
		res, err = decodeResult(kind, r, kind == KindAuthn && req.authn.AuthMethod != "")
	}
	if err != nil {
		m.fail(s)
		return nil, result{}, m.callErr(decisionOps[kind], err)
	}
	in.trimStack(&in.decide[kind], decisionEx[kind])
	return s, res, nil
}

// run encodes req into the guest buffer and calls the decision's export.
func (in *instance) run(kind byte, req request) (uint32, error) {
	var n uint32
	switch kind {
	case KindAuthz:
		size := authzSize(req.authz)
		b, err := in.room(size)
		if err != nil {
			return 0, err
		}
		n = encodeAuthz(b, req.authz, size, &in.prefix)
	case KindAuthn:
		size := authnSize(req.authn)
		b, err := in.room(size)
		if err != nil {
			return 0, err
		}
		n = encodeAuthn(b, req.authn, size)
	default:
		size := payloadSize(req.payload)
		b, err := in.room(size)
		if err != nil {
			return 0, err
		}
		n = encodePayload(b, req.payload, size)
		if in.m.payload {
			// Non-nil even when empty: payload_read then answers 0 (the
			// end), not -1 (not granted).
			in.st.payload = req.payload.Payload
			if in.st.payload == nil {
				in.st.payload = []byte{}
			}
		}
	}
	return in.call(in.decide[kind], n)
}

// done ends a successful decision: the instance goes back to the pool.
func (m *Module) done(s *slot) {
	s.in.st.phase = phaseIdle
	m.pool.release(s)
}

var errNotDecided = errors.New("not a decision of this plugin (see its decisions)")

func (m *Module) callErr(op string, err error) error {
	return fmt.Errorf("wasm: plugin %q: %s: %w", m.name, op, err)
}

// acquire claims an instance for one call.
func (m *Module) acquire(ctx context.Context) (*slot, error) {
	s := m.pool.try(m.pool.hint())
	if s == nil {
		start := time.Now()
		var err error
		s, err = m.pool.acquireSlow(ctx, m.timeout)
		if o := m.e.poolObs; o != nil {
			o.PoolWait(m.name, time.Since(start), err)
		}
		if err != nil {
			return nil, err
		}
	}
	// Close sets closed before it claims the slots, so a call that claimed
	// one first finishes before Close proceeds, and one that claims it
	// after sees closed here.
	if m.closed.Load() {
		m.pool.release(s)
		return nil, ErrClosed
	}
	return s, nil
}

// fail hands a slot whose call failed to the manager. The instance may be
// corrupt (a trap can leave guest state half-updated, and a deadline stops
// the guest anywhere), so it is never reused. The slot stays busy, invisible
// to callers, until a fresh instance is in it; the failing caller returns
// at once.
func (m *Module) fail(s *slot) {
	s.in.st.phase = phaseIdle
	m.broken <- s // never blocks: it holds one entry per slot
}

// manage is the module's one goroutine that instantiates and closes
// instances, so that no caller waits for either: it replaces broken
// instances, adds one when a caller finds every instance busy, and closes
// idle ones. An instantiation that fails (its initialisation can trap
// too) is retried with backoff for a replacement, its slot out of service
// meanwhile while other slots serve; a failed growth is logged and not
// retried for growBackoff, the waiting callers served by the instances
// there are.
func (m *Module) manage() {
	defer close(m.replDone)
	idle := time.NewTicker(m.idleTime)
	defer idle.Stop()
	var growFailed time.Time
	for {
		select {
		case <-m.stopRepl:
			return
		case s := <-m.broken:
			m.closeInstance(s.in)
			s.in = nil
			if !m.refill(s) {
				m.pool.release(s) // Close claims it and finds no instance
				return
			}
		case <-m.pool.grow:
			if time.Since(growFailed) < growBackoff {
				continue
			}
			if err := m.grow(); err != nil {
				growFailed = time.Now()
				m.log.Error("cannot add an instance", "err", err, "retry_after", growBackoff)
			}
		case <-idle.C:
			for _, in := range m.pool.idle() {
				m.closeInstance(in)
			}
		}
	}
}

// growBackoff is how long the manager ignores requests for more instances
// after an instantiation failed.
const growBackoff = time.Second

// grow adds instances while callers wait and the pool is below its cap:
// one per waiting caller, counting the ones that each new instance's
// release has woken but that have not yet left the count of waiters.
func (m *Module) grow() error {
	for added := int32(1); int(m.pool.live.Load()) < len(m.pool.slots); added++ {
		in, err := m.newInstance(context.Background())
		if err != nil {
			return err
		}
		m.pool.add(in)
		if m.pool.waiters.Load() <= added {
			return nil
		}
		select {
		case <-m.stopRepl:
			return nil
		default:
		}
	}
	return nil
}

// refill puts a new instance in s and releases it; false when Close
// stopped it first. Manager only.
func (m *Module) refill(s *slot) bool {
	backoff := 10 * time.Millisecond
	for {
		in, err := m.newInstance(context.Background())
		if err == nil {
			s.in = in
			m.pool.release(s)
			return true
		}
		m.log.Error("cannot replace a failed instance", "err", err, "retry_in", backoff)
		select {
		case <-m.stopRepl:
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// drainBroken closes the instances queued for replacement and frees their
// slots, empty, for Close to claim.
func (m *Module) drainBroken() {
	for {
		select {
		case s := <-m.broken:
			m.closeInstance(s.in)
			s.in = nil
			m.pool.release(s)
		default:
			return
		}
	}
}

// Close waits for the calls in flight (each ends by its deadline), then
// closes every instance and the module's runtime. Calls after Close
// return ErrClosed. It is safe to call more than once.
func (m *Module) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.pool.closing)
		close(m.stopRepl)
		<-m.replDone
		// The manager has stopped: live no longer changes, and the slots
		// beyond it are empty.
		for i := range m.pool.live.Load() {
			s := &m.pool.slots[i]
			for !m.pool.claim(s) {
				// A call that fails now queues its slot for a manager
				// that has stopped: take it from the queue here.
				m.drainBroken()
				time.Sleep(100 * time.Microsecond)
			}
			if s.in != nil {
				m.closeInstance(s.in)
				s.in = nil
			}
		}
		if n := m.logLimit.flush(); n > 0 {
			m.logDropped(n)
		}
		m.closeErr = m.rt.Close(context.Background())
		m.e.release()
	})
	return m.closeErr
}
