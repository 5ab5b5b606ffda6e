package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
)

// passwd runs `moat passwd args...` with stdin, returning the exit code
// and what it printed.
func passwd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = runPasswd(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustPasswd runs `moat passwd` and fails the test unless it exits 0.
func mustPasswd(t *testing.T, stdin string, args ...string) {
	t.Helper()
	if code, _, stderr := passwd(t, stdin, args...); code != 0 {
		t.Fatalf("moat passwd %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
}

func pwLoadFile(t *testing.T, path string) *passwdfile.File {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := passwdfile.Parse(bytes.NewReader(data), path)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// pwCheap keeps the tests fast: each format at a low cost.
var pwCheap = map[string]string{
	"argon2id": "1", "sha512-pbkdf2": "1000", "bcrypt": "4", "pbkdf2-sha256": "1000",
	"pbkdf2-sha512": "1000", "scram-sha-256": "4096", "scram-sha-512": "4096",
}

func pwCheapArgs(format string) []string {
	if it, ok := pwCheap[format]; ok {
		return []string{"-H", format, "-I", it}
	}
	return []string{"-H", format}
}

func TestPasswdLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.txt")

	// Create with a password from stdin (not a terminal: one line).
	mustPasswd(t, "wonderland\n", "-c", "-H", "argon2id", "-I", "1", path, "alice")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), "alice:$argon2id$v=19$m=19456,t=1,p=1$") || bytes.Contains(data, []byte("wonderland")) {
		t.Fatalf("file after -c:\n%s", data)
	}

	// Add one user per format, batch mode.
	for _, format := range passwdfile.Formats() {
		args := append(pwCheapArgs(format), "-b", path, "user-"+format, "pw-"+format)
		mustPasswd(t, "", args...)
	}
	// Update alice: her line changes in place.
	mustPasswd(t, "looking glass\r\n", append(pwCheapArgs("bcrypt"), path, "alice")...)
	// Comments survive updates.
	data, _ = os.ReadFile(path)
	os.WriteFile(path, append([]byte("# managed by moat passwd\n"), data...), 0o600)
	mustPasswd(t, "", "-D", path, "user-sha512")

	f := pwLoadFile(t, path)
	if f.Verify("alice", []byte("wonderland")) || !f.Verify("alice", []byte("looking glass")) {
		t.Error("alice: update did not replace the password")
	}
	for _, format := range passwdfile.Formats() {
		u := "user-" + format
		if format == "sha512" {
			if f.Contains(u) {
				t.Error("deleted user still there")
			}
			continue
		}
		if !f.Verify(u, []byte("pw-"+format)) || f.Verify(u, []byte("pw-"+format+"x")) {
			t.Errorf("%s: right password refused or wrong one accepted", u)
		}
	}
	data, _ = os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[0] != "# managed by moat passwd" || !strings.HasPrefix(lines[1], "alice:$2a$04$") {
		t.Errorf("order or comments not kept:\n%s", data)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after updates %v", fi.Mode().Perm())
	}
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(matches) != 0 {
		t.Errorf("temporary files left: %v", matches)
	}
}

func TestPasswdKeepsModeAndSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real.txt")
	link := filepath.Join(dir, "link.txt")
	mustPasswd(t, "", "-c", "-H", "sha512", "-b", real, "a", "pw")
	if err := os.Chmod(real, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.txt", link); err != nil {
		t.Fatal(err)
	}
	mustPasswd(t, "", "-H", "sha512", "-b", link, "b", "pw2")
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v", err)
	}
	fi, _ := os.Stat(real)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 kept", fi.Mode().Perm())
	}
	if f := pwLoadFile(t, real); !f.Verify("a", []byte("pw")) || !f.Verify("b", []byte("pw2")) {
		t.Error("users")
	}
}

func TestPasswdUpgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plain.txt")
	os.WriteFile(path, []byte("# plaintext\nalice:wonderland\nbob:builder\n"), 0o644)
	mustPasswd(t, "", "-U", "-H", "bcrypt", "-I", "4", path)
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte("wonderland")) || !bytes.HasPrefix(data, []byte("# plaintext\nalice:$2a$04$")) {
		t.Fatalf("upgraded:\n%s", data)
	}
	f := pwLoadFile(t, path)
	if !f.Verify("alice", []byte("wonderland")) || !f.Verify("bob", []byte("builder")) {
		t.Error("upgraded passwords")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 kept", fi.Mode().Perm())
	}
	// A second -U changes nothing.
	mustPasswd(t, "", "-U", path)
	again, _ := os.ReadFile(path)
	if !bytes.Equal(again, data) {
		t.Error("second -U rewrote hashes")
	}
}

