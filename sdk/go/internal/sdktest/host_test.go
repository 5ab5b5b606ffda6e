package sdktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// This file is a tiny host for the moat ABI (sdk/ABI.md), just enough to
// run modules built with the SDK: it implements the "moat" host functions
// with the ABI's limits and records what the guest sets. The broker's real
// host lives in runtime/wasm.

// modules are the wasm modules the tests build from source, by name.
var modules = map[string]string{
	"demo":  "../../../../examples/plugins/demo",
	"probe": "./testdata/probe",
	"files": "./testdata/files",
}

// env is what TestMain sets up once: one runtime with the host modules and
// the compiled modules.
var env struct {
	rt       wazero.Runtime
	compiled map[string]wazero.CompiledModule
	binaries map[string][]byte
}

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdktest:", err)
		os.Exit(1)
	}
	os.Exit(code(m))
}

func setup() (func(*testing.M) int, error) {
	dir, err := os.MkdirTemp("", "sdktest")
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	rc := wazero.NewRuntimeConfigCompiler()
	cache, err := compilationCache()
	if err == nil {
		rc = rc.WithCompilationCache(cache)
	}
	env.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	wasi_snapshot_preview1.MustInstantiate(ctx, env.rt)
	if err := instantiateHost(ctx, env.rt); err != nil {
		return nil, err
	}
	env.compiled = map[string]wazero.CompiledModule{}
	env.binaries = map[string][]byte{}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for name, pkg := range modules {
		wg.Go(func() {
			bin, cm, err := buildAndCompile(ctx, dir, name, pkg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			env.binaries[name], env.compiled[name] = bin, cm
		})
	}
	wg.Wait()
	return func(m *testing.M) int {
		defer os.RemoveAll(dir)
		if cache != nil {
			defer cache.Close(ctx)
		}
		defer env.rt.Close(ctx)
		defer func() {
			if engine.e != nil {
				if err := engine.e.Close(ctx); err != nil {
					fmt.Fprintln(os.Stderr, "sdktest:", err)
				}
			}
		}()
		return m.Run()
	}, errors.Join(errs...)
}

// compilationCache keeps wazero's machine code between test runs, as
// GOCACHE keeps Go's: compiling the three modules (2-4 MB of wasm each)
// costs several seconds of CPU, which a busy two-core machine turns into
// tens of seconds. Entries are keyed by the module's digest and wazero's
// version; delete the directory to reclaim the space.
func compilationCache() (wazero.CompilationCache, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return nil, err
	}
	return wazero.NewCompilationCacheWithDir(filepath.Join(dir, "moat", "sdktest-wazero"))
}

// buildAndCompile builds pkg with the command the SDK documents and
// compiles the result with wazero.
func buildAndCompile(ctx context.Context, dir, name, pkg string) ([]byte, wazero.CompiledModule, error) {
	out := filepath.Join(dir, name+".wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, nil, err
	}
	cm, err := env.rt.CompileModule(ctx, bin)
	if err != nil {
		return nil, nil, fmt.Errorf("compile %s: %w", name, err)
	}
	return bin, cm, nil
}

// state is one instance's host-side state; host functions find it in
// their context.
type state struct {
	// phase is what the guest is doing: setters work only in a decision,
	// set_message also in configure.
	phase phase
	call  record

	payload      []byte
	allowPayload bool
	files        map[string]string // granted name → host path
	logs         []string
}

type phase int

const (
	idle phase = iota
	configuring
	deciding
)

// record is what the guest set during one call.
type record struct {
	message   *string
	attrs     [][2]string
	attrBytes int
	expiry    *int64
	authData  []byte
	authState []byte
	keyID     *string
}

type stateKey struct{}

func stateOf(ctx context.Context) *state { return ctx.Value(stateKey{}).(*state) }

// read returns guest memory [ptr, ptr+n), panicking (which wazero turns
// into a failed call, a plugin error) when it lies outside memory, as the
// ABI says.
func read(m api.Module, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(fmt.Errorf("pointer %#x length %d outside memory", ptr, n))
	}
	return b
}

// ABI status codes.
const (
	statusNotHere  = -1
	statusTooLarge = -2
)

func instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	levels := []string{"debug", "info", "warn", "error"}
	b := rt.NewHostModuleBuilder("moat")
	fn := func(name string, f any) { b.NewFunctionBuilder().WithFunc(f).Export(name) }
	fn("log", func(ctx context.Context, m api.Module, level, ptr, n uint32) {
		lv := "level?"
		if level < uint32(len(levels)) {
			lv = levels[level]
		}
		s := stateOf(ctx)
		s.logs = append(s.logs, lv+": "+string(read(m, ptr, n)))
	})
	fn("time_now", func(ctx context.Context) int64 { return 1_700_000_000_000_000_007 })
	fn("time_monotonic", func(ctx context.Context) int64 { return 42 })
	fn("random", func(ctx context.Context, m api.Module, ptr, n uint32) int32 {
		if n > 65536 {
			return statusTooLarge
		}
		b := read(m, ptr, n)
		for i := range b {
			b[i] = byte(i%251) + 1 // deterministic, never zero
		}
		return 0
	})
	setter := func(name string, max int, phases []phase, set func(r *record, b []byte)) {
		fn(name, func(ctx context.Context, m api.Module, ptr, n uint32) int32 {
			s := stateOf(ctx)
			if !slices.Contains(phases, s.phase) {
				return statusNotHere
			}
			b := read(m, ptr, n)
			if len(b) > max {
				return statusTooLarge
			}
			set(&s.call, bytes.Clone(b))
			return 0
		})
	}
	setter("set_message", 1024, []phase{configuring, deciding}, func(r *record, b []byte) { s := string(b); r.message = &s })
	setter("set_auth_data", 65535, []phase{deciding}, func(r *record, b []byte) { r.authData = b })
	setter("set_auth_state", 65535, []phase{deciding}, func(r *record, b []byte) { r.authState = b })
	setter("set_key_id", 255, []phase{deciding}, func(r *record, b []byte) { s := string(b); r.keyID = &s })
	fn("add_attribute", func(ctx context.Context, m api.Module, kp, kn, vp, vn uint32) int32 {
		s := stateOf(ctx)
		if s.phase != deciding {
			return statusNotHere
		}
		k, v := read(m, kp, kn), read(m, vp, vn)
		if len(s.call.attrs) == 64 || s.call.attrBytes+len(k)+len(v) > 4096 {
			return statusTooLarge
		}
		s.call.attrs = append(s.call.attrs, [2]string{string(k), string(v)})
		s.call.attrBytes += len(k) + len(v)
		return 0
	})
	fn("set_expiry", func(ctx context.Context, ns int64) int32 {
		s := stateOf(ctx)
		if s.phase != deciding {
			return statusNotHere
		}
		s.call.expiry = &ns
		return 0
	})
	fn("payload_read", func(ctx context.Context, m api.Module, off, ptr, n uint32) int32 {
		s := stateOf(ctx)
		if s.phase != deciding || !s.allowPayload {
			return statusNotHere
		}
		dst := read(m, ptr, n)
		if int(off) >= len(s.payload) {
			return 0
		}
		return int32(copy(dst, s.payload[off:]))
	})
	fn("file_size", func(ctx context.Context, m api.Module, np, nn uint32) int64 {
		path, ok := stateOf(ctx).files[string(read(m, np, nn))]
		if !ok {
			return -1
		}
		fi, err := os.Stat(path)
		if err != nil {
			return -3
		}
		return fi.Size()
	})
	fn("file_read", func(ctx context.Context, m api.Module, np, nn uint32, off int64, ptr, n uint32) int64 {
		path, ok := stateOf(ctx).files[string(read(m, np, nn))]
		if !ok {
			return -1
		}
		f, err := os.Open(path)
		if err != nil {
			return -3
		}
		defer f.Close()
		c, err := f.ReadAt(read(m, ptr, n), off)
		if err != nil && !errors.Is(err, io.EOF) {
			return -3
		}
		return int64(c)
	})
	_, err := b.Instantiate(ctx)
	return err
}

