package broker

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// connackV5 connects an MQTT 5 client and returns the CONNACK reason code
// (0 on success).
func connackV5(t *testing.T, addr, id string) byte {
	t.Helper()
	_, ca, err := testutil.ConnectV5(t, addr, testutil.V5Options{ClientID: id})
	if err == nil {
		return 0
	}
	if ca == nil {
		t.Fatalf("connect %q: no CONNACK: %v", id, err)
	}
	return ca.ReasonCode
}

// connackV3 connects a 3.1.1 client and returns the CONNACK return code.
func connackV3(t *testing.T, url, id string) byte {
	t.Helper()
	_, code, err := testutil.ConnectV3(t, url, testutil.V3Options{ClientID: id})
	if err == nil && code != 0 {
		t.Fatalf("connect %q: code %d without error", id, code)
	}
	return code
}

// waitClosed waits until the peer closes conn, reading and discarding.
func waitClosed(t *testing.T, conn net.Conn, within time.Duration) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
}

func TestLimitClientIDAndTopics(t *testing.T) {
	h := startHarness(t, tcpConfig+`
[limits]
max_client_id_length = 8
max_topic_levels = 3
max_topic_length = 20
max_subscriptions_per_client = 2
`, nil)
	addr := h.addr("tcp")

	if code := connackV5(t, addr, "ninechars"); code != 0x85 {
		t.Errorf("v5 client id of 9 bytes: CONNACK %#x, want 0x85", code)
	}
	if code := connackV3(t, "tcp://"+addr, "ninechars"); code != 2 {
		t.Errorf("3.1.1 client id of 9 bytes: return code %d, want 2", code)
	}
	if code := connackV5(t, addr, "eight--8"); code != 0 {
		t.Fatalf("client id of 8 bytes refused: %#x", code)
	}

	// Subscriptions: over the levels or length, 0x8F; the third, 0x97.
	c := testutil.MustConnectV5(t, addr, testutil.V5Options{ClientID: "sub"})
	codes := c.SubscribeCodes(t,
		paho.SubscribeOptions{Topic: "a/b/c/d", QoS: 1},
		paho.SubscribeOptions{Topic: strings.Repeat("x", 21), QoS: 1},
		paho.SubscribeOptions{Topic: "a/b", QoS: 1},
		paho.SubscribeOptions{Topic: "a/+/c", QoS: 1},
		paho.SubscribeOptions{Topic: "a/b", QoS: 0}, // already held: no new slot
		paho.SubscribeOptions{Topic: "c", QoS: 1},
	)
	if want := []byte{0x8F, 0x8F, 1, 1, 0, 0x97}; string(codes) != string(want) {
		t.Errorf("SUBACK codes %x, want %x", codes, want)
	}
	v3 := testutil.MustConnectV3(t, "tcp://"+addr, testutil.V3Options{ClientID: "sub3"})
	if code := v3.SubscribeCode(t, "a/b/c/d", 1); code != 0x80 {
		t.Errorf("3.1.1 filter of 4 levels: SUBACK %#x, want 0x80", code)
	}

	// A publish over the topic levels: DISCONNECT 0x90.
	r, ack := dialRawV5(t, addr, "pub", 30)
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", ack.ReasonCode)
	}
	cp := packets.NewControlPacket(packets.PUBLISH)
	p := cp.Content.(*packets.Publish)
	p.Topic, p.Payload, p.Properties = "a/b/c/d", []byte("x"), &packets.Properties{}
	r.write(cp)
	if d := r.read(packets.DISCONNECT).Content.(*packets.Disconnect); d.ReasonCode != 0x90 {
		t.Errorf("DISCONNECT %#x, want 0x90", d.ReasonCode)
	}
}

func TestLimitConnectTimeout(t *testing.T) {
	h := startHarness(t, tcpConfig+"[limits]\nconnect_timeout = \"1s\"\n", nil)
	conn, err := net.Dial("tcp", h.addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	// Half a CONNECT header, then silence (slowloris).
	if _, err := conn.Write([]byte{0x10, 0x20, 0x00}); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, conn, testutil.Wait)
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("closed after %v, before connect_timeout", d)
	}
	waitTimeouts(t, h, 1)

	// A client past CONNECT that goes silent is cut by its keepalive (1 s,
	// so 1.5 s), which is no connect timeout; a socket closed by its peer
	// before CONNECT is none either.
	raw, ack := dialRawV5(t, h.addr("tcp"), "silent", 1)
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", ack.ReasonCode)
	}
	waitClosed(t, raw.conn, testutil.Wait)
	quit, err := net.Dial("tcp", h.addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	_ = quit.Close()
	time.Sleep(100 * time.Millisecond)
	waitTimeouts(t, h, 1)
}

