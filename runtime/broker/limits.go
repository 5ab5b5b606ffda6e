package broker

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/time/rate"

	"github.com/moat-mqtt/moat/runtime/config"
)

// defaultConnectTimeout applies when [limits] connect_timeout is zero (a
// Config built in code).
const defaultConnectTimeout = 10 * time.Second

// limitsHook enforces [limits] on clients: the refusals the gate decided at
// accept, bans, the client id length, topic length and levels, the
// subscriptions per client, message and byte rates, and it reports
// disconnects to flapping detection. It is registered before every other
// hook, so that a refused CONNECT costs no authn module call. It provides
// no auth: see checkAuthHooks.
type limitsHook struct {
	mqtt.HookBase
	srv  *mqtt.Server
	g    *gate
	lim  config.Limits
	log  *slog.Logger
	subs bool // a subscription limit is set
	// refusals bounds the audit records of CONNECTs refused by
	// authn_failure_rate_per_ip; the policy hook's (refusallog.go).
	refusals *refusalLog

	// refused holds, per client, the SUBACK codes of filters refused by
	// OnSubscribe (see capsHook.refused, which works the same way).
	refused sync.Map // *mqtt.Client -> []subRefusal
	// rates holds the message and byte buckets of each client.
	rates sync.Map // *mqtt.Client -> *clientRate
}

// clientRate is one client's buckets. Only the client's read goroutine
// uses it.
type clientRate struct {
	msgs, bytes *rate.Limiter
	slowSince   time.Time // zero while the client keeps to its rate
}

func newLimitsHook(srv *mqtt.Server, g *gate, log *slog.Logger) *limitsHook {
	l := g.lim
	return &limitsHook{srv: srv, g: g, lim: l, log: log,
		subs: l.MaxTopicLength > 0 || l.MaxTopicLevels > 0 || l.MaxSubscriptionsPerClient > 0}
}

// ID implements mqtt.Hook.
func (h *limitsHook) ID() string { return "moat-limits" }

// Provides implements mqtt.Hook.
func (h *limitsHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnDisconnect, mqtt.OnPacketRead:
		return true
	case mqtt.OnSubscribe, mqtt.OnPacketEncode:
		return h.subs
	}
	return false
}

// OnConnect refuses what the gate refused at accept, banned clients and
// over-long client ids, before any module is asked.
func (h *limitsHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if cl.Net.Inline {
		return nil
	}
	if gc := gatedOf(cl.Net.Conn); gc != nil && gc.refusal != nil {
		return h.refuse(cl, gc.refusal, false)
	}
	now := time.Now()
	if b, ok := h.g.bans.match(cl.ID, string(cl.Properties.Username), addrOf(remoteAddr(cl)), now); ok {
		h.g.note(refuseBanned, addrOf(remoteAddr(cl)), cl.Net.Listener)
		h.log.Debug("banned client refused", "client_id", cl.ID, "kind", b.Kind, "value", b.Value)
		return h.refuse(cl, refuseBanned, true)
	}
	if addr := addrOf(remoteAddr(cl)); h.g.fails.exhausted(addr, now) {
		// Counted with the other limits and audited as the policy's
		// refusals are, bounded per address: not one Warn per episode.
		h.g.count(refuseAuthnRate.reason)
		if h.refusals.allow(addr, now) {
			h.log.Info("connection refused", "audit", "deny", "decision", "authn", "client_id", cl.ID,
				"username", string(cl.Properties.Username), "remote", cl.Net.Remote, "listener", cl.Net.Listener,
				"reason", refuseAuthnRate.reason, "code", refuseAuthnRate.v5.Code)
		}
		return h.refuse(cl, refuseAuthnRate, true)
	}
	if n := h.lim.MaxClientIDLength; n > 0 && len(cl.ID) > n {
		return h.refuse(cl, &connRefusal{"max_client_id_length", packets.ErrClientIdentifierNotValid, 2}, false)
	}
	if pk.Connect.WillFlag && h.topicTooBig(pk.Connect.WillTopic) {
		return h.refuse(cl, &connRefusal{"max_topic_length", packets.ErrTopicNameInvalid, 2}, false)
	}
	return nil
}

