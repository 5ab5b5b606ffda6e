package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// v3Refused turns the refusal of an MQTT 3.1.1 QoS 1 or 2 PUBLISH into an
// acknowledged drop, unless [mqtt] v3_denied_publish = "disconnect".
//
// MQTT 3.1.1 acknowledgements carry no reason code, and mochi's answer to a
// refused QoS 1/2 PUBLISH from a 3.1.1 client is to disconnect it. A device
// with a persistent session then resends the message on every reconnect,
// forever. Mosquitto acknowledges and drops such a message, which
// [MQTT-3.3.5-2] allows ("the Server MUST either make a positive
// acknowledgement, according to the normal QoS rules, or close the Network
// Connection"). To do so, OnACLCheck answers yes and marks the packet, and
// OnPublish, which mochi calls next on the same goroutine, has mochi
// acknowledge it without retaining or delivering it (CodeSuccessIgnore).
//
// It is called for every PUBLISH that reaches OnACLCheck(write) and sets
// st.dropPub each time, so a mark never outlives its packet.
func (h *policyHook) v3Refused(cl *mqtt.Client, st *clientState, topic string, qos byte, allowed bool) bool {
	st.dropPub = false
	if allowed || h.v3Disconnect || cl.Properties.ProtocolVersion >= 5 || qos == 0 {
		return allowed
	}
	st.dropPub = true
	h.v3Dropped.Add(1)
	h.log.Info("not authorized, acknowledged and dropped", "client_id", cl.ID, "action", "publish",
		"topic", topic, "qos", qos, "protocol", cl.Properties.ProtocolVersion)
	return true
}

// OnPublish implements mqtt.Hook: it drops, after acknowledgement, a PUBLISH
// that v3Refused marked. Every other PUBLISH passes untouched.
func (h *policyHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	st := h.state(cl)
	if st == nil || !st.dropPub {
		return pk, nil
	}
	st.dropPub = false
	return pk, packets.CodeSuccessIgnore
}

// V3DroppedPublishes reports how many MQTT 3.1.1 QoS 1/2 publishes the
// policy refused were acknowledged and dropped since the broker started.
func (b *Broker) V3DroppedPublishes() int64 { return b.policy.v3Dropped.Load() }
