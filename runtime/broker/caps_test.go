package broker

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

func TestCapabilitiesMapping(t *testing.T) {
	t.Parallel()
	full := config.MQTT{
		MaximumPacketSize:     256 << 10,
		ReceiveMaximum:        1024,
		MaximumInflight:       8192,
		MaximumSessionExpiry:  config.Duration{Duration: 24 * time.Hour},
		MaximumMessageExpiry:  config.Duration{Duration: 24 * time.Hour},
		MaximumQoS:            2,
		RetainAvailable:       true,
		WildcardSubscriptions: true,
		SharedSubscriptions:   true,
		MaximumTopicAlias:     math.MaxUint16,
	}
	tests := []struct {
		name  string
		mod   func(m *config.MQTT)
		check func(c *mqtt.Capabilities) bool
	}{
		{"packet size", func(m *config.MQTT) { m.MaximumPacketSize = 1000 }, func(c *mqtt.Capabilities) bool { return c.MaximumPacketSize == 1000 }},
		{"packet size unlimited", func(m *config.MQTT) { m.MaximumPacketSize = 0 }, func(c *mqtt.Capabilities) bool { return c.MaximumPacketSize == 0 }},
		{"packet size clamped", func(m *config.MQTT) { m.MaximumPacketSize = 1 << 40 }, func(c *mqtt.Capabilities) bool { return c.MaximumPacketSize == math.MaxUint32 }},
		{"receive maximum", func(m *config.MQTT) { m.ReceiveMaximum = 7 }, func(c *mqtt.Capabilities) bool { return c.ReceiveMaximum == 7 }},
		{"inflight", func(m *config.MQTT) { m.MaximumInflight = 9 }, func(c *mqtt.Capabilities) bool { return c.MaximumInflight == 9 }},
		{"queued", func(m *config.MQTT) { m.MaximumQueuedMessages = 11 }, func(c *mqtt.Capabilities) bool { return c.MaximumClientWritesPending == 11 }},
		{"queued bytes", func(m *config.MQTT) { m.MaximumQueuedBytes = 3 * config.KiB }, func(c *mqtt.Capabilities) bool { return c.MaximumClientWritesPendingBytes == 3072 }},
		{"slow subscriber", func(m *config.MQTT) { m.SlowSubscriberTimeout.Duration = 3 * time.Second }, func(c *mqtt.Capabilities) bool { return c.MaximumClientWritesWait == 3*time.Second }},
		{"session expiry", nil, func(c *mqtt.Capabilities) bool { return c.MaximumSessionExpiryInterval == 86400 }},
		{"session expiry rounds up", func(m *config.MQTT) { m.MaximumSessionExpiry.Duration = 1500 * time.Millisecond }, func(c *mqtt.Capabilities) bool { return c.MaximumSessionExpiryInterval == 2 }},
		{"session expiry clamped", func(m *config.MQTT) { m.MaximumSessionExpiry.Duration = 200 * 365 * 24 * time.Hour }, func(c *mqtt.Capabilities) bool { return c.MaximumSessionExpiryInterval == math.MaxUint32 }},
		{"no session expiry cap", func(m *config.MQTT) { m.MaximumSessionExpiry.Duration = 0 }, func(c *mqtt.Capabilities) bool { return c.MaximumSessionExpiryInterval == math.MaxUint32 }},
		{"no message expiry cap", func(m *config.MQTT) { m.MaximumMessageExpiry.Duration = 0 }, func(c *mqtt.Capabilities) bool { return c.MaximumMessageExpiryInterval == 0 }},
		{"acks inherit no properties", nil, func(c *mqtt.Capabilities) bool { return c.Compatibilities.NoInheritedPropertiesOnAck }},
		{"message expiry", func(m *config.MQTT) { m.MaximumMessageExpiry.Duration = time.Minute }, func(c *mqtt.Capabilities) bool { return c.MaximumMessageExpiryInterval == 60 }},
		{"clients unlimited", nil, func(c *mqtt.Capabilities) bool { return c.MaximumClients == math.MaxInt64 }},
		{"clients", func(m *config.MQTT) { m.MaximumClients = 3 }, func(c *mqtt.Capabilities) bool { return c.MaximumClients == 3 }},
		{"qos", func(m *config.MQTT) { m.MaximumQoS = 1 }, func(c *mqtt.Capabilities) bool { return c.MaximumQos == 1 }},
		{"retain", func(m *config.MQTT) { m.RetainAvailable = false }, func(c *mqtt.Capabilities) bool { return c.RetainAvailable == 0 }},
		{"wildcards", func(m *config.MQTT) { m.WildcardSubscriptions = false }, func(c *mqtt.Capabilities) bool { return c.WildcardSubAvailable == 0 }},
		{"shared", func(m *config.MQTT) { m.SharedSubscriptions = false }, func(c *mqtt.Capabilities) bool { return c.SharedSubAvailable == 0 }},
		{"all on", nil, func(c *mqtt.Capabilities) bool {
			return c.RetainAvailable == 1 && c.WildcardSubAvailable == 1 && c.SharedSubAvailable == 1 && c.MaximumQos == 2
		}},
		{"topic alias off", func(m *config.MQTT) { m.MaximumTopicAlias = 0 }, func(c *mqtt.Capabilities) bool { return c.TopicAliasMaximum == 0 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := full
			if tc.mod != nil {
				tc.mod(&m)
			}
			if c := capabilities(m); !tc.check(c) {
				t.Errorf("capabilities(%+v) = %+v", m, *c)
			}
		})
	}
}

