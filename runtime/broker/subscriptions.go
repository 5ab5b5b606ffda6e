package broker

import (
	"github.com/moat-mqtt/moat/runtime/policy"
)

// Grant is one subscription of one session, as the policy sees it.
type Grant struct {
	// Client is the session's identity (read-only); for a session
	// restored from the store whose client has not reconnected, the
	// identity persisted with it, as Recheck uses.
	Client *policy.Client
	// Superuser sessions are never asked about.
	Superuser bool
	// Filter is the filter as subscribed, "$share/<group>/" included;
	// Topic and ShareGroup are its parts as an authorization request
	// carries them.
	Filter, Topic, ShareGroup string
	QoS                       uint8
	// Connected is false for an offline session.
	Connected bool
}

// Grants lists every subscription of every session, connected or
// offline, the same sessions Recheck looks at, without changing
// anything: what a dry run of a reload judges against a new policy.
func (b *Broker) Grants() []Grant {
	h := b.policy
	var out []Grant
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline {
			continue
		}
		st := h.state(cl)
		connected := cl.Net.Conn != nil && !cl.Closed()
		if st == nil {
			if connected {
				continue // still connecting: not admitted yet
			}
			st = h.newRestoredState(cl) // built, not stored
		}
		for filter, sub := range cl.State.Subscriptions.GetAll() {
			group, f := splitShared(filter)
			out = append(out, Grant{Client: st.session.Client(), Superuser: st.superuser,
				Filter: filter, Topic: f, ShareGroup: group, QoS: sub.Qos, Connected: connected})
		}
	}
	return out
}
