package broker

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	ppackets "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// TestV3DeniedPublish: a refused QoS 1/2 PUBLISH from an MQTT 3.1.1 client
// is acknowledged and dropped by default (Mosquitto's behaviour, which
// [MQTT-3.3.5-2] allows), and disconnects the client with
// v3_denied_publish = "disconnect". Either way nothing is delivered.
func TestV3DeniedPublish(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"", "ack", "disconnect"} {
		t.Run("mode="+mode, func(t *testing.T) {
			t.Parallel()
			b := startPolicyBroker(t, func(s *brokerSetup) {
				if mode != "" {
					s.config = "[mqtt]\nv3_denied_publish = \"" + mode + "\"\n"
				}
			})
			watch := mustV3(t, b.addr, "watch", "admin", "admin-pw")
			watch.subscribe(t, "#")
			for _, qos := range []byte{1, 2} {
				c := mustV3(t, b.addr, "", "bob", "bob-pw")
				before := b.b.V3DroppedPublishes()
				tok := c.c.Publish("forbidden/p", qos, true, []byte("x"))
				m := marker()
				if mode == "disconnect" {
					c.waitLost(t)
					mustV3(t, b.addr, "", "carol", "carol-pw").publish(t, m, 1, false)
				} else {
					if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
						t.Fatalf("QoS %d: refused publish not acknowledged: %v", qos, tok.Error())
					}
					c.publish(t, m, 1, false) // still connected
					if got := b.b.V3DroppedPublishes() - before; got != 1 {
						t.Errorf("QoS %d: dropped count +%d, want +1", qos, got)
					}
				}
				if got := watch.until(t, m); slices.Contains(got, "forbidden/p") {
					t.Fatalf("QoS %d: refused message delivered: %v", qos, got)
				}
			}
			// Not retained either.
			late := mustV3(t, b.addr, "", "admin", "admin-pw")
			m := marker()
			late.subscribe(t, "forbidden/#", m)
			late.publish(t, m, 1, false)
			if got := late.until(t, m); slices.Contains(got, "forbidden/p") {
				t.Fatalf("refused message retained: %v", got)
			}
			if mode != "disconnect" && !strings.Contains(b.logs.String(), "acknowledged and dropped") {
				t.Error("drop not logged")
			}
		})
	}
}

// TestV3DeniedPublishMosquittoPub: mosquitto_pub, which waits for its
// PUBACK, succeeds on a refused topic as it does against Mosquitto.
func TestV3DeniedPublishMosquittoPub(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Fatalf("mosquitto_pub not installed: %v", err)
	}
	b := startPolicyBroker(t)
	host, port, _ := net.SplitHostPort(b.addr)
	for _, qos := range []string{"1", "2"} {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		out, err := exec.CommandContext(ctx, bin, "-V", "mqttv311", "-h", host, "-p", port,
			"-u", "bob", "-P", "bob-pw", "-q", qos, "-t", "forbidden/m", "-m", "x").CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("mosquitto_pub -q %s: %v: %s", qos, err, out)
		}
	}
}

// TestAcksCarryNoUserProperties: mochi copies a PUBLISH's properties into
// its PUBACK/PUBREC unless told not to; clients that do not expect user
// properties on acknowledgements fail on them.
func TestAcksCarryNoUserProperties(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	r := dialRaw(t, b.addr)
	r.send(rawConnect("", "bob", "bob-pw"))
	if ca := r.recv(); ca == nil || ca.Content.(*ppackets.Connack).ReasonCode != 0 {
		t.Fatalf("CONNACK %v", ca)
	}
	for i, tc := range []struct {
		topic string
		qos   byte
		ack   byte
	}{
		{"public/p", 1, ppackets.PUBACK},
		{"public/p", 2, ppackets.PUBREC},
		{"forbidden/p", 1, ppackets.PUBACK},
		{"forbidden/p", 2, ppackets.PUBREC},
	} {
		cp := rawPublish(tc.topic, 0, tc.qos, uint16(i+1))
		p := cp.Content.(*ppackets.Publish)
		p.Properties.User = []ppackets.User{{Key: "trace", Value: "abc"}}
		ct := "text/plain"
		p.Properties.ContentType = ct
		r.send(cp)
		ack := r.recv()
		if ack == nil || ack.Type != tc.ack {
			t.Fatalf("%s QoS %d: got %v, want type %d", tc.topic, tc.qos, ack, tc.ack)
		}
		var props *ppackets.Properties
		switch a := ack.Content.(type) {
		case *ppackets.Puback:
			props = a.Properties
		case *ppackets.Pubrec:
			props = a.Properties
			rel := ppackets.NewControlPacket(ppackets.PUBREL)
			rel.Content.(*ppackets.Pubrel).PacketID = uint16(i + 1)
			r.send(rel)
			if c := r.recv(); c == nil || c.Type != ppackets.PUBCOMP {
				t.Fatalf("got %v, want PUBCOMP", c)
			}
		}
		if props != nil && (len(props.User) > 0 || props.ContentType != "") {
			t.Errorf("%s QoS %d: acknowledgement carries the publisher's properties: %+v", tc.topic, tc.qos, props)
		}
	}
}

