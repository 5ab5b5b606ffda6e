package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/crypto"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// subscribes tells whether a fresh anonymous client may subscribe to
// topic: a real decision of the policy in force, through the broker.
func subscribes(t testing.TB, e *env, topic string) bool {
	t.Helper()
	c := testutil.MustConnectV3(t, e.url, testutil.V3Options{})
	defer c.Disconnect(0)
	return c.SubscribeCode(t, topic, 1) < 0x80
}

// TestReloadApplies swaps an allow-all module for a deny-all one and back,
// checking what the result reports and that the new policy is in force
// when Reload returns.
func TestReloadApplies(t *testing.T) {
	allow, deny := wat(t, "allow"), wat(t, "deny")
	e := startEnv(t, map[string][]byte{"gate.wasm": allow}, anonymous+gate("gate", "gate.wasm"))
	if !subscribes(t, e, "a/b") {
		t.Fatal("the allow module refused a subscription")
	}
	held := testutil.MustConnectV3(t, e.url, testutil.V3Options{})
	held.Subscribe(t, "held/#", 1)

	e.replace("gate.wasm", deny)
	res := e.reload(true)
	want := []ModuleReport{{Name: "gate", Digest: digest(deny), Previous: digest(allow)}}
	if !reflect.DeepEqual(res.Modules, want) {
		t.Errorf("modules = %+v, want %+v", res.Modules, want)
	}
	if len(res.OldModules) != 1 || res.OldModules[0].Digest != digest(allow) {
		t.Errorf("old modules = %+v, want the allow module", res.OldModules)
	}
	if res.Revoked != 1 || res.Disconnected != 0 || len(res.NeedsRestart) != 0 || res.Trigger.Source != TriggerAPI {
		t.Errorf("result = %+v, want 1 subscription revoked and nothing else", res)
	}
	if subscribes(t, e, "a/b") {
		t.Error("a subscription was allowed after the deny module was swapped in")
	}
	if n := e.logs.count(`msg=reload `); n != 1 {
		t.Errorf("%d audit records for an applied reload, want 1:\n%s", n, e.logs)
	}
	for _, want := range []string{"trigger.source=api", "Old:" + digest(allow), "New:" + digest(deny), "revoked_subscriptions=1"} {
		if !strings.Contains(e.logs.String(), want) {
			t.Errorf("audit record lacks %q:\n%s", want, e.logs)
		}
	}

	// Unchanged: reused, nothing to revoke.
	res = e.reload(true)
	if len(res.Modules) != 1 || !res.Modules[0].Reused || res.Modules[0].Previous != digest(deny) {
		t.Errorf("modules = %+v, want the deny module reused", res.Modules)
	}
	e.replace("gate.wasm", allow)
	e.reload(true)
	if !subscribes(t, e, "a/b") {
		t.Error("a subscription was refused after the allow module came back")
	}
}

