package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/server"
)

// TestAdminCommands drives `moat status`, `moat clients`, `moat kick` and
// `moat sessions` against a running `moat serve`, through the admin
// socket.
func TestAdminCommands(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, demoTOML)
	s := startServe(t, dir)
	addr := s.address(t, "tcp")

	connect := func(id string, clean bool) mqtt.Client {
		t.Helper()
		lost := make(chan struct{})
		opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(clean).
			SetUsername("demo").SetPassword("demo").SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).
			SetConnectionLostHandler(func(mqtt.Client, error) { close(lost) })
		c := mqtt.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("connect %s: %v", id, tok.Error())
		}
		if tok := c.Subscribe("demo/"+id, 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(0) })
		return c
	}
	live := connect("live-1", true)
	connect("keeper", false).Disconnect(250)

	t.Run("status", func(t *testing.T) {
		r := moat(t, dir, "status", "-c", "moat.toml")
		for _, re := range []string{
			`^moat ` + regexp.QuoteMeta(testVersion) + ` \(go`,
			`(?m)^1 clients connected, 2 sessions, 0 denials since start$`,
			`(?m)^tcp +tcp +127\.0\.0\.1:\d+ +1$`,
			`(?m)^demo +authn,authz +[0-9a-f]{12} +0$`,
		} {
			if r.code != 0 || !regexp.MustCompile(re).MatchString(r.stdout) {
				t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s\nwant a match for %s", r.code, r.stdout, r.stderr, re)
			}
		}
		r = moat(t, dir, "status", "-json")
		var st server.Status
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Version != testVersion || len(st.Plugins) != 1 {
			t.Errorf("status -json: %v\n%s", err, r.stdout)
		}
	})

	t.Run("clients", func(t *testing.T) {
		r := moat(t, dir, "clients")
		if r.code != 0 || !regexp.MustCompile(`(?m)^live-1 +demo +tcp +127\.0\.0\.1:\d+ +3\.1\.1 +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +1 +0$`).MatchString(r.stdout) ||
			strings.Contains(r.stdout, "keeper") {
			t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		r = moat(t, dir, "clients", "keeper", "-json")
		var ci broker.ClientInfo
		if err := json.Unmarshal([]byte(r.stdout), &ci); err != nil || ci.ID != "keeper" || ci.Connected ||
			len(ci.Subscriptions) != 1 || ci.Subscriptions[0].Filter != "demo/keeper" {
			t.Errorf("clients keeper -json: %v\n%s", err, r.stdout)
		}
		r = moat(t, dir, "clients", "nobody")
		if r.code != 1 || !strings.Contains(r.stderr, `moat clients: not found: no client or session with id "nobody"`) {
			t.Errorf("clients nobody: exit %d, stderr %s", r.code, r.stderr)
		}
	})

	t.Run("sessions", func(t *testing.T) {
		r := moat(t, dir, "sessions")
		if r.code != 0 || !regexp.MustCompile(`(?m)^keeper +demo +offline since .* +3\.1\.1 +\d+s +1 +0$`).MatchString(r.stdout) ||
			!regexp.MustCompile(`(?m)^live-1 +demo +connected +3\.1\.1 +0s +1 +0$`).MatchString(r.stdout) {
			t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		r = moat(t, dir, "sessions", "rm", "keeper")
		if r.code != 0 || r.stdout != "deleted the session of keeper (offline, 1 subscriptions, 0 queued messages)\n" {
			t.Errorf("sessions rm keeper: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if r = moat(t, dir, "sessions", "rm", "keeper"); r.code != 1 {
			t.Errorf("sessions rm keeper again: exit %d, want 1", r.code)
		}
		if r = moat(t, dir, "sessions", "bogus"); r.code != 2 {
			t.Errorf("sessions bogus: exit %d, want 2", r.code)
		}
	})

	t.Run("kick", func(t *testing.T) {
		r := moat(t, dir, "kick", "live-1", "-reason", "maintenance window")
		if r.code != 0 || !strings.HasPrefix(r.stdout, `kicked live-1 (username "demo", MQTT 3.1.1, 127.0.0.1:`) {
			t.Fatalf("kick: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		deadline := time.Now().Add(10 * time.Second)
		for live.IsConnectionOpen() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if live.IsConnectionOpen() {
			t.Error("live-1 still connected after the kick")
		}
		if r = moat(t, dir, "kick", "live-1"); r.code != 1 || !strings.Contains(r.stderr, "not connected") {
			t.Errorf("kick again: exit %d, stderr %q", r.code, r.stderr)
		}
		if r = moat(t, dir, "kick"); r.code != 2 || !strings.Contains(r.stderr, "missing argument") {
			t.Errorf("kick without id: exit %d, stderr %q", r.code, r.stderr)
		}
		s.waitLog(t, "admin action")
	})

	t.Run("help", func(t *testing.T) {
		for _, cmd := range []string{"status", "clients", "kick", "sessions"} {
			r := moat(t, dir, "help", cmd)
			if r.code != 0 || !strings.Contains(r.stdout, "Usage: moat "+cmd) || !strings.Contains(r.stdout, "-json") {
				t.Errorf("help %s: exit %d\n%s", cmd, r.code, r.stdout)
			}
		}
	})
}