// restrictedConfig turns off or lowers everything capsHook handles.
const restrictedConfig = tcpConfig + `
[mqtt]
retain_available = false
wildcard_subscriptions = false
shared_subscriptions = false
maximum_packet_size = "1KiB"
maximum_topic_alias = 10
maximum_keepalive = "10s"
maximum_qos = 1
`

// TestAdvertisedCapabilities: an MQTT 5 CONNACK tells the client what the
// broker does not offer.
func TestAdvertisedCapabilities(t *testing.T) {
	t.Parallel()
	def := startHarness(t, tcpConfig, nil)
	restricted := startHarness(t, restrictedConfig, nil)
	u8 := func(b byte) *byte { return &b }
	u16 := func(v uint16) *uint16 { return &v }
	u32 := func(v uint32) *uint32 { return &v }

	tests := []struct {
		name string
		h    *harness
		want packets.Properties
	}{
		{"defaults", def, packets.Properties{
			MaximumPacketSize: u32(256 << 10),
			TopicAliasMaximum: u16(math.MaxUint16),
			ReceiveMaximum:    u16(1024),
		}},
		{"restricted", restricted, packets.Properties{
			MaximumPacketSize:    u32(1024),
			TopicAliasMaximum:    u16(10),
			ReceiveMaximum:       u16(1024),
			RetainAvailable:      u8(0),
			WildcardSubAvailable: u8(0),
			SharedSubAvailable:   u8(0),
			MaximumQOS:           u8(1),
			ServerKeepAlive:      u16(10), // the client asked for 30
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, ca := dialRawV5(t, tc.h.addr("tcp"), "", 30)
			if ca.ReasonCode != 0 {
				t.Fatalf("CONNACK reason %#x", ca.ReasonCode)
			}
			p := ca.Properties
			checks := []struct {
				name      string
				got, want any
			}{
				{"maximum packet size", deref(p.MaximumPacketSize), deref(tc.want.MaximumPacketSize)},
				{"topic alias maximum", deref(p.TopicAliasMaximum), deref(tc.want.TopicAliasMaximum)},
				{"receive maximum", deref(p.ReceiveMaximum), deref(tc.want.ReceiveMaximum)},
				{"retain available", deref(p.RetainAvailable), deref(tc.want.RetainAvailable)},
				{"wildcard subscription available", deref(p.WildcardSubAvailable), deref(tc.want.WildcardSubAvailable)},
				{"shared subscription available", deref(p.SharedSubAvailable), deref(tc.want.SharedSubAvailable)},
				{"maximum qos", deref(p.MaximumQOS), deref(tc.want.MaximumQOS)},
				{"server keepalive", deref(p.ServerKeepAlive), deref(tc.want.ServerKeepAlive)},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("CONNACK %s = %v, want %v", c.name, c.got, c.want)
				}
			}
		})
	}
}