// TestReloadRefused checks that every kind of broken version is refused,
// with every problem reported, and that the running policy (an allow-all
// module) stays in force.
func TestReloadRefused(t *testing.T) {
	allow := wat(t, "allow")
	tests := []struct {
		name  string
		files map[string][]byte
		doc   string
		want  []string // regexps, each must match a problem
	}{
		{"syntax error", nil, anonymous + gate("gate", "gate.wasm") + "[[listener]\n",
			[]string{`moat\.toml:\d+: syntax error`}},
		{"missing module", nil, anonymous + gate("gate", "missing.wasm"),
			[]string{`plugin\[0\]\.module: stat missing\.wasm: no such file`}},
		{"not wasm", map[string][]byte{"bad.wasm": []byte("\x00asm\x01\x00\x00\x00garbage")}, anonymous + gate("gate", "bad.wasm"),
			[]string{`wasm: plugin "gate" \(.*bad\.wasm\): `}},
		{"config refused", map[string][]byte{"refuse.wasm": wat(t, "refuse")}, anonymous + gate("gate", "refuse.wasm") + "[plugin.config]\nx = 1\n",
			[]string{`wasm: plugin "gate" .*this config is refused`}},
		{"trap at load", map[string][]byte{"trap.wasm": wat(t, "trap")}, anonymous + gate("gate", "trap.wasm"),
			[]string{`wasm: plugin "gate" .*unreachable`}},
		{"sha256 mismatch", nil, anonymous + gate("gate", "gate.wasm") + `sha256 = "` + strings.Repeat("ab", 32) + `"` + "\n",
			[]string{`wasm: plugin "gate" .*sha256 is ` + digest(allow) + `, but the config pins ` + strings.Repeat("ab", 32)}},
		{"every config problem at once", nil, anonymous + gate("gate", "missing.wasm") + "on_error = \"maybe\"\n",
			[]string{`plugin\[0\]\.module: stat missing\.wasm`, `plugin\[0\]\.on_error: "maybe"`}},
		{"every module problem at once", map[string][]byte{"refuse.wasm": wat(t, "refuse"), "trap.wasm": wat(t, "trap")},
			anonymous + gate("gate", "gate.wasm") + `sha256 = "` + strings.Repeat("cd", 32) + `"` + "\n" +
				gate("second", "refuse.wasm") + "[plugin.config]\nx = 1\n" + gate("third", "trap.wasm"),
			[]string{`plugin "gate" .*but the config pins`, `plugin "second" .*this config is refused`, `plugin "third" .*unreachable`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnv(t, map[string][]byte{"gate.wasm": allow}, anonymous+gate("gate", "gate.wasm"))
			before := e.s.Modules()
			for name, data := range tc.files {
				e.write(name, data)
			}
			e.config(tc.doc)
			res := e.reload(false)
			for _, re := range tc.want {
				if !slices.ContainsFunc(res.Errors, regexp.MustCompile(re).MatchString) {
					t.Errorf("no problem matches %s; problems:\n%s", re, strings.Join(res.Errors, "\n"))
				}
			}
			if len(res.Errors) < len(tc.want) {
				t.Errorf("%d problems, want at least %d", len(res.Errors), len(tc.want))
			}
			if !reflect.DeepEqual(e.s.Modules(), before) || !reflect.DeepEqual(res.OldModules, before) {
				t.Errorf("modules after a refused reload: %+v, want %+v", e.s.Modules(), before)
			}
			if !subscribes(t, e, "x") {
				t.Error("the old policy is no longer in force after a refused reload")
			}
			if n := e.s.modules.loaded(); n != 1 {
				t.Errorf("%d modules loaded after a refused reload, want the 1 in force", n)
			}
			if !strings.Contains(e.logs.String(), `msg="reload refused"`) {
				t.Errorf("no audit record of the refusal:\n%s", e.logs)
			}
		})
	}
}

