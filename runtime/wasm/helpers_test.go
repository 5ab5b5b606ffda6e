package wasm

import (
	"bytes"
	"context"
	"embed"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm/internal/meter"
)

//go:generate sh testdata/build.sh

//go:embed testdata/*.wasm
var testdata embed.FS

func wasmFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := testdata.ReadFile("testdata/" + name + ".wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logBuffer collects log lines for assertions; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newEngine(t testing.TB, log *slog.Logger) *Engine {
	t.Helper()
	e, err := NewEngine(context.Background(), EngineOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return e
}

// testModule loads testdata/<file>.wasm as plugin name, deciding authn and
// authz, with a pool of 2 and a 50ms timeout unless cfg says otherwise.
func testModule(t testing.TB, e *Engine, file string, cfg ModuleConfig) *Module {
	t.Helper()
	m, err := e.Load(context.Background(), moduleConfig(t, file, cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func moduleConfig(t testing.TB, file string, cfg ModuleConfig) ModuleConfig {
	if cfg.Name == "" {
		cfg.Name = file
	}
	if cfg.Path == "" {
		cfg.Path = "testdata/" + file + ".wasm"
	}
	if cfg.Binary == nil {
		cfg.Binary = wasmFile(t, file)
	}
	if cfg.Decisions == nil {
		cfg.Decisions = []string{"authz"}
	}
	if cfg.Instances == 0 {
		cfg.Instances = 2
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 50 * time.Millisecond
	}
	return cfg
}

func debugLogger() (*slog.Logger, *logBuffer) {
	lb := &logBuffer{}
	return slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})), lb
}

var testClient = &policy.Client{
	ClientID: "c1", Username: "alice", RemoteAddr: "127.0.0.1:5555",
	Listener: "tcp-0", ProtocolVersion: 5,
	Attributes: []policy.Attribute{{Key: "tenant", Value: "acme"}},
}

func authz(topic string) *policy.AuthzRequest {
	return &policy.AuthzRequest{Client: testClient, Action: policy.ActionPublish, Topic: topic, QoS: 1}
}

func authn(user string) *policy.AuthnRequest {
	c := *testClient
	c.Username = user
	c.Attributes = nil
	return &policy.AuthnRequest{Client: &c, Password: []byte("secret")}
}

func wantErr(t testing.TB, err error, subs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", subs)
	}
	for _, s := range subs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

// guardGC protects a test that runs a looping guest. Go cannot preempt a
// goroutine inside wasm machine code, so a garbage collector's
// stop-the-world waits for a looping guest, and parks the epoch ticker
// meanwhile: unless the instrumented guest yields to Go now and then, the
// process hangs at the first GC that meets a looping guest. With a meter
// that does not yield, such a test runs with the GC off rather than hang,
// and TestLoopDuringGC fails to report the problem.
func guardGC(t testing.TB) {
	if meterYields() {
		return
	}
	t.Logf("meter does not yield to Go: running with the GC off")
	old := debug.SetGCPercent(-1)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

// meterYields tells whether meter.Instrument makes a looping guest exit to
// Go: it looks for table.grow (0xfc 0x0f), the meter's way to do so, in
// the instrumented one-loop module.
func meterYields() bool {
	// (module (func (loop (br 0))))
	bin := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 4, 1, 0x60, 0, 0, // type: () -> ()
		3, 2, 1, 0, // func 0: type 0
		10, 9, 1, 7, 0, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b} // code: loop br 0 end end
	out, err := meter.Instrument(bin, meter.Limits{})
	return err == nil && bytes.Contains(out, []byte{0xfc, 0x0f})
}
