package broker

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// mqttString encodes s as an MQTT UTF-8 string (length prefixed).
func mqttString(s string) []byte {
	return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...)
}

// packet builds a packet from its first byte and body; the remaining
// length is encoded as a variable byte integer.
func packet(first byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	out := []byte{first}
	n := len(b)
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
	return append(out, b...)
}

// connect311 is a valid 3.1.1 CONNECT: clean session, keepalive 60.
func connect311(id string) []byte {
	return packet(0x10, mqttString("MQTT"), []byte{4, 0x02, 0, 60}, mqttString(id))
}

// connect5 is a valid MQTT 5 CONNECT with no properties.
func connect5(id string) []byte {
	return packet(0x10, mqttString("MQTT"), []byte{5, 0x02, 0, 60, 0}, mqttString(id))
}

// malformed lists inputs a client may send. Each is sent on a fresh
// connection; the broker may refuse or disconnect, but must keep serving
// and must not log at warn or above.
var malformed = []struct {
	name string
	data []byte
}{
	{"text", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
	{"not CONNECT first", packet(0xC0)},
	{"bad protocol name", packet(0x10, mqttString("MQTX"), []byte{4, 0x02, 0, 60}, mqttString("c"))},
	{"unknown protocol level", packet(0x10, mqttString("MQTT"), []byte{9, 0x02, 0, 60}, mqttString("c"))},
	{"reserved connect flag", packet(0x10, mqttString("MQTT"), []byte{4, 0x03, 0, 60}, mqttString("c"))},
	{"truncated CONNECT", connect311("truncated")[:8]},
	{"remaining length too long", []byte{0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}},
	{"remaining length 256 MiB", []byte{0x10, 0xFF, 0xFF, 0xFF, 0x7F}},
	{"will flag without will", packet(0x10, mqttString("MQTT"), []byte{4, 0x06, 0, 60}, mqttString("c"))},
	{"username flag without username", packet(0x10, mqttString("MQTT"), []byte{4, 0x82, 0, 60}, mqttString("c"))},
	{"client id not UTF-8", packet(0x10, mqttString("MQTT"), []byte{4, 0x02, 0, 60}, []byte{0, 2, 0xFF, 0xFE})},
	{"v5 unknown property", packet(0x10, mqttString("MQTT"), []byte{5, 0x02, 0, 60, 2, 0x7F, 0}, mqttString("c"))},
	{"v5 property length past end", packet(0x10, mqttString("MQTT"), []byte{5, 0x02, 0, 60, 0x7F}, mqttString("c"))},
	{"second CONNECT", append(connect311("twice"), connect311("twice")...)},
	{"publish to wildcard", append(connect311("p1"), packet(0x30, mqttString("a/#"), []byte("x"))...)},
	{"publish QoS 3", append(connect311("p2"), packet(0x36, mqttString("a"), []byte{0, 1}, []byte("x"))...)},
	{"publish topic not UTF-8", append(connect311("p3"), packet(0x30, []byte{0, 2, 0xC0, 0x80}, []byte("x"))...)},
	{"publish QoS 1 packet id 0", append(connect311("p4"), packet(0x32, mqttString("a"), []byte{0, 0}, []byte("x"))...)},
	{"publish truncated topic", append(connect311("p5"), packet(0x30, []byte{0, 50}, []byte("short"))...)},
	{"v5 publish topic alias 0", append(connect5("p6"), packet(0x30, mqttString(""), []byte{3, 0x23, 0, 0}, []byte("x"))...)},
	{"v5 publish unknown alias", append(connect5("p7"), packet(0x30, mqttString(""), []byte{3, 0x23, 0, 9}, []byte("x"))...)},
	{"subscribe without filters", append(connect311("s1"), packet(0x82, []byte{0, 1})...)},
	{"subscribe bad flags", append(connect311("s2"), packet(0x80, []byte{0, 1}, mqttString("a"), []byte{1})...)},
	{"subscribe invalid share", append(connect311("s3"), packet(0x82, []byte{0, 1}, mqttString("$share/"), []byte{1})...)},
	{"subscribe QoS 3", append(connect311("s4"), packet(0x82, []byte{0, 1}, mqttString("a"), []byte{3})...)},
	{"subscribe hash not last", append(connect311("s5"), packet(0x82, []byte{0, 1}, mqttString("a/#/b"), []byte{1})...)},
	{"unsubscribe without filters", append(connect311("u1"), packet(0xA2, []byte{0, 1})...)},
	{"pubrel unknown id", append(connect311("r1"), packet(0x62, []byte{0, 9})...)},
	{"puback unknown id", append(connect311("r2"), packet(0x40, []byte{0, 9})...)},
	{"reserved packet type", append(connect311("x1"), packet(0xF0)...)},
	{"v3 AUTH", append(connect311("x2"), packet(0xF0, []byte{0x18, 0})...)},
	{"CONNACK from a client", append(connect311("x3"), packet(0x20, []byte{0, 0})...)},
	{"bytes after DISCONNECT", append(append(connect311("x4"), packet(0xE0)...), []byte("junk")...)},
}

func TestMalformedInput(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig, nil)
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			send(t, h.addr("tcp"), tc.data)
			// The broker serves a well-formed client afterwards.
			if !handshake(h.addr("tcp")) {
				t.Fatal("broker no longer answers CONNECT")
			}
		})
	}
	t.Cleanup(func() {
		for _, line := range h.logs.atLeast(slog.LevelWarn) {
			t.Errorf("client input logged at warn or above: %s", line)
		}
	})
}

// send writes data on a new connection and reads until the broker closes
// it or goes quiet.
func send(t testing.TB, addr string, data []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testutil.Wait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := conn.Write(data); err != nil {
		return // the broker may close before reading everything
	}
	_, _ = io.Copy(io.Discard, conn)
}

// handshake reports whether a 3.1.1 CONNECT gets a successful CONNACK.
func handshake(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, testutil.Wait)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testutil.Wait))
	if _, err := conn.Write(connect311("")); err != nil {
		return false
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		return false
	}
	return bytes.Equal(ack, []byte{0x20, 2, 0, 0})
}

// FuzzClientInput sends arbitrary bytes after a valid CONNECT, or instead
// of one, to a running broker, which must neither crash nor stop serving.
// Run with: go test -run='^$' -fuzz=FuzzClientInput ./runtime/broker/
func FuzzClientInput(f *testing.F) {
	for _, tc := range malformed {
		f.Add(false, tc.data)
		f.Add(true, tc.data)
	}
	h := startHarness(f, tcpConfig, nil)
	addr := h.addr("tcp")
	f.Fuzz(func(t *testing.T, afterConnect bool, data []byte) {
		if afterConnect {
			data = append(connect5("fuzz"), data...)
		}
		send(t, addr, data)
		if !handshake(addr) {
			t.Fatal("broker no longer answers CONNECT")
		}
	})
}
