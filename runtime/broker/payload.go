package broker

import (
	"errors"
	"log/slog"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/crypto"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/sdk/envelope"
)

// payloadHook carries out the payload policy (sdk/ABI.md §4, payload
// modes): the policy's payload chain decides, this hook encrypts and
// decrypts with the key ring. It is a mochi hook of its own, registered
// after policyHook, whose sessions it uses; it provides no authentication
// or ACL check (see checkAuthHooks).
//
// Which mochi call does what (mochi v2.7.9):
//
//   - PUBLISH: OnPublish, which mochi calls after OnACLCheck(write) allowed
//     the publish and before the message is retained, queued or delivered.
//     It asks the payload chain, then leaves the payload alone (plaintext,
//     require-e2e) or replaces it by an envelope sealed under the ring's
//     key and marks it (at-rest, reencrypt; see markerKey).
//   - will: OnConnect, after policyHook admitted the client and authorized
//     its will, because mochi publishes (and stores, in the client record)
//     a will without OnPublish.
//   - delivery: OnPacketEncode, which sees every outbound PUBLISH, live,
//     retained, resent from the inflight store, restored after a restart:
//     a marked payload is opened for a subscriber with the decrypt
//     permission (at-rest) or resealed under the key the deliver decision
//     names (reencrypt); otherwise the stored envelope goes out as it is.
//
// Refusals. mochi's own refusal after OnPublish is not protocol-correct
// (it answers a QoS 2 PUBLISH with a PUBACK, and goes on to publish the
// message of an MQTT 3.1.1 client whose refusal is an error), so
// refusePublish answers itself and then returns packets.ErrRejectPacket,
// after which mochi does nothing more, or packets.CodeSuccessIgnore, after
// which mochi acknowledges with success and drops the message.
//
// When neither a payload chain nor a key ring is configured, Provides says
// no to everything but OnConnect, and mochi never calls the publish and
// delivery hooks: the hot path pays for nothing.
type payloadHook struct {
	mqtt.HookBase
	srv    *mqtt.Server
	policy *policyHook // sessions, context and decider
	ring   *crypto.RingHolder
	log    *slog.Logger
	// disconnectE2E is [payload] require_e2e_disconnect.
	disconnectE2E bool

	stats payloadCounters
}

var _ mqtt.Hook = (*payloadHook)(nil)

// payloadCounters count what the hook did; see PayloadStats.
type payloadCounters struct {
	sealed, decrypted, reencrypted   atomic.Uint64
	denied, invalid, failed          atomic.Uint64
	deliveryFailures, strippedMarker atomic.Uint64
}

// PayloadStats counts the payload policy's work since the broker started.
type PayloadStats struct {
	// Sealed counts payloads (and wills) the broker encrypted on publish.
	Sealed uint64
	// Decrypted counts deliveries opened for a subscriber allowed to
	// decrypt; Reencrypted, deliveries resealed for a subscriber's key.
	Decrypted, Reencrypted uint64
	// Denied counts publishes and wills the payload policy refused;
	// Invalid, those refused for not being a valid envelope (require-e2e,
	// reencrypt); Failed, those the host could not protect (no key ring,
	// a key id the ring does not hold). Each is also logged.
	Denied, Invalid, Failed uint64
	// DeliveryFailures counts deliveries that went out as the stored
	// envelope because it could not be opened or resealed (a key no longer
	// in the ring, a tampered envelope); each is logged with the key id
	// and the topic.
	DeliveryFailures uint64
	// StrippedMarkers counts client-sent "moat-mode" properties removed.
	StrippedMarkers uint64
}

// PayloadStats returns the payload policy's counters.
func (b *Broker) PayloadStats() PayloadStats {
	s := &b.payload.stats
	return PayloadStats{
		Sealed:           s.sealed.Load(),
		Decrypted:        s.decrypted.Load(),
		Reencrypted:      s.reencrypted.Load(),
		Denied:           s.denied.Load(),
		Invalid:          s.invalid.Load(),
		Failed:           s.failed.Load(),
		DeliveryFailures: s.deliveryFailures.Load(),
		StrippedMarkers:  s.strippedMarker.Load(),
	}
}

