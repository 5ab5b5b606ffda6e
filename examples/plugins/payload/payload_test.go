package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	moatconfig "github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/crypto"
	"github.com/moat-mqtt/moat/runtime/server"
	"github.com/moat-mqtt/moat/sdk/envelope"
	moat "github.com/moat-mqtt/moat/sdk/go"
)

// TestConfigure: a broken configuration is refused with every problem.
func TestConfigure(t *testing.T) {
	p := &policy{}
	err := p.configure([]byte(`{"rules": [
		{"topic": "a/#", "mode": "sideways"},
		{"topic": "b/#", "mode": "plaintext", "key": "k1"},
		{"topic": "c/#/d", "mode": "deny", "keys": ["x"]}]}`))
	if err == nil {
		t.Fatal("configure accepted a broken config")
	}
	for _, want := range []string{"rules[0].mode", "rules[1].key", "rules[2].keys", "rules[2].topic"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if err := p.configure([]byte(`{"unknown": 1}`)); err == nil {
		t.Error("configure accepted an unknown key")
	}
}

// TestDecideNative calls the handler natively, where the payload cannot be
// read: a rule that needs it refuses rather than lets the message through.
func TestDecideNative(t *testing.T) {
	p := &policy{}
	if err := p.configure([]byte(`{"rules": [{"topic": "s/#", "mode": "at-rest", "deny_if_contains": ["x"]},
		{"topic": "+/e2e", "mode": "require-e2e"}]}`)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		topic string
		want  moat.Verdict
		mode  moat.Mode
	}{
		{"s/a", moat.VerdictDeny, 0},
		{"a/e2e", moat.VerdictAllow, moat.ModeRequireE2E},
		{"$SYS/e2e", moat.VerdictIgnore, 0},
		{"a/b", moat.VerdictIgnore, 0},
	}
	for _, tc := range tests {
		res := p.decide(&moat.PayloadRequest{Action: moat.ActionPublish, Topic: tc.topic, PayloadSize: 3})
		if res.Verdict() != tc.want || res.Mode != tc.mode {
			t.Errorf("%s: %v %v, want %v %v", tc.topic, res.Verdict(), res.Mode, tc.want, tc.mode)
		}
	}
}

// TestExampleConfig serves examples/payload.toml as written (listener
// port, module paths and key files aside) with both example modules built
// for wasm, and checks each topic tree's mode end to end.
func TestExampleConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("builds wasm modules")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "examples", "payload.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{}
	for _, id := range []string{"broker-1", "device-1", "tenant-a", "tenant-b"} {
		p := filepath.Join(dir, "keys", id+".key")
		if err := crypto.GenerateKeyFile(p); err != nil {
			t.Fatal(err)
		}
		if keys[id], err = crypto.ReadKeyFile(p); err != nil {
			t.Fatal(err)
		}
	}
	s := string(doc)
	for old, repl := range map[string]string{
		`"127.0.0.1:1884"`: `"127.0.0.1:0"`,
		// A generous timeout for each Go module: under the race detector on
		// a loaded machine a decision can take longer than the default
		// 100ms, and a late result is a plugin error.
		`"../bin/examples/demo.wasm"`:    `"` + buildExample(t, root, dir, "demo") + `"` + "\ntimeout = \"20s\"",
		`"../bin/examples/payload.wasm"`: `"` + buildExample(t, root, dir, "payload") + `"` + "\ntimeout = \"20s\"",
	} {
		if !strings.Contains(s, old) {
			t.Fatalf("examples/payload.toml no longer has %s", old)
		}
		s = strings.ReplaceAll(s, old, repl)
	}
	s += "\n[wasm]\ncache_dir = \"off\"\n"
	cfg, err := moatconfig.Parse([]byte(s), filepath.Join(dir, "payload.toml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(cctx); err != nil {
			t.Error(err)
		}
	})
	addr := srv.Broker().Addr("mqtt").String()
	connect := func(user string) *client { return dial(t, addr, user) }
	subs := map[string]*client{}
	for _, u := range []string{"carol", "dave", "alice", "bob"} {
		subs[u] = connect(u)
		for _, tree := range []string{"plain/#", "devices/#", "secure/#", "tenants/#", "blocked/#"} {
			subs[u].subscribe(t, tree)
		}
	}
	device := connect("device")
	seal := func(id, topic, plain string) string {
		env, err := envelope.Seal(envelope.AES256GCM, id, keys[id], topic, []byte(plain))
		if err != nil {
			t.Fatal(err)
		}
		return string(env)
	}
	opens := func(id, topic, env, plain string) bool {
		got, err := envelope.Open(keys[id], topic, []byte(env))
		return err == nil && string(got) == plain
	}

	// Refusals first: none of them reaches a subscriber.
	for _, tc := range []struct {
		topic, payload string
		code           byte
	}{
		{"devices/1", "not an envelope", 0x99},
		{"devices/1", seal("tenant-a", "devices/1", "wrong key"), 0x99},
		{"secure/1", "-----BEGIN PRIVATE KEY-----", 0x99},
		{"tenants/1", "not an envelope", 0x99},
		{"blocked/1", "x", 0x87},
	} {
		if code := device.publish(t, tc.topic, tc.payload); code != tc.code {
			t.Errorf("publish on %s: reason code %#x, want %#x", tc.topic, code, tc.code)
		}
	}

	type check func(user, payload string) bool
	plainIs := func(plain string) check {
		return func(_, p string) bool { return p == plain }
	}
	for _, tc := range []struct {
		topic, plain string
		e2e          bool
		want         map[string]check
	}{
		{"plain/1", "hello", false, map[string]check{"carol": plainIs("hello"), "dave": plainIs("hello")}},
		{"secure/1", "open", false, map[string]check{
			"carol": plainIs("open"),
			"dave":  func(_, p string) bool { return opens("broker-1", "secure/1", p, "open") },
		}},
		{"devices/1", "21.5", true, map[string]check{
			"carol": func(_, p string) bool { return opens("device-1", "devices/1", p, "21.5") },
		}},
		{"tenants/1", "for tenants", true, map[string]check{
			"alice": func(_, p string) bool { return opens("tenant-a", "tenants/1", p, "for tenants") },
			"bob":   func(_, p string) bool { return opens("tenant-b", "tenants/1", p, "for tenants") },
			"carol": func(_, p string) bool { return opens("broker-1", "tenants/1", p, "for tenants") },
		}},
	} {
		payload := tc.plain
		if tc.e2e {
			payload = seal("device-1", tc.topic, tc.plain)
		}
		if code := device.publish(t, tc.topic, payload); code >= 0x80 {
			t.Fatalf("publish on %s: %#x", tc.topic, code)
		}
		for u, c := range subs {
			m := c.next(t)
			if m.Topic != tc.topic {
				t.Fatalf("%s received %q (a refused message?), want %q", u, m.Topic, tc.topic)
			}
			if check, ok := tc.want[u]; ok && !check(u, m.Payload) {
				t.Errorf("%s on %s: unexpected payload %q", u, tc.topic, m.Payload)
			}
			if u == "bob" && tc.topic == "tenants/1" && opens("tenant-a", tc.topic, m.Payload, tc.plain) {
				t.Error("alice's key opens bob's envelope")
			}
		}
	}
}