// TestReloadReuse checks that an unchanged module keeps its compiled code
// and pool, that a changed one is loaded fresh, and that the module it
// replaces is closed (and only it).
func TestReloadReuse(t *testing.T) {
	allow := wat(t, "allow")
	b1, b2 := withSection(allow, 1), withSection(allow, 2)
	e := startEnv(t, map[string][]byte{"a.wasm": allow, "b.wasm": b1},
		anonymous+gate("a", "a.wasm")+gate("b", "b.wasm"))
	// mod returns the loaded module of plugin name with the given binary.
	mod := func(name string, bin []byte) *wasm.Module {
		e.s.modules.mu.Lock()
		defer e.s.modules.mu.Unlock()
		for _, r := range e.s.modules.byKey {
			if r.mod.Name() == name && r.digest == digest(bin) {
				return r.mod
			}
		}
		t.Fatalf("no module %q loaded", name)
		return nil
	}
	oldA, oldB := mod("a", allow), mod("b", b1)

	e.write("b.wasm", b2)
	res := e.reload(true)
	want := []ModuleReport{
		{Name: "a", Digest: digest(allow), Previous: digest(allow), Reused: true},
		{Name: "b", Digest: digest(b2), Previous: digest(b1)},
	}
	if !reflect.DeepEqual(res.Modules, want) {
		t.Errorf("modules = %+v\nwant %+v", res.Modules, want)
	}
	if mod("a", allow) != oldA || mod("b", b2) == oldB {
		t.Error("a is not the same module, or b is")
	}
	req := &policy.AuthzRequest{Action: policy.ActionPublish, Topic: "x", Client: &policy.Client{ClientID: "c"}}
	waitFor(t, 10*time.Second, "the replaced module closes", func() bool {
		_, err := oldB.Authorize(context.Background(), req)
		return errors.Is(err, wasm.ErrClosed)
	})
	if _, err := oldA.Authorize(context.Background(), req); err != nil {
		t.Errorf("the reused module: %v", err)
	}
	if n := e.s.modules.loaded(); n != 2 {
		t.Errorf("%d modules loaded, want 2", n)
	}

	// A changed setting is a changed module, even with the same binary.
	e.config(anonymous + gate("a", "a.wasm") + "timeout = \"200ms\"\n" + gate("b", "b.wasm"))
	res = e.reload(true)
	if res.Modules[0].Reused || !res.Modules[1].Reused {
		t.Errorf("modules = %+v, want a reloaded (new timeout) and b reused", res.Modules)
	}
	// A removed plugin's module closes.
	e.config(anonymous + gate("b", "b.wasm"))
	e.reload(true)
	waitFor(t, 10*time.Second, "the removed module closes", func() bool { return e.s.modules.loaded() == 1 })
}

// TestReloadGrantedFile edits a file granted to the acl plugin, which
// reads it when configured: the module must be loaded again for the edit
// to take effect.
func TestReloadGrantedFile(t *testing.T) {
	acl := "@subscribe check\ntopic readwrite public/#\n"
	e := startEnv(t, map[string][]byte{"acl.wasm": mustRead(t, testutil.Plugin(t, "acl")), "acl.txt": []byte(acl)},
		anonymous+aclPlugin)
	if !subscribes(t, e, "public/x") || subscribes(t, e, "private/x") {
		t.Fatal("the ACL is not in force")
	}
	sub := testutil.MustConnectV3(t, e.url, testutil.V3Options{})
	sub.Subscribe(t, "public/#", 1)
	pub := testutil.MustConnectV3(t, e.url, testutil.V3Options{})
	pub.Publish(t, "public/a", 1, false, "before")
	sub.Inbox.Want(t, "public/a", "before")

	e.replace("acl.txt", []byte("@subscribe check\ntopic readwrite private/#\n"))
	res := e.reload(true)
	if len(res.Modules) != 1 || res.Modules[0].Reused || res.Modules[0].Previous != res.Modules[0].Digest {
		t.Errorf("modules = %+v, want the same binary loaded again", res.Modules)
	}
	if res.Revoked != 1 {
		t.Errorf("revoked %d subscriptions, want 1", res.Revoked)
	}
	if subscribes(t, e, "public/x") || !subscribes(t, e, "private/x") {
		t.Error("the edited ACL is not in force")
	}
	// The publisher is refused now (3.1.1: disconnected); a new one on
	// the private side shows the subscriber gets nothing more.
	p2 := testutil.MustConnectV3(t, e.url, testutil.V3Options{})
	p2.Subscribe(t, "private/#", 1)
	p2.Publish(t, "private/a", 1, false, "marker")
	p2.Inbox.Want(t, "private/a", "marker")
	sub.Inbox.None(t, 100*time.Millisecond)
}

