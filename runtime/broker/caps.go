package broker

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/config"
)

// capabilities maps [mqtt] onto mochi's capabilities. The config has been
// validated and its defaults applied, so every value is taken as it is: a
// zero means what config.MQTT documents (no limit, none, or off).
//
// Notes on mochi v2.7.9 semantics:
//   - MaximumPacketSize is enforced on the fixed header, before the body is
//     allocated; it is what stops a client from making the broker allocate
//     256 MiB with one length field.
//   - MaximumMessageExpiryInterval also bounds the life of retained
//     messages: mochi drops a retained message older than it.
//   - MaximumSessionExpiryInterval is the lifetime of MQTT 3.1.1 persistent
//     (clean = false) sessions too. moat's 0s (no cap) becomes 2^32-1 s,
//     which MQTT 5 defines as "never expires" (§3.1.2.11.2); mochi's 0
//     would end every 3.1.1 session at disconnect.
//   - NoInheritedPropertiesOnAck: mochi copies the publisher's properties
//     (user properties included) into PUBACK and PUBREC unless told not
//     to; an acknowledgement carries only the reason code and, for a
//     refusal, the reason string.
//   - Wildcard and shared subscription availability, retain availability
//     for MQTT 5 and the maximum keepalive are not enforced by mochi, and
//     CONNACK does not advertise them; capsHook does both.
func capabilities(m config.MQTT) *mqtt.Capabilities {
	c := mqtt.NewDefaultServerCapabilities()
	c.MaximumPacketSize = uint32(min(int64(m.MaximumPacketSize), math.MaxUint32))
	c.ReceiveMaximum = m.ReceiveMaximum
	c.MaximumInflight = m.MaximumInflight
	c.MaximumClientWritesPending = m.MaximumQueuedMessages
	c.MaximumClientWritesPendingBytes = int64(m.MaximumQueuedBytes)
	c.MaximumClientWritesWait = m.SlowSubscriberTimeout.Duration
	c.MaximumSessionExpiryInterval = math.MaxUint32
	if d := m.MaximumSessionExpiry.Duration; d > 0 {
		c.MaximumSessionExpiryInterval = uint32(min(seconds(d), math.MaxUint32))
	}
	c.MaximumMessageExpiryInterval = seconds(m.MaximumMessageExpiry.Duration)
	c.MaximumClients = math.MaxInt64
	if m.MaximumClients > 0 {
		c.MaximumClients = m.MaximumClients
	}
	c.MaximumQos = min(m.MaximumQoS, 2)
	c.RetainAvailable = flag(m.RetainAvailable)
	c.WildcardSubAvailable = flag(m.WildcardSubscriptions)
	c.SharedSubAvailable = flag(m.SharedSubscriptions)
	c.TopicAliasMaximum = m.MaximumTopicAlias
	c.Compatibilities.NoInheritedPropertiesOnAck = true
	return c
}

// seconds converts d to whole seconds, rounding up so that a positive
// duration never becomes zero, which means "no limit" or "expire now".
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

func flag(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// capsHook enforces and advertises the capabilities that mochi v2.7.9 only
// stores: the maximum keepalive, wildcard and shared subscription
// availability, retain availability, and the CONNACK properties that tell
// MQTT 5 clients about them. It provides no auth: see checkAuthHooks.
type capsHook struct {
	mqtt.HookBase
	srv          *mqtt.Server
	caps         *mqtt.Capabilities
	maxKeepalive uint16 // seconds; 0 = no limit

	// refused holds, per client, the SUBACK reason codes to substitute for
	// filters that OnSubscribe refused. A client's SUBSCRIBE is processed
	// and acknowledged on its own goroutine, so the entry is written and
	// consumed in one goroutine; the map only guards against other clients.
	refused sync.Map // *mqtt.Client -> []subRefusal
}

type subRefusal struct {
	index int
	code  byte
}

func newCapsHook(srv *mqtt.Server, caps *mqtt.Capabilities, maxKeepalive time.Duration) *capsHook {
	ka := uint16(0)
	if maxKeepalive > 0 {
		ka = uint16(min(seconds(maxKeepalive), math.MaxUint16))
	}
	return &capsHook{srv: srv, caps: caps, maxKeepalive: ka}
}

// ID implements mqtt.Hook.
func (h *capsHook) ID() string { return "moat-capabilities" }

// Provides implements mqtt.Hook. Only what the configuration needs is
// provided, since mochi calls every providing hook for every packet.
func (h *capsHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketEncode:
		return true
	case mqtt.OnConnect:
		return h.maxKeepalive > 0
	case mqtt.OnSubscribe, mqtt.OnDisconnect:
		return h.caps.WildcardSubAvailable == 0 || h.caps.SharedSubAvailable == 0
	case mqtt.OnPacketRead:
		return h.caps.RetainAvailable == 0
	}
	return false
}

