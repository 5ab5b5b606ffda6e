package broker

import (
	"slices"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// Messages that wait in a session (mochi's "inflight" map: queued for an
// offline client, held back by the client's receive maximum, or sent and
// not yet acknowledged) were authorized for delivery when they were queued,
// for the identity and under the policy of that moment. mochi sends them
// later without asking again: on reconnection (ResendInflightMessages) and
// when receive quota frees up. Both can be another identity (a takeover
// of the client id) or another policy (a reload, a restart with a stricter
// file). So each waiting PUBLISH is decided again, as a delivery to the
// identity that will receive it, under the policy in force, when it is
// about to leave:
//
//   - on reconnection, in OnSessionEstablish, before mochi hands the old
//     session's messages to the new connection (all of them are resent);
//   - on reload, in Recheck, for the messages not yet sent: every message
//     of an offline session, the held-back ones of a connected client.
//
// A message refused at that point is removed from the session (and from
// the store): the identity that would receive it may not read it, and
// keeping it would only defer the same refusal to the next reconnection.
// The publisher's acknowledgement is not affected, as for a delivery that
// the policy refuses live. Each pass logs the refusals of one session once,
// at info, and counts them (Broker.QueuedRefused).
//
// A message already written to the connection and waiting for its PUBACK
// or PUBREC is resent on reconnection (so rechecked then) but is not
// recalled on a live connection: it has already left. A PUBREL (the second
// half of a QoS 2 delivery whose PUBLISH the client already has) carries
// no payload and is never refused.

// refuseQueued decides every waiting PUBLISH of from as a delivery to the
// session st, and drops those refused from from's inflight map. With
// heldOnly, only messages not yet written (held back by the receive
// maximum) are looked at. It returns the number dropped.
func (h *policyHook) refuseQueued(from *mqtt.Client, st *clientState, heldOnly bool) int {
	if st == nil || st.superuser || from.State.Inflight.Len() == 0 {
		return 0
	}
	var dropped int
	var first string
	for _, pk := range from.State.Inflight.GetAll(heldOnly) {
		if pk.FixedHeader.Type != packets.Publish || h.mayDeliver(st, pk.TopicName) {
			continue
		}
		if !from.State.Inflight.Delete(pk.PacketID) {
			continue // acknowledged meanwhile
		}
		if pk.Expiry >= 0 {
			// A message sent took a unit of send quota that its PUBACK
			// would have returned; one held back (Expiry -1) took none.
			from.State.Inflight.IncreaseSendQuota()
		}
		atomic.AddInt64(&h.srv.Info.Inflight, -1)
		if s := h.store.Load(); s != nil {
			s.OnQosDropped(from, pk) // the store forgets it too
		}
		if dropped == 0 {
			first = pk.TopicName
		}
		dropped++
	}
	if dropped > 0 {
		h.queuedRefused.Add(int64(dropped))
		h.log.Info("queued messages dropped: not authorized for delivery", "client_id", from.ID,
			"count", dropped, "topic", first)
	}
	return dropped
}

// mayDeliver decides, without logging each refusal, whether the session st
// may receive a message on topic. A message whose topic mochi replaced by
// an outbound topic alias cannot be decided (and could not be resent to a
// new connection, whose alias table is empty): it is refused.
func (h *policyHook) mayDeliver(st *clientState, topic string) bool {
	if topic == "" {
		return false
	}
	req := &policy.AuthzRequest{Action: policy.ActionDeliver, Topic: topic}
	return h.decider.Authorize(h.ctx, st.session, req).Verdict == policy.Allow
}

// QueuedRefused returns the number of queued or in-flight messages dropped
// from sessions because their receiver was no longer allowed to read them
// when they were about to be sent (after a takeover, a reload or a restart).
func (b *Broker) QueuedRefused() int64 { return b.policy.queuedRefused.Load() }

// sameIdentity reports whether two clients were authenticated as the same
// principal, as far as authorization can tell: everything a module sees of
// the client besides the connection's own details (client id, remote
// address, protocol version).
func sameIdentity(a, b *policy.Client) bool {
	return a.Username == b.Username &&
		a.Listener == b.Listener &&
		a.Superuser == b.Superuser &&
		sameCert(a.Cert, b.Cert) &&
		slices.Equal(a.Attributes, b.Attributes)
}

// sameCert compares two verified client certificates by fingerprint; the
// subject and SANs are derived from the certificate.
func sameCert(a, b *policy.Cert) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Fingerprint == b.Fingerprint
}

