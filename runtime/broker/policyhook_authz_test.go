package broker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ppackets "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// markers makes topics unique within a test binary, for messages that
// prove, by arriving, that every message sent before them has arrived.
var markers atomic.Int64

func marker() string { return fmt.Sprintf("public/marker/%d", markers.Add(1)) }

func TestPublishAuthorization(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	watch := mustV3(t, b.addr, "pub-watch", "admin", "admin-pw")
	watch.subscribe(t, "#")

	tests := []struct {
		name    string
		topic   string
		qos     byte
		retain  bool
		allowed bool
	}{
		{name: "allowed", topic: "public/p", qos: 1, allowed: true},
		{name: "denied at QoS 0", topic: "forbidden/p", qos: 0},
		{name: "denied at QoS 1", topic: "forbidden/p", qos: 1},
		{name: "denied at QoS 2", topic: "forbidden/p", qos: 2},
		{name: "retain flag reaches the policy", topic: "noretain/p", qos: 1, retain: true},
		{name: "allowed without retain", topic: "noretain/p", qos: 1, allowed: true},
		{name: "QoS reaches the policy", topic: "noqos2/p", qos: 2},
		{name: "allowed at a lower QoS", topic: "noqos2/p", qos: 1, allowed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/v5", func(t *testing.T) {
			c := mustV5(t, b.addr, "", "bob", "bob-pw")
			want := byte(0)
			if !tc.allowed && tc.qos > 0 {
				want = packets.ErrNotAuthorized.Code // PUBACK or PUBREC
			}
			if got := c.publish(t, tc.topic, tc.qos, tc.retain); got != want {
				t.Fatalf("reason code 0x%02X, want 0x%02X", got, want)
			}
			m := marker()
			c.publish(t, m, 1, false) // still connected
			if got := slices.Contains(watch.until(t, m), tc.topic); got != tc.allowed {
				t.Fatalf("delivered: %v, want %v", got, tc.allowed)
			}
		})
		t.Run(tc.name+"/v3", func(t *testing.T) {
			c := mustV3(t, b.addr, "", "bob", "bob-pw")
			m := marker()
			// MQTT 3.1.1 has no negative PUBACK: a refused QoS 1/2 message
			// is acknowledged and dropped (protocol_test.go).
			c.publish(t, tc.topic, tc.qos, tc.retain)
			c.publish(t, m, 1, false)
			if got := slices.Contains(watch.until(t, m), tc.topic); got != tc.allowed {
				t.Fatalf("delivered: %v, want %v", got, tc.allowed)
			}
		})
	}
}

func TestPublishReservedTopics(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	// A superuser skips the policy, not the hook's own refusals: a topic
	// name starting with $share/ would pass for a subscription filter.
	c := mustV5(t, b.addr, "", "admin", "admin-pw")
	if got := c.publish(t, "$share/g/x", 1, false); got != packets.ErrNotAuthorized.Code {
		t.Fatalf("publish to $share/g/x: 0x%02X, want 0x87", got)
	}
}

