package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// mintToken signs claims as an EdDSA JWT, as examples/chain/README.md does
// with openssl.
func mintToken(t *testing.T, key ed25519.PrivateKey, claims map[string]any) string {
	t.Helper()
	b64 := base64.RawURLEncoding
	header := b64.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := header + "." + b64.EncodeToString(body)
	return signed + "." + b64.EncodeToString(ed25519.Sign(key, []byte(signed)))
}

// chainConfig reads examples/chain.toml and adapts it to the test, checking
// that every line it rewrites is there: modules built from this
// repository, a free port, the test's public key instead of the committed
// one, generous timeouts (the race detector slows the host's hashing), the
// test's compilation cache. The password and ACL files stay the committed
// ones under examples/chain/.
func chainConfig(t *testing.T, keyFile string) *config.Config {
	t.Helper()
	path := filepath.Join(testutil.RepoRoot(t), "examples", "chain.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	rewrite := func(re, repl string, want int) {
		t.Helper()
		r := regexp.MustCompile(re)
		if n := len(r.FindAllStringIndex(doc, -1)); n != want {
			t.Fatalf("examples/chain.toml: %d matches of %s, want %d: update the test with the example", n, re, want)
		}
		doc = r.ReplaceAllStringFunc(doc, func(m string) string { return r.ReplaceAllString(m, repl) })
	}
	for _, name := range []string{"jwt", "passwd", "acl"} {
		repl := `module = "` + testutil.Plugin(t, name) + `"`
		if name != "passwd" {
			// The example leaves these two at the default timeout (100ms),
			// which the race detector on a loaded machine can overrun; a
			// late result is a plugin error. passwd's is rewritten below.
			repl += "\ntimeout = \"20s\""
		}
		rewrite(`(?m)^module = "\.\./bin/plugins/`+name+`\.wasm"`, repl, 1)
	}
	rewrite(`(?m)^address = "127\.0\.0\.1:1883"`, `address = "127.0.0.1:0"`, 1)
	rewrite(`(?m)^keys = "chain/jwt-public\.pem"`, `keys = "`+keyFile+`"`, 1)
	// The example's two, and the two added above.
	rewrite(`(?m)^timeout = "[0-9a-z]+"`, `timeout = "20s"`, 4)
	rewrite(`(?m)^name = "mqtt"`, `name = "`+listener+`"`, 1)
	doc += "\n[wasm]\ncache_dir = \"" + wasmCache + "\"\n"
	cfg, err := config.Parse([]byte(doc), path)
	if err != nil {
		t.Fatalf("examples/chain.toml, adapted: %v\n%s", err, doc)
	}
	return cfg
}

