package server

import (
	"log/slog"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// newShadow makes a [[plugin]] with shadow = true a shadow of the policy:
// asked what the live chains of its decisions are asked, on its own
// module (own timeout, own instance pool), deciding nothing. Its
// disagreements are logged by the Decider's logger and counted
// (Server.ShadowStats).
//
// A shadow that lists "payload" is asked only when the live policy has a
// payload chain: without one the broker asks no payload question at all.
func newShadow(pc config.Plugin, m *wasm.Module, onError policy.OnError) *policy.Shadow {
	var (
		authn   policy.Authenticator
		authz   policy.Authorizer
		payload policy.Payloader
	)
	if pc.Lists(config.DecisionAuthn) {
		authn = m
	}
	if pc.Lists(config.DecisionAuthz) {
		authz = m
	}
	if pc.Lists(config.DecisionPayload) {
		payload = m
	}
	return policy.NewShadow(pc.Name, authn, authz, payload, policy.ShadowOptions{
		Sample:       pc.ShadowSample,
		ReadsPayload: pc.AllowPayload,
		OnError:      onError,
	})
}

// ShadowStats returns the counters of the shadow plugins of the version in
// force: what each was asked, and how often it disagreed with the live
// verdict. They start from zero with each reload.
func (s *Server) ShadowStats() []policy.ShadowStats {
	if s.decider == nil {
		return nil
	}
	return s.decider.Policy().ShadowStats()
}

// logShadowTotals writes the counters of p's shadow plugins when p leaves
// service, since they restart from zero with the next version.
func logShadowTotals(log *slog.Logger, p *policy.Policy) {
	for _, st := range p.ShadowStats() {
		log.Info("shadow plugin totals", "module", st.Name, "sampled", st.Sampled, "dropped", st.Dropped,
			"agreed", st.Agreed, "disagreed", st.Disagreed, "skipped", st.Skipped, "errors", st.Errors)
	}
}
