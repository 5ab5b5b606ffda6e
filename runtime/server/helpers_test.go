package server

import (
	"bytes"
	"context"
	"embed"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

//go:generate sh -c "for f in testdata/*.wat; do wat2wasm --enable-all $f -o ${f%.wat}.wasm; done"

//go:embed testdata/*.wasm
var testdata embed.FS

// wasmCache is the compilation cache of every server the tests start: a
// Go guest (megabytes of wasm, tens of seconds to compile under the race
// detector) is compiled once, and each later load is a cache hit, as after
// a restart. It lives in the user's cache directory, like Go's build cache,
// so that the next run hits it too; wazero keys its entries by module
// digest, wazero version and CPU, and writes them atomically, so runs in
// parallel share it safely.
var wasmCache string

func TestMain(m *testing.M) {
	var tmp string
	if base, err := os.UserCacheDir(); err == nil {
		// A test binary has no module versions in its build info, so
		// wazero marks its cache entries "dev" whatever its version: the
		// directory is named after the version in go.mod instead, so that
		// an upgrade never loads code compiled by another wazero.
		wasmCache = filepath.Join(base, "moat", "test-wasm-"+wazeroVersion())
	} else {
		if tmp, err = os.MkdirTemp("", "moat-server-test-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		wasmCache = tmp
	}
	code := m.Run()
	if tmp != "" {
		os.RemoveAll(tmp)
	}
	os.Exit(code)
}

// wazeroVersion returns the version of wazero that go.mod requires.
func wazeroVersion() string {
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "go.mod"))
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/tetratelabs/wazero" {
				return f[1]
			}
		}
	}
	return "unknown"
}

// wat returns testdata/<name>.wasm.
func wat(t testing.TB, name string) []byte {
	t.Helper()
	b, err := testdata.ReadFile("testdata/" + name + ".wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withSection returns bin with a custom section holding n appended: another
// digest, the same behaviour.
func withSection(bin []byte, n int) []byte {
	name := "moat-test"
	var payload []byte
	payload = binary.AppendUvarint(payload, uint64(len(name)))
	payload = append(payload, name...)
	payload = binary.AppendUvarint(payload, uint64(n))
	out := append(bytes.Clone(bin), 0) // custom section id
	out = binary.AppendUvarint(out, uint64(len(payload)))
	return append(out, payload...)
}

// demoWasm returns the example demo module, built from source.
func demoWasm(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(testutil.Example(t, "demo"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// header is the start of every test config: one listener, the shared
// compilation cache, no admin socket unless a test asks for one.
func header() string {
	return fmt.Sprintf(`
[[listener]]
name = "tcp"
type = "tcp"
address = "127.0.0.1:0"

[wasm]
cache_dir = %q
`, wasmCache)
}

// syncBuffer is a log sink safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns how many lines contain s.
func (b *syncBuffer) count(s string) int {
	n := 0
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, s) {
			n++
		}
	}
	return n
}

// env is a started server on a config in a directory of its own.
type env struct {
	t    testing.TB
	dir  string
	s    *Server
	logs *syncBuffer
	url  string // tcp://host:port of the listener
	addr string
}

// write writes dir/name, as an editor that saves in place does.
func (e *env) write(name string, data []byte) {
	e.t.Helper()
	writeFile(e.t, filepath.Join(e.dir, name), data)
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// replace writes dir/name the way most editors and deployment tools do:
// a new file renamed over the old one.
func (e *env) replace(name string, data []byte) {
	e.t.Helper()
	tmp := filepath.Join(e.dir, "."+name+".tmp")
	writeFile(e.t, tmp, data)
	if err := os.Rename(tmp, filepath.Join(e.dir, name)); err != nil {
		e.t.Fatal(err)
	}
}

// config replaces moat.toml with header() + doc.
func (e *env) config(doc string) {
	e.t.Helper()
	e.replace("moat.toml", []byte(header()+doc))
}

// startEnv writes files and moat.toml (header() + doc) into a new
// directory and starts a server on them; it is closed at the end of the
// test, which fails if closing fails.
func startEnv(t testing.TB, files map[string][]byte, doc string) *env {
	t.Helper()
	return startEnvIn(t, t.TempDir(), files, doc)
}

// startEnvIn is startEnv in a directory the test prepared.
func startEnvIn(t testing.TB, dir string, files map[string][]byte, doc string) *env {
	t.Helper()
	e := &env{t: t, dir: dir, logs: &syncBuffer{}}
	for name, data := range files {
		e.write(name, data)
	}
	e.write("moat.toml", []byte(header()+doc))
	cfg, err := config.Load(filepath.Join(e.dir, "moat.toml"))
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	s, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := s.Start(ctx); err != nil {
		s.Close(ctx)
		t.Fatalf("start: %v", err)
	}
	e.s = s
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	e.addr = s.Broker().Addr("tcp").String()
	e.url = "tcp://" + e.addr
	return e
}

// reload reloads and fails the test unless the result says applied ==
// want; it returns the result.
func (e *env) reload(want bool) ReloadResult {
	e.t.Helper()
	res := e.s.Reload(context.Background(), Trigger{Source: TriggerAPI})
	if res.Applied != want {
		e.t.Fatalf("reload applied = %v, want %v; errors:\n%s\nlog:\n%s", res.Applied, want, strings.Join(res.Errors, "\n"), e.logs)
	}
	return res
}

// gate is a [[plugin]] deciding authz with module file, for anonymous
// clients.
func gate(name, file string) string {
	return fmt.Sprintf(`
[[plugin]]
name = %q
module = %q
decisions = ["authz"]
instances = 2
`, name, file)
}

const anonymous = `
[auth]
allow_anonymous = true
`

// demoUser and demoRule describe the demo plugin's [plugin.config].
type demoUser struct{ name, password string }

type demoRule struct{ user, action, topic string }

// demo is a [[plugin]] running the demo module (file demo.wasm) for
// authn and authz with users and rules.
func demo(users []demoUser, rules []demoRule) string {
	var b strings.Builder
	b.WriteString(`
[[plugin]]
name = "demo"
module = "demo.wasm"
decisions = ["authn", "authz"]
instances = 2
timeout = "1s"

[plugin.config]
users = [`)
	for i, u := range users {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{ username = %q, password = %q }", u.name, u.password)
	}
	b.WriteString("]\nrules = [")
	for i, r := range rules {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "{ username = %q, action = %q, topic = %q }", r.user, r.action, r.topic)
	}
	b.WriteString("]\n")
	return b.String()
}

// waitFor polls cond every 10ms until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