// TestChainExample serves examples/chain.toml (jwt, then passwd, then acl)
// with the committed password and ACL files and a key pair made here, and
// checks each path through the chain over real MQTT connections.
func TestChainExample(t *testing.T) {
	skipShort(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, filepath.Join(t.TempDir(), "jwt-public.pem"),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	m := serve(t, chainConfig(t, keyFile))

	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	exp := time.Now().Add(time.Hour).Unix()
	claims := func(sub string, extra map[string]any) map[string]any {
		c := map[string]any{"sub": sub, "iss": "https://auth.example.com", "aud": "mqtt", "exp": exp}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	sensorACL := map[string]any{"acl": []map[string]any{
		{"permission": "allow", "action": "publish", "topic": "sensors/${username}/#"},
	}}

	t.Run("token with an acl claim", func(t *testing.T) {
		c := testutil.MustConnectV5(t, m.addr, testutil.V5Options{ClientID: "sensor-1", Username: "sensor-1",
			Password: mintToken(t, priv, claims("sensor-1", sensorACL))})
		for topic, want := range map[string]byte{"sensors/sensor-1/temp": 0, "sensors/sensor-2/temp": 0x87, "clients/sensor-1/status": 0x87} {
			if code := c.Publish(t, topic, 1, false, "21.5"); code != want {
				t.Errorf("publish %s: 0x%02x, want 0x%02x", topic, code, want)
			}
		}
	})
	t.Run("token without an acl claim gets the ACL file", func(t *testing.T) {
		c := testutil.MustConnectV5(t, m.addr, testutil.V5Options{ClientID: "sensor-2", Username: "sensor-2",
			Password: mintToken(t, priv, claims("sensor-2", nil))})
		for topic, want := range map[string]byte{"clients/sensor-2/status": 0, "sensors/sensor-2/temp": 0x87} {
			if code := c.Publish(t, topic, 1, false, "up"); code != want {
				t.Errorf("publish %s: 0x%02x, want 0x%02x", topic, code, want)
			}
		}
	})
	t.Run("refused tokens", func(t *testing.T) {
		for name, c := range map[string]struct {
			user, token string
			code        byte
		}{
			"other key":        {"sensor-1", mintToken(t, otherKey, claims("sensor-1", nil)), 0x86},
			"expired":          {"sensor-1", mintToken(t, priv, claims("sensor-1", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})), 0x86},
			"wrong audience":   {"sensor-1", mintToken(t, priv, claims("sensor-1", map[string]any{"aud": "web"})), 0x86},
			"sub not the user": {"sensor-9", mintToken(t, priv, claims("sensor-1", nil)), 0x87},
		} {
			if code := connectV5(t, m.addr, "tok-"+strings.ReplaceAll(name, " ", "-"), c.user, c.token); code != c.code {
				t.Errorf("%s: CONNACK 0x%02x, want 0x%02x", name, code, c.code)
			}
		}
	})
	t.Run("password users and the ACL file", func(t *testing.T) {
		bob := testutil.MustConnectV5(t, m.addr, testutil.V5Options{ClientID: "bob", Username: "bob", Password: "bob-secret"})
		bob.Subscribe(t, "alice/#", 1) // subscribing is free; delivery is checked
		alice := testutil.MustConnectV5(t, m.addr, testutil.V5Options{ClientID: "alice", Username: "alice", Password: "alice-secret"})
		for topic, want := range map[string]byte{"alice/x": 0, "alice/status": 0, "bob/x": 0x87} {
			if code := alice.Publish(t, topic, 1, false, topic); code != want {
				t.Errorf("alice publishes %s: 0x%02x, want 0x%02x", topic, code, want)
			}
		}
		// bob may read alice/status, not alice/x: the first message he
		// gets is alice/status.
		bob.Inbox.Want(t, "alice/status", "alice/status")
		bob.Inbox.None(t, 100*time.Millisecond)
	})
	t.Run("superuser", func(t *testing.T) {
		admin := testutil.MustConnectV3(t, m.url(), testutil.V3Options{ClientID: "admin", Username: "admin", Password: "admin-secret"})
		admin.Publish(t, "anything/at/all", 1, false, "x") // refused publishes are dropped silently in 3.1.1: see MQTT 5 below
		a5 := testutil.MustConnectV5(t, m.addr, testutil.V5Options{ClientID: "admin5", Username: "admin", Password: "admin-secret"})
		if code := a5.Publish(t, "anything/at/all", 1, false, "x"); code != 0 {
			t.Errorf("admin publishes anything/at/all: 0x%02x, want 0", code)
		}
	})
	t.Run("refused passwords", func(t *testing.T) {
		if code := connectV3(t, m.url(), "a-wrong", "alice", "bob-secret"); code != 4 {
			t.Errorf("alice, wrong password: 3.1.1 return code %d, want 4", code)
		}
		if code := connectV5(t, m.addr, "a-wrong5", "alice", "bob-secret"); code != 0x86 {
			t.Errorf("alice, wrong password: MQTT 5 reason 0x%02x, want 0x86", code)
		}
		if code := connectV5(t, m.addr, "nobody", "mallory", "alice-secret"); code != 0x87 {
			t.Errorf("unknown user: MQTT 5 reason 0x%02x, want 0x87 (no_match = deny)", code)
		}
		if code := connectV5(t, m.addr, "anon", "", ""); code == 0 {
			t.Errorf("anonymous client admitted")
		}
	})
}