// OnConnect applies the maximum keepalive. An MQTT 5 client is told the
// server keepalive in CONNACK [MQTT-3.2.2-21]. MQTT 3.1.1 has no way to say
// so; like Mosquitto, moat refuses such a client with return code 2
// (identifier rejected) rather than disconnect it later for silence.
func (h *capsHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	ka := pk.Connect.Keepalive
	if ka != 0 && ka <= h.maxKeepalive {
		return nil
	}
	if cl.Properties.ProtocolVersion == 5 {
		cl.State.Keepalive = h.maxKeepalive
		cl.State.ServerKeepalive = true
		return nil
	}
	_ = h.srv.SendConnack(cl, packets.ErrClientIdentifierNotValid, false, nil)
	return fmt.Errorf("broker: keepalive %ds exceeds maximum_keepalive %ds (0 means none)", ka, h.maxKeepalive)
}

// OnPacketRead refuses retained publishes from MQTT 5 clients when retain
// is not available: DISCONNECT 0x9A [MQTT-3.3.1-8]. MQTT 3.1.1 has no such
// notion; mochi delivers the message without retaining it.
func (h *capsHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type != packets.Publish || !pk.FixedHeader.Retain || cl.Properties.ProtocolVersion != 5 {
		return pk, nil
	}
	_ = h.srv.DisconnectClient(cl, packets.ErrRetainNotSupported)
	return pk, packets.ErrRetainNotSupported
}

// OnSubscribe refuses wildcard or shared subscriptions when they are not
// available. mochi has no hook that sets a SUBACK reason code, so the filter
// is emptied (mochi then refuses it as invalid [MQTT-4.7.3-1], without
// subscribing) and OnPacketEncode puts the right code in the SUBACK, in
// place of whatever later hooks made of the empty filter: 0xA2 or 0x9E for
// MQTT 5, 0x80 for MQTT 3.1.1. It runs before the policy hook, which sees
// the empty filter.
func (h *capsHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	var refused []subRefusal
	var filters packets.Subscriptions
	for i, sub := range pk.Filters {
		code := h.refuse(sub.Filter)
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
	pk.Filters = filters
	h.refused.Store(cl, refused)
	return pk
}

// refuse returns the reason code that refuses filter, or 0.
func (h *capsHook) refuse(filter string) byte {
	if mqtt.IsSharedFilter(filter) {
		if h.caps.SharedSubAvailable == 0 {
			return packets.ErrSharedSubscriptionsNotSupported.Code
		}
		// $share/<group>/<filter>: only the filter may hold wildcards.
		if parts := strings.SplitN(filter, "/", 3); len(parts) == 3 {
			filter = parts[2]
		}
	}
	if h.caps.WildcardSubAvailable == 0 && strings.ContainsAny(filter, "+#") {
		return packets.ErrWildcardSubscriptionsNotSupported.Code
	}
	return 0
}

// OnDisconnect forgets refusals whose SUBACK was never written.
func (h *capsHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.refused.Delete(cl)
}

// OnPacketEncode advertises capabilities in a successful MQTT 5 CONNACK and
// substitutes refused SUBACK reason codes.
func (h *capsHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		if pk.ReasonCode != packets.CodeSuccess.Code || cl.Properties.ProtocolVersion != 5 {
			return pk
		}
		p := &pk.Properties
		p.MaximumPacketSize = h.caps.MaximumPacketSize // [MQTT-3.2.2-15]
		p.TopicAliasMaximum = h.caps.TopicAliasMaximum
		// Absent means available; say so only when it is not.
		if h.caps.RetainAvailable == 0 {
			p.RetainAvailable, p.RetainAvailableFlag = 0, true
		}
		if h.caps.WildcardSubAvailable == 0 {
			p.WildcardSubAvailable, p.WildcardSubAvailableFlag = 0, true
		}
		if h.caps.SharedSubAvailable == 0 {
			p.SharedSubAvailable, p.SharedSubAvailableFlag = 0, true
		}
	case packets.Suback:
		v, ok := h.refused.LoadAndDelete(cl)
		if !ok {
			return pk
		}
		codes := bytes.Clone(pk.ReasonCodes)
		for _, r := range v.([]subRefusal) {
			if r.index >= len(codes) || codes[r.index] == packets.ErrPacketIdentifierInUse.Code {
				continue // the whole SUBSCRIBE was refused first
			}
			codes[r.index] = r.code
			if cl.Properties.ProtocolVersion < 5 {
				codes[r.index] = packets.ErrUnspecifiedError.Code // 3.1.1 has only 0x80
			}
		}
		pk.ReasonCodes = codes
	}
	return pk
}