// buildExample builds examples/plugins/<name> for wasm into dir.
func buildExample(t *testing.T, root, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./examples/plugins/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, b)
	}
	return out
}

// client is an MQTT 5 client that collects what it receives.
type client struct {
	*paho.Client
	msgs chan msg
}

type msg struct{ Topic, Payload string }

const wait = 5 * time.Second

func dial(t *testing.T, addr, user string) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{msgs: make(chan msg, 64)}
	c.Client = paho.NewClient(paho.ClientConfig{
		Conn:          packets.NewThreadSafeConn(conn),
		PacketTimeout: wait,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			c.msgs <- msg{pr.Packet.Topic, string(pr.Packet.Payload)}
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{KeepAlive: 30, CleanStart: true, Username: user, UsernameFlag: true,
		Password: []byte(user), PasswordFlag: true}); err != nil {
		conn.Close()
		t.Fatalf("connect %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}); conn.Close() })
	return c
}

func (c *client) subscribe(t *testing.T, filter string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil || sa.Reasons[0] >= 0x80 {
		t.Fatalf("subscribe %s: %v", filter, err)
	}
}

// publish publishes at QoS 1 and returns the PUBACK reason code.
func (c *client) publish(t *testing.T, topic, payload string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	pr, err := c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)})
	if pr != nil {
		return pr.ReasonCode
	}
	t.Fatalf("publish %s: %v", topic, err)
	return 0
}

func (c *client) next(t *testing.T) msg {
	t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		t.Fatal("no message")
		return msg{}
	}
}