func TestSubscribeAuthorization(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	t.Run("v5", func(t *testing.T) {
		r := dialRaw(t, b.addr)
		r.send(rawConnect("", "bob", "bob-pw"))
		if ca := r.recv(); ca == nil || ca.Content.(*ppackets.Connack).ReasonCode != 0 {
			t.Fatalf("CONNACK %v", ca)
		}
		got := r.subscribe(
			"forbidden/a",              // denied
			"public/#",                 // granted
			"forbidden/+",              // denied wildcard
			"$share/blocked/public/s",  // denied by share group
			"$share/ok/public/s",       // granted
			"secret/exact",             // exact filter: needs deliver permission too
			"bad/#/filter",             // invalid: mochi's own 0x8F, not the policy's
			"$moat/"+"denied/anything", // an ordinary filter
		)
		want := []byte{0x87, 0x01, 0x87, 0x87, 0x01, 0x87, 0x8F, 0x01}
		if !slices.Equal(got, want) {
			t.Fatalf("SUBACK % X, want % X", got, want)
		}
	})
	t.Run("v3", func(t *testing.T) {
		c := mustV3(t, b.addr, "", "bob", "bob-pw")
		got := c.subscribe(t, "forbidden/a", "public/#", "forbidden/+", "secret/exact")
		want := map[string]byte{"forbidden/a": 0x80, "public/#": 1, "forbidden/+": 0x80, "secret/exact": 0x80}
		for f, code := range want {
			if got[f] != code {
				t.Errorf("SUBACK for %s: 0x%02X, want 0x%02X", f, got[f], code)
			}
		}
		// The refused filter is not subscribed, although bob may receive
		// the topic: the superuser's message does not reach him.
		admin := mustV3(t, b.addr, "", "admin", "admin-pw")
		admin.publish(t, "forbidden/a", 1, false)
		admin.publish(t, "public/z", 1, false)
		if got := c.until(t, "public/z"); slices.Contains(got, "forbidden/a") {
			t.Fatalf("received %v through a refused subscription", got)
		}
	})
}

func TestDeliverAuthorization(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	pub := mustV3(t, b.addr, "", "carol", "carol-pw")
	t.Run("v3", func(t *testing.T) {
		sub := mustV3(t, b.addr, "", "bob", "bob-pw")
		sub.subscribe(t, "#")
		pub.publish(t, "secret/x", 1, false)
		m := marker()
		pub.publish(t, m, 1, false)
		if got := sub.until(t, m); slices.Contains(got, "secret/x") {
			t.Fatalf("received %v", got)
		}
	})
	t.Run("v5", func(t *testing.T) {
		sub := mustV5(t, b.addr, "", "bob", "bob-pw")
		if got := sub.subscribe(t, "#", "$share/g/secret/#"); !slices.Equal(got, []byte{1, 1}) {
			t.Fatalf("SUBACK % X", got)
		}
		pub.publish(t, "secret/x", 1, false)
		pub.publish(t, "public/x", 1, false)
		m := marker()
		pub.publish(t, m, 1, false)
		got := sub.until(t, m)
		if slices.Contains(got, "secret/x") || !slices.Contains(got, "public/x") {
			t.Fatalf("received %v", got)
		}
	})
}

func TestRetainedDeliverAuthorization(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	admin := mustV3(t, b.addr, "", "admin", "admin-pw")
	admin.publish(t, "secret/r", 1, true)
	admin.publish(t, "public/r", 1, true)
	check := func(t *testing.T, got []string) {
		t.Helper()
		if slices.Contains(got, "secret/r") || !slices.Contains(got, "public/r") {
			t.Fatalf("received %v", got)
		}
	}
	// The subscriber's own marker is processed after its SUBSCRIBE, hence
	// after every retained message was queued for it.
	t.Run("v3", func(t *testing.T) {
		sub := mustV3(t, b.addr, "", "bob", "bob-pw")
		sub.subscribe(t, "#")
		m := marker()
		sub.publish(t, m, 1, false)
		check(t, sub.until(t, m))
	})
	t.Run("v5", func(t *testing.T) {
		sub := mustV5(t, b.addr, "", "bob", "bob-pw")
		sub.subscribe(t, "#")
		m := marker()
		sub.publish(t, m, 1, false)
		check(t, sub.until(t, m))
	})
}

// willWatch reports the topic of every will mochi has finished publishing.
type willWatch struct {
	mqtt.HookBase
	sent chan string
}

func (w *willWatch) ID() string                                   { return "test-will-watch" }
func (w *willWatch) Provides(b byte) bool                         { return b == mqtt.OnWillSent }
func (w *willWatch) OnWillSent(_ *mqtt.Client, pk packets.Packet) { w.sent <- pk.TopicName }