// refuse answers a CONNECT with r's CONNACK and returns the error that
// makes mochi close the connection. noted: the refusal was counted and
// logged already.
func (h *limitsHook) refuse(cl *mqtt.Client, r *connRefusal, noted bool) error {
	if !noted && r != refuseBusy && r != refuseListener && r != refuseIPCap && r != refuseRate && r != refuseIPRate && r != refuseBanned {
		h.g.note(r, addrOf(remoteAddr(cl)), cl.Net.Listener)
	}
	var err error
	if cl.Properties.ProtocolVersion < 5 {
		err = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: r.v3})
	} else {
		err = h.srv.SendConnack(cl, r.v5, false, nil)
	}
	code := packets.Code{Code: r.v5.Code, Reason: "connection refused: " + r.reason}
	if err != nil {
		return fmt.Errorf("broker: client %q: send CONNACK: %w", cl.ID, errors.Join(code, err))
	}
	return code
}

// topicTooBig reports whether a topic name or filter passes
// max_topic_length or max_topic_levels.
func (h *limitsHook) topicTooBig(t string) bool {
	if n := h.lim.MaxTopicLength; n > 0 && len(t) > n {
		return true
	}
	if n := h.lim.MaxTopicLevels; n > 0 && strings.Count(t, "/")+1 > n {
		return true
	}
	return false
}

// errReject makes mochi drop the packet and end the client's read loop;
// any other error of OnPacketRead is ignored by mochi v2.7.9
// (Hooks.OnPacketRead), which would process the packet anyway.
var errReject = fmt.Errorf("broker: limits: %w", packets.ErrRejectPacket)

// OnPacketRead enforces the topic limits on PUBLISH, and the message and
// byte rates: a client over its rate has its reads paused until its bucket
// allows the packet (TCP then pushes back on it), and one that stays over
// the rate for rate_grace is disconnected (MQTT 5: DISCONNECT 0x96).
func (h *limitsHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Publish || cl.Net.Inline {
		return pk, nil
	}
	if h.topicTooBig(pk.TopicName) {
		h.g.note(&connRefusal{reason: "publish topic over max_topic_length or max_topic_levels"}, addrOf(remoteAddr(cl)), cl.Net.Listener)
		_ = h.srv.DisconnectClient(cl, packets.ErrTopicNameInvalid)
		return pk, errReject
	}
	if h.lim.MessageRate <= 0 && h.lim.ByteRate <= 0 {
		return pk, nil
	}
	v, ok := h.rates.Load(cl)
	if !ok {
		cr := &clientRate{}
		if h.lim.MessageRate > 0 {
			cr.msgs = rate.NewLimiter(rate.Limit(h.lim.MessageRate), max(h.lim.MessageBurst, 1))
		}
		if h.lim.ByteRate > 0 {
			cr.bytes = rate.NewLimiter(rate.Limit(h.lim.ByteRate), int(max(h.lim.ByteBurst, 1)))
		}
		v, _ = h.rates.LoadOrStore(cl, cr)
	}
	cr := v.(*clientRate)
	now := time.Now()
	var wait time.Duration
	if cr.msgs != nil {
		wait = max(wait, cr.msgs.ReserveN(now, 1).DelayFrom(now))
	}
	if cr.bytes != nil {
		size := min(pk.FixedHeader.Remaining+5, cr.bytes.Burst())
		wait = max(wait, cr.bytes.ReserveN(now, size).DelayFrom(now))
	}
	if wait <= 0 {
		cr.slowSince = time.Time{}
		return pk, nil
	}
	if cr.slowSince.IsZero() {
		cr.slowSince = now
		h.g.note(&connRefusal{reason: "client over message_rate or byte_rate: reads paused"}, addrOf(remoteAddr(cl)), cl.Net.Listener)
	}
	if now.Add(wait).Sub(cr.slowSince) > h.lim.RateGrace.Duration {
		h.g.note(&connRefusal{reason: "client over its rate past rate_grace: disconnected"}, addrOf(remoteAddr(cl)), cl.Net.Listener)
		_ = h.srv.DisconnectClient(cl, packets.ErrMessageRateTooHigh)
		return pk, errReject
	}
	// The read goroutine sleeps: nothing more is read from this client,
	// nothing else waits on it. Shutdown cuts the socket, which ends the
	// read that follows.
	time.Sleep(wait)
	return pk, nil
}

