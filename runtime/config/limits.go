package config

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"
)

// Limits is the [limits] section: what one client, one address or one
// listener may cost the broker, and how abuse is refused. Every limit has a
// safe default; a zero written in the file means "no limit" or "off" as
// each field says. Per-listener connection caps and rates are keys of
// [[listener]] (max_connections, connection_rate, connection_burst).
//
// A reload does not apply [limits] (it needs a restart); bans are managed
// live with `moat ban`.
type Limits struct {
	// MaxClientIDLength bounds a client identifier in bytes; default 256.
	// 0 means the protocol's 65535. A longer one is refused in CONNACK:
	// 0x85 (MQTT 5) or 2, identifier rejected (MQTT 3.1.1).
	MaxClientIDLength int `toml:"max_client_id_length"`
	// MaxTopicLength bounds a topic name or filter in bytes; default 4096;
	// 0 means the protocol's 65535.
	MaxTopicLength int `toml:"max_topic_length"`
	// MaxTopicLevels bounds the levels of a topic name or filter; default
	// 128 (Mosquitto allows 200); 0 means no limit. A publish over either
	// topic bound disconnects the client (MQTT 5: DISCONNECT 0x90); a
	// filter over them is refused in SUBACK (0x8F; 0x80 for MQTT 3.1.1).
	MaxTopicLevels int `toml:"max_topic_levels"`
	// MaxSubscriptionsPerClient bounds the filters one session holds;
	// default 1024; 0 means no limit. A filter past it is refused in SUBACK
	// (MQTT 5: 0x97 quota exceeded; 0x80 for MQTT 3.1.1).
	MaxSubscriptionsPerClient int `toml:"max_subscriptions_per_client"`
	// ConnectTimeout is the time from TCP accept to a complete CONNECT
	// packet, TLS handshake and websocket upgrade included; default 10s,
	// 1s to 5m (0, in a Config built in code, is the default). A slowloris
	// peer is cut when it passes.
	ConnectTimeout Duration `toml:"connect_timeout"`
	// MaxConnections bounds open sockets over all listeners, those not yet
	// past CONNECT included; default 100000; 0 means no limit.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerIP bounds open sockets from one IP address; default
	// 0 (no limit), since fleets behind one NAT share an address.
	MaxConnectionsPerIP int `toml:"max_connections_per_ip"`
	// ConnectionRatePerIP is the sustained rate of new connections one IP
	// address may open, per second (a token bucket of ConnectionBurstPerIP
	// tokens); default 0: off. Over it a CONNECT is refused: MQTT 5 0x9F
	// connection rate exceeded, MQTT 3.1.1 3 (server unavailable).
	ConnectionRatePerIP float64 `toml:"connection_rate_per_ip"`
	// ConnectionBurstPerIP is the bucket size; default twice the rate,
	// at least 1.
	ConnectionBurstPerIP int `toml:"connection_burst_per_ip"`
	// MessageRate is the sustained rate of PUBLISH packets one client may
	// send, per second; default 0: off. MessageBurst is the bucket size
	// (default twice the rate, at least 1).
	MessageRate  float64 `toml:"message_rate"`
	MessageBurst int     `toml:"message_burst"`
	// ByteRate is the sustained rate of PUBLISH bytes (whole packets) one
	// client may send, per second, e.g. "64KiB"; default 0: off.
	// ByteBurst is the bucket size (default twice the rate, and at least
	// one maximum-size packet).
	ByteRate  ByteSize `toml:"byte_rate"`
	ByteBurst ByteSize `toml:"byte_burst"`
	// RateGrace is how long a client may stay over its message or byte
	// rate before it is dropped: until then its reads are paused so it
	// sends at the rate (TCP pushes back on it). Default 10s. Dropped: MQTT
	// 5 DISCONNECT 0x96 message rate too high.
	RateGrace Duration `toml:"rate_grace"`

	// BanFile keeps the bans of `moat ban` across restarts; default
	// "moat.bans" beside the config, "off" keeps them in memory only.
	BanFile string `toml:"ban_file"`

	// FlapCount disconnects within FlapWindow from one client id, or from
	// one IP address, ban that client id or address for FlapBan; default
	// 0: off. Counting the address too means rotating client ids does not
	// dodge it.
	FlapCount  int      `toml:"flap_count"`
	FlapWindow Duration `toml:"flap_window"` // default 1m
	FlapBan    Duration `toml:"flap_ban"`    // default 5m

	// AuthnFailureTTL is how long a refused CONNECT is remembered, per
	// username, client id, remote IP and password: the same attempt again
	// within it is refused without calling the authn modules. Default 2s;
	// 0 turns it off. A different password is always tried.
	AuthnFailureTTL Duration `toml:"authn_failure_ttl"`
	// AuthnFailureRatePerIP is the sustained rate of failed
	// authentications one IP address may have, per second (a token bucket
	// of AuthnFailureBurstPerIP tokens); default 10, 0 turns it off. Only
	// failures take tokens, so clients that log in do not count against
	// their address (unlike connection_rate_per_ip, it spares fleets
	// behind one NAT). While the bucket is empty every CONNECT from the
	// address is refused before any authn module runs, a right password
	// too, until it refills: MQTT 5 0x9F connection rate exceeded, MQTT
	// 3.1.1 3 (server unavailable). It bounds what a wrong-password storm
	// with rotating client ids (which the failed-login cache cannot see)
	// costs in password hashing.
	AuthnFailureRatePerIP float64 `toml:"authn_failure_rate_per_ip"`
	// AuthnFailureBurstPerIP is the bucket size; default twice the rate,
	// at least 1.
	AuthnFailureBurstPerIP int `toml:"authn_failure_burst_per_ip"`
	// PluginConcurrency bounds the calls one plugin may have running or
	// waiting for an instance; past it a call fails at once and the
	// plugin's on_error decides. Default 1024; 0 means no limit.
	PluginConcurrency int `toml:"plugin_concurrency"`
}