// TestUnknownTopicAlias: a PUBLISH that names an alias the client never set
// is a protocol error: DISCONNECT 0x94 (topic alias invalid), not a PUBACK
// "not authorized".
func TestUnknownTopicAlias(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	watch := mustV3(t, b.addr, "", "admin", "admin-pw")
	watch.subscribe(t, "public/#")

	r := dialRaw(t, b.addr)
	r.send(rawConnect("", "bob", "bob-pw"))
	if ca := r.recv(); ca == nil || ca.Content.(*ppackets.Connack).ReasonCode != 0 {
		t.Fatalf("CONNACK %v", ca)
	}
	r.send(rawPublish("public/a", 1, 1, 1)) // sets alias 1
	if ack := r.recv(); ack == nil || ack.Content.(*ppackets.Puback).ReasonCode != 0 {
		t.Fatalf("setting alias 1: %v", ack)
	}
	r.send(rawPublish("", 1, 1, 2)) // alias 1 is known
	if ack := r.recv(); ack == nil || ack.Content.(*ppackets.Puback).ReasonCode != 0 {
		t.Fatalf("using alias 1: %v", ack)
	}
	r.send(rawPublish("", 7, 1, 3)) // never set
	d := r.recv()
	if d == nil || d.Type != ppackets.DISCONNECT {
		t.Fatalf("unknown alias: got %v, want DISCONNECT", d)
	}
	if got := d.Content.(*ppackets.Disconnect).ReasonCode; got != 0x94 {
		t.Fatalf("DISCONNECT 0x%02X, want 0x94 (topic alias invalid)", got)
	}
	if r.recv() != nil {
		t.Fatal("connection still open after DISCONNECT")
	}
	if got := watch.until(t, "public/a"); len(got) != 1 {
		t.Fatalf("got %v", got)
	}
	if got := watch.until(t, "public/a"); len(got) != 1 {
		t.Fatalf("got %v", got)
	}
}

// v3Connect encodes a CONNECT of protocol level level ("MQTT" 4, "MQIsdp"
// 3) by hand; paho's codecs cannot write a 3.1.1 CONNECT with arbitrary
// flags. pass nil means no password field.
func v3Connect(name string, level, extraFlags byte, id, user string, pass []byte, clean bool) []byte {
	str := func(b *bytes.Buffer, s []byte) {
		_ = binary.Write(b, binary.BigEndian, uint16(len(s)))
		b.Write(s)
	}
	var body bytes.Buffer
	str(&body, []byte(name))
	body.WriteByte(level)
	flags := extraFlags
	if clean {
		flags |= 0x02
	}
	if user != "" {
		flags |= 0x80
	}
	if pass != nil {
		flags |= 0x40
	}
	body.WriteByte(flags)
	_ = binary.Write(&body, binary.BigEndian, uint16(30))
	str(&body, []byte(id))
	if user != "" {
		str(&body, []byte(user))
	}
	if pass != nil {
		str(&body, pass)
	}
	out := []byte{0x10}
	n := body.Len()
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, body.Bytes()...)
}

// v3Connack sends a raw CONNECT and returns the CONNACK's return code, or
// -1 when the broker closed the connection without one.
func v3Connack(t *testing.T, addr string, connect []byte) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitFor))
	if _, err := c.Write(connect); err != nil {
		t.Fatal(err)
	}
	var ack [4]byte
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("no answer to CONNECT")
		}
		return -1
	}
	if ack[0] != 0x20 || ack[1] != 2 {
		t.Fatalf("not a 3.1.1 CONNACK: % x", ack)
	}
	return int(ack[3])
}

