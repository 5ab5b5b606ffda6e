// Package e2e runs moat end to end: the real broker assembled by
// runtime/server from a moat.toml, real wasm modules built from this
// repository (first-party plugins and examples), and real MQTT clients over
// loopback sockets.
package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/server"
)

// start serves doc (a moat.toml, written to dir) and returns the address of
// its listener "tcp". The server is closed at the end of the test.
func start(t *testing.T, dir, doc string) string {
	t.Helper()
	path := filepath.Join(dir, "moat.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := srv.Close(cctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return srv.Broker().Addr("tcp").String()
}

// chain is a policy of three real modules: jwt (tokens, with their acl
// claim), the demo plugin (users with passwords and attributes) and the acl
// plugin (a Mosquitto acl_file with moat's attribute extension).
type chain struct {
	addr string
	key  ed25519.PrivateKey
}

func startChain(t *testing.T) *chain {
	t.Helper()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	write(t, dir, "jwt.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	write(t, dir, "acl.conf", `# Mosquitto syntax, plus moat extension lines.
@subscribe check
user alice
topic readwrite alice/#
pattern readwrite shared/%u/#
@pattern allow publish,subscribe,deliver tenant/%{tenant}/#
`)
	doc := fmt.Sprintf(`
[[listener]]
name = "tcp"
type = "tcp"
address = "127.0.0.1:0"

[auth]
allow_anonymous = false
no_match = "deny"
timeout = "20s"

[wasm]
cache_dir = %q

# Generous timeouts: the Go modules run under the race detector on a
# loaded machine, and a late result is a plugin error (TestPasswdTimeout
# and runtime/wasm test timeouts).
[[plugin]]
name = "jwt"
module = %q
decisions = ["authn", "authz"]
timeout = "5s"
[plugin.files]
keys = "jwt.pem"
[plugin.config]
audience = "moat-e2e"

[[plugin]]
name = "demo"
module = %q
decisions = ["authn", "authz"]
timeout = "5s"
[plugin.config]
users = [
  { username = "alice", password = "alice-pw", attributes = { tenant = "acme" } },
  { username = "root", password = "root-pw", superuser = true },
]
rules = []

[[plugin]]
name = "acl"
module = %q
decisions = ["authz"]
timeout = "5s"
[plugin.files]
acl = "acl.conf"
`, wasmCache, testutil.Plugin(t, "jwt"), testutil.Example(t, "demo"), testutil.Plugin(t, "acl"))
	return &chain{addr: start(t, dir, doc), key: priv}
}

func write(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// token signs an EdDSA JWT for the chain's jwt plugin.
func (c *chain) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]any{"alg": "EdDSA", "typ": "JWT"}) + "." + enc(claims)
	return signed + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(c.key, []byte(signed)))
}

func TestChainAuthentication(t *testing.T) {
	c := startChain(t)
	valid := c.token(t, map[string]any{"sub": "dev1", "aud": "moat-e2e", "exp": time.Now().Add(time.Hour).Unix()})
	expired := c.token(t, map[string]any{"sub": "dev1", "aud": "moat-e2e", "exp": time.Now().Add(-time.Hour).Unix()})
	otherAud := c.token(t, map[string]any{"sub": "dev1", "aud": "elsewhere", "exp": time.Now().Add(time.Hour).Unix()})

	tests := []struct {
		name, user, password string
		v5                   byte // MQTT 5 CONNACK reason code
		v3                   byte // MQTT 3.1.1 CONNACK return code
	}{
		{"demo user, right password", "alice", "alice-pw", 0x00, 0},
		{"demo user, wrong password", "alice", "nope", 0x86, 4},
		{"unknown user falls through to no_match", "eve", "whatever", 0x87, 5},
		{"no credentials, anonymous refused", "", "", 0x87, 5},
		{"valid token", "dev1", valid, 0x00, 0},
		{"expired token", "dev1", expired, 0x86, 4},
		{"token for another audience", "dev1", otherAud, 0x86, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/v5", func(t *testing.T) {
			_, ca, err := testutil.ConnectV5(t, c.addr, testutil.V5Options{ClientID: "c5", Username: tc.user, Password: tc.password})
			got := byte(0)
			if ca != nil {
				got = ca.ReasonCode
			} else if err != nil {
				t.Fatalf("no CONNACK: %v", err)
			}
			if got != tc.v5 {
				t.Fatalf("CONNACK reason %#x, want %#x (%v)", got, tc.v5, err)
			}
		})
		t.Run(tc.name+"/v3", func(t *testing.T) {
			_, code, err := testutil.ConnectV3(t, "tcp://"+c.addr, testutil.V3Options{ClientID: "c3", Username: tc.user, Password: tc.password})
			if code != tc.v3 {
				t.Fatalf("CONNACK return code %d, want %d (%v)", code, tc.v3, err)
			}
		})
	}
}

func TestChainAuthorization(t *testing.T) {
	c := startChain(t)
	// root is a superuser: it may subscribe to everything and sees what
	// the others manage to publish.
	root := testutil.MustConnectV5(t, c.addr, testutil.V5Options{ClientID: "root", Username: "root", Password: "root-pw"})
	root.Subscribe(t, "#", 1)

	alice := testutil.MustConnectV5(t, c.addr, testutil.V5Options{ClientID: "alice", Username: "alice", Password: "alice-pw"})
	tok := c.token(t, map[string]any{"sub": "dev1", "aud": "moat-e2e", "exp": time.Now().Add(time.Hour).Unix(),
		"acl": []any{map[string]any{"permission": "allow", "action": "publish", "topic": "jwt/${username}/#"}}})
	dev := testutil.MustConnectV5(t, c.addr, testutil.V5Options{ClientID: "dev1", Username: "dev1", Password: tok})

	tests := []struct {
		name   string
		client *testutil.V5
		topic  string
		want   byte
	}{
		{"acl user section", alice, "alice/x", 0x00},
		{"acl pattern with %u", alice, "shared/alice/y", 0x00},
		{"demo attribute reaches the acl module", alice, "tenant/acme/z", 0x00},
		{"another tenant", alice, "tenant/other/z", 0x87},
		{"outside every rule", alice, "bob/x", 0x87},
		{"token acl claim", dev, "jwt/dev1/temp", 0x00},
		{"token acl claim, another user's tree", dev, "jwt/dev2/temp", 0x87},
		{"token holder outside its claim", dev, "alice/x", 0x87},
		{"superuser anywhere", root, "anything/at/all", 0x00},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			payload := "m-" + tc.topic
			if got := tc.client.Publish(t, tc.topic, 1, false, payload); got != tc.want {
				t.Fatalf("PUBACK reason %#x, want %#x", got, tc.want)
			}
			if tc.want == 0 {
				root.Inbox.Want(t, tc.topic, payload)
			}
		})
	}
	root.Inbox.None(t, 200*time.Millisecond)

	// Subscriptions are decided too: alice may not subscribe outside her trees.
	codes := alice.SubscribeCodes(t, paho.SubscribeOptions{Topic: "alice/#", QoS: 1}, paho.SubscribeOptions{Topic: "bob/#", QoS: 1})
	if codes[0] >= 0x80 || codes[1] != 0x87 {
		t.Fatalf("SUBACK codes %#v, want granted then 0x87", codes)
	}
}

// TestTokenExpiryDisconnects: a client whose token runs out is disconnected
// by the broker (MQTT 5 DISCONNECT 0xA0), not left connected until it
// reconnects.
func TestTokenExpiryDisconnects(t *testing.T) {
	c := startChain(t)
	tok := c.token(t, map[string]any{"sub": "dev1", "aud": "moat-e2e", "exp": time.Now().Add(2 * time.Second).Unix()})

	conn, err := net.Dial("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	disconnected := make(chan byte, 1)
	cl := paho.NewClient(paho.ClientConfig{
		ClientID: "dev1",
		Conn:     packets.NewThreadSafeConn(conn),
		OnServerDisconnect: func(d *paho.Disconnect) {
			disconnected <- d.ReasonCode
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	ca, err := cl.Connect(ctx, &paho.Connect{ClientID: "dev1", KeepAlive: 30, CleanStart: true,
		Username: "dev1", UsernameFlag: true, Password: []byte(tok), PasswordFlag: true})
	if err != nil || ca.ReasonCode != 0 {
		t.Fatalf("connect: %v", err)
	}
	select {
	case code := <-disconnected:
		if code != 0xA0 {
			t.Fatalf("DISCONNECT reason %#x, want 0xA0 (maximum connect time)", code)
		}
	case <-time.After(testutil.Wait):
		t.Fatal("client still connected after its token expired")
	}
}

// TestRunawayModuleInBroker: a module that loops forever on some requests
// is stopped at its deadline and counted as a plugin error (deny), while the
// broker keeps serving every other client and topic.
func TestRunawayModuleInBroker(t *testing.T) {
	dir := t.TempDir()
	doc := fmt.Sprintf(`
[[listener]]
name = "tcp"
type = "tcp"
address = "127.0.0.1:0"

[auth]
allow_anonymous = true

[cache]
enabled = false

[wasm]
cache_dir = %q

[[plugin]]
name = "loopy"
module = %q
decisions = ["authz"]
timeout = "50ms"
instances = 2
`, wasmCache, filepath.Join(testutil.RepoRoot(t), "runtime", "internal", "e2e", "testdata", "loopy.wasm"))
	addr := start(t, dir, doc)
	sub := testutil.MustConnectV5(t, addr, testutil.V5Options{ClientID: "sub"})
	sub.Subscribe(t, "ok/#", 1)
	good := testutil.MustConnectV5(t, addr, testutil.V5Options{ClientID: "good"})
	bad := testutil.MustConnectV5(t, addr, testutil.V5Options{ClientID: "bad"})

	done := make(chan byte, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		defer cancel()
		pr, err := bad.Client.Publish(ctx, &paho.Publish{Topic: "loop/forever", QoS: 1, Payload: []byte("x")})
		if err != nil && pr == nil {
			done <- 0xFF
			return
		}
		done <- pr.ReasonCode
	}()
	for i := range 20 {
		payload := fmt.Sprintf("msg %d", i)
		if code := good.Publish(t, "ok/topic", 1, false, payload); code != 0 {
			t.Fatalf("publish while another module call loops: reason %#x", code)
		}
		sub.Inbox.Want(t, "ok/topic", payload)
	}
	if code := <-done; code != 0x87 {
		t.Fatalf("runaway decision: PUBACK reason %#x, want 0x87 (on_error = deny)", code)
	}
	// The module still serves after its instance was replaced.
	if code := good.Publish(t, "ok/after", 1, false, "after"); code != 0 {
		t.Fatalf("after the runaway call: reason %#x", code)
	}
	sub.Inbox.Want(t, "ok/after", "after")
}