// BanFileOff as [limits] ban_file keeps bans in memory only.
const BanFileOff = "off"

// Defaults of [limits].
const (
	defaultMaxClientID      = 256
	defaultMaxTopicLength   = 4096
	defaultMaxTopicLevels   = 128
	defaultMaxSubscriptions = 1024
	defaultConnectTimeout   = 10 * time.Second
	defaultMaxConnections   = 100000
	defaultRateGrace        = 10 * time.Second
	defaultFlapWindow       = time.Minute
	defaultFlapBan          = 5 * time.Minute
	defaultAuthnFailureTTL  = 2 * time.Second
	defaultAuthnFailureRate = 10
	defaultPluginConc       = 1024
	defaultBanFile          = "moat.bans"

	maxProtocolString = math.MaxUint16
)

// defaultsLimits fills in [limits] and the per-listener connection keys.
func (c *Config) defaultsLimits(md *toml.MetaData) {
	def := func(key string) bool { return !md.IsDefined("limits", key) }
	l := &c.Limits
	if def("max_client_id_length") {
		l.MaxClientIDLength = defaultMaxClientID
	}
	if def("max_topic_length") {
		l.MaxTopicLength = defaultMaxTopicLength
	}
	if def("max_topic_levels") {
		l.MaxTopicLevels = defaultMaxTopicLevels
	}
	if def("max_subscriptions_per_client") {
		l.MaxSubscriptionsPerClient = defaultMaxSubscriptions
	}
	if def("connect_timeout") {
		l.ConnectTimeout.Duration = defaultConnectTimeout
	}
	if def("max_connections") {
		l.MaxConnections = defaultMaxConnections
	}
	if def("connection_burst_per_ip") {
		l.ConnectionBurstPerIP = burst(l.ConnectionRatePerIP)
	}
	if def("message_burst") {
		l.MessageBurst = burst(l.MessageRate)
	}
	if def("byte_burst") && l.ByteRate > 0 {
		l.ByteBurst = max(2*l.ByteRate, c.MQTT.MaximumPacketSize)
	}
	if def("rate_grace") {
		l.RateGrace.Duration = defaultRateGrace
	}
	if def("flap_window") {
		l.FlapWindow.Duration = defaultFlapWindow
	}
	if def("flap_ban") {
		l.FlapBan.Duration = defaultFlapBan
	}
	if def("authn_failure_ttl") {
		l.AuthnFailureTTL.Duration = defaultAuthnFailureTTL
	}
	if def("authn_failure_rate_per_ip") {
		l.AuthnFailureRatePerIP = defaultAuthnFailureRate
	}
	if def("authn_failure_burst_per_ip") {
		l.AuthnFailureBurstPerIP = burst(l.AuthnFailureRatePerIP)
	}
	if def("plugin_concurrency") {
		l.PluginConcurrency = defaultPluginConc
	}
	for i := range c.Listeners {
		ln := &c.Listeners[i]
		if ln.ConnectionBurst == 0 {
			ln.ConnectionBurst = burst(ln.ConnectionRate)
		}
	}
}

// burst is the default bucket of a rate: two seconds' worth, at least 1.
func burst(rate float64) int {
	if rate <= 0 {
		return 0
	}
	return int(min(max(math.Ceil(2*rate), 1), math.MaxInt32))
}

