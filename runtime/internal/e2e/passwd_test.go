package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// mosquittoUsers are written to a password file by Debian's
// mosquitto_passwd: its default ($7$, PBKDF2-SHA512, 101 iterations) and
// -H sha512 ($6$, Mosquitto 1.x).
var mosquittoUsers = []struct {
	user, password, hash string // hash: mosquitto_passwd -H, "" for its default
	prefix               string
}{
	{"alice", "alice-pw", "", "$7$101$"},
	{"bob", "bob pw with spaces", "sha512", "$6$"},
	{"has space", "pässwörd", "", "$7$101$"},
	{"dave", strings.Repeat("long-password-", 8), "sha512", "$6$"},
	{"erin", "erin-pw", "sha512-pbkdf2", "$7$101$"},
}

// writeMosquittoPasswd runs mosquitto_passwd to write mosquittoUsers into
// a new file and returns its path.
func writeMosquittoPasswd(t *testing.T, dir string) string {
	t.Helper()
	bin := findBinary(t, "mosquitto_passwd")
	path := filepath.Join(dir, "passwd")
	for i, u := range mosquittoUsers {
		args := []string{"-b", path, u.user, u.password}
		if u.hash != "" {
			args = append([]string{"-H", u.hash}, args...)
		}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %q: %v\n%s", args, err, out)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range mosquittoUsers {
		if !strings.Contains(string(data), u.user+":"+u.prefix) {
			t.Fatalf("mosquitto_passwd did not write %q as %s...:\n%s", u.user, u.prefix, data)
		}
	}
	return path
}

// TestPasswdMosquittoInterop: a password file written by Debian's
// mosquitto_passwd, default and -H sha512, given to the passwd plugin in
// moat and as password_file to a real mosquitto 2.0: every CONNECT that
// mosquitto admits, moat admits, and every one it refuses, moat refuses,
// with Mosquitto's codes (3.1.1: 4 bad user name or password; MQTT 5:
// 0x86) for a wrong password.
func TestPasswdMosquittoInterop(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	pwfile := writeMosquittoPasswd(t, dir)
	mosq := startMosquitto(t, dir, "allow_anonymous false\npassword_file "+pwfile+"\n")
	m := startMoat(t, dir, header("deny")+plugin(t, "passwd", `["authn"]`, map[string]string{"passwords": pwfile}, ""))

	tests := []struct {
		name, user, password string
		admit                bool
		known                bool // a refusal is the plugin's deny, not no_match
	}{
		{"$7$ right", "alice", "alice-pw", true, true},
		{"$7$ wrong", "alice", "alice-pw ", false, true},
		{"$7$ no password", "alice", "", false, true},
		{"$7$ username case", "Alice", "alice-pw", false, false},
		{"$6$ right", "bob", "bob pw with spaces", true, true},
		{"$6$ wrong", "bob", "bob pw with space", false, true},
		{"$7$ username with a space", "has space", "pässwörd", true, true},
		{"$7$ unicode wrong", "has space", "passwörd", false, true},
		{"$6$ long password", "dave", strings.Repeat("long-password-", 8), true, true},
		{"$6$ long password cut", "dave", strings.Repeat("long-password-", 7), false, true},
		{"-H sha512-pbkdf2", "erin", "erin-pw", true, true},
		{"another user's password", "erin", "alice-pw", false, true},
		{"unknown user", "mallory", "alice-pw", false, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("interop-%d", i)
			mosqCode := connectV3(t, "tcp://"+mosq, id, tc.user, tc.password)
			moatCode := connectV3(t, m.url(), id, tc.user, tc.password)
			if (mosqCode == 0) != tc.admit {
				t.Fatalf("mosquitto: return code %d, want admitted=%v (fix the case)", mosqCode, tc.admit)
			}
			if (moatCode == 0) != (mosqCode == 0) {
				t.Fatalf("moat return code %d, mosquitto %d", moatCode, mosqCode)
			}
			if tc.admit {
				if code := connectV5(t, m.addr, id+"-v5", tc.user, tc.password); code != 0 {
					t.Fatalf("MQTT 5: reason 0x%02x, want 0", code)
				}
				return
			}
			want3, want5 := byte(5), byte(0x87) // no module matched: no_match = "deny"
			if tc.known {
				want3, want5 = 4, 0x86 // the plugin's deny
			}
			if moatCode != want3 {
				t.Errorf("3.1.1 return code %d, want %d", moatCode, want3)
			}
			if code := connectV5(t, m.addr, id+"-v5", tc.user, tc.password); code != want5 {
				t.Errorf("MQTT 5 reason 0x%02x, want 0x%02x", code, want5)
			}
		})
	}
}

