package main

import (
	"io/fs"
	"strings"
	"testing"

	moat "github.com/moat-mqtt/moat/sdk/go"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
)

// These tests run the plugin's handlers natively, with hostcrypto's native
// fallback; runtime/internal/e2e runs the built module in a real broker.

func hashLine(t *testing.T, user, pw, format string, iter int) string {
	t.Helper()
	h, err := passwdfile.HashWith([]byte(pw), format, passwdfile.HashOptions{Iterations: iter})
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + h + "\n"
}

func newPlugin(t *testing.T, files map[string]string, cfg string) (*plugin, error) {
	t.Helper()
	p := &plugin{readFile: func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	}}
	return p, p.configure([]byte(cfg))
}

func TestConfigure(t *testing.T) {
	good := map[string]string{"passwords": "alice:$6$w5Kob+n3MmA291wj$P+fErBmqCcoryUfFnxYvCNpU2X8Hs54crndXwRTXwehZuVfGqCfNwgc16OHmWxemA2Jm9mEtZvSDy4YAsyv3jg==\n"}
	tests := []struct {
		name, cfg string
		files     map[string]string
		err       string // "" for success
	}{
		{"defaults", `{}`, good, ""},
		{"named file", `{"file": "users"}`, map[string]string{"users": good["passwords"]}, ""},
		{"all keys", `{"file": "passwords", "goauth_salt_encoding": "utf-8", "superusers": ["alice"]}`, good, ""},
		{"empty file", `{}`, map[string]string{"passwords": ""}, ""},
		{"unknown key", `{"password_file": "x"}`, good, `unknown field "password_file"`},
		{"bad salt encoding", `{"goauth_salt_encoding": "hex"}`, good, `go-auth salt encoding "hex"`},
		{"empty superuser", `{"superusers": [""]}`, good, "superusers[0] is empty"},
		{"file not granted", `{"file": "nope"}`, good, `passwd: file "nope"`},
		{"malformed line", `{}`, map[string]string{"passwords": "alice:$6$x\n"}, "passwd: passwords:1: $6$ hash"},
		{"plaintext line", `{}`, map[string]string{"passwords": "# users\nbob:hunter2\n"}, "passwords:2: unrecognized hash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newPlugin(t, tc.files, tc.cfg)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Fatalf("error quotes the password: %v", err)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	file := hashLine(t, "alice", "alice-pw", passwdfile.FormatSHA512PBKDF2, 101) +
		hashLine(t, "admin", "admin-pw", passwdfile.FormatBcrypt, 4) +
		hashLine(t, "carol", "carol-pw", passwdfile.FormatArgon2id, 1) +
		hashLine(t, "dave", "dave-pw", passwdfile.FormatSCRAMSHA256, 4096)
	p, err := newPlugin(t, map[string]string{"passwords": file}, `{"superusers": ["admin", "nobody"]}`)
	if err != nil {
		t.Fatal(err)
	}
	req := func(user, pw string) *moat.AuthnRequest {
		r := &moat.AuthnRequest{Client: moat.Client{ClientID: "c", Username: user, Protocol: 5}}
		if pw != "" {
			r.Password = []byte(pw)
		}
		return r
	}
	enhanced := req("alice", "alice-pw")
	enhanced.AuthMethod = "SCRAM-SHA-256"
	tests := []struct {
		name      string
		req       *moat.AuthnRequest
		verdict   moat.Verdict
		reason    byte
		superuser bool
	}{
		{"$7$ right", req("alice", "alice-pw"), moat.VerdictAllow, 0, false},
		{"$7$ wrong", req("alice", "alice-pw!"), moat.VerdictDeny, 0x86, false},
		{"no password", req("alice", ""), moat.VerdictDeny, 0x86, false},
		{"bcrypt superuser", req("admin", "admin-pw"), moat.VerdictAllow, 0, true},
		{"superuser, wrong password", req("admin", "alice-pw"), moat.VerdictDeny, 0x86, false},
		{"argon2id", req("carol", "carol-pw"), moat.VerdictAllow, 0, false},
		{"scram line, plain password", req("dave", "dave-pw"), moat.VerdictAllow, 0, false},
		{"scram line, wrong password", req("dave", "carol-pw"), moat.VerdictDeny, 0x86, false},
		{"unknown user falls through", req("mallory", "alice-pw"), moat.VerdictIgnore, 0, false},
		{"superuser not in the file", req("nobody", "x"), moat.VerdictIgnore, 0, false},
		{"anonymous", req("", ""), moat.VerdictIgnore, 0, false},
		{"enhanced authentication", enhanced, moat.VerdictIgnore, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := p.authenticate(tc.req)
			if res.Verdict() != tc.verdict || res.Reason() != tc.reason || res.Superuser != tc.superuser {
				t.Fatalf("got %v 0x%02x superuser=%v, want %v 0x%02x superuser=%v",
					res.Verdict(), res.Reason(), res.Superuser, tc.verdict, tc.reason, tc.superuser)
			}
		})
	}
}

// TestHasherFallback: argon2id work beyond the broker's cap goes to the
// guest's own hasher rather than being refused, so every line passwdfile
// loads can be checked; work within it does not.
func TestHasherFallback(t *testing.T) {
	guest := &fakeGuest{}
	h := hasher{guest: guest}
	salt := []byte("0123456789abcdef")
	// m=65536, t=5: within passwdfile's caps, above the host's m·t.
	if out, err := h.Argon2id([]byte("pw"), salt, 5, 65536, 1, 32); err != nil || string(out) != "guest" || guest.calls != 1 {
		t.Fatalf("above the host cap: %q, %v, guest calls %d; want the guest's answer", out, err, guest.calls)
	}
	if out, err := h.Argon2id([]byte("pw"), salt, 1, 64, 1, 32); err != nil || len(out) != 32 || guest.calls != 1 {
		t.Fatalf("within the host cap: %q, %v, guest calls %d; want the host's answer", out, err, guest.calls)
	}
}

// fakeGuest answers argon2id without computing it.
type fakeGuest struct {
	passwdfile.Hasher
	calls int
}

func (g *fakeGuest) Argon2id(_, _ []byte, _, _ uint32, _ uint8, _ uint32) ([]byte, error) {
	g.calls++
	return []byte("guest"), nil
}
