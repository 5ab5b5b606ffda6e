package broker

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// TestWebsocketOrigins: a websocket listener admits requests without an
// Origin header (non-browser clients) and browser requests only from its
// allowed_origins; "*" admits any.
func TestWebsocketOrigins(t *testing.T) {
	t.Parallel()
	h := startHarness(t, `
[[listener]]
name = "strict"
type = "ws"
address = "127.0.0.1:0"

[[listener]]
name = "listed"
type = "ws"
address = "127.0.0.1:0"
allowed_origins = ["https://app.example.com", "http://localhost:8080"]

[[listener]]
name = "any"
type = "ws"
address = "127.0.0.1:0"
allowed_origins = ["*"]
`, nil)
	for _, tc := range []struct {
		listener, origin string
		ok               bool
	}{
		{"strict", "", true},
		{"strict", "https://evil.example", false},
		{"strict", "http://" + h.addr("strict"), false}, // same host: still a page
		{"listed", "", true},
		{"listed", "https://app.example.com", true},
		{"listed", "HTTPS://APP.EXAMPLE.COM", true},
		{"listed", "http://localhost:8080", true},
		{"listed", "http://app.example.com", false},
		{"listed", "https://app.example.com.evil.example", false},
		{"any", "https://evil.example", true},
	} {
		t.Run(tc.listener+" "+tc.origin, func(t *testing.T) {
			hdr := http.Header{}
			if tc.origin != "" {
				hdr.Set("Origin", tc.origin)
			}
			d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: testutil.Wait}
			conn, resp, err := d.Dial(h.url("ws", tc.listener), hdr)
			if !tc.ok {
				if err == nil {
					conn.Close()
					t.Fatal("upgraded; want the origin refused")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("err %v, response %v; want 403", err, resp)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer conn.Close()
			// A real MQTT exchange over the upgraded connection.
			if err := conn.WriteMessage(websocket.BinaryMessage, connect311("")); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(testutil.Wait))
			_, r, err := conn.NextReader()
			if err != nil {
				t.Fatal(err)
			}
			ack, _ := io.ReadAll(r)
			if !bytes.Equal(ack, []byte{0x20, 2, 0, 0}) {
				t.Fatalf("CONNACK % x, want 20 02 00 00", ack)
			}
		})
	}
	// paho over ws sends no Origin: it connects to the strict listener.
	c := testutil.MustConnectV3(t, h.url("ws", "strict"), testutil.V3Options{})
	c.Subscribe(t, "o/#", 1)
	c.Publish(t, "o/x", 1, false, "y")
	c.Inbox.Want(t, "o/x", "y")
}
