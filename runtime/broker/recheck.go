package broker

import (
	"context"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// RecheckResult says what Recheck did.
type RecheckResult struct {
	// Revoked counts the subscriptions removed.
	Revoked int
	// Disconnected counts the clients disconnected by re-authentication.
	Disconnected int
	// Dropped counts the queued messages removed because their receiver
	// may no longer read them (session.go).
	Dropped int
}

// Recheck applies a policy that was just swapped in to the sessions that
// already exist, so that revocation does not wait for clients to
// reconnect:
//
//   - every subscription of every session, connected or offline, is
//     authorized again as a SUBSCRIBE, and removed (from the store too)
//     when the new policy refuses it. MQTT has no server-initiated
//     UNSUBSCRIBE and no packet that could tell an MQTT 5 client why
//     without disconnecting it, so a client learns of it only through the
//     messages it no longer gets; the log names each one.
//
//   - with reauthenticate, every connected client whose CONNECT
//     credentials were kept (see SetReauthenticate) is authenticated
//     again, and disconnected when the new policy refuses it, or when it
//     now gives the client another identity (superuser flag, attributes),
//     since a session's identity is fixed at CONNECT. MQTT 5 clients get
//     DISCONNECT 0x87 (not authorized) with a reason string; 3.1.1 has no
//     server DISCONNECT, so their connection is closed. Clients that used
//     enhanced authentication cannot be replayed and are left connected.
//
//   - every message waiting in a session and not yet sent is decided again
//     as a delivery, and dropped when refused (session.go); those already
//     sent are decided again if they are resent on reconnection.
//
// Live deliveries need no recheck: the swap flushed the decision cache, so
// each next message is decided by the new policy, whether or not its
// subscription is still there. A will is decided again when it is
// published (OnWill); that of a client disconnected here is decided for
// the identity the new policy gives it, or dropped. Recheck runs to the end even when ctx is
// cancelled: a swap must not leave revocation half done.
func (b *Broker) Recheck(ctx context.Context, reauthenticate bool) RecheckResult {
	ctx = context.WithoutCancel(ctx)
	var res RecheckResult
	seen := make(map[*mqtt.Client]bool)
	b.policy.clients.Range(func(k, v any) bool {
		cl := k.(*mqtt.Client)
		seen[cl] = true
		b.recheckClient(ctx, cl, v.(*clientState), reauthenticate, &res)
		return true
	})
	// Sessions restored from the store whose client has not reconnected
	// have no state until their first delivery (policyhook.go,
	// restoredState); their subscriptions are checked as that identity.
	for _, cl := range b.srv.Clients.GetAll() {
		if seen[cl] || cl.Net.Inline || cl.Net.Conn != nil {
			continue
		}
		if st := b.policy.state(cl); st != nil {
			b.recheckClient(ctx, cl, st, false, &res)
		} else {
			b.recheckClient(ctx, cl, b.policy.restoredState(cl), false, &res)
		}
	}
	return res
}

// SetReauthenticate turns the keeping of CONNECT credentials on or off
// ([reload] reauthenticate can change on reload). Turned on, it applies to
// clients that connect from then on: credentials that were not kept cannot
// be recovered, so clients connected before are re-authenticated only
// after they reconnect. Turned off, the credentials kept so far are
// dropped from memory.
func (b *Broker) SetReauthenticate(on bool) {
	if b.policy.keepCredentials.Swap(on) == on || on {
		return
	}
	b.policy.clients.Range(func(_, v any) bool {
		// st.authn is read only by Recheck, which the caller serialises
		// with this call (reloads are serialised).
		v.(*clientState).authn = nil
		return true
	})
}

func (b *Broker) recheckClient(ctx context.Context, cl *mqtt.Client, st *clientState, reauthenticate bool, res *RecheckResult) {
	h := b.policy
	if reauthenticate && st.authn != nil && !cl.Closed() {
		ar := h.decider.Authenticate(ctx, st.authn)
		var next *policy.Client // the identity the new policy gives, if any
		why := ""
		switch {
		case ar.Verdict != policy.Allow:
			why = "refused by the new policy"
			if ar.Message != "" {
				why += ": " + ar.Message
			}
		default:
			next = new(policy.Client)
			*next = *st.session.Client()
			next.Attributes, next.Superuser = ar.Attributes, ar.Superuser
			if !sameIdentity(next, st.session.Client()) {
				why = "the new policy gives the client another identity"
			}
		}
		if why != "" {
			h.decideWillOnReauth(cl, st, next)
			h.log.Info("client disconnected by re-authentication", "audit", "deny", "decision", "authn", "client_id", cl.ID,
				"module", ar.Module, "reason", why)
			code := packets.Code{Code: policy.ReasonNotAuthorized, Reason: "re-authentication: " + why}
			if cl.Properties.ProtocolVersion >= 5 {
				_ = h.srv.DisconnectClient(cl, code)
			}
			cl.Stop(code) // 3.1.1, and under PassiveClientDisconnect
			res.Disconnected++
			return
		}
	}
	// Messages waiting in the session leave under the new policy too: those
	// not yet sent are decided now (an offline session's are all unsent).
	// Sent ones are decided again when they are resent (session.go).
	connected := cl.Net.Conn != nil && !cl.Closed()
	res.Dropped += h.refuseQueued(cl, st, connected)
	if st.superuser {
		return
	}
	var removed []packets.Subscription
	for filter, sub := range cl.State.Subscriptions.GetAll() {
		group, f := splitShared(filter)
		req := &policy.AuthzRequest{Action: policy.ActionSubscribe, Topic: f, QoS: sub.Qos, ShareGroup: group}
		if h.decider.Authorize(ctx, st.session, req).Verdict == policy.Allow {
			continue
		}
		cl.State.Subscriptions.Delete(filter)
		if h.srv.Topics.Unsubscribe(filter, cl.ID) {
			atomic.AddInt64(&h.srv.Info.Subscriptions, -1)
		}
		removed = append(removed, sub)
		h.log.Info("subscription revoked by reload", "audit", "deny", "decision", "authz", "client_id", cl.ID, "topic", filter)
	}
	b.mu.Lock()
	store := b.store
	b.mu.Unlock()
	if len(removed) > 0 && store != nil {
		// What mochi's own UNSUBSCRIBE does, so that a restart does not
		// restore what was revoked.
		store.OnUnsubscribed(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Unsubscribe}, Filters: removed})
	}
	res.Revoked += len(removed)
}