// deref shows an optional property as its value or "absent".
func deref[T any](p *T) any {
	if p == nil {
		return "absent"
	}
	return *p
}

// TestSubscriptionAvailability: wildcard and shared subscriptions are
// refused with the reason codes of MQTT 5, and 0x80 for MQTT 3.1.1.
func TestSubscriptionAvailability(t *testing.T) {
	t.Parallel()
	noWild := startHarness(t, tcpConfig+"\n[mqtt]\nwildcard_subscriptions = false\n", nil)
	noShared := startHarness(t, tcpConfig+"\n[mqtt]\nshared_subscriptions = false\n", nil)
	tests := []struct {
		name   string
		h      *harness
		filter string
		v5     byte
		v3     byte
	}{
		{"plain filter", noWild, "a/b", 1, 1},
		{"multi-level wildcard", noWild, "a/#", 0xA2, 0x80},
		{"single-level wildcard", noWild, "a/+/c", 0xA2, 0x80},
		{"shared plain", noWild, "$share/g/a/b", 1, 1},
		{"shared wildcard", noWild, "$share/g/a/#", 0xA2, 0x80},
		{"shared refused", noShared, "$share/g/a/b", 0x9E, 0x80},
		{"wildcard allowed", noShared, "a/#", 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/v5", func(t *testing.T) {
			t.Parallel()
			raw, _ := dialRawV5(t, tc.h.addr("tcp"), "", 30)
			// One SUBSCRIBE with a good filter around the one under test:
			// only its reason code changes.
			got := raw.subscribe("ok/1", tc.filter, "ok/2")
			want := []byte{1, tc.v5, 1}
			if string(got) != string(want) {
				t.Errorf("SUBACK %x, want %x", got, want)
			}
		})
		t.Run(tc.name+"/v3", func(t *testing.T) {
			t.Parallel()
			c := testutil.MustConnectV3(t, tc.h.url("tcp", "tcp"), testutil.V3Options{})
			if got := c.SubscribeCode(t, tc.filter, 1); got != tc.v3 {
				t.Errorf("SUBACK %#x, want %#x", got, tc.v3)
			}
		})
	}

	// A refused wildcard subscription receives nothing.
	t.Run("refused receives nothing", func(t *testing.T) {
		t.Parallel()
		c := testutil.MustConnectV3(t, noWild.url("tcp", "tcp"), testutil.V3Options{})
		c.SubscribeCode(t, "nothing/#", 1)
		c.Publish(t, "nothing/here", 1, false, "x")
		c.Inbox.None(t, 100*time.Millisecond)
	})
}

func TestRetainUnavailable(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig+"\n[mqtt]\nretain_available = false\n", nil)

	t.Run("v5 disconnected", func(t *testing.T) {
		t.Parallel()
		raw, _ := dialRawV5(t, h.addr("tcp"), "", 30)
		cp := packets.NewControlPacket(packets.PUBLISH)
		p := cp.Content.(*packets.Publish)
		p.Topic, p.Retain, p.Payload, p.Properties = "retain/v5", true, []byte("x"), &packets.Properties{}
		raw.write(cp)
		d := raw.read(packets.DISCONNECT).Content.(*packets.Disconnect)
		if d.ReasonCode != 0x9A {
			t.Errorf("DISCONNECT %#x, want 0x9A (retain not supported)", d.ReasonCode)
		}
	})
	t.Run("v3 delivered, not retained", func(t *testing.T) {
		t.Parallel()
		c := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
		c.Subscribe(t, "retain/v3", 1)
		c.Publish(t, "retain/v3", 1, true, "live")
		c.Inbox.Want(t, "retain/v3", "live")
		late := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
		late.Subscribe(t, "retain/v3", 1)
		late.Inbox.None(t, 100*time.Millisecond)
	})
}