func newPayloadHook(srv *mqtt.Server, p *policyHook, ring *crypto.RingHolder, disconnectE2E bool, log *slog.Logger) *payloadHook {
	if ring == nil {
		ring = new(crypto.RingHolder)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &payloadHook{srv: srv, policy: p, ring: ring, disconnectE2E: disconnectE2E, log: log}
}

// ID implements mqtt.Hook.
func (h *payloadHook) ID() string { return "moat-payload" }

// Provides implements mqtt.Hook. mochi asks on every event, so a reload
// that adds a payload chain (or a ring) turns the hooks on at once.
func (h *payloadHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnPublish, mqtt.OnPacketEncode:
		return h.enabled()
	}
	return false
}

// enabled reports whether a payload chain or a key ring is configured.
// With a ring but no chain the hook still strips client-sent markers and
// opens what earlier publishes stored sealed.
func (h *payloadHook) enabled() bool {
	return h.ring.Load() != nil || h.policy.decider.Policy().HasPayload()
}

// refusalKind classifies a refused publish.
type refusalKind uint8

const (
	// refusedDeny: the policy said deny.
	refusedDeny refusalKind = iota
	// refusedInvalid: not a valid envelope where one is required.
	refusedInvalid
	// refusedFailed: the host cannot apply the mode (configuration).
	refusedFailed
)

// pubRefusal is why a publish (or a will) is refused.
type pubRefusal struct {
	kind    refusalKind
	reason  byte // MQTT 5 reason code
	message string
	module  string
	mode    policy.Mode
	keyID   string // the envelope's key id, for the log; never key material
}

// payloadMsg is a PUBLISH or a will as the payload policy sees it. apply
// replaces payload and user when it seals.
type payloadMsg struct {
	topic       string
	qos         byte
	retain      bool
	contentType string
	user        []packets.UserProperty
	payload     []byte
}

// apply asks the payload chain about m and carries out its decision on m.
// It returns nil when m may go on (possibly changed), or why not.
func (h *payloadHook) apply(st *clientState, m *payloadMsg) *pubRefusal {
	req := policy.PayloadRequest{
		Action:         policy.ActionPublish,
		Topic:          m.topic,
		QoS:            m.qos,
		Retain:         m.retain,
		ContentType:    m.contentType,
		UserProperties: policyProps(m.user),
		Payload:        m.payload,
	}
	var hdr envelope.Header
	isEnvelope := false
	if envelope.IsEnvelope(m.payload) {
		if hh, err := envelope.Parse(m.payload); err == nil {
			hdr, isEnvelope = hh, true
			req.EnvelopeKeyID = hh.KeyID
		}
	}
	res := h.policy.decider.Payload(h.policy.ctx, st.session, &req)
	if res.Verdict != policy.Allow {
		msg := res.Message
		if msg == "" {
			msg = "payload not authorized"
		}
		return &pubRefusal{kind: refusedDeny, reason: res.Reason, message: msg, module: res.Module, keyID: hdr.KeyID}
	}
	if len(m.payload) == 0 {
		// Nothing to protect, and an empty retained publish deletes the
		// retained message [MQTT-3.3.1-6]: sealing it would store an
		// envelope instead.
		return nil
	}
	invalid := func(msg string) *pubRefusal {
		return &pubRefusal{kind: refusedInvalid, reason: policy.ReasonPayloadFormatInvalid, message: msg,
			module: res.Module, mode: res.Mode, keyID: hdr.KeyID}
	}
	failed := func(msg string) *pubRefusal {
		return &pubRefusal{kind: refusedFailed, reason: policy.ReasonUnspecified, message: msg,
			module: res.Module, mode: res.Mode, keyID: res.KeyID}
	}
	switch res.Mode {
	case policy.ModePlaintext:
		return nil
	case policy.ModeRequireE2E:
		switch {
		case !isEnvelope:
			return invalid("payload must be a moat envelope")
		case res.KeyID != "" && res.KeyID != hdr.KeyID:
			return invalid("envelope key id not accepted")
		}
		return nil
	case policy.ModeAtRest, policy.ModeReencrypt:
	default:
		return failed("payload module returned mode " + res.Mode.String())
	}

	ring := h.ring.Load()
	if ring == nil {
		return failed("no key ring configured")
	}
	id := res.KeyID
	if id == "" {
		id = ring.Active(crypto.PurposeAtRest)
	}
	switch {
	case id == "":
		return failed("no key id and no active at-rest key")
	case !ring.Has(id):
		return failed("key id not in the key ring")
	}
	var env []byte
	var err error
	if res.Mode == policy.ModeAtRest {
		env, err = ring.Seal(id, m.topic, m.payload)
		if err != nil {
			return failed("sealing failed")
		}
	} else {
		if !isEnvelope {
			return invalid("payload must be a moat envelope")
		}
		// Opened with the publisher's key and stored under the broker's:
		// the publisher's key can be retired without losing what is
		// stored, and rewrap and rotation treat both modes alike.
		env, _, err = ring.Reseal(id, m.topic, m.payload)
		if err != nil {
			if errors.Is(err, crypto.ErrUnknownKey) {
				return invalid("envelope key id unknown")
			}
			return invalid("envelope does not open")
		}
	}
	m.payload = env
	m.user = withMarker(m.user, res.Mode, m.topic)
	h.stats.sealed.Add(1)
	return nil
}

