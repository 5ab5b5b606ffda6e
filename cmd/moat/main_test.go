package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// The tests run the real binary, built once by TestMain with a version set
// through -ldflags as the Makefile does, and the example demo plugin built
// from source, as the example config uses it.
var (
	moatBin  string // the moat binary
	demoWasm string // examples/plugins/demo built for wasip1
	// cacheHome is XDG_CACHE_HOME for every moat the tests run: compiled
	// modules are cached there (shared by the tests, which makes them
	// faster) rather than in the user's cache.
	cacheHome string
)

const testVersion = "v0.0.0-test"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moat-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		moatBin = filepath.Join(dir, "moat")
		demoWasm = filepath.Join(dir, "demo.wasm")
		cacheHome = filepath.Join(dir, "cache")
		builds := []*exec.Cmd{
			exec.Command("go", "build", "-ldflags", "-X main.version="+testVersion, "-o", moatBin, "."),
			exec.Command("go", "build", "-buildmode=c-shared", "-o", demoWasm, "../../examples/plugins/demo"),
		}
		builds[1].Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		var wg sync.WaitGroup
		errs := make([]error, len(builds))
		for i, b := range builds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out, err := b.CombinedOutput(); err != nil {
					errs[i] = fmt.Errorf("%s: %v\n%s", b, err, out)
				}
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// result is what one run of the binary did.
type result struct {
	code           int
	stdout, stderr string
}

// moatCmd prepares a run of the binary in dir.
func moatCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command(moatBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cacheHome)
	return cmd
}

// moat runs the binary with args in dir and waits for it (at most a minute:
// compiling a module is the slowest thing a command here does).
func moat(t *testing.T, dir string, args ...string) result {
	t.Helper()
	cmd := moatCmd(dir, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("moat %s: still running after a minute", strings.Join(args, " "))
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

func TestVersion(t *testing.T) {
	r := moat(t, t.TempDir(), "version")
	want := fmt.Sprintf("moat %s (%s, %s/%s, moat ABI v1)\n", testVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("moat version = %d, stdout %q, stderr %q; want 0, %q", r.code, r.stdout, r.stderr, want)
	}

	// Without -ldflags the version is "dev".
	var stdout, stderr bytes.Buffer
	if code := run([]string{"version"}, nil, &stdout, &stderr); code != 0 || !strings.HasPrefix(stdout.String(), "moat dev (go") {
		t.Errorf("run(version) = %d, %q, %q", code, stdout.String(), stderr.String())
	}
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings
		stderr []string
	}{
		{name: "help", args: []string{"help"}, code: 0,
			stdout: []string{"Usage:", "moat <command>", "serve", "check", "passwd", "version", "help"}},
		{name: "-h", args: []string{"-h"}, code: 0, stdout: []string{"Commands:"}},
		{name: "--help", args: []string{"--help"}, code: 0, stdout: []string{"Commands:"}},
		{name: "help help", args: []string{"help", "help"}, code: 0, stdout: []string{"Commands:"}},
		{name: "help serve", args: []string{"help", "serve"}, code: 0,
			stdout: []string{"Usage: moat serve", "SIGTERM", "-shutdown-timeout", "-c file"}},
		{name: "help check", args: []string{"help", "check"}, code: 0,
			stdout: []string{"Usage: moat check", `"<file>: ok"`, "-c file"}},
		{name: "help version", args: []string{"help", "version"}, code: 0, stdout: []string{"Usage: moat version"}},
		{name: "help passwd", args: []string{"help", "passwd"}, code: 0, stdout: []string{"Usage: moat passwd"}},
		{name: "serve -h", args: []string{"serve", "-h"}, code: 0, stderr: []string{"Usage: moat serve"}},
		{name: "check --help", args: []string{"check", "--help"}, code: 0, stderr: []string{"Usage: moat check"}},
		{name: "no command", args: nil, code: 2, stderr: []string{"Usage:", "moat <command>"}},
		{name: "unknown command", args: []string{"bogus"}, code: 2,
			stderr: []string{`moat: unknown command "bogus"`, "Run 'moat help' for usage."}},
		{name: "help unknown", args: []string{"help", "bogus"}, code: 2, stderr: []string{`unknown command "bogus"`}},
		{name: "unknown flag", args: []string{"check", "-x"}, code: 2,
			stderr: []string{"flag provided but not defined: -x", "Usage: moat check"}},
		{name: "extra argument", args: []string{"check", "extra"}, code: 2,
			stderr: []string{`moat check: unexpected argument "extra"`}},
		{name: "bad shutdown timeout", args: []string{"serve", "-shutdown-timeout", "0s"}, code: 2,
			stderr: []string{"-shutdown-timeout 0s: want more than 0"}},
		{name: "version takes no argument", args: []string{"version", "x"}, code: 2,
			stderr: []string{"unexpected argument"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := moat(t, dir, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, s := range tc.stdout {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
				}
			}
			for _, s := range tc.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
				}
			}
			if tc.stdout == nil && r.stdout != "" {
				t.Errorf("unexpected stdout:\n%s", r.stdout)
			}
			if tc.stderr == nil && r.stderr != "" {
				t.Errorf("unexpected stderr:\n%s", r.stderr)
			}
		})
	}
}

