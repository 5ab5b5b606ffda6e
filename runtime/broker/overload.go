package broker

import (
	"bytes"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// overloadHook applies moat's rule for a subscriber that cannot keep up
// (runtime/RATIONALE.md, "Delivery under overload"). The patched mochi in
// third_party/mochi does the holding back: a QoS 1/2 message that finds no
// room in a subscriber's in-flight window or outbound queue makes its
// publisher wait, up to [mqtt] slow_subscriber_timeout, its socket unread.
// A message that finds the outbound queue full, by count
// ([mqtt] maximum_queued_messages) or by bytes (maximum_queued_bytes),
// first evicts the oldest queued QoS 0 messages: mochi calls
// OnPublishEvicted for each. mochi calls OnPublishDropped only when a
// message is dropped after all:
//
//   - a QoS 0 message that found the outbound queue full of QoS 1/2
//     messages (QoS 0 never waits, and never takes room from a QoS 1/2
//     message: that one evicts it);
//   - a QoS 1/2 message whose subscriber stayed without room for the whole
//     timeout, or whose offline session's in-flight store is full.
//
// The last kind makes the subscriber "stuck": it is disconnected (MQTT 5
// clients get DISCONNECT 0x97 Quota exceeded first), so that its publishers
// move again. Each kind is counted and logged once per episode: from the
// first drop until the client next connects or its session expires.
type overloadHook struct {
	mqtt.HookBase
	srv *mqtt.Server
	log *slog.Logger

	stats overloadStats
	// keepStuck leaves a stuck subscriber connected; only BenchmarkFlood
	// sets it, to measure moat as it was before the rule.
	keepStuck bool

	mu    sync.Mutex
	qos0  map[string]bool // client id -> QoS 0 drop episode open
	stuck map[string]bool // client id -> stuck episode open
}

type overloadStats struct {
	qos0Evicted, qos0Dropped, stuckDropped, stuckClients atomic.Uint64
}

// OverloadStats counts what the overload rule did since the broker started.
type OverloadStats struct {
	// QoS0Evicted counts QoS 0 messages evicted, unsent, from a
	// subscriber's outbound queue to make room for a newer message: the
	// oldest go first.
	QoS0Evicted uint64
	// QoS0Dropped counts QoS 0 deliveries refused because the subscriber's
	// outbound queue was full of QoS 1/2 messages, which are never evicted.
	QoS0Dropped uint64
	// StuckDropped counts QoS 1/2 deliveries dropped for a stuck subscriber:
	// one without room for slow_subscriber_timeout, or an offline session
	// whose in-flight store is full.
	StuckDropped uint64
	// StuckEpisodes counts episodes of a stuck subscriber, each logged once
	// (and, for a connected one, ended by disconnecting it).
	StuckEpisodes uint64
}

// OverloadStats returns the overload rule's counters.
func (b *Broker) OverloadStats() OverloadStats {
	s := &b.overload.stats
	return OverloadStats{
		QoS0Evicted:   s.qos0Evicted.Load(),
		QoS0Dropped:   s.qos0Dropped.Load(),
		StuckDropped:  s.stuckDropped.Load(),
		StuckEpisodes: s.stuckClients.Load(),
	}
}

func newOverloadHook(srv *mqtt.Server, log *slog.Logger) *overloadHook {
	return &overloadHook{srv: srv, log: log, qos0: map[string]bool{}, stuck: map[string]bool{}}
}

// ID implements mqtt.Hook.
func (h *overloadHook) ID() string { return "moat-overload" }

// Provides implements mqtt.Hook.
func (h *overloadHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnPublishDropped, mqtt.OnPublishEvicted, mqtt.OnSessionEstablished, mqtt.OnClientExpired}, []byte{b})
}

// OnPublishEvicted implements mqtt.Hook. It runs on the goroutine of the
// publisher whose message took the room.
func (h *overloadHook) OnPublishEvicted(cl *mqtt.Client, pk packets.Packet) {
	h.stats.qos0Evicted.Add(1)
	h.qos0Episode(cl, pk)
}

// qos0Episode logs the start of a client's episode of QoS 0 losses.
func (h *overloadHook) qos0Episode(cl *mqtt.Client, pk packets.Packet) {
	if h.open(h.qos0, cl.ID) {
		h.log.Warn("overload: dropping QoS 0 messages for a slow subscriber, oldest first: its outbound queue is full (mqtt.maximum_queued_messages or maximum_queued_bytes); logged once until it reconnects",
			"client_id", cl.ID, "topic", pk.TopicName)
	}
}

// OnPublishDropped implements mqtt.Hook. It runs on the publisher's
// goroutine, so it never writes to the subscriber's socket itself.
func (h *overloadHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Qos == 0 {
		h.stats.qos0Dropped.Add(1)
		h.qos0Episode(cl, pk)
		return
	}
	h.stats.stuckDropped.Add(1)
	if !h.open(h.stuck, cl.ID) {
		return
	}
	h.stats.stuckClients.Add(1)
	if cl.Closed() {
		h.log.Warn("overload: dropping QoS 1/2 messages for an offline session: its in-flight store is full (mqtt.maximum_inflight); logged once until it reconnects or expires",
			"client_id", cl.ID, "topic", pk.TopicName)
		return
	}
	if h.keepStuck {
		return
	}
	h.log.Warn("overload: disconnecting a stuck subscriber: no room for a QoS 1/2 message within mqtt.slow_subscriber_timeout; its messages without room are dropped",
		"client_id", cl.ID, "topic", pk.TopicName)
	go h.disconnect(cl)
}

// disconnect stops a stuck client. An MQTT 5 client is told why, with a
// bounded write: its socket is the one that does not drain.
func (h *overloadHook) disconnect(cl *mqtt.Client) {
	if cl.Properties.ProtocolVersion == 5 && cl.Net.Conn != nil {
		_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_ = h.srv.DisconnectClient(cl, packets.ErrQuotaExceeded)
	}
	cl.Stop(packets.ErrQuotaExceeded)
}

// open starts an episode for id in m, reporting whether it is new.
func (h *overloadHook) open(m map[string]bool, id string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m[id] {
		return false
	}
	m[id] = true
	return true
}

// close ends id's episodes.
func (h *overloadHook) close(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.qos0, id)
	delete(h.stuck, id)
}

// OnSessionEstablished implements mqtt.Hook: a new connection starts afresh.
func (h *overloadHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) { h.close(cl.ID) }

// OnClientExpired implements mqtt.Hook.
func (h *overloadHook) OnClientExpired(cl *mqtt.Client) { h.close(cl.ID) }