// OnConnect implements mqtt.Hook: it applies the payload policy to the
// will, which mochi stores in the client record and later publishes
// without OnPublish. mochi calls it after policyHook.OnConnect admitted the
// client and authorized the will (hooks run in the order added, and stop
// at the first error). A refused will refuses the CONNECT, as an
// unauthorized will does.
func (h *payloadHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if !pk.Connect.WillFlag {
		return nil
	}
	w := &cl.Properties.Will
	if i := markerIndex(w.User); i >= 0 {
		h.stats.strippedMarker.Add(1)
		w.User = withoutMarker(w.User)
	}
	if !h.policy.decider.Policy().HasPayload() {
		return nil
	}
	st := h.policy.state(cl)
	if st == nil {
		return nil // not admitted: OnConnectAuthenticate refuses it
	}
	m := payloadMsg{topic: w.TopicName, qos: w.Qos, retain: w.Retain,
		contentType: pk.Connect.WillProperties.ContentType, user: w.User, payload: w.Payload}
	if r := h.apply(st, &m); r != nil {
		h.count(cl, w.TopicName, r)
		// policyHook stored the client's state; a refused CONNECT gets no
		// OnDisconnect to drop it.
		h.policy.forget(cl)
		reason := r.reason
		if reason == 0 {
			reason = policy.ReasonNotAuthorized
		}
		return h.policy.refuse(cl, refusal{reason: reason, message: "will: " + r.message, module: r.module})
	}
	w.Payload, w.User = m.payload, m.user
	return nil
}

// OnPublish implements mqtt.Hook; see payloadHook.
func (h *payloadHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if i := markerIndex(pk.Properties.User); i >= 0 {
		// Only the broker marks payloads; a client's marker would make
		// OnPacketEncode open a payload the broker did not seal.
		h.stats.strippedMarker.Add(1)
		h.log.Debug("client-sent marker property removed", "client_id", cl.ID, "topic", pk.TopicName)
		pk.Properties.User = withoutMarker(pk.Properties.User)
	}
	if !h.policy.decider.Policy().HasPayload() || cl.Net.Inline {
		return pk, nil // the broker's own $SYS messages (sys.go) pass
	}
	st := h.policy.state(cl)
	if st == nil {
		// OnACLCheck(write) refuses a client without state before mochi
		// gets here; fail closed should that ever change.
		return h.refusePublish(cl, pk, &pubRefusal{kind: refusedDeny, message: "not authenticated"})
	}
	m := payloadMsg{
		topic:       pk.TopicName,
		qos:         pk.FixedHeader.Qos,
		retain:      pk.FixedHeader.Retain,
		contentType: pk.Properties.ContentType,
		user:        pk.Properties.User,
		payload:     pk.Payload,
	}
	if r := h.apply(st, &m); r != nil {
		return h.refusePublish(cl, pk, r)
	}
	pk.Payload, pk.Properties.User = m.payload, m.user
	return pk, nil
}

