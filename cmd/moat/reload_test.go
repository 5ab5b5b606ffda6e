package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/server"
)

// logCount returns how many log lines of s have message msg and, for each
// key of want, that value in the trigger group.
func (s *serveProc) logCount(msg string, want map[string]string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, l := range s.logs {
		if l["msg"] != msg {
			continue
		}
		trigger, _ := l["trigger"].(map[string]any)
		ok := true
		for k, v := range want {
			ok = ok && trigger[k] == v
		}
		if ok {
			n++
		}
	}
	return n
}

// waitCount waits until logCount reaches n.
func (s *serveProc) waitCount(t *testing.T, n int, msg string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for s.logCount(msg, want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d log lines %q with trigger %v in 30s:\n%s", n, msg, want, s.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReload drives `moat reload` against a running `moat serve`: a good
// reload prints what it did and exits 0; a broken config is refused with
// every problem listed and exit status 1; the broker serves on through
// both. SIGHUP and a file change reload too.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, demoTOML)
	s := startServe(t, dir)
	sock := filepath.Join(dir, "moat.sock")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v, %v; want mode 0600", fi, err)
	}

	t.Run("unchanged", func(t *testing.T) {
		r := moat(t, dir, "reload", "-c", "moat.toml")
		if r.code != 0 || !regexp.MustCompile(`^moat\.toml: reloaded in [0-9.]+[mµn]?s\n  plugin demo  sha256 [0-9a-f]{12}  reused\nrevoked 0 subscriptions, disconnected 0 clients\n$`).MatchString(r.stdout) {
			t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		r := moat(t, dir, "reload", "-c", "moat.toml", "--dry-run")
		want := `^moat\.toml: dry run in [0-9.]+[mµn]?s; nothing was changed\n  plugin demo  sha256 [0-9a-f]{12}  unchanged\n` +
			`replayed 0 of 0 recorded decisions; none would change\nwould revoke no subscription\n` +
			// reauthenticate is on by default, which a dry run does not simulate.
			`note: reload\.reauthenticate: re-authentication of connected clients is not simulated; [^\n]*\n$`
		if r.code != 0 || !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		s.waitCount(t, 1, "reload dry run", map[string]string{"source": "admin"})
		writeConfig(t, dir, strings.Replace(demoTOML, `decisions = ["authn", "authz"]`, `decisions = ["authn", "authz"]`+"\non_error = \"maybe\"", 1))
		r = moat(t, dir, "reload", "-c", "moat.toml", "--dry-run")
		if r.code != 1 || !strings.HasPrefix(r.stderr, "moat.toml: a reload would be refused; nothing was changed:\n") ||
			!strings.Contains(r.stderr, `plugin[0].on_error: "maybe"`) {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		writeConfig(t, dir, demoTOML)

		// A candidate elsewhere, as an operator tries an edit while the
		// watcher would apply the config file's own edits at once.
		other := t.TempDir()
		next := strings.Replace(demoTOML, `module = "demo.wasm"`, fmt.Sprintf("module = %q", filepath.Join(dir, "demo.wasm")), 1)
		writeConfig(t, other, strings.Replace(next, `topic = "demo/#"`, `topic = "demo/+"`, 1))
		r = moat(t, dir, "reload", "-c", "moat.toml", "--dry-run", "-candidate", filepath.Join(other, "moat.toml"))
		want = `^/.*/moat\.toml: dry run in [0-9.]+[mµn]?s; nothing was changed\n` +
			`  plugin demo  sha256 [0-9a-f]{12}  would be reloaded \(settings or granted files changed\)\n`
		if r.code != 0 || !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("candidate: exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("refused", func(t *testing.T) {
		// Two problems: a wrong key type and a module that refuses its
		// config would hide each other, so take two config problems.
		bad := strings.Replace(demoTOML, `decisions = ["authn", "authz"]`, `decisions = ["authn", "authz"]`+"\non_error = \"maybe\"\ntimeout = \"0s\"", 1)
		writeConfig(t, dir, bad)
		r := moat(t, dir, "reload", "-c", "moat.toml")
		want := []string{
			`^moat\.toml: reload refused; the running policy is unchanged:$`,
			`plugin\[0\]\.on_error: "maybe"`,
			`plugin\[0\]\.timeout: 0s`,
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 1 || len(lines) != len(want) {
			t.Fatalf("exit %d, stderr:\n%s\nwant 1 and %d lines", r.code, r.stderr, len(want))
		}
		for i, re := range want {
			if !regexp.MustCompile(re).MatchString(lines[i]) {
				t.Errorf("line %d: %q, want a match for %s", i, lines[i], re)
			}
		}
		writeConfig(t, dir, strings.Replace(demoTOML, `action = "all"`, `action = "everything"`, 1))
		r = moat(t, dir, "reload", "-c", "moat.toml")
		if r.code != 1 || !regexp.MustCompile(`(?m)^wasm: plugin "demo" .*config refused.*rules\[0\]\.action`).MatchString(r.stderr) {
			t.Errorf("exit %d, stderr:\n%s\nwant 1 and the module's refusal", r.code, r.stderr)
		}
	})

	t.Run("needs restart", func(t *testing.T) {
		writeConfig(t, dir, demoTOML+"\n[mqtt]\nmaximum_inflight = 100\n")
		r := moat(t, dir, "reload", "-c", "moat.toml")
		if r.code != 0 || !strings.Contains(r.stdout, "needs a restart to take effect (the broker keeps the running values):\n  mqtt.maximum_inflight: 8192 -> 100\n") {
			t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		writeConfig(t, dir, demoTOML)
	})

	t.Run("admin audit", func(t *testing.T) {
		s.waitCount(t, 1, "reload refused", map[string]string{"source": "admin", "endpoint": "unix:" + sock})
		if n := s.logCount("reload", map[string]string{"source": "admin"}); n < 2 {
			t.Errorf("%d audit records of applied admin reloads, want 2", n)
		}
	})

	t.Run("SIGHUP", func(t *testing.T) {
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		s.waitCount(t, 1, "reload", map[string]string{"source": "signal", "signal": "SIGHUP"})
	})

	t.Run("file change", func(t *testing.T) {
		before := s.logCount("reload", map[string]string{"source": "file"})
		writeConfig(t, dir, strings.Replace(demoTOML, `topic = "demo/#"`, `topic = "demo/+"`, 1))
		s.waitCount(t, before+1, "reload", map[string]string{"source": "file"})
	})

	// Still serving, and the socket goes with the process.
	s.address(t, "tcp")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-s.done
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("admin socket after shutdown: %v, want none", err)
	}
}

// TestReloadNoServer checks the message when nothing serves the socket.
func TestReloadNoServer(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, demoTOML)
	r := moat(t, dir, "reload", "-c", "moat.toml")
	if r.code != 1 || !regexp.MustCompile(`^moat reload: .*moat\.sock: .*no such file or directory\n$`).MatchString(r.stderr) {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestPrintDryRun checks the report of a dry run that would change
// something.
func TestPrintDryRun(t *testing.T) {
	res := server.DryRunResult{
		Loadable: true,
		Took:     40 * time.Millisecond,
		Modules:  []server.ModuleReport{{Name: "acl", Digest: "1b2c3d4e5f60aa", Previous: "1b2c3d4e5f60aa"}},
		Recorded: 7, Replayed: 5, NotReplayable: 1,
		Changes: []server.DecisionChange{
			{Kind: "authz", ClientID: "watcher", Action: "subscribe", Topic: "private/#", Old: "allow", New: "deny", Module: "acl", Count: 1},
			{Kind: "authn", ClientID: "cam-1", Username: "cam", Old: "deny", New: "allow", Message: "anonymous", Count: 2},
		},
		Revoked: []server.RevokedSubscription{{ClientID: "watcher", Filter: "private/#", QoS: 1, Connected: true, Module: "acl"}},
		Notes:   []string{"1 recorded CONNECT carried a password"},
	}
	var b strings.Builder
	printDryRun(&b, "moat.toml", res)
	want := `moat.toml: dry run in 40ms; nothing was changed
  plugin acl  sha256 1b2c3d4e5f60  would be reloaded (settings or granted files changed)
replayed 5 of 7 recorded decisions (repeats replayed once; 1 not replayable); 2 would change:
  refused  authz  watcher      subscribe private/#  allow -> deny  (acl)
  allowed  authn  cam-1 (cam)  connect              deny -> allow  (anonymous)
would revoke 1 subscription:
  watcher  private/#  qos 1  connected  (acl)
note: 1 recorded CONNECT carried a password
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
