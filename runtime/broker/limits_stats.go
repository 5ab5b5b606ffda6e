package broker

import (
	"strings"
	"sync/atomic"
	"time"
)

// LimitStats counts what the [limits] rules did since the broker was
// built. Broker.LimitStats reads the gate's counters, which the limits
// keep anyway (for Refused and the episode logs): reading them costs the
// hot path nothing.
type LimitStats struct {
	// ConnectionsRefused counts connections refused by a limit, by
	// reason: max_connections, listener_max_connections,
	// max_connections_per_ip, listener_connection_rate,
	// connection_rate_per_ip, banned, authn_failure_rate_per_ip (an
	// address whose failed authentications used up its bucket),
	// max_client_id_length,
	// max_topic_length (a will topic), connect_timeout (a socket cut
	// because no complete CONNECT came within connect_timeout: no CONNACK
	// is sent, the socket is closed).
	ConnectionsRefused map[string]uint64
	// FlappingBans counts the temporary bans flapping detection added.
	FlappingBans uint64
	// RateSlowed counts the episodes of a client over message_rate or
	// byte_rate whose reads were paused; RateDisconnected those that
	// lasted past rate_grace and ended in a disconnect.
	RateSlowed, RateDisconnected uint64
	// TopicDisconnected counts clients disconnected for a PUBLISH over
	// max_topic_length or max_topic_levels.
	TopicDisconnected uint64
	// SubscribesRefused counts SUBSCRIBE packets with a filter refused
	// by max_subscriptions_per_client or the topic limits.
	SubscribesRefused uint64
	// Bans counts the bans in force now, by kind (BanClientID,
	// BanUsername, BanIP) and whether flapping detection added them.
	Bans, FlappingBansActive map[string]int
}

// The reasons the limits hook counts that are not connection refusals
// (limits.go): they are the episode log's text.
const (
	noteRateSlowed       = "client over message_rate or byte_rate: reads paused"
	noteRateDisconnected = "client over its rate past rate_grace: disconnected"
	noteTopic            = "publish topic over max_topic_length or max_topic_levels"
	noteSubscribe        = "subscription over max_subscriptions_per_client or topic limits"
)

// LimitStats returns the limits' counters and the bans in force.
func (b *Broker) LimitStats() LimitStats {
	st := LimitStats{ConnectionsRefused: map[string]uint64{}, Bans: map[string]int{}, FlappingBansActive: map[string]int{}}
	for _, r := range []*connRefusal{refuseBusy, refuseListener, refuseIPCap, refuseRate, refuseIPRate, refuseBanned, refuseAuthnRate, refuseTimeout} {
		st.ConnectionsRefused[strings.ReplaceAll(r.reason, ".", "_")] = 0
	}
	b.gate.stats.Range(func(k, v any) bool {
		n := uint64(v.(*atomic.Int64).Load())
		switch reason := k.(string); reason {
		case "flapping":
			st.FlappingBans = n
		case noteRateSlowed:
			st.RateSlowed = n
		case noteRateDisconnected:
			st.RateDisconnected = n
		case noteTopic:
			st.TopicDisconnected = n
		case noteSubscribe:
			st.SubscribesRefused = n
		default:
			st.ConnectionsRefused[strings.ReplaceAll(reason, ".", "_")] = n
		}
		return true
	})
	for _, k := range []string{BanClientID, BanUsername, BanIP} {
		st.Bans[k], st.FlappingBansActive[k] = 0, 0
	}
	for _, ban := range b.bans.list(time.Now()) {
		if ban.Reason == ReasonFlapping {
			st.FlappingBansActive[ban.Kind]++
		} else {
			st.Bans[ban.Kind]++
		}
	}
	return st
}