func TestWillAuthorization(t *testing.T) {
	t.Parallel()
	watch := &willWatch{sent: make(chan string, 4)}
	b := startPolicyBroker(t, func(s *brokerSetup) { s.hooks = append(s.hooks, watch) })

	t.Run("refused will refuses the CONNECT", func(t *testing.T) {
		for _, topic := range []string{"forbidden/will", "$SYS/will", "a/+/will"} {
			cp := v5Login("", "bob", "bob-pw")
			cp.WillMessage = &paho.WillMessage{Topic: topic, Payload: []byte("gone"), QoS: 1}
			_, ca, err := dialV5(t, b.addr, cp, nil)
			if ca == nil || ca.ReasonCode != packets.ErrNotAuthorized.Code {
				t.Fatalf("v5 will on %s: CONNACK %+v (%v), want 0x87", topic, ca, err)
			}
		}
		_, rc, err := dialV3(t, b.addr, "", "bob", "bob-pw", func(o *paho3.ClientOptions) {
			o.SetWill("forbidden/will", "gone", 1, false)
		})
		if rc != 5 || err == nil {
			t.Fatalf("v3 will on forbidden/will: return code %d (%v), want 5", rc, err)
		}
	})

	t.Run("will not delivered to a subscriber who may not read it", func(t *testing.T) {
		sub := mustV3(t, b.addr, "", "bob", "bob-pw")
		sub.subscribe(t, "#")
		for _, topic := range []string{"secret/will", "public/will"} {
			w := dialRaw(t, b.addr)
			cp := rawConnect("", "carol", "carol-pw")
			c := cp.Content.(*ppackets.Connect)
			c.WillFlag, c.WillTopic, c.WillMessage, c.WillQOS = true, topic, []byte("gone"), 1
			c.WillProperties = &ppackets.Properties{}
			w.send(cp)
			if ca := w.recv(); ca == nil || ca.Content.(*ppackets.Connack).ReasonCode != 0 {
				t.Fatalf("will on %s: CONNACK %v", topic, ca)
			}
			_ = w.c.Close() // connection lost: mochi publishes the will
			if got := <-watch.sent; got != topic {
				t.Fatalf("will sent on %s, want %s", got, topic)
			}
		}
		if got := sub.until(t, "public/will"); slices.Contains(got, "secret/will") {
			t.Fatalf("received %v", got)
		}
	})
}

func TestTopicAliasAuthorization(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	watch := mustV3(t, b.addr, "alias-watch", "admin", "admin-pw")
	watch.subscribe(t, "#")

	r := dialRaw(t, b.addr)
	r.send(rawConnect("", "bob", "bob-pw"))
	if ca := r.recv(); ca == nil || ca.Content.(*ppackets.Connack).ReasonCode != 0 {
		t.Fatalf("CONNACK %v", ca)
	}
	steps := []struct {
		topic string
		alias uint16
		want  byte
	}{
		{topic: "public/a", alias: 1, want: 0},       // sets alias 1
		{topic: "", alias: 1, want: 0},               // authorized as public/a
		{topic: "forbidden/b", alias: 2, want: 0x87}, // sets alias 2, refused
		{topic: "", alias: 2, want: 0x87},            // authorized as forbidden/b
		{topic: "public/end", want: 0},
	}
	for i, s := range steps {
		r.send(rawPublish(s.topic, s.alias, 1, uint16(i+1)))
		ack := r.recv()
		if ack == nil || ack.Type != ppackets.PUBACK {
			t.Fatalf("step %d: got %v, want PUBACK", i, ack)
		}
		if got := ack.Content.(*ppackets.Puback).ReasonCode; got != s.want {
			t.Fatalf("step %d (%q alias %d): PUBACK 0x%02X, want 0x%02X", i, s.topic, s.alias, got, s.want)
		}
	}
	if got, want := watch.until(t, "public/end"), []string{"public/a", "public/a", "public/end"}; !slices.Equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestSuperuserSkipsAuthorization(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	admin := mustV5(t, b.addr, "", "admin", "admin-pw")
	if got := admin.subscribe(t, "forbidden/#", "secret/exact"); !slices.Equal(got, []byte{1, 1}) {
		t.Fatalf("SUBACK % X, want 01 01", got)
	}
	if got := admin.publish(t, "forbidden/x", 1, false); got != 0 {
		t.Fatalf("PUBACK 0x%02X, want 0", got)
	}
	mustV3(t, b.addr, "", "carol", "carol-pw").publish(t, "secret/exact", 1, false)
	// mochi acknowledges a publish before it delivers it, so carol's message
	// may overtake admin's own: compare as sets.
	got := admin.until(t, "secret/exact")
	if !slices.Contains(got, "forbidden/x") {
		got = append(got, admin.until(t, "forbidden/x")...)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"forbidden/x", "secret/exact"}) {
		t.Fatalf("received %v", got)
	}
}

