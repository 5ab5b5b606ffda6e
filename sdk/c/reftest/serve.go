package reftest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Serve runs `bin/moat serve` with the reference policy at module deciding
// authn and authz, on a free loopback port, and returns the broker's URL.
// The broker is stopped when the test ends.
func Serve(t *testing.T, module string) string {
	t.Helper()
	// The broker is bin/moat, which `make build` (and so `make test`)
	// builds first; this test is about the module, so a bin/moat older
	// than the sources serves as well. Without one, it is built here (not
	// in bin/, where another test process may be running it).
	moat := filepath.Join(repoRoot(t), "bin", "moat")
	if _, err := os.Stat(moat); err != nil {
		moat = filepath.Join(t.TempDir(), "moat")
		build := exec.Command("go", "build", "-o", moat, "./cmd/moat")
		build.Dir = repoRoot(t)
		if b, err := build.CombinedOutput(); err != nil {
			t.Fatalf("reftest: go build ./cmd/moat: %v\n%s", err, b)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	conf := fmt.Sprintf(`
[[listener]]
name = "tcp"
type = "tcp"
address = %q

# Generous deadlines: a loaded test machine is not a plugin error.
[auth]
timeout = "10s"

[[plugin]]
name = "reference"
module = %q
decisions = ["authn", "authz"]
timeout = "5s"

[plugin.config]
users = [
  { name = "alice", password = "alice-pw", tenant = "acme" },
  { name = "bob", password = "bob-pw", tenant = "acme" },
]
`, addr, module)
	path := filepath.Join(dir, "moat.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(moat, "serve", "-c", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("moat serve:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return "tcp://" + addr
		}
		select {
		case err := <-exited:
			t.Fatalf("moat serve exited: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("moat serve does not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Connect connects an MQTT 3.1.1 client; the error is the broker's refusal.
func Connect(t *testing.T, url, clientID, username, password string) (mqtt.Client, error) {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetUsername(username).
		SetPassword(password).SetAutoReconnect(false).SetConnectRetry(false).SetConnectTimeout(10 * time.Second)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(15 * time.Second) {
		t.Fatalf("connect %s: no CONNACK", username)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// Broker checks the reference policy at module deciding real connections
// over MQTT: logins, subscriptions by username and tenant, and a message
// that goes from one user to another through their tenant's topic.
func Broker(t *testing.T, module string) {
	url := Serve(t, module)
	for _, tc := range []struct{ user, password, want string }{
		{"alice", "wrong", "bad user name or password"},
		{"mallory", "alice-pw", "not authorized"}, // ignored by the policy; no_match denies
	} {
		if _, err := Connect(t, url, "c-"+tc.user, tc.user, tc.password); err == nil || !strings.Contains(strings.ToLower(err.Error()), tc.want) {
			t.Errorf("%s/%s: %v, want a refusal (%s)", tc.user, tc.password, err, tc.want)
		}
	}
	alice, err := Connect(t, url, "alice-1", "alice", "alice-pw")
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	bob, err := Connect(t, url, "bob-1", "bob", "bob-pw")
	if err != nil {
		t.Fatalf("bob: %v", err)
	}
	got := make(chan string, 16)
	subscribe := func(c mqtt.Client, filter string) byte {
		tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() + " " + string(m.Payload()) })
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe %s: %v", filter, tok.Error())
		}
		return tok.(*mqtt.SubscribeToken).Result()[filter]
	}
	if code := subscribe(alice, "devices/bob/#"); code != 0x80 {
		t.Errorf("alice subscribes to devices/bob/#: code %#x, want 0x80", code)
	}
	if code := subscribe(alice, "tenants/acme/#"); code != 1 {
		t.Errorf("alice subscribes to tenants/acme/#: code %#x, want 1", code)
	}
	// (A refused publish is not tried: moat closes an MQTT 3.1.1
	// connection that publishes where it may not.)
	for _, topic := range []string{"devices/bob/x", "tenants/acme/news"} {
		if tok := bob.Publish(topic, 1, false, "from bob"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("bob publishes to %s: %v", topic, tok.Error())
		}
	}
	// Only the publish to their tenant reaches alice: devices/bob/x is
	// not under her subscription.
	select {
	case m := <-got:
		if m != "tenants/acme/news from bob" {
			t.Errorf("alice got %q, want tenants/acme/news from bob", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("alice got nothing")
	}
	select {
	case m := <-got:
		t.Errorf("alice got %q too", m)
	case <-time.After(200 * time.Millisecond):
	}
}