const aclPlugin = `
[[plugin]]
name = "acl"
module = "acl.wasm"
decisions = ["authz"]
instances = 2
timeout = "1s"

[plugin.files]
acl = "acl.txt"
`

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReloadNeedsRestart checks that settings a reload cannot apply are
// named with their old and new values, and that the reload still applies
// what it can.
func TestReloadNeedsRestart(t *testing.T) {
	allow, deny := wat(t, "allow"), wat(t, "deny")
	e := startEnv(t, map[string][]byte{"gate.wasm": allow, "deny.wasm": deny}, anonymous+gate("gate", "gate.wasm"))
	doc := strings.Replace(header(), `address = "127.0.0.1:0"`, `address = "127.0.0.1:1"`, 1) + `
[[listener]]
name = "ws"
type = "ws"
address = "127.0.0.1:0"

[mqtt]
maximum_inflight = 100

[log]
level = "debug"
audit_allow_sample = 0.5

[cache]
ttl = "1m"

[admin]
socket = "off"

[metrics]
listen = "127.0.0.1:0"
[limits]
max_topic_levels = 8
` + anonymous + gate("gate", "deny.wasm")
	e.replace("moat.toml", []byte(doc))
	res := e.reload(true)
	want := []Change{
		{"listener[0].address", `"127.0.0.1:0"`, `"127.0.0.1:1"`},
		{"listener[1]", "(none)", `ws "127.0.0.1:0" (name "ws")`},
		{"mqtt.maximum_inflight", "8192", "100"},
		{"log.level", `"info"`, `"debug"`},
		{"log.audit_allow_sample", "0", "0.5"},
		{"cache.ttl", `"5m0s"`, `"1m0s"`},
		{"admin.socket", `""`, `"off"`},
		{"metrics.listen", `""`, `"127.0.0.1:0"`},
		{"limits.max_topic_levels", "128", "8"},
	}
	if !reflect.DeepEqual(res.NeedsRestart, want) {
		t.Errorf("needs restart:\n%v\nwant\n%v", res.NeedsRestart, want)
	}
	if subscribes(t, e, "x") {
		t.Error("the policy part of the reload was not applied")
	}
	if !strings.Contains(e.logs.String(), `needs_restart="[listener[0].address: \"127.0.0.1:0\" -> \"127.0.0.1:1\"`) {
		t.Errorf("the audit record does not name the changes:\n%s", e.logs)
	}
	// Reported again on the next reload: the broker still runs the old
	// values.
	if res := e.reload(true); len(res.NeedsRestart) != len(want) {
		t.Errorf("second reload: %v, want the same %d changes", res.NeedsRestart, len(want))
	}
}

// TestRestartOnlyCoversConfig fails when a section is added to
// config.Config without deciding whether a reload applies it.
func TestRestartOnlyCoversConfig(t *testing.T) {
	ct := reflect.TypeOf(config.Config{})
	known := map[string]bool{}
	for _, f := range append(slices.Clone(liveFields), byHand...) {
		known[f] = true
	}
	for _, s := range restartSections {
		known[sectionField[s]] = true
		if _, ok := ct.FieldByName(sectionField[s]); !ok {
			t.Errorf("section %q: config.Config has no field %s", s, sectionField[s])
		}
	}
	for i := range ct.NumField() {
		if f := ct.Field(i); f.IsExported() && !known[f.Name] {
			t.Errorf("config.Config.%s: neither live nor restart-only; decide in restart.go", f.Name)
		}
	}
}

