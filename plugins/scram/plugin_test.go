package main

import (
	"crypto/rand"
	"io/fs"
	"strings"
	"testing"

	moat "github.com/moat-mqtt/moat/sdk/go"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/plugins/scram/scramauth"
)

// These tests run the handlers natively with scramauth's client;
// runtime/internal/e2e runs the built module in a broker with paho.golang.

func newPlugin(t *testing.T, file, cfg string) (*plugin, error) {
	t.Helper()
	p := &plugin{random: rand.Reader, readFile: func(name string) ([]byte, error) {
		if name == "passwords" {
			return []byte(file), nil
		}
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}}
	return p, p.configure([]byte(cfg))
}

func line(t *testing.T, user, pw, format string) string {
	t.Helper()
	h, err := passwdfile.HashWith([]byte(pw), format, passwdfile.HashOptions{Iterations: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + h + "\n"
}

func TestConfigure(t *testing.T) {
	for _, tc := range []struct{ name, file, cfg, err string }{
		{"defaults", "", `{}`, ""},
		{"all keys", "", `{"file": "passwords", "goauth_salt_encoding": "base64", "superusers": ["a"]}`, ""},
		{"unknown key", "", `{"mechanisms": []}`, `unknown field "mechanisms"`},
		{"not granted", "", `{"file": "other"}`, `scram: file "other"`},
		{"malformed line", "u:$scram-sha-256$i=1$x\n", `{}`, "passwords:1: scram"},
		{"empty superuser", "", `{"superusers": [""]}`, "superusers[0] is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newPlugin(t, tc.file, tc.cfg)
			if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
		})
	}
}

// exchange runs a whole exchange as the broker would: round 0 with the
// client's first message, round 1 with its final message and the state.
func exchange(t *testing.T, p *plugin, method, connectUser, scramUser, password string) (moat.AuthnResult, *scramauth.Client) {
	t.Helper()
	c, err := scramauth.NewClient(method, scramUser, password)
	if err != nil {
		t.Fatal(err)
	}
	req := &moat.AuthnRequest{Client: moat.Client{ClientID: "c", Username: connectUser, Protocol: 5},
		AuthMethod: method, AuthData: c.First()}
	res := p.authenticate(req)
	if res.Verdict() != moat.VerdictContinue {
		return res, c
	}
	final, err := c.Final(res.AuthData)
	if err != nil {
		t.Fatalf("client final: %v", err)
	}
	req.Round, req.AuthData, req.AuthState = 1, final, res.AuthState
	return p.authenticate(req), c
}

func TestExchange(t *testing.T) {
	file := line(t, "alice", "alice-pw", passwdfile.FormatSCRAMSHA256) +
		line(t, "bob", "bob-pw", passwdfile.FormatSCRAMSHA512) +
		line(t, "root", "root-pw", passwdfile.FormatSCRAMSHA256) +
		line(t, "carol", "carol-pw", passwdfile.FormatSHA512PBKDF2)
	p, err := newPlugin(t, file, `{"superusers": ["root"]}`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, connectUser, scramUser, password string
		verdict                                        moat.Verdict
		reason                                         byte
		superuser                                      bool
	}{
		{"sha-256", scramauth.SHA256, "alice", "alice", "alice-pw", moat.VerdictAllow, 0, false},
		{"sha-512", scramauth.SHA512, "bob", "bob", "bob-pw", moat.VerdictAllow, 0, false},
		{"superuser", scramauth.SHA256, "root", "root", "root-pw", moat.VerdictAllow, 0, true},
		{"wrong password", scramauth.SHA256, "alice", "alice", "bob-pw", moat.VerdictDeny, 0x86, false},
		{"other mechanism than stored", scramauth.SHA512, "alice", "alice", "alice-pw", moat.VerdictDeny, 0x86, false},
		{"unknown user", scramauth.SHA256, "mallory", "mallory", "x", moat.VerdictDeny, 0x86, false},
		{"user without scram line", scramauth.SHA256, "carol", "carol", "carol-pw", moat.VerdictDeny, 0x86, false},
		{"CONNECT username differs", scramauth.SHA256, "root", "alice", "alice-pw", moat.VerdictDeny, 0x86, false},
		{"no CONNECT username", scramauth.SHA256, "", "alice", "alice-pw", moat.VerdictDeny, 0x86, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, c := exchange(t, p, tc.method, tc.connectUser, tc.scramUser, tc.password)
			if res.Verdict() != tc.verdict || res.Reason() != tc.reason || res.Superuser != tc.superuser {
				t.Fatalf("got %v 0x%02x superuser=%v (%s), want %v 0x%02x superuser=%v",
					res.Verdict(), res.Reason(), res.Superuser, res.Message(), tc.verdict, tc.reason, tc.superuser)
			}
			if tc.verdict == moat.VerdictAllow {
				if err := c.Verify(res.AuthData); err != nil {
					t.Fatalf("server-final: %v", err)
				}
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	p, err := newPlugin(t, line(t, "alice", "alice-pw", passwdfile.FormatSCRAMSHA256), `{}`)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := scramauth.NewClient(scramauth.SHA256, "alice", "alice-pw")
	start := p.authenticate(&moat.AuthnRequest{Client: moat.Client{Username: "alice"}, AuthMethod: scramauth.SHA256, AuthData: c.First()})
	final, err := c.Final(start.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), start.AuthState...)
	tampered[3] ^= 1
	for _, tc := range []struct {
		name    string
		req     moat.AuthnRequest
		verdict moat.Verdict
		reason  byte
	}{
		{"no method", moat.AuthnRequest{Password: []byte("alice-pw")}, moat.VerdictIgnore, 0},
		{"unknown method", moat.AuthnRequest{AuthMethod: "SCRAM-SHA-1"}, moat.VerdictDeny, 0x8C},
		{"garbage client-first", moat.AuthnRequest{AuthMethod: scramauth.SHA256, AuthData: []byte("hello")}, moat.VerdictDeny, 0x86},
		{"tampered state", moat.AuthnRequest{AuthMethod: scramauth.SHA256, Round: 1, AuthData: final, AuthState: tampered}, moat.VerdictDeny, 0x86},
		{"no state", moat.AuthnRequest{AuthMethod: scramauth.SHA256, Round: 1, AuthData: final}, moat.VerdictDeny, 0x86},
		{"third round", moat.AuthnRequest{AuthMethod: scramauth.SHA256, Round: 2, AuthData: final, AuthState: start.AuthState}, moat.VerdictDeny, 0x86},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Username = "alice"
			res := p.authenticate(&tc.req)
			if res.Verdict() != tc.verdict || res.Reason() != tc.reason {
				t.Fatalf("got %v 0x%02x (%s), want %v 0x%02x", res.Verdict(), res.Reason(), res.Message(), tc.verdict, tc.reason)
			}
		})
	}
	// The untampered state still works: the refusals above changed nothing.
	res := p.authenticate(&moat.AuthnRequest{Client: moat.Client{Username: "alice"}, AuthMethod: scramauth.SHA256, Round: 1, AuthData: final, AuthState: start.AuthState})
	if res.Verdict() != moat.VerdictAllow {
		t.Fatalf("the real exchange: %v (%s)", res.Verdict(), res.Message())
	}
}
