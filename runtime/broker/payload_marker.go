package broker

import (
	"strings"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// The marker of a broker-sealed payload.
//
// A payload the broker sealed (at-rest, and the stored form of reencrypt)
// carries one MQTT user property, markerKey, whose value is the mode and
// the topic the envelope is bound to: "at-rest:sensors/1/temp". It is set
// on the stored packet, so it travels wherever mochi keeps the message
// (retained store, inflight queues, the bolt file, which persists user
// properties) and survives a restart; OnPacketEncode reads it on every
// outbound PUBLISH, decides, and removes it, so no subscriber ever sees it.
//
// Why a property and not the payload bytes alone: a publisher's own
// end-to-end envelope (require-e2e) looks exactly like a broker-made one,
// and must never be opened by the broker. The property says "the broker
// made this"; a client cannot forge it because OnPublish (and OnConnect for
// wills) strips any markerKey property a client sends before anything is
// stored. Why the topic: mochi blanks the topic name of an outbound PUBLISH
// that uses a topic alias, and the topic is the envelope's associated data.
// When the packet has its topic name, that one is used, so an envelope moved
// to another topic (by editing the store) fails to open.
//
// Properties are metadata and travel in clear: the marker reveals that a
// payload is encrypted and its topic, which the stored message shows anyway.
const markerKey = "moat-mode"

// markerValue builds the marker of a payload sealed in mode for topic.
func markerValue(mode policy.Mode, topic string) string {
	return mode.String() + ":" + topic
}

// parseMarker splits a marker value; ok is false for anything OnPublish
// could not have written, which the caller treats as a delivery failure.
func parseMarker(v string) (mode policy.Mode, topic string, ok bool) {
	name, topic, found := strings.Cut(v, ":")
	if !found {
		return 0, "", false
	}
	switch name {
	case "at-rest":
		return policy.ModeAtRest, topic, true
	case "reencrypt":
		return policy.ModeReencrypt, topic, true
	}
	return 0, "", false
}

// markerIndex returns the index of the marker in props, or -1. It is the
// whole cost of the delivery hook for a message without one: a scan of
// the user properties, usually none.
func markerIndex(props []packets.UserProperty) int {
	for i := range props {
		if props[i].Key == markerKey {
			return i
		}
	}
	return -1
}

// withoutMarker returns props without any marker. It never modifies props,
// whose backing array mochi shares between a stored packet and its
// copies; it returns props itself when there is nothing to remove.
func withoutMarker(props []packets.UserProperty) []packets.UserProperty {
	i := markerIndex(props)
	if i < 0 {
		return props
	}
	out := make([]packets.UserProperty, 0, len(props)-1)
	out = append(out, props[:i]...)
	for _, p := range props[i+1:] {
		if p.Key != markerKey {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// withMarker returns a copy of props with the marker appended.
func withMarker(props []packets.UserProperty, mode policy.Mode, topic string) []packets.UserProperty {
	out := make([]packets.UserProperty, 0, len(props)+1)
	out = append(out, props...)
	return append(out, packets.UserProperty{Key: markerKey, Val: markerValue(mode, topic)})
}

// policyProps converts user properties for a policy request.
func policyProps(props []packets.UserProperty) []policy.Property {
	if len(props) == 0 {
		return nil
	}
	out := make([]policy.Property, len(props))
	for i, p := range props {
		out[i] = policy.Property{Key: p.Key, Value: p.Val}
	}
	return out
}
