package broker

import (
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// tlsListeners has one listener per TLS flavour, all with the server
// certificate that testutil.WriteCerts leaves in the config's directory.
const tlsListeners = `
[[listener]]
name = "tls"
type = "tls"
address = "127.0.0.1:0"
cert_file = "server.pem"
key_file = "server-key.pem"

[[listener]]
name = "mtls"
type = "tls"
address = "127.0.0.1:0"
cert_file = "server.pem"
key_file = "server-key.pem"
client_ca_file = "ca.pem"
require_client_cert = true

[[listener]]
name = "optional"
type = "tls"
address = "127.0.0.1:0"
cert_file = "server.pem"
key_file = "server-key.pem"
client_ca_file = "ca.pem"

[[listener]]
name = "tls13"
type = "tls"
address = "127.0.0.1:0"
cert_file = "server.pem"
key_file = "server-key.pem"
min_tls_version = "1.3"

[[listener]]
name = "ws"
type = "ws"
address = "127.0.0.1:0"

[[listener]]
name = "wss"
type = "wss"
address = "127.0.0.1:0"
cert_file = "server.pem"
key_file = "server-key.pem"
client_ca_file = "ca.pem"
require_client_cert = true
`

func TestTLSListeners(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs := testutil.WriteCerts(t, dir)
	h := startHarnessIn(t, dir, tlsListeners, nil)

	// A certificate from another CA, which the broker must not trust, and a
	// client configuration that does not trust the broker's CA.
	other := testutil.NewCA(t, "other CA")
	stranger := other.Issue(t, testutil.LeafOptions{CommonName: "client", Client: true})
	distrustful := &tls.Config{RootCAs: other.Pool(), ServerName: "localhost"}
	tls12 := certs.ClientTLS(nil)
	tls12.MaxVersion = tls.VersionTLS12

	tests := []struct {
		name     string
		listener string
		tls      *tls.Config
		ok       bool
	}{
		{"tls", "tls", certs.ClientTLS(nil), true},
		{"tls untrusted server", "tls", distrustful, false},
		{"mtls with certificate", "mtls", certs.ClientTLS(certs.Client), true},
		{"mtls without certificate", "mtls", certs.ClientTLS(nil), false},
		{"mtls certificate from another CA", "mtls", certs.ClientTLS(stranger), false},
		{"optional without certificate", "optional", certs.ClientTLS(nil), true},
		{"optional with certificate", "optional", certs.ClientTLS(certs.Client), true},
		{"optional certificate from another CA", "optional", certs.ClientTLS(stranger), false},
		{"min 1.3 with 1.3", "tls13", certs.ClientTLS(nil), true},
		{"min 1.3 with 1.2 client", "tls13", tls12, false},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/v3", func(t *testing.T) {
			t.Parallel()
			c, code, err := testutil.ConnectV3(t, h.url("ssl", tc.listener), testutil.V3Options{TLS: tc.tls.Clone()})
			checkTLSConnect(t, tc.ok, err, code)
			if err == nil {
				roundTrip(t, v3Peer{c}, "tls/v3/"+tc.listener)
			}
		})
		t.Run(tc.name+"/v5", func(t *testing.T) {
			t.Parallel()
			c, _, err := testutil.ConnectV5(t, h.addr(tc.listener), testutil.V5Options{TLS: tc.tls.Clone()})
			checkTLSConnect(t, tc.ok, err, 0)
			if err == nil {
				roundTrip(t, v5Peer{c}, "tls/v5/"+tc.listener)
			}
		})
	}
}