// TestConnackCodesPerVersion audits every CONNACK path: a 3.1 or 3.1.1
// client only ever gets return codes 0 to 5 (MQTT 3.1.1 §3.2.2.3), or no
// CONNACK for a malformed CONNECT (§4.8); an MQTT 5 client gets its reason
// code. Each row is one refusal path of mochi or moat.
func TestConnackCodesPerVersion(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t, func(s *brokerSetup) {
		s.authn = append([]policy.Step[policy.Authenticator]{
			{Name: "empty", Module: userTable{"nopass": {password: ""}}},
		}, s.authn...)
	})
	tests := []struct {
		name    string
		connect []byte // a 3.1.1 (or 3.1) CONNECT
		want    int    // CONNACK return code; -1: closed without CONNACK
		v5      *paho.Connect
		wantV5  byte
	}{
		{name: "accepted", connect: v3Connect("MQTT", 4, 0, "a", "bob", []byte("bob-pw"), true),
			want: 0, v5: v5Login("a", "bob", "bob-pw"), wantV5: 0},
		{name: "MQTT 3.1 accepted", connect: v3Connect("MQIsdp", 3, 0, "a31", "bob", []byte("bob-pw"), true), want: 0},
		{name: "bad password (policy)", connect: v3Connect("MQTT", 4, 0, "b", "bob", []byte("wrong"), true),
			want: 4, v5: v5Login("b", "bob", "wrong"), wantV5: 0x86},
		{name: "empty password reaches the policy: allowed", connect: v3Connect("MQTT", 4, 0, "c", "nopass", []byte{}, true),
			want: 0, v5: &paho.Connect{ClientID: "c", CleanStart: true, Username: "nopass", UsernameFlag: true, PasswordFlag: true, Password: []byte{}}, wantV5: 0},
		{name: "empty password reaches the policy: refused", connect: v3Connect("MQTT", 4, 0, "d", "bob", []byte{}, true),
			want: 4, v5: &paho.Connect{ClientID: "d", CleanStart: true, Username: "bob", UsernameFlag: true, PasswordFlag: true, Password: []byte{}}, wantV5: 0x86},
		{name: "no password at all", connect: v3Connect("MQTT", 4, 0, "e", "bob", nil, true), want: 4},
		{name: "banned (policy reason 0x8A)", connect: v3Connect("MQTT", 4, 0, "f", "mallory", []byte("x"), true),
			want: 5, v5: v5Login("f", "mallory", "x"), wantV5: 0x8A},
		{name: "anonymous, nobody decides", connect: v3Connect("MQTT", 4, 0, "g", "", nil, true),
			want: 5, v5: v5Login("g", "", ""), wantV5: 0x87},
		{name: "persistent session without client id", connect: v3Connect("MQTT", 4, 0, "", "bob", []byte("bob-pw"), false), want: 2},
		{name: "unknown protocol level", connect: v3Connect("MQTT", 7, 0, "h", "bob", []byte("bob-pw"), true), want: 1},
		{name: "reserved flag set", connect: v3Connect("MQTT", 4, 0x01, "i", "bob", []byte("bob-pw"), true), want: -1},
		{name: "password without user name flag (3.1.1 protocol violation)", connect: v3Connect("MQTT", 4, 0x40, "j", "", nil, true), want: -1},
		{name: "will without topic", connect: v3Connect("MQTT", 4, 0x04, "k", "bob", []byte("bob-pw"), true), want: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := v3Connack(t, b.addr, tc.connect); got != tc.want {
				t.Errorf("3.1.1: CONNACK %d, want %d", got, tc.want)
			}
			if tc.v5 == nil {
				return
			}
			_, ca, _ := dialV5(t, b.addr, tc.v5, nil)
			if ca == nil {
				t.Fatal("v5: no CONNACK")
			}
			if ca.ReasonCode != tc.wantV5 {
				t.Errorf("v5: CONNACK 0x%02X, want 0x%02X", ca.ReasonCode, tc.wantV5)
			}
		})
	}
}

// TestEmptyPasswordMosquittoPub: `mosquitto_pub -P ""` sends the password
// flag with an empty password; the policy refuses it with return code 4,
// which mosquitto_pub names, instead of the v5 code 130 it cannot.
func TestEmptyPasswordMosquittoPub(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Fatalf("mosquitto_pub not installed: %v", err)
	}
	b := startPolicyBroker(t)
	host, port, _ := net.SplitHostPort(b.addr)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-V", "mqttv311", "-h", host, "-p", port,
		"-u", "bob", "-P", "", "-t", "public/x", "-m", "x").CombinedOutput()
	if err == nil {
		t.Fatalf("connected with an empty password: %s", out)
	}
	if s := string(out); strings.Contains(s, "unknown reason") || !strings.Contains(strings.ToLower(s), "bad user name or password") {
		t.Fatalf("mosquitto_pub said %q, want bad user name or password", s)
	}
}