// count counts and logs a refusal.
func (h *payloadHook) count(cl *mqtt.Client, topic string, r *pubRefusal) {
	level := slog.LevelInfo
	switch r.kind {
	case refusedDeny:
		h.stats.denied.Add(1)
	case refusedInvalid:
		h.stats.invalid.Add(1)
	case refusedFailed:
		h.stats.failed.Add(1)
		level = slog.LevelError // the configuration, not the client, is at fault
	}
	if h.log.Enabled(h.policy.ctx, level) {
		h.log.Log(h.policy.ctx, level, "payload refused", "audit", "deny", "decision", "payload", "client_id", cl.ID, "topic", topic,
			"mode", r.mode.String(), "key_id", r.keyID, "module", r.module, "reason", r.message, "code", r.reason)
	}
}

// refusePublish refuses pk, counted and logged, in the way the client's
// protocol allows:
//
//   - MQTT 5 at QoS 1 or 2: a PUBACK or PUBREC with the reason code (0x99
//     for an invalid envelope, the policy's code for a deny) and the
//     message as reason string. A PUBREC of 0x80 or more ends the QoS 2
//     exchange [MQTT-4.3.3], so nothing is left in flight.
//   - a deny (or a host failure) at QoS 0: dropped, as mochi drops an
//     unauthorized QoS 0 publish; MQTT 3.1.1 at QoS 1 or 2: disconnected,
//     as mochi does for an unauthorized publish, since 3.1.1 has no
//     negative acknowledgement.
//   - an invalid envelope of MQTT 3.1.1 or at QoS 0: acknowledged and
//     dropped, or, with [payload] require_e2e_disconnect, disconnected
//     (MQTT 5 with DISCONNECT 0x99).
func (h *payloadHook) refusePublish(cl *mqtt.Client, pk packets.Packet, r *pubRefusal) (packets.Packet, error) {
	h.count(cl, pk.TopicName, r)
	if r.reason == 0 {
		r.reason = policy.ReasonNotAuthorized
	}
	v5 := cl.Properties.ProtocolVersion >= 5
	qos := pk.FixedHeader.Qos
	switch {
	case v5 && qos > 0:
		typ := packets.Puback
		if qos == 2 {
			typ = packets.Pubrec
		}
		ack := packets.Packet{
			FixedHeader: packets.FixedHeader{Type: typ},
			PacketID:    pk.PacketID,
			ReasonCode:  ackReason(r.reason),
			Properties:  packets.Properties{ReasonString: r.message},
		}
		if err := cl.WritePacket(ack); err != nil {
			h.log.Debug("payload refusal not sent", "client_id", cl.ID, "err", err)
		}
	case r.kind == refusedInvalid && !h.disconnectE2E, r.kind != refusedInvalid && qos == 0:
		return pk, packets.CodeSuccessIgnore
	default:
		code := packets.Code{Code: ackReason(r.reason), Reason: r.message}
		if v5 {
			_ = h.srv.DisconnectClient(cl, code)
		}
		cl.Stop(code) // even under PassiveClientDisconnect
	}
	return pk, packets.ErrRejectPacket
}

// ackReason returns r if a PUBACK or PUBREC may carry it (MQTT 5
// §3.4.2.1), else 0x87 not authorized.
func ackReason(r byte) byte {
	switch r {
	case 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99:
		return r
	}
	return policy.ReasonNotAuthorized
}