func TestMaximumKeepalive(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig+"\n[mqtt]\nmaximum_keepalive = \"10s\"\n", nil)
	tests := []struct {
		name      string
		keepalive uint16
		v5Server  any // ServerKeepAlive in the CONNACK
		v3Code    byte
	}{
		{"within", 5, "absent", 0},
		{"at the limit", 10, "absent", 0},
		{"above", 60, uint16(10), 2},
		{"none asked", 0, uint16(10), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/v5", func(t *testing.T) {
			t.Parallel()
			_, ca := dialRawV5(t, h.addr("tcp"), "", tc.keepalive)
			if ca.ReasonCode != 0 {
				t.Fatalf("CONNACK reason %#x", ca.ReasonCode)
			}
			if got := deref(ca.Properties.ServerKeepAlive); got != tc.v5Server {
				t.Errorf("server keepalive %v, want %v", got, tc.v5Server)
			}
		})
		t.Run(tc.name+"/v3", func(t *testing.T) {
			t.Parallel()
			// paho.mqtt.golang sends keepalive 0 for a zero duration.
			ka := time.Duration(tc.keepalive) * time.Second
			opts := testutil.V3Options{KeepAlive: ka}
			if ka == 0 {
				opts.KeepAlive = -1
			}
			_, code, err := testutil.ConnectV3(t, h.url("tcp", "tcp"), opts)
			if code != tc.v3Code {
				t.Errorf("return code %d (%v), want %d", code, err, tc.v3Code)
			}
		})
	}
}

func TestMaximumPacketSize(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig+"\n[mqtt]\nmaximum_packet_size = \"1KiB\"\n", nil)
	sub := testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{})
	sub.Subscribe(t, "size/#", 0)

	pub := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
	pub.Publish(t, "size/small", 0, false, strings.Repeat("s", 900))
	sub.Inbox.Want(t, "size/small", strings.Repeat("s", 900))

	tok := pub.Client.Publish("size/big", 0, false, strings.Repeat("b", 2000))
	tok.WaitTimeout(testutil.Wait)
	sub.Inbox.None(t, 100*time.Millisecond)
	deadline := time.Now().Add(testutil.Wait)
	for pub.Client.IsConnectionOpen() {
		if time.Now().After(deadline) {
			t.Fatal("a client that sent an oversized packet is still connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMaximumClients(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig+"\n[mqtt]\nmaximum_clients = 1\n", nil)
	testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{})

	_, ca, err := testutil.ConnectV5(t, h.addr("tcp"), testutil.V5Options{})
	if err == nil || ca == nil || ca.ReasonCode != 0x89 {
		t.Errorf("second MQTT 5 client: %v, CONNACK %+v; want refusal 0x89 (server busy)", err, ca)
	}
	_, code, err := testutil.ConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
	if err == nil || code != 3 {
		t.Errorf("second 3.1.1 client: %v, return code %d; want 3 (server unavailable)", err, code)
	}
}

func TestMaximumQoS(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig+"\n[mqtt]\nmaximum_qos = 1\n", nil)
	c := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
	if got := c.SubscribeCode(t, "qos/#", 2); got != 1 {
		t.Errorf("SUBACK for QoS 2 = %d, want 1 (granted QoS capped)", got)
	}
	c.Publish(t, "qos/x", 2, false, "x")
	if m := c.Inbox.Want(t, "qos/x", "x"); m.QoS != 1 {
		t.Errorf("delivered at QoS %d, want 1", m.QoS)
	}
	v5 := testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{})
	codes := v5.SubscribeCodes(t, paho.SubscribeOptions{Topic: "qos/#", QoS: 2})
	if codes[0] != 1 {
		t.Errorf("MQTT 5 SUBACK for QoS 2 = %d, want 1", codes[0])
	}
}