// resolveLimits makes the ban file absolute; the default lies beside the
// config file, and a config built in code keeps bans in memory.
func (c *Config) resolveLimits(abs func(string) string) {
	switch c.Limits.BanFile {
	case BanFileOff:
	case "":
		c.Limits.BanFile = BanFileOff
		if c.Path != "" {
			c.Limits.BanFile = abs(filepath.Join(filepath.Dir(c.Path), defaultBanFile))
		}
	default:
		c.Limits.BanFile = abs(c.Limits.BanFile)
	}
}

// BanPath returns the ban file in force, "" when bans are kept in memory.
func (c *Config) BanPath() string {
	if c.Limits.BanFile == BanFileOff {
		return ""
	}
	return c.Limits.BanFile
}

// validateLimits checks [limits] and the listeners' connection keys.
func (c *Config) validateLimits(p *problems) {
	l := &c.Limits
	nonNeg := func(key string, v, most int) {
		if v < 0 || v > most {
			p.add("limits."+key, fmt.Errorf("%d: want 0 (no limit) to %d", v, most))
		}
	}
	nonNeg("max_client_id_length", l.MaxClientIDLength, maxProtocolString)
	nonNeg("max_topic_length", l.MaxTopicLength, maxProtocolString)
	nonNeg("max_topic_levels", l.MaxTopicLevels, maxProtocolString)
	nonNeg("max_subscriptions_per_client", l.MaxSubscriptionsPerClient, math.MaxInt32)
	nonNeg("max_connections", l.MaxConnections, math.MaxInt32)
	nonNeg("max_connections_per_ip", l.MaxConnectionsPerIP, math.MaxInt32)
	nonNeg("plugin_concurrency", l.PluginConcurrency, math.MaxInt32)
	// Zero is left by a Config built in code: the broker's default.
	if d := l.ConnectTimeout.Duration; d != 0 && (d < time.Second || d > 5*time.Minute) {
		p.add("limits.connect_timeout", fmt.Errorf("%s: want 1s to 5m", d))
	}
	rate := func(key string, r float64, bkey string, b int) {
		if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			p.add(key, fmt.Errorf("%v: want 0 (off) or a positive number per second", r))
		}
		if b < 0 || (r > 0 && b < 1) {
			p.add(bkey, fmt.Errorf("%d: want at least 1", b))
		}
	}
	rate("limits.connection_rate_per_ip", l.ConnectionRatePerIP, "limits.connection_burst_per_ip", l.ConnectionBurstPerIP)
	rate("limits.authn_failure_rate_per_ip", l.AuthnFailureRatePerIP, "limits.authn_failure_burst_per_ip", l.AuthnFailureBurstPerIP)
	rate("limits.message_rate", l.MessageRate, "limits.message_burst", l.MessageBurst)
	if l.ByteRate < 0 {
		p.add("limits.byte_rate", fmt.Errorf("%s: want 0 (off) or more", l.ByteRate))
	}
	if l.ByteRate > 0 && l.ByteBurst < c.MQTT.MaximumPacketSize {
		// A packet larger than the bucket could never be let through.
		p.add("limits.byte_burst", fmt.Errorf("%s: want at least mqtt.maximum_packet_size (%s)", l.ByteBurst, c.MQTT.MaximumPacketSize))
	}
	if d := l.RateGrace.Duration; d < 0 {
		p.add("limits.rate_grace", fmt.Errorf("%s: want 0s or more", d))
	}
	if l.FlapCount < 0 {
		p.add("limits.flap_count", fmt.Errorf("%d: want 0 (off) or more", l.FlapCount))
	}
	if l.FlapCount > 0 {
		if l.FlapWindow.Duration <= 0 {
			p.add("limits.flap_window", fmt.Errorf("%s: want more than 0s", l.FlapWindow.Duration))
		}
		if l.FlapBan.Duration <= 0 {
			p.add("limits.flap_ban", fmt.Errorf("%s: want more than 0s", l.FlapBan.Duration))
		}
	}
	if d := l.AuthnFailureTTL.Duration; d < 0 || d > time.Hour {
		p.add("limits.authn_failure_ttl", errors.New(d.String()+": want 0s (off) to 1h"))
	}
	for i := range c.Listeners {
		ln := &c.Listeners[i]
		key := fmt.Sprintf("listener[%d].", i)
		if ln.MaxConnections < 0 {
			p.add(key+"max_connections", fmt.Errorf("%d: want 0 (no limit) or more", ln.MaxConnections))
		}
		rate(key+"connection_rate", ln.ConnectionRate, key+"connection_burst", ln.ConnectionBurst)
	}
}
