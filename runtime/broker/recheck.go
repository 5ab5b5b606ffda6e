package broker

import (
	"context"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// Recheck applies a policy that was just swapped in to the clients already
// connected, so that revocation does not wait for them to reconnect:
//
//   - every subscription of every session, connected or offline, is
//     authorized again as a SUBSCRIBE, and removed when the new policy
//     refuses it (MQTT has no server-initiated UNSUBSCRIBE, so a client
//     learns of it only through the messages it no longer gets);
//   - with reauthenticate, every connected client whose CONNECT credentials
//     were kept ([reload] reauthenticate at start) is authenticated again,
//     and disconnected (MQTT 5: reason 0x87) when the new policy refuses it.
//     Clients that used enhanced authentication cannot be replayed and are
//     left connected.
//
// Deliveries need no recheck: the decision cache is flushed by the swap, so
// each next message is decided by the new policy. Recheck returns how many
// subscriptions it removed and how many clients it disconnected.
func (b *Broker) Recheck(ctx context.Context, reauthenticate bool) (revoked, disconnected int) {
	return b.policy.recheck(ctx, reauthenticate)
}

func (h *policyHook) recheck(ctx context.Context, reauthenticate bool) (revoked, disconnected int) {
	h.clients.Range(func(k, v any) bool {
		if ctx.Err() != nil {
			return false
		}
		cl, st := k.(*mqtt.Client), v.(*clientState)
		if reauthenticate && st.authn != nil && !cl.Closed() {
			res := h.decider.Authenticate(ctx, st.authn)
			if res.Verdict != policy.Allow {
				h.log.Info("client disconnected by re-authentication", "client_id", cl.ID,
					"module", res.Module, "reason", res.Message)
				_ = h.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
				disconnected++
				return true
			}
		}
		revoked += h.recheckSubscriptions(cl, st)
		return true
	})
	return revoked, disconnected
}

// recheckSubscriptions removes the subscriptions of cl that the policy in
// force refuses.
func (h *policyHook) recheckSubscriptions(cl *mqtt.Client, st *clientState) int {
	if st.superuser {
		return 0
	}
	n := 0
	for filter, sub := range cl.State.Subscriptions.GetAll() {
		group, f := splitShared(filter)
		req := &policy.AuthzRequest{Action: policy.ActionSubscribe, Topic: f, QoS: sub.Qos, ShareGroup: group}
		if h.decider.Authorize(h.ctx, st.session, req).Verdict == policy.Allow {
			continue
		}
		if h.srv.Topics.Unsubscribe(filter, cl.ID) {
			cl.State.Subscriptions.Delete(filter)
			n++
			h.log.Info("subscription revoked by reload", "client_id", cl.ID, "topic", filter)
		}
	}
	return n
}