// TestRevocation runs the demo plugin with real clients: removing a user's
// right to a topic stops their existing subscription at once, and removing
// a user with [reload] reauthenticate disconnects them.
func TestRevocation(t *testing.T) {
	users := []demoUser{{"alice", "a"}, {"bob", "b"}, {"carol", "c"}, {"dave", "d"}}
	rules := []demoRule{{"alice", "all", "feed/#"}, {"alice", "all", "inbox/#"}, {"bob", "all", "#"}, {"carol", "all", "#"}, {"dave", "all", "#"}}
	e := startEnv(t, map[string][]byte{"demo.wasm": demoWasm(t)}, "\n[reload]\nreauthenticate = true\n"+demo(users, rules))

	alice := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "alice", Username: "alice", Password: "a"})
	alice.Subscribe(t, "feed/#", 1)
	alice.Subscribe(t, "inbox/#", 1)
	bob := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "bob", Username: "bob", Password: "b"})
	bob.Publish(t, "feed/1", 1, false, "m1")
	alice.Inbox.Want(t, "feed/1", "m1")

	carolGone := connectV5(t, e.addr, "carol", "c")
	dave := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "dave", Username: "dave", Password: "d"})

	t.Run("subscription", func(t *testing.T) {
		e.config("\n[reload]\nreauthenticate = true\n" + demo(users, slices.Delete(slices.Clone(rules), 0, 1)))
		res := e.reload(true)
		if res.Revoked != 1 {
			t.Errorf("revoked %d subscriptions, want alice's feed/#", res.Revoked)
		}
		// Right after Reload returns: m2 is not delivered, and the marker
		// behind it on a topic alice keeps shows it would have been.
		bob.Publish(t, "feed/1", 1, false, "m2")
		bob.Publish(t, "inbox/alice", 1, false, "marker")
		alice.Inbox.Want(t, "inbox/alice", "marker")
		alice.Inbox.None(t, 100*time.Millisecond)
		if !alice.IsConnected() {
			t.Error("alice was disconnected; only her subscription should go")
		}
	})

	t.Run("reauthenticate", func(t *testing.T) {
		e.config("\n[reload]\nreauthenticate = true\n" + demo(users[:2], rules[:3]))
		res := e.reload(true)
		if res.Disconnected != 2 {
			t.Errorf("disconnected %d clients, want carol and dave", res.Disconnected)
		}
		select {
		case code := <-carolGone:
			if code != 0x87 {
				t.Errorf("carol's DISCONNECT reason = %#x, want 0x87", code)
			}
		case <-time.After(testutil.Wait):
			t.Error("carol (MQTT 5) got no DISCONNECT")
		}
		waitFor(t, testutil.Wait, "dave (3.1.1) disconnected", func() bool { return !dave.IsConnected() })
		if _, _, err := testutil.ConnectV3(t, e.url, testutil.V3Options{ClientID: "dave", Username: "dave", Password: "d"}); err == nil {
			t.Error("dave connected again after being removed")
		}
		if !alice.IsConnected() || !bob.IsConnected() {
			t.Error("a user still allowed was disconnected")
		}
	})
}

// connectV5 connects an MQTT 5 client and returns a channel that receives
// the reason code of a DISCONNECT from the server.
func connectV5(t testing.TB, addr, user, password string) <-chan byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testutil.Wait)
	if err != nil {
		t.Fatal(err)
	}
	gone := make(chan byte, 1)
	c := paho.NewClient(paho.ClientConfig{
		ClientID:           user,
		Conn:               packets.NewThreadSafeConn(conn),
		OnServerDisconnect: func(d *paho.Disconnect) { gone <- d.ReasonCode },
		OnClientError:      func(error) {},
		PacketTimeout:      testutil.Wait,
	})
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: user, KeepAlive: 30, CleanStart: true,
		Username: user, UsernameFlag: true, Password: []byte(password), PasswordFlag: true}); err != nil {
		conn.Close()
		t.Fatalf("connect %s: %v", user, err)
	}
	t.Cleanup(func() {
		_ = c.Disconnect(&paho.Disconnect{})
		conn.Close()
	})
	return gone
}

// TestReloadClosed checks that a reload after Close is refused, not a
// crash.
func TestReloadClosed(t *testing.T) {
	e := startEnv(t, map[string][]byte{"gate.wasm": wat(t, "allow")}, anonymous+gate("gate", "gate.wasm"))
	if err := e.s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := e.s.Reload(context.Background(), Trigger{Source: TriggerAPI})
	if res.Applied || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "closed") {
		t.Errorf("reload after close: %+v", res)
	}
}