func TestWebsocketListeners(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs := testutil.WriteCerts(t, dir)
	h := startHarnessIn(t, dir, tlsListeners, nil)
	other := testutil.NewCA(t, "other CA")
	stranger := other.Issue(t, testutil.LeafOptions{CommonName: "client", Client: true})

	tests := []struct {
		name string
		url  string
		tls  *tls.Config
		ok   bool
	}{
		{"ws", h.url("ws", "ws"), nil, true},
		{"ws with path", h.url("ws", "ws") + "/mqtt", nil, true},
		{"wss mtls with certificate", h.url("wss", "wss"), certs.ClientTLS(certs.Client), true},
		{"wss mtls without certificate", h.url("wss", "wss"), certs.ClientTLS(nil), false},
		{"wss mtls certificate from another CA", h.url("wss", "wss"), certs.ClientTLS(stranger), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, code, err := testutil.ConnectV3(t, tc.url, testutil.V3Options{TLS: tc.tls})
			checkTLSConnect(t, tc.ok, err, code)
			if err == nil {
				roundTrip(t, v3Peer{c}, "ws/"+strings.ReplaceAll(tc.name, " ", "-"))
			}
		})
	}

	// Messages cross transports: websocket to TLS and back.
	t.Run("across listeners", func(t *testing.T) {
		t.Parallel()
		ws := testutil.MustConnectV3(t, h.url("ws", "ws"), testutil.V3Options{})
		ws.Subscribe(t, "across/#", 1)
		tl := testutil.MustConnectV5(t, h.addr("tls"), testutil.V5Options{TLS: certs.ClientTLS(nil)})
		tl.Subscribe(t, "across/#", 1)
		tl.Publish(t, "across/from-tls", 1, false, "x")
		ws.Inbox.Want(t, "across/from-tls", "x")
		tl.Inbox.Want(t, "across/from-tls", "x")
		ws.Publish(t, "across/from-ws", 1, false, "y")
		tl.Inbox.Want(t, "across/from-ws", "y")
		ws.Inbox.Want(t, "across/from-ws", "y")
	})

	// MQTT over websockets is binary [MQTT-6.0.0-1]: a text message ends
	// the connection.
	t.Run("text message refused", func(t *testing.T) {
		t.Parallel()
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}, HandshakeTimeout: testutil.Wait}
		conn, _, err := d.Dial(h.url("ws", "ws"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if conn.Subprotocol() != "mqtt" {
			t.Errorf("subprotocol %q, want mqtt", conn.Subprotocol())
		}
		if err := conn.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(testutil.Wait))
		if _, _, err := conn.ReadMessage(); err == nil {
			t.Fatal("connection still open after a text message")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("connection still open after a text message (read timed out)")
		}
	})
}

func checkTLSConnect(t *testing.T, ok bool, err error, code byte) {
	t.Helper()
	switch {
	case ok && err != nil:
		t.Fatalf("connect failed (code %d): %v", code, err)
	case !ok && err == nil:
		t.Fatal("connected, want the TLS handshake to fail")
	case !ok && code != 0 && code < 0x80: // paho reports network errors as codes >= 0x80
		t.Errorf("refused with CONNACK code %d; want the TLS handshake to fail first", code)
	}
}

// roundTrip checks that c can publish to itself over its listener.
func roundTrip(t *testing.T, c peer, topic string) {
	t.Helper()
	c.subscribe(t, topic, 1)
	c.publish(t, topic, 1, false, "round trip")
	c.inbox().Want(t, topic, "round trip")
}

// TestListenerConfigErrors: bad TLS material fails Start, naming the
// listener; the config package catches most of these earlier, the broker
// must not rely on it.
func TestListenerConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs := testutil.WriteCerts(t, dir)
	notPEM := writeFile(t, dir, "not.pem", "not a certificate")
	tests := []struct {
		name string
		mod  func(l *config.Listener)
		want string
	}{
		{"missing key", func(l *config.Listener) { l.KeyFile = dir + "/missing.pem" }, "key_file"},
		{"client CA not PEM", func(l *config.Listener) { l.ClientCAFile = notPEM }, "no PEM certificate"},
		{"client CA missing", func(l *config.Listener) { l.ClientCAFile = dir + "/missing.pem" }, "client_ca_file"},
		{"require without CA", func(l *config.Listener) { l.RequireClientCert = true }, "require_client_cert needs client_ca_file"},
		{"bad min version", func(l *config.Listener) { l.MinTLSVersion = "1.1" }, "min_tls_version"},
		{"unknown type", func(l *config.Listener) { l.Type = "quic" }, "unknown type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, dir, tcpConfig, nil)
			l := config.Listener{Name: "bad", Type: "tls", Address: "127.0.0.1:0", CertFile: certs.ServerCertFile, KeyFile: certs.ServerKeyFile}
			tc.mod(&l)
			h.cfg.Listeners = append(h.cfg.Listeners, l)
			err := h.Start(t.Context())
			if err == nil {
				h.close()
				t.Fatal("Start succeeded")
			}
			t.Logf("Start: %v", err)
			if !strings.Contains(err.Error(), `listener "bad"`) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start: %v, want it to name listener \"bad\" and contain %q", err, tc.want)
			}
		})
	}
}
