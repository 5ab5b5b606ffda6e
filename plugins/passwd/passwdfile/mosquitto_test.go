package passwdfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestMosquittoPasswdInterop writes a file with Debian's real
// mosquitto_passwd, in its default format and with -H sha512 and -H
// sha512-pbkdf2, and checks every user with the right and a wrong password.
// .ci/run installs mosquitto, so in CI this never skips.
func TestMosquittoPasswdInterop(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	path := filepath.Join(t.TempDir(), "passwd")
	users := []struct {
		args     []string
		user, pw string
	}{
		{[]string{"-c", "-b"}, "default", "s3cret: with spaces"},
		{[]string{"-H", "sha512", "-b"}, "sha512", "other-secret"},
		{[]string{"-H", "sha512-pbkdf2", "-b"}, "pbkdf2", "ünïcödé"},
		{[]string{"-b"}, "user with space", "x"},
	}
	for _, u := range users {
		args := append(append([]string(nil), u.args...), path, u.user, u.pw)
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v\n%s", u.args, err, out)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("mosquitto_passwd wrote:\n%s", data)
	f := parseFile(t, path, Options{})
	if f.Len() != len(users) {
		t.Fatalf("%d users, want %d", f.Len(), len(users))
	}
	for _, u := range users {
		t.Run(u.user, func(t *testing.T) {
			if !f.Verify(u.user, []byte(u.pw)) {
				t.Error("right password refused")
			}
			if f.Verify(u.user, []byte(u.pw+"!")) || f.Verify(u.user, nil) {
				t.Error("wrong password accepted")
			}
		})
	}
}