// guest is one instance of a module, driven as the ABI says.
type guest struct {
	mod     api.Module
	ctx     context.Context
	st      *state
	stdout  *bytes.Buffer
	buf     uint32 // address of the guest buffer
	bufSize uint32
	stack   []uint64
	fns     map[string]api.Function
}

var instances atomic.Int64

// instantiate makes a fresh instance of a module built in TestMain and
// initialises it: _initialize, then moat_buffer(4096), then, when cfg is
// not nil, moat_configure.
func instantiate(t testing.TB, name string, st *state) *guest {
	t.Helper()
	cm, ok := env.compiled[name]
	if !ok {
		t.Fatalf("module %q was not built", name)
	}
	if st == nil {
		st = &state{}
	}
	g := &guest{st: st, stdout: &bytes.Buffer{}, stack: make([]uint64, 1), fns: map[string]api.Function{}}
	g.ctx = context.WithValue(context.Background(), stateKey{}, st)
	cfg := newModuleConfig(name).WithStdout(g.stdout).WithStderr(g.stdout)
	mod, err := env.rt.InstantiateModule(g.ctx, cm, cfg)
	if err != nil {
		t.Fatalf("instantiate %s: %v", name, err)
	}
	t.Cleanup(func() { mod.Close(context.Background()) })
	g.mod = mod
	if _, err := g.fn("_initialize").Call(g.ctx); err != nil {
		t.Fatalf("%s: _initialize: %v", name, err)
	}
	g.grow(t, 4096)
	return g
}

// newModuleConfig names an instance uniquely and calls no start function:
// the module is a reactor, initialised by calling _initialize.
func newModuleConfig(name string) wazero.ModuleConfig {
	return wazero.NewModuleConfig().WithName(fmt.Sprintf("%s-%d", name, instances.Add(1))).WithStartFunctions()
}

func (g *guest) fn(name string) api.Function {
	f, ok := g.fns[name]
	if !ok {
		f = g.mod.ExportedFunction(name)
		g.fns[name] = f
	}
	return f
}

// grow calls moat_buffer(size) and checks the answer lies in memory.
func (g *guest) grow(t testing.TB, size uint32) {
	t.Helper()
	res, err := g.fn("moat_buffer").Call(g.ctx, uint64(size))
	if err != nil {
		t.Fatalf("moat_buffer(%d): %v", size, err)
	}
	ptr := uint32(res[0])
	if uint64(ptr)+uint64(size) > uint64(g.mod.Memory().Size()) || ptr == 0 {
		t.Fatalf("moat_buffer(%d) = %#x, outside memory of %d bytes", size, ptr, g.mod.Memory().Size())
	}
	g.buf, g.bufSize = ptr, size
}

// configure hands cfg to moat_configure and returns its answer and the
// message set.
func (g *guest) configure(t testing.TB, cfg string) (uint32, string) {
	t.Helper()
	g.st.phase, g.st.call = configuring, record{}
	defer func() { g.st.phase = idle }()
	res, err := g.call(t, "moat_configure", []byte(cfg))
	if err != nil {
		t.Fatalf("moat_configure: %v", err)
	}
	msg := ""
	if g.st.call.message != nil {
		msg = *g.st.call.message
	}
	return res, msg
}

// decide writes req into the buffer, growing it first when needed, and
// calls the decision export; it returns the packed result and what the
// guest set.
func (g *guest) decide(t testing.TB, export string, req []byte) (uint32, record, error) {
	t.Helper()
	g.st.phase, g.st.call = deciding, record{}
	defer func() { g.st.phase = idle }()
	res, err := g.call(t, export, req)
	return res, g.st.call, err
}

func (g *guest) call(t testing.TB, export string, req []byte) (uint32, error) {
	t.Helper()
	if uint32(len(req)) > g.bufSize {
		g.grow(t, uint32(len(req)))
	}
	if !g.mod.Memory().Write(g.buf, req) {
		t.Fatalf("write request of %d bytes at %#x", len(req), g.buf)
	}
	g.stack[0] = uint64(len(req))
	if err := g.fn(export).CallWithStack(g.ctx, g.stack); err != nil {
		return 0, err
	}
	return uint32(g.stack[0]), nil
}