func TestAttributesReachAuthorization(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	alice := mustV5(t, b.addr, "", "alice", "alice-pw") // tenant=acme
	if got := alice.subscribe(t, "acme/#", "public/#"); !slices.Equal(got, []byte{1, 0x87}) {
		t.Fatalf("SUBACK % X, want 01 87", got)
	}
	for topic, want := range map[string]byte{"acme/x": 0, "other/x": 0x87} {
		if got := alice.publish(t, topic, 1, false); got != want {
			t.Errorf("publish %s: 0x%02X, want 0x%02X", topic, got, want)
		}
	}
}

// TestSessionTakeover checks what a persistent session passes on: queued
// messages reach the same identity, never another one that reuses the
// client id (mochi resends them without any check).
func TestSessionTakeover(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, user, pass string
		gets             bool
	}{
		{name: "same identity", user: "admin", pass: "admin-pw", gets: true},
		{name: "another identity", user: "bob", pass: "bob-pw", gets: false},
	}
	persistent := func(user, pass string) *ppackets.ControlPacket {
		cp := rawConnect("dup", user, pass)
		c := cp.Content.(*ppackets.Connect)
		c.CleanStart = false
		expiry := uint32(60)
		c.Properties.SessionExpiryInterval = &expiry
		return cp
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startPolicyBroker(t)
			first := dialRaw(t, b.addr)
			first.send(persistent("admin", "admin-pw"))
			if ca := first.recv(); ca == nil || ca.Content.(*ppackets.Connack).ReasonCode != 0 {
				t.Fatalf("CONNACK %v", ca)
			}
			if got := first.subscribe("secret/#"); !slices.Equal(got, []byte{1}) {
				t.Fatalf("SUBACK % X", got)
			}
			first.send(ppackets.NewControlPacket(ppackets.DISCONNECT))
			if p := first.recv(); p != nil { // the broker closes the connection
				t.Fatalf("after DISCONNECT: %v", p)
			}
			// Queued for the offline session, authorized for admin.
			mustV3(t, b.addr, "", "carol", "carol-pw").publish(t, "secret/q", 1, false)

			second := dialRaw(t, b.addr)
			second.send(persistent(tc.user, tc.pass))
			if ca := second.recv(); ca == nil || ca.Content.(*ppackets.Connack).ReasonCode != 0 {
				t.Fatalf("CONNACK %v", ca)
			}
			// mochi writes the resent messages before it reads anything, so
			// they all precede the PINGRESP.
			second.send(ppackets.NewControlPacket(ppackets.PINGREQ))
			var got []string
			for p := second.recv(); p == nil || p.Type != ppackets.PINGRESP; p = second.recv() {
				if p == nil {
					t.Fatal("connection closed")
				}
				if pub, ok := p.Content.(*ppackets.Publish); ok {
					got = append(got, pub.Topic)
				}
			}
			// mochi acknowledges carol's publish before it queues the
			// message, so on a loaded machine the session may be taken over
			// first and the message then arrives live, after the PINGRESP.
			if tc.gets && !slices.Contains(got, "secret/q") {
				if p := second.recv(); p != nil {
					if pub, ok := p.Content.(*ppackets.Publish); ok {
						got = append(got, pub.Topic)
					}
				}
			}
			if slices.Contains(got, "secret/q") != tc.gets {
				t.Fatalf("resent %v; want the queued message: %v", got, tc.gets)
			}
		})
	}
}