// OnWill implements mqtt.Hook. mochi publishes a will without any check
// when the connection is lost. It was authorized at CONNECT, for that
// identity under that policy; it is decided again as it leaves, under the
// policy in force (a reload may have revoked it). That of a client that
// re-authentication disconnected was decided by Recheck for the identity
// the new policy gives (or dropped). Only a connection taken over has no
// state here (mochi waits for every connection to end before it stops the
// hooks, and publishes no will for one it never admitted): its will was
// decided by decideWillOnTakeover as mochi replaced it, just before it
// leaves. A refused will is not published.
//
// mochi's OnWill cannot cancel the will: a refused one is turned into a
// QoS 0, non-retained message with no payload on the hook's denied-filter
// topic, which OnSubscribe refuses to everyone but superusers.
func (h *policyHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	st := h.state(cl)
	switch {
	case st == nil:
		// Taken over: decided by decideWillOnTakeover just before.
		return will, nil
	case st.willDecided.Load():
		return will, nil
	case st.superuser:
		return will, nil
	case h.mayPublishWill(st.session, will):
		return will, nil
	}
	h.log.Info("will dropped: not authorized", "client_id", cl.ID, "topic", will.TopicName)
	return mqtt.Will{TopicName: h.deniedFilter, Flag: will.Flag}, nil
}

// mayPublishWill decides a will as a publish by session s.
func (h *policyHook) mayPublishWill(s *policy.Session, will mqtt.Will) bool {
	req := &policy.AuthzRequest{Action: policy.ActionPublish, Topic: will.TopicName, QoS: will.Qos, Retain: will.Retain}
	return h.decider.Authorize(h.ctx, s, req).Verdict == policy.Allow
}

// decideWillOnReauth settles the will of a client that re-authentication
// is about to disconnect: it is published only if the new policy allows
// it for the identity it now gives the client (next; nil when the client
// was refused). Otherwise the will is cleared, as mochi does after sending
// one [MQTT-3.1.2-10].
func (h *policyHook) decideWillOnReauth(cl *mqtt.Client, st *clientState, next *policy.Client) {
	if atomic.LoadUint32(&cl.Properties.Will.Flag) == 0 {
		return
	}
	if next != nil && (next.Superuser || h.mayPublishWill(h.decider.NewSession(next), cl.Properties.Will)) {
		st.willDecided.Store(true)
		return
	}
	atomic.StoreUint32(&cl.Properties.Will.Flag, 0)
	h.log.Info("will dropped: not authorized after re-authentication", "client_id", cl.ID,
		"topic", cl.Properties.Will.TopicName)
}

// decideWillOnTakeover decides the will of a connection that a new one with
// its client id is replacing, as prev's identity under the policy in
// force: mochi disconnects it right after OnSessionEstablish and publishes
// its will, when the hook has forgotten its state. A refused will is
// cleared, as mochi does after sending one [MQTT-3.1.2-10].
func (h *policyHook) decideWillOnTakeover(old *mqtt.Client, prev *clientState) {
	if atomic.LoadUint32(&old.Properties.Will.Flag) == 0 || prev.willDecided.Load() || prev.superuser ||
		h.mayPublishWill(prev.session, old.Properties.Will) {
		return
	}
	atomic.StoreUint32(&old.Properties.Will.Flag, 0)
	h.log.Info("will dropped: not authorized", "client_id", old.ID, "topic", old.Properties.Will.TopicName)
}
