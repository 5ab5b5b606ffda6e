package server

import (
	"testing"
	"time"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// TestReloadRemovedUserDefault: with no [reload] section, a user deleted
// from the password file is disconnected by the reload that follows, as
// Mosquitto 2.0 does on SIGHUP; the users still listed stay connected.
func TestReloadRemovedUserDefault(t *testing.T) {
	line := func(user, pw string) string {
		h, err := passwdfile.HashWith([]byte(pw), passwdfile.FormatSHA512PBKDF2, passwdfile.HashOptions{Iterations: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return user + ":" + h + "\n"
	}
	alice, bob := line("alice", "alice-pw"), line("bob", "bob-pw")
	e := startEnv(t, map[string][]byte{
		"passwd.wasm": mustRead(t, testutil.Plugin(t, "passwd")),
		"passwd":      []byte(alice + bob),
	}, `
[[plugin]]
name = "passwd"
module = "passwd.wasm"
decisions = ["authn"]
timeout = "1s"
[plugin.files]
passwords = "passwd"
`)
	a := testutil.MustConnectV3(t, e.url, testutil.V3Options{Username: "alice", Password: "alice-pw"})
	b := testutil.MustConnectV3(t, e.url, testutil.V3Options{Username: "bob", Password: "bob-pw"})

	e.replace("passwd", []byte(alice))
	if res := e.reload(true); res.Disconnected != 1 {
		t.Errorf("disconnected %d clients, want bob", res.Disconnected)
	}
	waitFor(t, 10*time.Second, "bob is disconnected", func() bool { return !b.IsConnected() })
	if !a.IsConnected() {
		t.Error("alice, still in the file, was disconnected")
	}
}