// TestConcurrentClients connects, subscribes and publishes with many
// clients at once, MQTT 3.1.1 and 5 mixed, some refused; run with -race.
func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	const clients, messages = 24, 20
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := loadClient(b.addr, i, messages); err != nil {
				t.Errorf("client %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
}

// loadClient is one client of TestConcurrentClients. It reports errors
// instead of failing, as it runs on its own goroutine.
func loadClient(addr string, i, messages int) error {
	topic := fmt.Sprintf("load/%d", i)
	if i%4 == 3 { // a refused login among the others
		o := paho3.NewClientOptions().AddBroker("tcp://" + addr).SetProtocolVersion(4).
			SetUsername("bob").SetPassword("wrong").SetAutoReconnect(false)
		c := paho3.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(waitFor) || tok.(*paho3.ConnectToken).ReturnCode() != 4 {
			return fmt.Errorf("wrong password: return code %d, %v", tok.(*paho3.ConnectToken).ReturnCode(), tok.Error())
		}
		return nil
	}
	got := make(chan string, messages+8)
	if i%2 == 0 {
		o := paho3.NewClientOptions().AddBroker("tcp://" + addr).SetProtocolVersion(4).
			SetUsername("bob").SetPassword("bob-pw").SetAutoReconnect(false).SetOrderMatters(true).
			SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { got <- m.Topic() })
		c := paho3.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			return fmt.Errorf("connect: %v", tok.Error())
		}
		defer c.Disconnect(0)
		if tok := c.Subscribe(topic+"/#", 1, nil); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			return fmt.Errorf("subscribe: %v", tok.Error())
		}
		for range messages {
			c.Publish("forbidden/"+topic, 0, false, []byte("x")) // dropped
			if tok := c.Publish(topic+"/m", 1, false, []byte("x")); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
				return fmt.Errorf("publish: %v", tok.Error())
			}
		}
	} else {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		c := paho.NewClient(paho.ClientConfig{
			Conn: conn,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){
				func(pr paho.PublishReceived) (bool, error) { got <- pr.Packet.Topic; return true, nil },
			},
			OnClientError: func(error) {},
		})
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if _, err := c.Connect(ctx, v5Login("", "bob", "bob-pw")); err != nil {
			return fmt.Errorf("connect: %v", err)
		}
		defer func() { _ = c.Disconnect(&paho.Disconnect{}); <-c.Done() }()
		if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: topic + "/#", QoS: 1}}}); err != nil {
			return fmt.Errorf("subscribe: %v", err)
		}
		for range messages {
			pr, _ := c.Publish(ctx, &paho.Publish{Topic: "forbidden/" + topic, QoS: 1, Payload: []byte("x")})
			if pr == nil || pr.ReasonCode != packets.ErrNotAuthorized.Code {
				return fmt.Errorf("forbidden publish: %+v", pr)
			}
			if _, err := c.Publish(ctx, &paho.Publish{Topic: topic + "/m", QoS: 1, Payload: []byte("x")}); err != nil {
				return fmt.Errorf("publish: %v", err)
			}
		}
	}
	for n := range messages {
		select {
		case m := <-got:
			if m != topic+"/m" {
				return fmt.Errorf("received %s", m)
			}
		case <-time.After(waitFor):
			return fmt.Errorf("received %d of %d messages", n, messages)
		}
	}
	return nil
}