// writeConfig writes doc as dir/moat.toml, with the demo module copied to
// dir/demo.wasm.
func writeConfig(t *testing.T, dir, doc string) {
	t.Helper()
	wasm, err := os.ReadFile(demoWasm)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "demo.wasm"), wasm, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "moat.toml"), []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

const listenerTOML = `
[[listener]]
name = "tcp"
type = "tcp"
address = "127.0.0.1:0"
`

const demoTOML = listenerTOML + `
[log]
format = "json"

[[plugin]]
name = "demo"
module = "demo.wasm"
decisions = ["authn", "authz"]

[plugin.config]
users = [{ username = "demo", password = "demo" }]
rules = [{ username = "demo", action = "all", topic = "demo/#" }]
`

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		config string // "" for no file at all
		code   int
		stdout string
		stderr []string // one regexp per line, in order
	}{
		{name: "listener only", config: listenerTOML, code: 0, stdout: "moat.toml: ok\n" +
			"authn: no plugin; every client is refused (auth.allow_anonymous = false)\n" +
			"authz: no plugin; every publish, subscribe and delivery is denied, except for superusers (auth.authz_no_match = deny)\n" +
			"payload: no plugin; payloads are passed on as published\n"},
		{name: "anonymous, authz allowed", config: listenerTOML + "[auth]\nallow_anonymous = true\nauthz_no_match = \"allow\"\n", code: 0, stdout: "moat.toml: ok\n" +
			"authn: no plugin; clients without username and password connect, every other client is refused (auth.allow_anonymous = true)\n" +
			"authz: no plugin; every client may publish, subscribe and receive on every topic (auth.authz_no_match = allow)\n" +
			"payload: no plugin; payloads are passed on as published\n"},
		{name: "with a module", config: demoTOML, code: 0, stdout: "moat.toml: ok\n" +
			"authn: plugins demo; a client no plugin decides is refused (auth.no_match = deny)\n" +
			"authz: plugins demo; a request no plugin decides is denied (auth.authz_no_match = deny)\n" +
			"payload: no plugin; payloads are passed on as published\n"},
		{name: "no file", code: 1, stderr: []string{
			`^config: open moat.toml: no such file or directory$`,
		}},
		{name: "every problem at once", config: `
[[listener]]
type = "tls"
address = "127.0.0.1:0"
cert_file = "certs/srv.pem"
key_file = "certs/srv.key"

[mqtt]
maximum_qos = 3

[[plugin]]
name = "acl"
module = "acl.wasm"
decisions = ["authz", "bogus"]
`, code: 1, stderr: []string{
			`^moat\.toml:5: listener\[0\]\.cert_file: open certs/srv\.pem: no such file or directory$`,
			`^moat\.toml:6: listener\[0\]\.key_file: open certs/srv\.key: no such file or directory$`,
			`^moat\.toml:9: mqtt\.maximum_qos: 3: want 0, 1 or 2$`,
			`^moat\.toml:13: plugin\[0\]\.module: stat acl\.wasm: no such file or directory$`,
			`^moat\.toml:14: plugin\[0\]\.decisions\[1\]: "bogus" is not one of "authn", "authz", "payload"$`,
		}},
		{name: "syntax error", config: "[[listener]\n", code: 1, stderr: []string{
			`^moat\.toml:1: syntax error: `,
		}},
		{name: "module refuses its config", config: strings.Replace(demoTOML, `action = "all"`, `action = "everything"`, 1),
			code: 1, stderr: []string{`demo.*config refused.*rules\[0\]\.action: "everything"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.config != "" {
				writeConfig(t, dir, tc.config)
			}
			r := moat(t, dir, "check", "-c", "moat.toml")
			if r.code != tc.code || r.stdout != tc.stdout {
				t.Errorf("exit code %d, stdout %q; want %d, %q\nstderr: %s", r.code, r.stdout, tc.code, tc.stdout, r.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if r.stderr == "" {
				lines = nil
			}
			if len(lines) != len(tc.stderr) {
				t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(tc.stderr), r.stderr)
			}
			for i, re := range tc.stderr {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("stderr line %d = %q, want match for %s", i+1, lines[i], re)
				}
			}
		})
	}
}

// TestExampleConfig checks examples/moat.toml as `make run` uses it: laid
// out as in the repository, with the demo module where `make build` puts
// it.
func TestExampleConfig(t *testing.T) {
	dir := t.TempDir()
	doc, err := os.ReadFile("../../examples/moat.toml")
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(demoWasm)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"examples/moat.toml": doc, "bin/examples/demo.wasm": wasm} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := moat(t, dir, "check", "-c", "examples/moat.toml")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "examples/moat.toml: ok\n") {
		t.Errorf("moat check -c examples/moat.toml = %d, %q\n%s", r.code, r.stdout, r.stderr)
	}
}

// serveProc is a running `moat serve`.
type serveProc struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu     sync.Mutex
	logs   []map[string]any // JSON log lines so far
	stderr bytes.Buffer     // everything, for failure messages
}

// startServe starts `moat serve` on dir/moat.toml (which logs JSON) and
// waits until it serves. It stops the process at the end of the test.
func startServe(t *testing.T, dir string) *serveProc {
	t.Helper()
	s := &serveProc{cmd: moatCmd(dir, "serve", "-c", "moat.toml", "-shutdown-timeout", "10s"), done: make(chan struct{})}
	pipe, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.mu.Lock()
			s.stderr.Write(sc.Bytes())
			s.stderr.WriteByte('\n')
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil {
				s.logs = append(s.logs, line)
			}
			s.mu.Unlock()
		}
		io.Copy(io.Discard, pipe)
		s.cmd.Wait()
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	s.waitLog(t, "serving")
	return s
}

// waitLog waits for a log line with message msg and returns it.
func (s *serveProc) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		for _, l := range s.logs {
			if l["msg"] == msg {
				s.mu.Unlock()
				return l
			}
		}
		s.mu.Unlock()
		select {
		case <-s.done:
			t.Fatalf("moat serve exited (%v) before logging %q:\n%s", s.cmd.ProcessState, msg, s.output())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("moat serve did not log %q in 30s:\n%s", msg, s.output())
	return nil
}

func (s *serveProc) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// address returns the address the named listener is bound to, from the
// broker's "listening" log line.
func (s *serveProc) address(t *testing.T, listener string) string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.logs {
		if l["listener"] == listener {
			if a, ok := l["address"].(string); ok {
				return a
			}
		}
	}
	t.Fatalf("no log line gives the address of listener %q:\n%s", listener, s.stderr.String())
	return ""
}

// TestServe runs the broker on the demo module, makes a publish/subscribe
// round trip through it, and stops it with each signal.
func TestServe(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, demoTOML)
			s := startServe(t, dir)
			addr := s.address(t, "tcp")
			if l := s.waitLog(t, "plugin loaded"); l["plugin"] != "demo" || len(fmt.Sprint(l["sha256"])) != 64 {
				t.Errorf("plugin loaded line %v, want the demo plugin with its sha256", l)
			}

			client := func(id, password string) mqtt.Client {
				opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
					SetUsername("demo").SetPassword(password).SetAutoReconnect(false).
					SetConnectTimeout(10 * time.Second)
				return mqtt.NewClient(opts)
			}
			wait := func(tok mqtt.Token, what string) error {
				if !tok.WaitTimeout(10 * time.Second) {
					t.Fatalf("%s: timed out", what)
				}
				return tok.Error()
			}

			sub := client("sub", "demo")
			if err := wait(sub.Connect(), "connect"); err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer sub.Disconnect(0)
			got := make(chan string, 1)
			if err := wait(sub.Subscribe("demo/#", 1, func(_ mqtt.Client, m mqtt.Message) {
				got <- m.Topic() + " " + string(m.Payload())
			}), "subscribe"); err != nil {
				t.Fatalf("subscribe: %v", err)
			}
			pub := client("pub", "demo")
			if err := wait(pub.Connect(), "connect"); err != nil {
				t.Fatalf("connect: %v", err)
			}
			if err := wait(pub.Publish("demo/hello", 1, false, "hello"), "publish"); err != nil {
				t.Fatalf("publish: %v", err)
			}
			pub.Disconnect(0)
			select {
			case m := <-got:
				if m != "demo/hello hello" {
					t.Errorf("received %q", m)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no message received")
			}

			// A wrong password is refused by the module.
			if err := wait(client("intruder", "wrong").Connect(), "connect"); err == nil {
				t.Error("a client with a wrong password connected")
			}

			if err := s.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-s.done:
			case <-time.After(20 * time.Second):
				t.Fatalf("moat serve still running 20s after %v:\n%s", sig, s.output())
			}
			if code := s.cmd.ProcessState.ExitCode(); code != 0 {
				t.Errorf("exit code %d after %v, want 0:\n%s", code, sig, s.output())
			}
			s.waitLog(t, "stopped")
		})
	}
}

// TestServeRefuses checks that serve starts nothing on a config with
// problems, a module that refuses its configuration, or an address in use,
// and says why.
func TestServeRefuses(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	tests := []struct {
		name, config string
		stderr       string // regexp
	}{
		{"bad config", listenerTOML + "\n[log]\nlevel = \"loud\"\n",
			`^moat\.toml:8: log\.level: "loud" is not one of "debug", "info", "warn", "error"\n$`},
		{"module refuses its config", strings.Replace(demoTOML, `action = "all"`, `action = "everything"`, 1),
			`(?m)^wasm: .*demo.*config refused.*rules\[0\]\.action: "everything"`},
		{"address in use", strings.Replace(demoTOML, "127.0.0.1:0", busy.Addr().String(), 1),
			`"cannot start".*address already in use`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeConfig(t, dir, tc.config)
			r := moat(t, dir, "serve", "-c", "moat.toml")
			if r.code != 1 || !regexp.MustCompile(tc.stderr).MatchString(r.stderr) {
				t.Errorf("exit code %d, stderr:\n%s\nwant 1 and a match for %s", r.code, r.stderr, tc.stderr)
			}
			if strings.Contains(r.stderr, `"serving"`) {
				t.Errorf("serve said it was serving:\n%s", r.stderr)
			}
		})
	}
}