// waitTimeouts waits until the broker has counted want connect timeouts,
// and fails if it counts another.
func waitTimeouts(t *testing.T, h *harness, want uint64) {
	t.Helper()
	deadline := time.Now().Add(testutil.Wait)
	for {
		got := h.LimitStats().ConnectionsRefused["connect_timeout"]
		switch {
		case got > want:
			t.Fatalf("%d connect timeouts counted, want %d", got, want)
		case got == want:
			return
		case time.Now().After(deadline):
			t.Fatalf("%d connect timeouts counted, want %d", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLimitConnectionCaps(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		code5  byte
		reason string
	}{
		{"global", tcpConfig + "[limits]\nmax_connections = 2\n", 0x89, "max_connections"},
		{"listener", tcpConfig + "max_connections = 2\n", 0x89, "listener.max_connections"},
		{"per ip", tcpConfig + "[limits]\nmax_connections_per_ip = 2\n", 0x97, "max_connections_per_ip"},
		{"listener rate", tcpConfig + "connection_rate = 0.01\nconnection_burst = 2\n", 0x9F, "listener.connection_rate"},
		{"per ip rate", tcpConfig + "[limits]\nconnection_rate_per_ip = 0.01\nconnection_burst_per_ip = 2\n", 0x9F, "connection_rate_per_ip"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startHarness(t, tc.doc, nil)
			addr := h.addr("tcp")
			a := testutil.MustConnectV5(t, addr, testutil.V5Options{ClientID: "a"})
			testutil.MustConnectV3(t, "tcp://"+addr, testutil.V3Options{ClientID: "b"})
			if code := connackV5(t, addr, "c"); code != tc.code5 {
				t.Errorf("third v5 connection: CONNACK %#x, want %#x", code, tc.code5)
			}
			if code := connackV3(t, "tcp://"+addr, "d"); code != 3 {
				t.Errorf("third 3.1.1 connection: return code %d, want 3", code)
			}
			if n := h.Refused(tc.reason); n != 2 {
				t.Errorf("Refused(%q) = %d, want 2", tc.reason, n)
			}
			if n := strings.Count(strings.Join(h.logs.atLeast(0), "\n"), "connections refused"); n != 1 {
				t.Errorf("%d refusal log lines, want 1 per episode", n)
			}
			// Caps free their place when a client leaves; rates do not.
			_ = a.Disconnect(&paho.Disconnect{})
			a.Kill()
			if strings.Contains(tc.name, "rate") {
				return
			}
			deadline := time.Now().Add(testutil.Wait)
			for connackV5(t, addr, "e") != 0 {
				if time.Now().After(deadline) {
					t.Fatal("a place freed by a disconnect was not reused")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestLimitMessageRate(t *testing.T) {
	t.Run("slowed", func(t *testing.T) {
		h := startHarness(t, tcpConfig+"[limits]\nmessage_rate = 20\nmessage_burst = 1\nrate_grace = \"1m\"\n", nil)
		addr := h.addr("tcp")
		sub := testutil.MustConnectV5(t, addr, testutil.V5Options{ClientID: "sub"})
		sub.Subscribe(t, "r", 1)
		pub := testutil.MustConnectV5(t, addr, testutil.V5Options{ClientID: "pub"})
		start := time.Now()
		const n = 21
		for range n {
			pub.Publish(t, "r", 1, false, "m")
		}
		// 20 tokens at 20/s after the first: at least about a second.
		if d := time.Since(start); d < 800*time.Millisecond {
			t.Errorf("%d publishes at 20/s took %v: not slowed", n, d)
		}
		for range n {
			sub.Inbox.Want(t, "r", "m")
		}
	})
	t.Run("dropped", func(t *testing.T) {
		h := startHarness(t, tcpConfig+"[limits]\nmessage_rate = 2\nmessage_burst = 1\nrate_grace = \"500ms\"\n", nil)
		r, _ := dialRawV5(t, h.addr("tcp"), "flood", 30)
		cp := packets.NewControlPacket(packets.PUBLISH)
		p := cp.Content.(*packets.Publish)
		p.Topic, p.Payload, p.Properties = "r", []byte("x"), &packets.Properties{}
		for range 10 {
			r.write(cp)
		}
		if d := r.read(packets.DISCONNECT).Content.(*packets.Disconnect); d.ReasonCode != 0x96 {
			t.Errorf("DISCONNECT %#x, want 0x96", d.ReasonCode)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		h := startHarness(t, tcpConfig+"[mqtt]\nmaximum_packet_size = \"1KiB\"\n[limits]\nbyte_rate = \"2KiB\"\nbyte_burst = \"1KiB\"\nrate_grace = \"1m\"\n", nil)
		pub := testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{ClientID: "pub"})
		start := time.Now()
		for range 5 {
			pub.Publish(t, "r", 1, false, strings.Repeat("x", 1000))
		}
		// About 4KiB past the burst at 2KiB/s: about 2 s.
		if d := time.Since(start); d < 1500*time.Millisecond {
			t.Errorf("5 KB at 2 KiB/s took %v: not slowed", d)
		}
	})
}

// TestLimitWebsocketCap: the gate counts websocket connections too, and a
// refused one still gets its CONNACK through the upgrade.
func TestLimitWebsocketCap(t *testing.T) {
	h := startHarness(t, `
[[listener]]
name = "ws"
type = "ws"
address = "127.0.0.1:0"
max_connections = 1
`, nil)
	url := h.url("ws", "ws")
	testutil.MustConnectV3(t, url, testutil.V3Options{ClientID: "first"})
	if code := connackV3(t, url, "second"); code != 3 {
		t.Errorf("second websocket connection: return code %d, want 3", code)
	}
	if n := h.Refused("listener.max_connections"); n != 1 {
		t.Errorf("Refused = %d, want 1", n)
	}
}