// TestReloadKeyRing rotates the payload key ring by reload: a new key and
// a new active key are in force when Reload returns, and a key file that
// may not be used keeps the old ring (and the old policy) in force.
func TestReloadKeyRing(t *testing.T) {
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	files := map[string][]byte{"gate.wasm": wat(t, "allow")}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "k1.key"), key(1), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEnvIn(t, dir, files, anonymous+gate("gate", "gate.wasm")+keyRing("k1"))
	if r := e.s.ring.Load(); r == nil || r.Active(crypto.PurposeAtRest) != "k1" {
		t.Fatalf("ring at start: %v", r)
	}

	writeKey(t, e, "k2", key(2))
	e.config(anonymous + gate("gate", "gate.wasm") + keyRing("k1", "k2"))
	if res := e.reload(true); len(res.NeedsRestart) != 0 {
		t.Errorf("a key rotation needs a restart: %v", res.NeedsRestart)
	}
	if r := e.s.ring.Load(); r.Active(crypto.PurposeAtRest) != "k2" || !r.Has("k1") {
		t.Errorf("ring after rotation: active %q, ids %v; want k2 active and k1 kept", r.Active(crypto.PurposeAtRest), r.IDs())
	}

	// A key file others may read is refused: nothing changes.
	writeKey(t, e, "k3", key(3))
	if err := os.Chmod(filepath.Join(e.dir, "k3.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.config(anonymous + gate("gate", "deny.wasm") + keyRing("k1", "k2", "k3"))
	e.write("deny.wasm", wat(t, "deny"))
	res := e.reload(false)
	if !slices.ContainsFunc(res.Errors, func(s string) bool { return strings.Contains(s, "k3.key") }) {
		t.Errorf("errors %q, want the k3 key file named", res.Errors)
	}
	if r := e.s.ring.Load(); r.Active(crypto.PurposeAtRest) != "k2" || r.Has("k3") {
		t.Errorf("ring after a refused reload: active %q, ids %v", r.Active(crypto.PurposeAtRest), r.IDs())
	}
	if !subscribes(t, e, "x") {
		t.Error("the refused version's policy is in force")
	}
	if n := e.s.modules.loaded(); n != 1 {
		t.Errorf("%d modules loaded after the refused reload, want 1", n)
	}
}

// keyRing is a [[key]] per id (file <id>.key), the last one active for
// at_rest.
func keyRing(ids ...string) string {
	var b strings.Builder
	for _, id := range ids {
		fmt.Fprintf(&b, "\n[[key]]\nid = %q\nfile = %q\n", id, id+".key")
	}
	fmt.Fprintf(&b, "\n[keys]\nat_rest = %q\n", ids[len(ids)-1])
	return b.String()
}

func writeKey(t *testing.T, e *env, id string, key []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, id+".key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadReauthenticateOn turns [reload] reauthenticate on by reload:
// clients that connect afterwards are re-authenticated, those connected
// before cannot be (their credentials were not kept), and the result says
// so.
func TestReloadReauthenticateOn(t *testing.T) {
	e := startEnv(t, map[string][]byte{"gate.wasm": wat(t, "allow")}, anonymous+"\n[reload]\nreauthenticate = false\n"+gate("gate", "gate.wasm"))
	before := testutil.MustConnectV3(t, e.url, testutil.V3Options{})
	e.config(anonymous + "\n[reload]\nreauthenticate = true\n" + gate("gate", "gate.wasm"))
	if res := e.reload(true); len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "reload.reauthenticate") {
		t.Errorf("notes = %q, want one on reload.reauthenticate", res.Notes)
	}
	after := testutil.MustConnectV3(t, e.url, testutil.V3Options{})
	// Anonymous clients are no longer allowed.
	e.config("\n[reload]\nreauthenticate = true\n" + gate("gate", "gate.wasm"))
	if res := e.reload(true); res.Disconnected != 1 {
		t.Errorf("disconnected %d, want the client connected after the change", res.Disconnected)
	}
	waitFor(t, testutil.Wait, "the later client disconnected", func() bool { return !after.IsConnected() })
	if !before.IsConnected() {
		t.Error("the client connected before the change was disconnected")
	}
}