func TestPasswdErrors(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "users.txt")
	mustPasswd(t, "", "-c", "-H", "sha512", "-b", existing, "alice", "pw")
	before, _ := os.ReadFile(existing)
	broken := filepath.Join(dir, "broken.txt")
	os.WriteFile(broken, []byte("ok:$6$w5Kob+n3MmA291wj$P+fErBmqCcoryUfFnxYvCNpU2X8Hs54crndXwRTXwehZuVfGqCfNwgc16OHmWxemA2Jm9mEtZvSDy4YAsyv3jg==\nbad:$5$x$y\n"), 0o600)

	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no args", "", nil, exitUsage, "want 2 arguments"},
		{"-c and -D", "", []string{"-c", "-D", existing, "alice"}, exitUsage, "cannot be combined"},
		{"-U and -b", "", []string{"-U", "-b", existing}, exitUsage, "cannot be combined"},
		{"-D with -H", "", []string{"-D", "-H", "bcrypt", existing, "alice"}, exitUsage, "no -H"},
		{"unknown format", "", []string{"-H", "md5", existing, "bob"}, exitUsage, `unknown format "md5"`},
		{"iterations out of range", "", []string{"-H", "bcrypt", "-I", "20", existing, "bob"}, exitUsage, "out of range"},
		{"sha512 iterations", "", []string{"-H", "sha512", "-I", "5", existing, "bob"}, exitUsage, "no iteration count"},
		{"batch arity", "", []string{"-b", existing, "bob"}, exitUsage, "want 3 arguments"},
		{"missing file", "", []string{"-b", filepath.Join(dir, "nope"), "bob", "pw"}, exitFail, "use -c to create it"},
		{"colon in username", "", []string{"-b", existing, "a:b", "pw"}, exitFail, "contains ':'"},
		{"blank username", "", []string{"-b", existing, " bob", "pw"}, exitFail, "leading or trailing blanks"},
		{"empty password", "\n", []string{existing, "bob"}, exitFail, "empty password"},
		{"no stdin", "", []string{existing, "bob"}, exitFail, "no password on stdin"},
		{"empty batch password", "", []string{"-b", existing, "bob", ""}, exitFail, "empty password"},
		{"delete unknown", "", []string{"-D", existing, "nobody"}, exitFail, `user "nobody" not found`},
		{"broken file", "", []string{"-b", broken, "bob", "pw"}, exitFail, `broken.txt:2: unknown hash format "$5$"`},
		{"bcrypt too long", "", []string{"-H", "bcrypt", "-I", "4", "-b", existing, "bob", strings.Repeat("x", 73)}, exitFail, "72 bytes"},
		{"scram non-ascii", "", []string{"-H", "scram-sha-256", "-b", existing, "bob", "pässword"}, exitFail, "printable ASCII"},
		{"directory", "", []string{"-b", dir, "bob", "pw"}, exitFail, "not a regular file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := passwd(t, tc.stdin, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tc.code, tc.want)
			}
			if strings.Contains(stderr, "pässword") || strings.Contains(stderr, "xxxxxxxx") {
				t.Fatalf("stderr shows the password: %q", stderr)
			}
		})
	}
	after, _ := os.ReadFile(existing)
	if !bytes.Equal(before, after) {
		t.Error("a failed command changed the file")
	}
	if code, _, stderr := passwd(t, "", "-h"); code != exitOK || !strings.Contains(stderr, "mosquitto_passwd") {
		t.Errorf("-h: exit %d, %q", code, stderr)
	}
}

// TestPasswdMosquittoPasswdRoundTrip: a file written by Debian's
// mosquitto_passwd goes through moat passwd -D and an update, and
// mosquitto_passwd can still edit the result.
func TestPasswdMosquittoPasswdRoundTrip(t *testing.T) {
	bin, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("mosquitto_passwd not installed")
	}
	path := filepath.Join(t.TempDir(), "passwd")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v\n%s", args, err, out)
		}
	}
	run("-c", "-b", path, "alice", "alice-pw")
	run("-H", "sha512", "-b", path, "bob", "bob-pw")
	run("-b", path, "carol", "carol-pw")
	orig, _ := os.ReadFile(path)
	aliceLine := strings.SplitN(string(orig), "\n", 2)[0]

	mustPasswd(t, "", "-D", path, "bob")
	mustPasswd(t, "new carol pw\n", "-H", "sha512-pbkdf2", "-I", "1000", path, "carol")

	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), aliceLine+"\n") {
		t.Errorf("alice's line was rewritten:\n%s", data)
	}
	f := pwLoadFile(t, path)
	if !f.Verify("alice", []byte("alice-pw")) || f.Contains("bob") || !f.Verify("carol", []byte("new carol pw")) {
		t.Fatalf("after moat passwd:\n%s", data)
	}
	// mosquitto_passwd edits moat's file.
	run("-b", path, "dave", "dave-pw")
	run("-D", path, "alice")
	f = pwLoadFile(t, path)
	if f.Contains("alice") || !f.Verify("dave", []byte("dave-pw")) || !f.Verify("carol", []byte("new carol pw")) {
		t.Fatal("after mosquitto_passwd edited moat's file")
	}
}