// TestConnectDisconnectLogged: one info line per connection with client id,
// username, listener, remote address, protocol, clean start and keepalive,
// and one per disconnection with the reason.
func TestConnectDisconnectLogged(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	c := mustV3(t, b.addr, "logged-v3", "bob", "bob-pw")
	c.c.Disconnect(0)
	v5 := mustV5(t, b.addr, "logged-v5", "carol", "carol-pw")
	_ = v5.c.Disconnect(&paho.Disconnect{ReasonCode: 0})
	deadline := time.Now().Add(waitFor)
	for {
		logs := b.logs.String()
		ok := true
		for _, want := range []string{
			`"level":"INFO","msg":"client connected","client_id":"logged-v3","username":"bob","listener":"test","remote":"127.0.0.1:`,
			`"protocol":"3.1.1","clean_start":true,"keepalive":30`,
			`"msg":"client connected","client_id":"logged-v5","username":"carol"`,
			`"protocol":"5"`,
			`"level":"INFO","msg":"client disconnected","client_id":"logged-v3"`,
			`"level":"INFO","msg":"client disconnected","client_id":"logged-v5"`,
		} {
			ok = ok && strings.Contains(logs, want)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect/disconnect lines missing:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDisconnectPathsPerVersion audits the paths on which the broker ends
// a connection after CONNACK: an MQTT 5 client gets DISCONNECT with its
// reason code; an MQTT 3.1.1 client, which has no server DISCONNECT, sees
// the connection closed with nothing sent.
func TestDisconnectPathsPerVersion(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t, func(s *brokerSetup) {
		s.config = "[mqtt]\nv3_denied_publish = \"disconnect\"\n"
	})
	// 3.1.1: a refused QoS 1 publish (disconnect mode) and a second CONNECT.
	topic := "forbidden/x"
	body := append([]byte{0, byte(len(topic))}, topic...)
	body = append(body, 0, 1, 'p') // packet id 1, payload
	v3pub := append([]byte{0x32, byte(len(body))}, body...)
	for _, tc := range []struct {
		name string
		then []byte
	}{
		{"refused publish", v3pub},
		{"second CONNECT", v3Connect("MQTT", 4, 0, "again", "bob", []byte("bob-pw"), true)},
	} {
		t.Run("3.1.1/"+tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", b.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(waitFor))
			if _, err := c.Write(v3Connect("MQTT", 4, 0, "", "bob", []byte("bob-pw"), true)); err != nil {
				t.Fatal(err)
			}
			var ack [4]byte
			if _, err := io.ReadFull(c, ack[:]); err != nil || ack[3] != 0 {
				t.Fatalf("CONNACK % x: %v", ack, err)
			}
			if _, err := c.Write(tc.then); err != nil {
				t.Fatal(err)
			}
			rest, err := io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("connection not closed")
			}
			if len(rest) > 0 {
				t.Fatalf("3.1.1 client was sent % x before the close, want nothing", rest)
			}
		})
	}
	t.Run("5/second CONNECT", func(t *testing.T) {
		r := dialRaw(t, b.addr)
		r.send(rawConnect("", "bob", "bob-pw"))
		if ca := r.recv(); ca == nil || ca.Content.(*ppackets.Connack).ReasonCode != 0 {
			t.Fatalf("CONNACK %v", ca)
		}
		r.send(rawConnect("", "bob", "bob-pw"))
		d := r.recv()
		if d == nil || d.Type != ppackets.DISCONNECT || d.Content.(*ppackets.Disconnect).ReasonCode != 0x82 {
			t.Fatalf("got %v, want DISCONNECT 0x82 (protocol error)", d)
		}
	})
}

// TestConnackLimitsPerVersion: the CONNACK paths of the configured limits,
// maximum clients (mochi's own refusal) and maximum keepalive (capsHook).
func TestConnackLimitsPerVersion(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t, func(s *brokerSetup) {
		s.config = "[mqtt]\nmaximum_clients = 1\nmaximum_keepalive = \"10s\"\n"
	})
	// Keepalive 30 s asked, 10 s allowed: 3.1.1 cannot be told, so it is
	// refused with 2 (identifier rejected), as Mosquitto does.
	if got := v3Connack(t, b.addr, v3Connect("MQTT", 4, 0, "ka", "bob", []byte("bob-pw"), true)); got != 2 {
		t.Errorf("3.1.1 keepalive over the maximum: CONNACK %d, want 2", got)
	}
	holder := mustV5(t, b.addr, "holder", "bob", "bob-pw") // the one client allowed
	_ = holder
	if got := v3Connack(t, b.addr, v3Connect("MQTT", 4, 0, "full", "bob", []byte("bob-pw"), true)); got != 3 {
		t.Errorf("3.1.1 over maximum_clients: CONNACK %d, want 3 (server unavailable)", got)
	}
	_, ca, _ := dialV5(t, b.addr, v5Login("full5", "bob", "bob-pw"), nil)
	if ca == nil || ca.ReasonCode != 0x89 {
		t.Errorf("5 over maximum_clients: CONNACK %+v, want 0x89 (server busy)", ca)
	}
}
