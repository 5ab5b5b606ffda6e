package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/server"
)

// wasmCache is the compilation cache of every broker the tests start: each
// plugin (megabytes of Go wasm) is compiled once per test process.
var wasmCache string

func TestMain(m *testing.M) {
	if spec := os.Getenv(attackerEnv); spec != "" {
		// Re-executed by startAttacker: attack, report, exit.
		os.Exit(runAttacker(spec, os.Stdin, os.Stdout))
	}
	dir, err := os.MkdirTemp("", "moat-e2e-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wasmCache = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// skipShort skips a test in -short mode: every test here builds and
// compiles Go wasm modules, seconds each (half a minute under -race).
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and compiles Go wasm modules")
	}
}

// listener is the name of the one listener of every test broker.
const listener = "mqtt"

// header starts every test moat.toml: one listener on a free port, the
// shared compilation cache, and timeouts generous enough for hashing under
// the race detector on a loaded machine (a timeout here would fail a test
// for the wrong reason; TestPasswdTimeout tests timeouts).
func header(noMatch string) string {
	return fmt.Sprintf(`
[[listener]]
name = %q
type = "tcp"
address = "127.0.0.1:0"

[auth]
no_match = %q
timeout = "20s"

[wasm]
cache_dir = %q
`, listener, noMatch, wasmCache)
}

// plugin returns a [[plugin]] block for a first-party module; files maps
// grant names to paths, cfg is the body of [plugin.config].
func plugin(t *testing.T, name string, decisions string, files map[string]string, cfg string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n[[plugin]]\nname = %q\nmodule = %q\ndecisions = %s\ntimeout = \"10s\"\n",
		name, testutil.Plugin(t, name), decisions)
	if len(files) > 0 {
		b.WriteString("[plugin.files]\n")
		for k, v := range files {
			fmt.Fprintf(&b, "%s = %q\n", k, v)
		}
	}
	if cfg != "" {
		b.WriteString("[plugin.config]\n" + cfg + "\n")
	}
	return b.String()
}

// logBuffer is a log sink safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// moat is a started broker.
type moat struct {
	srv  *server.Server
	addr string // host:port of the listener
	logs *logBuffer
}

// startMoat writes doc as dir/moat.toml, parses it as moat serve would,
// and serves it until the test ends. The broker's log is shown when the
// test fails.
func startMoat(t *testing.T, dir, doc string) *moat {
	t.Helper()
	return startMoatAt(t, dir, doc, slog.LevelDebug)
}

// startMoatAt is startMoat with the broker logging at level.
func startMoatAt(t *testing.T, dir, doc string, level slog.Level) *moat {
	t.Helper()
	path := filepath.Join(dir, "moat.toml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse([]byte(doc), path)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, doc)
	}
	return serveAt(t, cfg, level)
}

func serve(t *testing.T, cfg *config.Config) *moat {
	t.Helper()
	return serveAt(t, cfg, slog.LevelDebug)
}

func serveAt(t *testing.T, cfg *config.Config, level slog.Level) *moat {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if t.Failed() {
			t.Logf("moat log:\n%s", logs.String())
		}
	})
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	a := srv.Broker().Addr(listener)
	if a == nil {
		t.Fatalf("no listener %q", listener)
	}
	return &moat{srv: srv, addr: a.String(), logs: logs}
}

func (m *moat) url() string { return "tcp://" + m.addr }

// findBinary finds a Debian binary or skips the test.
func findBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	t.Skipf("%s not installed (.ci/run installs it)", name)
	return ""
}

// startMosquitto runs Debian's mosquitto on a free loopback port with conf
// (listener, persistence and logging lines are added) until the test ends,
// and returns its address. As plugins/acl/aclfile/interop_test.go does.
func startMosquitto(t *testing.T, dir, conf string) string {
	t.Helper()
	broker := findBinary(t, "mosquitto")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	text := fmt.Sprintf("listener %d 127.0.0.1\npersistence false\nlog_dest stderr\nlog_type error\nlog_type warning\n%s", port, conf)
	if os.Geteuid() == 0 {
		// As root, mosquitto drops to user "mosquitto", which cannot read
		// the test's private temporary directory.
		text += "user root\n"
	}
	path := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	cmd := exec.Command(broker, "-c", path)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-exited:
			t.Fatalf("mosquitto exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// connectV3 connects with MQTT 3.1.1 and returns the CONNACK return code
// (0: admitted). An admitted client disconnects when the test ends.
func connectV3(t *testing.T, url, clientID, user, password string) byte {
	t.Helper()
	_, code, err := testutil.ConnectV3(t, url, testutil.V3Options{ClientID: clientID, Username: user, Password: password})
	if err != nil && code == 0 {
		t.Fatalf("connect %s to %s: %v", clientID, url, err)
	}
	return code
}

// connectV5 connects with MQTT 5 and returns the CONNACK reason code. An
// admitted client disconnects when the test ends.
func connectV5(t *testing.T, addr, clientID, user, password string) byte {
	t.Helper()
	_, ca, err := testutil.ConnectV5(t, addr, testutil.V5Options{ClientID: clientID, Username: user, Password: password})
	if ca == nil {
		t.Fatalf("connect %s to %s: %v", clientID, addr, err)
	}
	return ca.ReasonCode
}

// writeFile writes a file of the test.
func writeFile(t *testing.T, path, data string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