// TestPasswdMosquittoBroker: a real mosquitto broker reads a file written
// by moat passwd ($7$ with moat's default 210,000 iterations, and $6$) and
// lets in exactly the clients with the right password.
func TestPasswdMosquittoBroker(t *testing.T) {
	broker, err1 := exec.LookPath("mosquitto")
	if err1 != nil {
		broker, err1 = exec.LookPath("/usr/sbin/mosquitto")
	}
	pub, err2 := exec.LookPath("mosquitto_pub")
	if err1 != nil || err2 != nil {
		t.Skip("mosquitto or mosquitto_pub not installed")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	mustPasswd(t, "", "-c", "-H", "sha512-pbkdf2", "-b", path, "alice", "alice pw")
	mustPasswd(t, "", "-H", "sha512", "-b", path, "bob", "bob:pw")
	mustPasswd(t, "", "-H", "argon2id", "-I", "1", "-b", path, "carol", "carol-pw") // mosquitto 2.0 cannot read it

	port := pwFreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`user root
listener %d 127.0.0.1
allow_anonymous false
password_file %s
log_dest stderr
`, port, path)), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	var log bytes.Buffer
	cmd := exec.CommandContext(ctx, broker, "-c", conf)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", log.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}

	tests := []struct {
		user, pw string
		ok       bool
	}{
		{"alice", "alice pw", true},
		{"alice", "alice pw ", false},
		{"bob", "bob:pw", true},
		{"bob", "bob", false},
		{"carol", "carol-pw", false}, // argon2id: not for mosquitto 2.0
		{"mallory", "alice pw", false},
	}
	for _, tc := range tests {
		t.Run(tc.user+"/"+tc.pw, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, pub, "-h", "127.0.0.1", "-p", fmt.Sprint(port),
				"-u", tc.user, "-P", tc.pw, "-t", "moat/test", "-m", "hi", "-V", "mqttv311").CombinedOutput()
			if ok := err == nil; ok != tc.ok {
				t.Fatalf("connect ok=%v, want %v: %v %s", ok, tc.ok, err, out)
			}
			if !tc.ok && !strings.Contains(string(out), "not authorised") {
				t.Fatalf("refused for another reason: %s", out)
			}
		})
	}
}

func pwFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestPasswdDefaultMosquittoReadsIt: moat passwd's default line is
// Mosquitto's $7$ at passwdDefaultIterations, which a real Mosquitto 2.0
// broker accepts (a rollback keeps every user), and which passwdfile
// verifies.
func TestPasswdDefaultMosquittoReadsIt(t *testing.T) {
	mosq, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Fatalf("mosquitto not installed: %v", err)
	}
	pub, err := exec.LookPath("mosquitto_pub")
	if err != nil {
		t.Fatalf("mosquitto_pub not installed: %v", err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	mustPasswd(t, "", "-c", "-b", path, "alice", "alice-pw")
	data, _ := os.ReadFile(path)
	if want := fmt.Sprintf("alice:$7$%d$", passwdDefaultIterations); !strings.HasPrefix(string(data), want) {
		t.Fatalf("default line %q, want prefix %q", data, want)
	}
	if !pwLoadFile(t, path).Verify("alice", []byte("alice-pw")) {
		t.Fatal("passwdfile does not verify the default line")
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	_ = l.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous false\npassword_file "+path+"\n"+mosqUser()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(mosq, "-c", conf)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen: %s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	run := func(pw string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, pub, "-h", "127.0.0.1", "-p", port, "-u", "alice", "-P", pw, "-t", "t", "-m", "x").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := run("alice-pw"); err != nil {
		t.Fatalf("mosquitto refused moat passwd's default line: %v\n%s", err, logs.String())
	}
	if err := run("wrong"); err == nil {
		t.Fatal("mosquitto accepted a wrong password: the check above proves nothing")
	}
}

// mosqUser keeps a Mosquitto started by root from switching to the
// "mosquitto" user, who cannot read the test's files.
func mosqUser() string {
	if os.Geteuid() == 0 {
		return "user root\n"
	}
	return ""
}
