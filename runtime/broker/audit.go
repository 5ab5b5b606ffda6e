package broker

import "math/rand/v2"

// The decision audit log (issue 13) is not a second logger: it is the
// records of the broker's own logger that carry an "audit" key, one record
// per event, so that an operator filters them (`jq 'select(.audit)'` with
// [log] format = "json") without configuring a second sink. Values:
//
//   - "deny": a refused CONNECT, a denied publish, subscription or
//     delivery, a refused payload, a subscription revoked or a client
//     disconnected by a reload ("decision" says which chain);
//   - "allow": an allowed CONNECT or authorization, sampled at
//     [log] audit_allow_sample;
//   - "expiry_kick": a client disconnected when its credentials expired;
//   - "plugin_error": a plugin trap, timeout or bad result (runtime/policy);
//   - "reload": a reload, applied or failed (runtime/server).
//
// Admin actions (runtime/server/admin.go) use "admin". No record carries a
// password, authentication data, token, key or payload: only the client
// id, username, remote address, listener, topic, module and reason.

// sampleAllow reports whether this allow is logged as an audit record.
func (h *policyHook) sampleAllow() bool {
	r := h.auditAllow
	return r > 0 && (r >= 1 || rand.Float64() < r)
}

// countRefused counts a refused CONNECT for metrics.
func (h *policyHook) countRefused() {
	if h.stats != nil {
		h.stats.refused.Add(1)
	}
}

// countDeniedPublish counts a PUBLISH the authz policy denied.
func (h *policyHook) countDeniedPublish() {
	if h.stats != nil {
		h.stats.notAuthorized.Add(1)
	}
}