// TestPasswdChain: the passwd plugin with the acl plugin after it, and
// [auth] no_match = "allow": a superuser skips the ACL, a user not in the
// password file falls through to no_match (admitted here, refused in
// TestPasswdMosquittoInterop), and a listed user with a wrong password is
// still refused, whatever no_match says.
func TestPasswdChain(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	var file strings.Builder
	for _, u := range []struct{ user, pw, format string }{
		{"alice", "alice-pw", passwdfile.FormatArgon2id},
		{"admin", "admin-pw", passwdfile.FormatBcrypt},
		{"sam", "sam-pw", passwdfile.FormatSCRAMSHA512},
	} {
		iter := map[string]int{passwdfile.FormatArgon2id: 1, passwdfile.FormatBcrypt: 4, passwdfile.FormatSCRAMSHA512: 4096}[u.format]
		h, err := passwdfile.HashWith([]byte(u.pw), u.format, passwdfile.HashOptions{Iterations: iter})
		if err != nil {
			t.Fatal(err)
		}
		file.WriteString(u.user + ":" + h + "\n")
	}
	pwfile := writeFile(t, filepath.Join(dir, "passwd"), file.String())
	aclfile := writeFile(t, filepath.Join(dir, "acl"), "user alice\ntopic readwrite alice/#\n\nuser guest\ntopic readwrite guest/#\n")
	m := startMoat(t, dir, header("allow")+
		plugin(t, "passwd", `["authn"]`, map[string]string{"passwords": pwfile}, `superusers = ["admin"]`)+
		plugin(t, "acl", `["authz"]`, map[string]string{"acl": aclfile}, ""))

	t.Run("wrong password is refused despite no_match = allow", func(t *testing.T) {
		if code := connectV3(t, m.url(), "w3", "alice", "admin-pw"); code != 4 {
			t.Errorf("3.1.1 return code %d, want 4", code)
		}
		if code := connectV5(t, m.addr, "w5", "admin", "alice-pw"); code != 0x86 {
			t.Errorf("MQTT 5 reason 0x%02x, want 0x86", code)
		}
	})
	t.Run("unknown user falls through to no_match", func(t *testing.T) {
		c := testutil.MustConnectV5(t, m.addr, testutil.V5Options{ClientID: "g", Username: "guest", Password: "anything"})
		if code := c.Publish(t, "guest/x", 1, false, "hi"); code != 0 {
			t.Errorf("guest publishes guest/x: 0x%02x, want 0 (the ACL's user guest)", code)
		}
	})
	t.Run("argon2id user gets the ACL", func(t *testing.T) {
		c := testutil.MustConnectV5(t, m.addr, testutil.V5Options{ClientID: "a", Username: "alice", Password: "alice-pw"})
		if code := c.Publish(t, "alice/x", 1, false, "hi"); code != 0 {
			t.Errorf("alice publishes alice/x: 0x%02x, want 0", code)
		}
		if code := c.Publish(t, "admin/x", 1, false, "hi"); code != 0x87 {
			t.Errorf("alice publishes admin/x: 0x%02x, want 0x87", code)
		}
	})
	t.Run("bcrypt superuser skips the ACL", func(t *testing.T) {
		c := testutil.MustConnectV5(t, m.addr, testutil.V5Options{ClientID: "r", Username: "admin", Password: "admin-pw"})
		for _, topic := range []string{"admin/x", "alice/x", "anything/else"} {
			if code := c.Publish(t, topic, 1, false, "hi"); code != 0 {
				t.Errorf("admin publishes %s: 0x%02x, want 0", topic, code)
			}
		}
	})
	t.Run("scram line with a plain password", func(t *testing.T) {
		if code := connectV3(t, m.url(), "s3", "sam", "sam-pw"); code != 0 {
			t.Errorf("3.1.1 return code %d, want 0", code)
		}
		if code := connectV3(t, m.url(), "s3w", "sam", "sam-pw!"); code != 4 {
			t.Errorf("wrong password: 3.1.1 return code %d, want 4", code)
		}
	})
}

// TestPasswdTimeout: a hash costlier than the plugin's timeout fails the
// CONNECT as a plugin error (on_error = deny), even though the hash runs
// in a host function, which guest-code deadlines cannot interrupt (the
// host checks the deadline itself, and stops the hash there: see
// TestHostHashDeadline in runtime/wasm). The instance is replaced and the
// next client is served.
func TestPasswdTimeout(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	slow, err := passwdfile.HashWith([]byte("slow-pw"), passwdfile.FormatSHA512PBKDF2,
		passwdfile.HashOptions{Iterations: passwdfile.MaxPBKDF2Iterations})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := passwdfile.HashWith([]byte("fast-pw"), passwdfile.FormatSHA512PBKDF2, passwdfile.HashOptions{Iterations: 101})
	if err != nil {
		t.Fatal(err)
	}
	pwfile := writeFile(t, filepath.Join(dir, "passwd"), "slow:"+slow+"\nfast:"+fast+"\nfast2:"+fast+"\n")
	block := plugin(t, "passwd", `["authn"]`, map[string]string{"passwords": pwfile}, "")
	// 500ms: far below 2,000,000 iterations (1.5 s or more), far above
	// 101 (under a millisecond), even under -race on a loaded machine.
	block = strings.Replace(block, `timeout = "10s"`, `timeout = "500ms"`+"\ninstances = 1", 1)
	m := startMoat(t, dir, header("deny")+block)

	if code := connectV5(t, m.addr, "slow", "slow", "slow-pw"); code != 0x87 {
		t.Errorf("2,000,000 iterations in 500ms: reason 0x%02x, want 0x87 (plugin error)", code)
	}
	if !strings.Contains(m.logs.String(), "deadline exceeded") {
		t.Errorf("no deadline error in the log")
	}
	// The failed instance is replaced in the background; until then the
	// one slot is busy and a CONNECT fails after waiting 500ms for it.
	deadline := time.Now().Add(testutil.Wait)
	for code := byte(1); code != 0; {
		if code = connectV5(t, m.addr, "fast", "fast", "fast-pw"); code != 0 && time.Now().After(deadline) {
			t.Fatalf("after the timeout, 101 iterations: reason 0x%02x, want 0", code)
		}
	}
}