// OnSubscribe refuses filters over the topic limits (0x8F) and filters past
// max_subscriptions_per_client (0x97), the same way capsHook refuses
// filters: emptied here, their SUBACK code set in OnPacketEncode.
func (h *limitsHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if cl.Net.Inline {
		return pk
	}
	var refused []subRefusal
	var filters packets.Subscriptions
	have := cl.State.Subscriptions.Len()
	var added map[string]bool // new filters of this packet
	for i, sub := range pk.Filters {
		code := byte(0)
		switch {
		case h.topicTooBig(sub.Filter):
			code = packets.ErrTopicFilterInvalid.Code
		case h.lim.MaxSubscriptionsPerClient > 0:
			if _, exists := cl.State.Subscriptions.Get(sub.Filter); exists || added[sub.Filter] {
				break
			}
			if have >= h.lim.MaxSubscriptionsPerClient {
				code = packets.ErrQuotaExceeded.Code
				break
			}
			have++
			if added == nil {
				added = map[string]bool{}
			}
			added[sub.Filter] = true
		}
		if code == 0 {
			continue
		}
		if filters == nil {
			filters = append(packets.Subscriptions(nil), pk.Filters...)
		}
		filters[i].Filter = ""
		refused = append(refused, subRefusal{index: i, code: code})
	}
	if refused == nil {
		h.refused.Delete(cl)
		return pk
	}
	h.g.note(&connRefusal{reason: "subscription over max_subscriptions_per_client or topic limits"}, addrOf(remoteAddr(cl)), cl.Net.Listener)
	pk.Filters = filters
	h.refused.Store(cl, refused)
	return pk
}

// OnPacketEncode substitutes the SUBACK codes of refused filters.
func (h *limitsHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type != packets.Suback {
		return pk
	}
	v, ok := h.refused.LoadAndDelete(cl)
	if !ok {
		return pk
	}
	codes := bytes.Clone(pk.ReasonCodes)
	for _, r := range v.([]subRefusal) {
		if r.index >= len(codes) || codes[r.index] == packets.ErrPacketIdentifierInUse.Code {
			continue
		}
		codes[r.index] = r.code
		if cl.Properties.ProtocolVersion < 5 {
			codes[r.index] = packets.ErrUnspecifiedError.Code // 3.1.1 has only 0x80
		}
	}
	pk.ReasonCodes = codes
	return pk
}

// OnDisconnect forgets the client's state and counts the disconnect for
// flapping detection.
func (h *limitsHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.refused.Delete(cl)
	h.rates.Delete(cl)
	if cl.Net.Inline {
		return
	}
	h.g.flap(cl.ID, addrOf(remoteAddr(cl)), time.Now())
}

// remoteAddr is the client's remote address as a net.Addr.
func remoteAddr(cl *mqtt.Client) net.Addr {
	if cl.Net.Conn != nil {
		return cl.Net.Conn.RemoteAddr()
	}
	return stringAddr(cl.Net.Remote)
}

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }

// gatedOf finds the gatedConn beneath the connection mochi serves.
func gatedOf(c net.Conn) *gatedConn {
	g, _ := beneath[*gatedConn](c)
	return g
}

// applyLimits gives a listener its gate and connect timeout.
func (l *listener) applyLimits(g *gate, lc config.Listener, lim config.Limits) {
	l.tracking.gate = g.forListener(lc)
	l.connectTimeout = lim.ConnectTimeout.Duration
	if l.connectTimeout <= 0 {
		l.connectTimeout = defaultConnectTimeout
	}
	if l.http != nil {
		l.http.ReadHeaderTimeout = l.connectTimeout
	}
}