// OnPacketEncode implements mqtt.Hook: the delivery side of at-rest and
// reencrypt (see payloadHook). A PUBLISH without the marker, and every
// other packet, passes unchanged after a type check and a scan of its
// user properties. It never modifies what pk shares with the stored
// message (payload, properties): it replaces them.
func (h *payloadHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Publish {
		return pk
	}
	i := markerIndex(pk.Properties.User)
	if i < 0 {
		return pk
	}
	mode, topic, ok := parseMarker(pk.Properties.User[i].Val)
	v5 := cl.Properties.ProtocolVersion >= 5
	if v5 {
		pk.Properties.User = withoutMarker(pk.Properties.User)
	} // 3.1.1 has no properties on the wire
	if pk.TopicName != "" {
		topic = pk.TopicName // the topic it is delivered on is what the AAD must match
	}
	ring := h.ring.Load()
	st := h.policy.state(cl)
	switch {
	case !ok:
		h.deliveryFailure(cl, topic, "", errors.New("broker: malformed payload marker"))
	case ring == nil:
		h.deliveryFailure(cl, topic, keyIDOf(pk.Payload), errors.New("broker: no key ring configured"))
	case st == nil:
		// Not an authenticated connection: nothing is opened for it.
	case mode == policy.ModeAtRest:
		if !h.mayDecrypt(st, topic, &pk) {
			break
		}
		plain, id, err := ring.Open(topic, pk.Payload)
		if err != nil {
			h.deliveryFailure(cl, topic, id, err)
			break
		}
		h.stats.decrypted.Add(1)
		pk.Payload = plain
		return pk
	case mode == policy.ModeReencrypt:
		id := h.deliverKey(st, ring, topic, &pk)
		if id == "" {
			break
		}
		if !ring.Has(id) {
			h.deliveryFailure(cl, topic, id, crypto.ErrUnknownKey)
			break
		}
		env, from, err := ring.Reseal(id, topic, pk.Payload)
		if err != nil {
			h.deliveryFailure(cl, topic, from, err)
			break
		}
		h.stats.reencrypted.Add(1)
		pk.Payload = env
	}
	if v5 {
		markEnvelope(&pk)
	}
	return pk
}

// mayDecrypt asks the decrypt permission (cached like any authorization).
func (h *payloadHook) mayDecrypt(st *clientState, topic string, pk *packets.Packet) bool {
	if st.superuser {
		return true
	}
	req := h.policy.reqs.Get().(*policy.AuthzRequest)
	*req = policy.AuthzRequest{Action: policy.ActionDecrypt, Topic: topic, QoS: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain}
	ok := h.policy.decider.Authorize(h.policy.ctx, st.session, req).Verdict == policy.Allow
	*req = policy.AuthzRequest{}
	h.policy.reqs.Put(req)
	return ok
}

// deliverKey asks the payload chain under which key a reencrypt message
// goes to this subscriber: the module's key id, else the ring's active
// reencrypt key. "" (a deny, or no key at all) delivers the stored
// envelope as it is.
func (h *payloadHook) deliverKey(st *clientState, ring *crypto.Ring, topic string, pk *packets.Packet) string {
	req := policy.PayloadRequest{
		Action:         policy.ActionDeliver,
		Topic:          topic,
		QoS:            pk.FixedHeader.Qos,
		Retain:         pk.FixedHeader.Retain,
		ContentType:    pk.Properties.ContentType,
		UserProperties: policyProps(withoutMarker(pk.Properties.User)),
		EnvelopeKeyID:  keyIDOf(pk.Payload),
		Mode:           policy.ModeReencrypt,
	}
	res := h.policy.decider.Payload(h.policy.ctx, st.session, &req)
	if res.Verdict != policy.Allow {
		return ""
	}
	if res.KeyID != "" {
		return res.KeyID
	}
	return ring.Active(crypto.PurposeReencrypt)
}

// markEnvelope tells an MQTT 5 subscriber that the payload is an envelope
// (sdk/envelope: the "moat-envelope" property, and the envelope content
// type when the message had none), and drops a payload format indicator
// of UTF-8, which ciphertext is not.
func markEnvelope(pk *packets.Packet) {
	user := make([]packets.UserProperty, 0, len(pk.Properties.User)+1)
	user = append(user, pk.Properties.User...)
	pk.Properties.User = append(user, packets.UserProperty{Key: envelope.Property, Val: "1"})
	if pk.Properties.ContentType == "" {
		pk.Properties.ContentType = envelope.ContentType
	}
	pk.Properties.PayloadFormat, pk.Properties.PayloadFormatFlag = 0, false
}

// deliveryFailure counts and logs a delivery that goes out as the stored
// envelope. It names the key id and the topic, never the content.
func (h *payloadHook) deliveryFailure(cl *mqtt.Client, topic, keyID string, err error) {
	h.stats.deliveryFailures.Add(1)
	h.log.Warn("payload delivered encrypted: cannot open it", "client_id", cl.ID, "topic", topic, "key_id", keyID, "err", err)
}

// keyIDOf returns the key id of an envelope, or "".
func keyIDOf(b []byte) string {
	h, err := envelope.Parse(b)
	if err != nil {
		return ""
	}
	return h.KeyID
}
