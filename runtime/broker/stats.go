package broker

import (
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Traffic counters for metrics (issue 13). The statsHook counts with
// atomics only, indexed by listener, protocol and QoS, so that it adds no
// lock and no allocation per packet; Broker.Stats copies them out for a
// scrape. It is registered only when Options.Stats is set: a broker
// without metrics does not pay for it.

// Protocols lists the protocol labels of Stats, indexed as its arrays are:
// MQTT 3.1, 3.1.1 and 5.
var Protocols = [3]string{"3.1", "3.1.1", "5"}

// Drop reasons, as Stats.Dropped keys them.
const (
	// DropSlowSubscriber: mochi dropped a message for a subscriber whose
	// outbound queue or inflight window was full.
	DropSlowSubscriber = "slow_subscriber"
	// DropQoSExpired: a QoS 1/2 message left the inflight store unacked
	// (expired, or the session went).
	DropQoSExpired = "qos_expired"
	// DropNotAuthorized: a PUBLISH the authz policy denied.
	DropNotAuthorized = "not_authorized"
	// DropPayloadDenied, DropPayloadInvalid, DropPayloadFailed: a publish
	// or will the payload policy refused (see PayloadStats).
	DropPayloadDenied  = "payload_denied"
	DropPayloadInvalid = "payload_invalid"
	DropPayloadFailed  = "payload_failed"
)

// ListenerStats are the connections of one listener, by protocol
// (indexed as Protocols).
type ListenerStats struct {
	Name string
	// Current counts the connections established now; Total, those
	// established since start. A refused CONNECT is in neither.
	Current [3]int64
	Total   [3]uint64
}

// Stats is a snapshot of the broker's traffic counters since it started.
// Arrays indexed by QoS hold QoS 0, 1 and 2.
type Stats struct {
	Listeners []ListenerStats
	// Refused counts CONNECTs the broker refused (policy, bad protocol,
	// server busy answered by moat's hooks).
	Refused uint64
	// MessagesReceived and MessagesSent count PUBLISH packets read from
	// and written to clients; the Bytes fields sum their payloads.
	MessagesReceived, MessagesSent [3]uint64
	BytesReceived, BytesSent       [3]uint64
	// NetworkBytesReceived and NetworkBytesSent count every byte of every
	// packet (mochi's own counters).
	NetworkBytesReceived, NetworkBytesSent uint64
	// Dropped counts messages not delivered, by reason (Drop*).
	Dropped map[string]uint64
	// Retained and Subscriptions are the retained messages (clients'
	// only, not mochi's $SYS topics) and subscriptions held now.
	Retained, Subscriptions int64
}

type listenerCounters struct {
	current [3]atomic.Int64
	total   [3]atomic.Uint64
}

// statsHook counts connections and messages.
type statsHook struct {
	mqtt.HookBase
	names     []string
	listeners []listenerCounters // indexed as names
	other     listenerCounters   // a listener name not in names (none today)

	refused                 atomic.Uint64
	msgIn, msgOut           [3]atomic.Uint64
	bytesIn, bytesOut       [3]atomic.Uint64
	slowDropped, qosDropped atomic.Uint64
	notAuthorized           atomic.Uint64
}

func newStatsHook(names []string) *statsHook {
	return &statsHook{names: names, listeners: make([]listenerCounters, len(names))}
}

var _ mqtt.Hook = (*statsHook)(nil)

// ID names the hook for mochi.
func (h *statsHook) ID() string { return "moat-stats" }

// Provides lists the events the hook counts.
func (h *statsHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnPacketRead,
		mqtt.OnPacketSent, mqtt.OnPublishDropped, mqtt.OnQosDropped:
		return true
	}
	return false
}

func (h *statsHook) listener(name string) *listenerCounters {
	for i, n := range h.names {
		if n == name {
			return &h.listeners[i]
		}
	}
	return &h.other
}

// protoIndex maps a protocol version (3, 4, 5) to its index in Protocols.
func protoIndex(v byte) int {
	switch v {
	case 3:
		return 0
	case 5:
		return 2
	}
	return 1
}

// OnSessionEstablished counts a connection once its CONNACK was sent; mochi
// calls OnDisconnect for exactly the connections that got this far.
func (h *statsHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	l, p := h.listener(cl.Net.Listener), protoIndex(cl.Properties.ProtocolVersion)
	l.current[p].Add(1)
	l.total[p].Add(1)
}

