package broker

import (
	"log/slog"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// OnPacketRead implements mqtt.Hook. For a PUBLISH it resolves the topic
// alias and notes topic, QoS and retain for OnACLCheck, which mochi calls
// with the topic only, and before resolving the alias itself: without this
// a publish by alias would be authorized on an empty topic.
//
// The alias is resolved through mochi's own table, with mochi's own
// operation (the one processPublish repeats later), so both agree.
//
// The topic is copied first: mochi decodes strings without copying, so the
// topic points into the packet's buffer (up to maximum_packet_size), and
// what keeps it (the inbound alias table, the outbound alias table of each
// subscriber, the decision cache, retained messages) would keep the whole
// packet alive long after its payload was delivered.
func (h *policyHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Publish {
		return pk, nil
	}
	pk.TopicName = strings.Clone(pk.TopicName)
	st := h.state(cl)
	if st == nil {
		return pk, nil // OnACLCheck refuses a client without state
	}
	if a := pk.Properties.TopicAlias; pk.Properties.TopicAliasFlag && a > 0 &&
		a <= h.srv.Options.Capabilities.TopicAliasMaximum { // else mochi refuses the packet
		pk.TopicName = cl.State.TopicAliases.Inbound.Set(a, pk.TopicName)
	}
	st.pub = policy.AuthzRequest{
		Action: policy.ActionPublish,
		Topic:  pk.TopicName,
		QoS:    pk.FixedHeader.Qos,
		Retain: pk.FixedHeader.Retain,
	}
	st.pubSet = true
	st.pubID = pk.PacketID
	return pk, nil
}

// OnACLCheck implements mqtt.Hook. mochi calls it
//
//   - with write = true from processPublish, for a PUBLISH this hook saw in
//     OnPacketRead: the publish decision;
//   - with write = false from processSubscribe, for each filter of a
//     SUBSCRIBE after OnSubscribe decided it;
//   - with write = false from publishToClient, for every message about to be
//     delivered (live, retained or will): the deliver decision.
//
// A refusal is handled by mochi: a QoS 0 PUBLISH is dropped, a QoS 1 or 2
// one is answered with PUBACK/PUBREC 0x87, or the module's reason code
// where MQTT 5 allows it (setAckReason), or for 3.1.1 acknowledged and
// dropped (policyhook_v3.go); a filter gets SUBACK 0x87 (0x80 in 3.1.1); a delivery is
// skipped. It never allows a client the hook did not authenticate.
func (h *policyHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	st := h.state(cl)
	if st == nil {
		// Only a delivery to a session restored from the store, whose
		// client has no connection yet, reaches here legitimately: a
		// connecting client is not in mochi's client list before OnConnect
		// has admitted it.
		if write || cl.Net.Conn != nil || cl.Net.Inline {
			return false
		}
		st = h.restoredState(cl)
	}
	if write {
		// checkPublish clears st.pub; v3Refused (policyhook_v3.go) needs its QoS.
		qos := st.pub.QoS
		return h.v3Refused(cl, st, topic, qos, h.checkPublish(cl, st, topic))
	}
	if st.subscribing.Load() {
		if allowed, decided := st.subscribeCheck(topic, h.deniedFilter); decided {
			return allowed
		}
		// An exact filter, or a delivery during the SUBSCRIBE: both are
		// decided as a delivery of that topic.
	}
	if st.superuser {
		return true
	}
	req := h.reqs.Get().(*policy.AuthzRequest)
	*req = policy.AuthzRequest{Action: policy.ActionDeliver, Topic: topic}
	ok := h.verdict(cl, req, h.decider.Authorize(h.ctx, st.session, req))
	*req = policy.AuthzRequest{}
	h.reqs.Put(req)
	return ok
}

// checkPublish decides the PUBLISH noted by OnPacketRead.
func (h *policyHook) checkPublish(cl *mqtt.Client, st *clientState, topic string) bool {
	if !st.pubSet || st.pub.Topic != topic {
		// Not a PUBLISH read from the connection (mochi's InjectPacket for
		// a network client): no QoS or retain to decide with.
		h.log.Error("publish check without its packet", "client_id", cl.ID, "topic", topic)
		return false
	}
	st.pubSet = false
	switch {
	case topic == "":
		h.log.Info("not authorized", "client_id", cl.ID, "action", "publish", "reason", "unknown topic alias")
		return false
	case mqtt.IsSharedFilter(topic):
		// A topic name beginning with $share/ would be indistinguishable,
		// in OnACLCheck, from a shared subscription filter.
		h.log.Info("not authorized", "client_id", cl.ID, "action", "publish", "topic", topic, "reason", "reserved topic name")
		return false
	case st.superuser:
		return true
	}
	res := h.decider.Authorize(h.ctx, st.session, &st.pub)
	ok := h.verdict(cl, &st.pub, res)
	if !ok && st.pub.QoS > 0 && cl.Properties.ProtocolVersion == 5 {
		h.setAckReason(st, st.pubID, res.Reason)
	}
	st.pub = policy.AuthzRequest{} // keeps no topic until the next PUBLISH
	return ok
}

// pubackDenyCodes are the reason codes a policy may give a denied PUBLISH
// that MQTT 5 allows in PUBACK and PUBREC [MQTT-3.4.2.1, 3.5.2.1], with the
// reason string mochi would write for each. 0x87 is what mochi answers
// anyway; 0x91 (packet identifier in use) is not a policy's to give.
var pubackDenyCodes = map[byte]packets.Code{
	packets.ErrUnspecifiedError.Code:            packets.ErrUnspecifiedError,
	packets.ErrImplementationSpecificError.Code: packets.ErrImplementationSpecificError,
	packets.ErrTopicNameInvalid.Code:            packets.ErrTopicNameInvalid,
	packets.ErrQuotaExceeded.Code:               packets.ErrQuotaExceeded,
	packets.ErrPayloadFormatInvalid.Code:        packets.ErrPayloadFormatInvalid,
}

// setAckReason arranges for the PUBACK/PUBREC of the denied PUBLISH id to
// carry the module's reason code. mochi answers every refusal of
// OnACLCheck with 0x87 and takes no code from a hook, but it writes that
// answer right after OnACLCheck returns, on the same goroutine, through
// OnPacketEncode: the hook swaps the code there. Codes MQTT 5 does not
// allow in a PUBACK (and 0x87 itself) are left as 0x87.
func (h *policyHook) setAckReason(st *clientState, id uint16, reason byte) {
	if _, ok := pubackDenyCodes[reason]; !ok {
		return
	}
	if st.ackReason.Swap(uint32(id)<<8|uint32(reason)) == 0 {
		h.ackReasons.Add(1)
	}
}

// ackWithReason gives a PUBACK or PUBREC 0x87 the code noted by
// setAckReason for its packet id.
func (h *policyHook) ackWithReason(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	st := h.state(cl)
	if st == nil {
		return pk
	}
	v := st.ackReason.Load()
	if v == 0 || uint16(v>>8) != pk.PacketID || !st.ackReason.CompareAndSwap(v, 0) {
		return pk
	}
	h.ackReasons.Add(-1)
	code := pubackDenyCodes[byte(v)]
	pk.ReasonCode = code.Code
	if pk.Properties.ReasonString != "" { // mochi wrote one: the client wants problem information
		pk.Properties.ReasonString = code.Reason
	}
	return pk
}

// subscribeCheck answers OnACLCheck(read) during a SUBSCRIBE. decided is
// false when the string may be a topic name, which is decided as a delivery.
func (st *clientState) subscribeCheck(filter, denied string) (allowed, decided bool) {
	if filter == denied {
		return false, true
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for i, f := range st.subAllowed {
		if f == filter {
			// Consumed, so that a string equal to an allowed filter yields
			// true once, for the check mochi makes of that filter.
			st.subAllowed = append(st.subAllowed[:i], st.subAllowed[i+1:]...)
			return true, true
		}
	}
	if isWildcardOrShared(filter) {
		return false, true // never a topic name, and not allowed by OnSubscribe
	}
	return false, false
}

// OnSubscribe implements mqtt.Hook: it decides each filter of a SUBSCRIBE,
// with its QoS and shared-subscription group, and replaces a denied filter
// by the hook's denied-filter sentinel so that mochi's OnACLCheck for it
// fails and the SUBACK says 0x87 (0x80 in 3.1.1).
//
// Filters mochi refuses on its own (invalid: 0x8F; no-local shared: 0x82)
// are left for it to refuse. An allowed wildcard or shared filter is noted
// for OnACLCheck; an allowed exact filter is not, because mochi's check of
// it is indistinguishable from a delivery of that topic: subscribing to an
// exact filter therefore also needs the deliver permission on that topic.
func (h *policyHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if cl.Net.Inline {
		return pk // the embedding application's own subscriptions
	}
	pk.Filters = cloneFilters(pk.Filters)
	st := h.state(cl)
	if st == nil || st.superuser {
		return pk // refused, or allowed, by OnACLCheck
	}
	var allowed []string
	for i, sub := range pk.Filters {
		f := sub.Filter
		if !mqtt.IsValidFilter(f, false) || (sub.NoLocal && mqtt.IsSharedFilter(f)) {
			continue
		}
		req := &policy.AuthzRequest{Action: policy.ActionSubscribe, Topic: f, QoS: sub.Qos}
		req.ShareGroup, req.Topic = splitShared(f)
		if h.verdict(cl, req, h.decider.Authorize(h.ctx, st.session, req)) {
			if req.ShareGroup != "" || hasWildcard(f) {
				allowed = append(allowed, f)
			}
			continue
		}
		pk.Filters[i].Filter = h.deniedFilter
	}
	st.mu.Lock()
	st.subAllowed = allowed
	st.mu.Unlock()
	st.subscribing.Store(true)
	return pk
}

// cloneFilters returns a copy of a SUBSCRIBE's filters whose strings do not
// point into the packet's buffer: mochi keeps each filter for the life of
// the subscription (its topic tree, the client's session), which without
// the copy keeps the whole packet, up to maximum_packet_size, alive. The
// copy is also what the hook may change (a denied filter): pk.Filters is
// mochi's.
func cloneFilters(subs packets.Subscriptions) packets.Subscriptions {
	out := make(packets.Subscriptions, len(subs))
	for i, sub := range subs {
		sub.Filter = strings.Clone(sub.Filter)
		out[i] = sub
	}
	return out
}

// OnSubscribed implements mqtt.Hook: the SUBSCRIBE is over.
func (h *policyHook) OnSubscribed(cl *mqtt.Client, _ packets.Packet, _ []byte) {
	st := h.state(cl)
	if st == nil {
		return
	}
	st.subscribing.Store(false)
	st.mu.Lock()
	st.subAllowed = nil
	st.mu.Unlock()
}

// OnAuthPacket implements mqtt.Hook. An AUTH packet after the CONNACK asks
// for re-authentication [MQTT-4.12.1], which moat does not support yet: the
// client is disconnected rather than left waiting for an answer. A client
// that did not authenticate with a method may not send AUTH at all.
func (h *policyHook) OnAuthPacket(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Properties.Props.AuthenticationMethod == "" {
		return pk, packets.ErrProtocolViolation
	}
	h.log.Info("re-authentication refused", "client_id", cl.ID)
	return pk, packets.Code{Code: policy.ReasonNotAuthorized, Reason: "re-authentication is not supported"}
}

// OnPacketEncode implements mqtt.Hook, only while some client waits for its
// CONNACK (see Provides): it adds the authentication method and the
// module's final data to the success CONNACK of an enhanced authentication.
// mochi builds that CONNACK itself, with no way to pass properties.
//
// It also gives the PUBACK/PUBREC of a denied PUBLISH the module's reason
// code (see setAckReason), while some client waits for one.
func (h *policyHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if (pk.FixedHeader.Type == packets.Puback || pk.FixedHeader.Type == packets.Pubrec) &&
		pk.ReasonCode == packets.ErrNotAuthorized.Code {
		return h.ackWithReason(cl, pk)
	}
	if pk.FixedHeader.Type != packets.Connack || pk.ReasonCode != packets.CodeSuccess.Code {
		return pk
	}
	st := h.state(cl)
	if st == nil || !st.connackPending.CompareAndSwap(true, false) {
		return pk
	}
	h.connackAuth.Add(-1)
	pk.Properties.AuthenticationMethod = st.connackMethod
	pk.Properties.AuthenticationData = st.connackData
	return pk
}

// verdict turns an authorization result into OnACLCheck's answer and logs
// it: allows at debug; denials at info, except denials served from the
// decision cache (no module or message), which are at debug so that a
// subscriber to "#" does not log every message it may not read.
func (h *policyHook) verdict(cl *mqtt.Client, req *policy.AuthzRequest, res policy.AuthzResult) bool {
	if res.Verdict == policy.Allow {
		if h.log.Enabled(h.ctx, slog.LevelDebug) {
			h.log.Debug("authorized", "client_id", cl.ID, "action", req.Action.String(), "topic", req.Topic, "module", res.Module)
		}
		return true
	}
	level := slog.LevelInfo
	if res.Module == "" && res.Message == "" {
		level = slog.LevelDebug
	}
	if h.log.Enabled(h.ctx, level) {
		h.log.Log(h.ctx, level, "not authorized", "client_id", cl.ID, "action", req.Action.String(),
			"topic", req.Topic, "share_group", req.ShareGroup, "module", res.Module, "reason", res.Message, "code", res.Reason)
	}
	return false
}

// splitShared splits "$share/<group>/<filter>" into group and filter; other
// filters come back whole with an empty group. The prefix is matched without
// regard to case, as mochi does.
func splitShared(f string) (group, filter string) {
	if !mqtt.IsSharedFilter(f) {
		return "", f
	}
	rest := f[len(mqtt.SharePrefix)+1:]
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return rest, "" // mochi refuses such a filter before OnSubscribe's caller asks
	}
	return rest[:i], rest[i+1:]
}

func hasWildcard(f string) bool { return strings.ContainsAny(f, "+#") }

func isWildcardOrShared(f string) bool { return hasWildcard(f) || mqtt.IsSharedFilter(f) }