// OnDisconnect uncounts a connection.
func (h *statsHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.listener(cl.Net.Listener).current[protoIndex(cl.Properties.ProtocolVersion)].Add(-1)
}

// OnPacketRead counts an incoming PUBLISH, whatever the policy makes of it.
func (h *statsHook) OnPacketRead(_ *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Publish {
		q := min(pk.FixedHeader.Qos, 2)
		h.msgIn[q].Add(1)
		h.bytesIn[q].Add(uint64(len(pk.Payload)))
	}
	return pk, nil
}

// OnPacketSent counts a PUBLISH written to a subscriber.
func (h *statsHook) OnPacketSent(_ *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type == packets.Publish {
		q := min(pk.FixedHeader.Qos, 2)
		h.msgOut[q].Add(1)
		h.bytesOut[q].Add(uint64(len(pk.Payload)))
	}
}

// OnPublishDropped counts a message dropped for a slow subscriber.
func (h *statsHook) OnPublishDropped(*mqtt.Client, packets.Packet) { h.slowDropped.Add(1) }

// OnQosDropped counts a QoS 1/2 message that left the inflight store
// unacknowledged.
func (h *statsHook) OnQosDropped(*mqtt.Client, packets.Packet) { h.qosDropped.Add(1) }

// Stats returns the broker's traffic counters. Without Options.Stats only
// mochi's own counters (network bytes, retained, subscriptions) and the
// payload refusals are filled in.
func (b *Broker) Stats() Stats {
	info := b.srv.Info
	ps := b.PayloadStats()
	s := Stats{
		NetworkBytesReceived: uint64(atomic.LoadInt64(&info.BytesReceived)),
		NetworkBytesSent:     uint64(atomic.LoadInt64(&info.BytesSent)),
		Retained:             retained(b.srv),
		Subscriptions:        atomic.LoadInt64(&info.Subscriptions),
		Dropped: map[string]uint64{
			DropPayloadDenied:  ps.Denied,
			DropPayloadInvalid: ps.Invalid,
			DropPayloadFailed:  ps.Failed,
		},
	}
	h := b.stats
	if h == nil {
		return s
	}
	for i := range h.listeners {
		l := ListenerStats{Name: h.names[i]}
		for p := range 3 {
			l.Current[p] = h.listeners[i].current[p].Load()
			l.Total[p] = h.listeners[i].total[p].Load()
		}
		s.Listeners = append(s.Listeners, l)
	}
	s.Refused = h.refused.Load()
	for q := range 3 {
		s.MessagesReceived[q] = h.msgIn[q].Load()
		s.MessagesSent[q] = h.msgOut[q].Load()
		s.BytesReceived[q] = h.bytesIn[q].Load()
		s.BytesSent[q] = h.bytesOut[q].Load()
	}
	s.Dropped[DropSlowSubscriber] = h.slowDropped.Load()
	s.Dropped[DropQoSExpired] = h.qosDropped.Load()
	s.Dropped[DropNotAuthorized] = h.notAuthorized.Load()
	return s
}

// Ready reports why the broker does not serve, or nil when it does: started
// and not closed, every listener bound, the store open when persistence is
// configured.
func (b *Broker) Ready() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.state == stateNew:
		return errNotStarted
	case b.state == stateClosed:
		return errClosed
	case len(b.listeners) != len(b.cfg.Listeners):
		return errNotStarted
	case b.cfg.Persistence.Type == "bolt" && b.store == nil:
		return errNoStore
	}
	return nil
}

var (
	errNotStarted = errorString("broker: not started")
	errClosed     = errorString("broker: closed")
	errNoStore    = errorString("broker: persistence store not open")
)

type errorString string

func (e errorString) Error() string { return string(e) }

// retained counts the retained messages of clients. mochi's Info.Retained
// is refreshed only when a client retains a message, and counts the $SYS
// topics mochi publishes itself (about 20): the index's length, less the
// $SYS subtree, which a scan of that subtree alone counts.
func retained(srv *mqtt.Server) int64 {
	n := srv.Topics.Retained.Len() - len(srv.Topics.Messages(mqtt.SysPrefix+"/#"))
	return int64(max(n, 0))
}
