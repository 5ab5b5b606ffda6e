package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm/internal/meter"
)

// Defaults of ModuleConfig, as documented in sdk/ABI.md §7.
const (
	DefaultTimeout     = 100 * time.Millisecond
	DefaultInitTimeout = 5 * time.Second
	DefaultMemoryLimit = 128 << 20
	// DefaultIdleTimeout is how long an instance beyond the first may go
	// unused before the pool closes it.
	DefaultIdleTimeout = 30 * time.Second
	pageSize           = 64 << 10
)

// ModuleConfig describes one plugin: its binary and its limits. It maps
// one [[plugin]] entry of moat.toml.
type ModuleConfig struct {
	// Name identifies the plugin in errors and logs.
	Name string
	// Path is where the binary came from; it is read from there unless
	// Binary is set, and shown in load errors either way.
	Path   string
	Binary []byte
	// SHA256, when set, pins the binary's digest (hex): another binary is
	// refused.
	SHA256 string
	// Decisions lists what the plugin decides: "authn", "authz",
	// "payload". Each needs its export.
	Decisions []string
	// Timeout bounds one call, and the wait for a free instance; default
	// 100ms. At least 1ms.
	Timeout time.Duration
	// InitTimeout bounds the initialisation of an instance (start
	// function, _initialize, moat_configure); default DefaultInitTimeout,
	// never less than Timeout. It is separate because starting a Go
	// runtime or parsing a large granted file takes far longer than a
	// decision, and happens off the hot path; a looping initialiser is
	// still stopped.
	InitTimeout time.Duration
	// MemoryLimit caps an instance's linear memory and host-side buffers
	// (argon2id's) together, in bytes, a multiple of 64 KiB; default 128
	// MiB. sdk/ABI.md §7, "Memory budget and deadlines", has the whole
	// formula.
	MemoryLimit int64
	// Instances is the most instances the pool grows to; default
	// runtime.GOMAXPROCS(0). The pool starts with one, instantiated by
	// Load so that a module that cannot start fails there, adds one
	// whenever a caller finds all of them busy, and closes those unused
	// for IdleTimeout, keeping one.
	Instances int
	// MinInstances is how many instances Load creates and the pool keeps
	// however idle; default 1, at most Instances.
	MinInstances int
	// IdleTimeout is how long an instance may go unused before the pool
	// closes it (it closes it between one and two IdleTimeouts after its
	// last call); default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// Files grants read access to host files by name (name -> host path).
	// The guest sees only names; files are read at call time.
	Files map[string]string
	// AllowPayload lets the payload decision read message payloads.
	AllowPayload bool
	// ConfigJSON is handed to moat_configure once per instance; default "{}".
	ConfigJSON []byte
}

// Module is a loaded plugin: a compiled module and a pool of warm
// instances. It is safe for concurrent use. Close it when it is no longer
// in any policy.
type Module struct {
	e       *Engine
	name    string
	label   string // plugin "name" (path), for load errors
	digest  string
	log     *slog.Logger
	timeout time.Duration
	ticks   uint64 // timeout in ticks, rounded up
	// initTimeout and initTicks bound instance initialisation.
	initTimeout time.Duration
	initTicks   uint64
	// memoryLimit is the plugin's memory budget per instance in bytes
	// (memory_limit): linear memory and host-side buffers share it.
	memoryLimit int64
	// stackLimit is the stack guard's budget (meter.Limits.Stack); 0 for
	// none.
	stackLimit uint64
	files      map[string]string
	payload    bool
	config     []byte
	decides    [KindPayload + 1]bool
	hasStart   bool
	hasInit    bool
	hasConf    bool

	rt       wazero.Runtime
	compiled wazero.CompiledModule
	modCfg   wazero.ModuleConfig

	pool     pool
	idleTime time.Duration
	closed   atomic.Bool
	logLimit logLimiter

	broken   chan *slot    // slots whose instance must be replaced
	stopRepl chan struct{} // closed by Close: the manager stops
	replDone chan struct{} // closed by the manager when it has stopped

	closeOnce sync.Once
	closeErr  error
}

var (
	_ policy.Authenticator = (*Module)(nil)
	_ policy.Authorizer    = (*Module)(nil)
)

// ErrClosed is returned by calls on a closed Module.
var ErrClosed = errors.New("wasm: module closed")

// Name returns the plugin's name.
func (m *Module) Name() string { return m.name }

// Digest returns the SHA-256 of the binary as loaded, in hex, before any
// instrumentation: the value a [plugin] sha256 pin must hold.
func (m *Module) Digest() string { return m.digest }

// Load reads, checks and compiles a module, then starts its pool of
// instances, each initialised and configured. Every problem with the
// module is an error naming the plugin, its file and what is wrong; a
// module that loads has passed every check of sdk/ABI.md.
//
// ctx bounds compilation; each instance's initialisation (start function,
// _initialize, moat_buffer, moat_configure) is bounded by cfg.InitTimeout.
func (e *Engine) Load(ctx context.Context, cfg ModuleConfig) (m *Module, err error) {
	if err := e.acquire(); err != nil {
		return nil, fmt.Errorf("wasm: plugin %q: %w", cfg.Name, err)
	}
	defer func() {
		if err != nil {
			e.release()
		}
	}()
	m = &Module{e: e, name: cfg.Name, log: e.log.With("module", cfg.Name)}
	m.logLimit.init()
	m.label = fmt.Sprintf("plugin %q", cfg.Name)
	if cfg.Path != "" {
		m.label += " (" + cfg.Path + ")"
	}
	if err := m.configure(&cfg); err != nil {
		return nil, m.loadErr(err)
	}
	bin := cfg.Binary
	if bin == nil {
		b, err := os.ReadFile(cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("wasm: plugin %q: %w", cfg.Name, err)
		}
		bin = b
	}
	sum := sha256.Sum256(bin)
	m.digest = hex.EncodeToString(sum[:])
	if cfg.SHA256 != "" && !strings.EqualFold(cfg.SHA256, m.digest) {
		return nil, m.loadErr(fmt.Errorf("sha256 is %s, but the config pins %s", m.digest, cfg.SHA256))
	}

	info, err := scanModule(bin)
	if err != nil {
		return nil, m.loadErr(err)
	}
	limitPages := uint64(cfg.MemoryLimit / pageSize)
	if info.hasMemory && info.memoryMin > limitPages {
		return nil, m.loadErr(fmt.Errorf("memory needs at least %d pages (%d bytes), over the memory_limit of %d bytes",
			info.memoryMin, info.memoryMin*pageSize, cfg.MemoryLimit))
	}
	lim := loadLimits(cfg.MemoryLimit)
	if e.noStackGuard {
		lim.Stack = 0
	}
	m.stackLimit = lim.Stack
	metered, err := meter.Instrument(bin, lim)
	if err != nil {
		return nil, m.loadErr(err)
	}

	m.rt = wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler().
		WithCompilationCache(e.cache).
		WithMemoryLimitPages(uint32(limitPages)).
		WithCloseOnContextDone(false)) // see RATIONALE.md: epoch interruption instead
	if err := m.load(ctx, metered, info); err != nil {
		return nil, errors.Join(m.loadErr(err), m.rt.Close(ctx))
	}

	m.broken = make(chan *slot, cfg.Instances)
	m.stopRepl = make(chan struct{})
	m.replDone = make(chan struct{})
	m.pool.init(cfg.Instances, cfg.MinInstances)
	// MinInstances (one by default) now, so that a module that cannot
	// start fails its load; the manager adds the others as demand needs
	// them.
	for range cfg.MinInstances {
		in, err := m.newInstance(ctx)
		if err != nil {
			for i := range m.pool.live.Load() {
				m.closeInstance(m.pool.slots[i].in)
			}
			return nil, errors.Join(m.loadErr(err), m.rt.Close(ctx))
		}
		m.pool.add(in)
	}
	go m.manage()
	return m, nil
}

func (m *Module) loadErr(err error) error {
	return fmt.Errorf("wasm: %s: %w", m.label, err)
}

// configure applies defaults and checks cfg.
func (m *Module) configure(cfg *ModuleConfig) error {
	var problems []string
	if cfg.Name == "" {
		problems = append(problems, "no name")
	}
	if cfg.Binary == nil && cfg.Path == "" {
		problems = append(problems, "neither a path nor a binary")
	}
	if len(cfg.Decisions) == 0 {
		problems = append(problems, `no decisions (want some of "authn", "authz", "payload")`)
	}
	for i, d := range cfg.Decisions {
		k := decisionKind(d)
		switch {
		case k == 0:
			problems = append(problems, fmt.Sprintf(`unknown decision %q (want "authn", "authz" or "payload")`, d))
		case slices.Contains(cfg.Decisions[:i], d):
			problems = append(problems, fmt.Sprintf("decision %q listed twice", d))
		default:
			m.decides[k] = true
		}
	}
	m.timeout = cfg.Timeout
	if m.timeout == 0 {
		m.timeout = DefaultTimeout
	}
	if m.timeout < tick {
		problems = append(problems, fmt.Sprintf("timeout %v is below %v", cfg.Timeout, tick))
	}
	m.ticks = uint64((m.timeout + tick - 1) / tick)
	m.initTimeout = cfg.InitTimeout
	if m.initTimeout == 0 {
		m.initTimeout = DefaultInitTimeout
	}
	if m.initTimeout < m.timeout {
		m.initTimeout = m.timeout
	}
	m.initTicks = uint64((m.initTimeout + tick - 1) / tick)
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	if cfg.MemoryLimit < pageSize || cfg.MemoryLimit%pageSize != 0 || cfg.MemoryLimit > 1<<32 {
		problems = append(problems, fmt.Sprintf("memory_limit %d is not a multiple of 64 KiB between 64 KiB and 4 GiB", cfg.MemoryLimit))
	}
	m.memoryLimit = cfg.MemoryLimit
	if cfg.Instances == 0 {
		cfg.Instances = runtime.GOMAXPROCS(0)
	}
	if cfg.Instances < 1 || cfg.Instances > 1024 {
		problems = append(problems, fmt.Sprintf("instances %d is not between 1 and 1024", cfg.Instances))
	}
	if cfg.MinInstances == 0 {
		cfg.MinInstances = 1
	}
	if cfg.MinInstances < 1 || cfg.MinInstances > cfg.Instances {
		problems = append(problems, fmt.Sprintf("min instances %d is not between 1 and instances (%d)", cfg.MinInstances, cfg.Instances))
	}
	m.idleTime = cfg.IdleTimeout
	if m.idleTime == 0 {
		m.idleTime = DefaultIdleTimeout
	}
	if m.idleTime < 0 {
		problems = append(problems, fmt.Sprintf("idle timeout %v is negative", cfg.IdleTimeout))
	}
	for name, path := range cfg.Files {
		if name == "" || path == "" {
			problems = append(problems, fmt.Sprintf("files: grant %q = %q needs a name and a path", name, path))
		}
	}
	m.files = maps(cfg.Files)
	m.payload = cfg.AllowPayload
	m.config = bytes.TrimSpace(cfg.ConfigJSON)
	if len(m.config) == 0 {
		m.config = []byte("{}")
	} else if !json.Valid(m.config) {
		problems = append(problems, "config is not valid JSON")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// emptyObject tells whether a valid JSON text is {}.
func emptyObject(j []byte) bool {
	var b bytes.Buffer
	return json.Compact(&b, j) == nil && b.String() == "{}"
}

func maps(in map[string]string) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

func decisionKind(d string) byte {
	switch d {
	case DecisionAuthn:
		return KindAuthn
	case DecisionAuthz:
		return KindAuthz
	case DecisionPayload:
		return KindPayload
	}
	return 0
}

// load instantiates the host modules in m's runtime, compiles the metered
// binary and checks it against the ABI.
func (m *Module) load(ctx context.Context, metered []byte, info moduleInfo) error {
	host, err := m.hostModule().Instantiate(ctx)
	if err != nil {
		return fmt.Errorf("host module: %w", err)
	}
	wasi, err := wasi_snapshot_preview1.Instantiate(ctx, m.rt)
	if err != nil {
		return fmt.Errorf("wasi: %w", err)
	}
	compiled, err := m.rt.CompileModule(ctx, metered)
	if err != nil {
		return fmt.Errorf("compile: %w", err)
	}
	m.compiled = compiled
	if err := m.check(compiled, info, host, wasi.(api.Module)); err != nil {
		return err
	}
	exports := compiled.ExportedFunctions()
	_, m.hasStart = exports[meter.ExportStart]
	_, m.hasInit = exports[ExportInitialize]
	_, m.hasConf = exports[ExportConfigure]
	// A sandbox: no FS, no env, no args, empty stdin; real clocks and
	// randomness; sleeping returns at once (the default) because a guest
	// that sleeps holds an instance and a goroutine for nothing.
	m.modCfg = wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions().
		WithRandSource(rand.Reader).
		WithSysWalltime().
		WithSysNanotime()
	return nil
}

// sig is a function type, printed as sdk/ABI.md writes it.
type sig struct{ params, results []api.ValueType }

func (s sig) String() string {
	var b strings.Builder
	b.WriteByte('(')
	for i, p := range s.params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(api.ValueTypeName(p))
	}
	b.WriteString(") -> ")
	switch len(s.results) {
	case 0:
		b.WriteString("()")
	case 1:
		b.WriteString(api.ValueTypeName(s.results[0]))
	default:
		b.WriteByte('(')
		for i, r := range s.results {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(api.ValueTypeName(r))
		}
		b.WriteByte(')')
	}
	return b.String()
}

func (s sig) equal(d api.FunctionDefinition) bool {
	return slices.Equal(s.params, d.ParamTypes()) && slices.Equal(s.results, d.ResultTypes())
}

func defSig(d api.FunctionDefinition) sig { return sig{d.ParamTypes(), d.ResultTypes()} }

var (
	i32, i64   = api.ValueTypeI32, api.ValueTypeI64
	sigVoid    = sig{}
	sigDecide  = sig{[]api.ValueType{i32}, []api.ValueType{i32}}
	decisionEx = [...]string{KindAuthn: ExportAuthenticate, KindAuthz: ExportAuthorize, KindPayload: ExportPayload}
)

// ReservedPrefix starts the names of the exports the host adds when it
// instruments a module (meter.ExportEpoch...). A module's own export of
// that prefix is refused: it would collide with the host's, or pass for one.
const ReservedPrefix = "moat."

// ExportStart is the WASI command entry point, which moat never calls.
const ExportStart = "_start"

// checkExportNames checks the names of the module's exports as its author
// wrote them, not as compiled (the instrumented module has the host's
// moat.* exports too): the reserved prefix and the command model. Unknown
// moat_ exports are only logged: ABI v1 grows by optional exports, so one
// may be meant for a newer broker, but it is more often a misspelling.
func (m *Module) checkExportNames(info moduleInfo) []string {
	var problems []string
	var start, initialize bool
	for _, ex := range info.exports {
		switch {
		case strings.HasPrefix(ex.name, ReservedPrefix):
			problems = append(problems, fmt.Sprintf("exports %s[%s]: names beginning %q are reserved for the host", ex.kindName(), ex.name, ReservedPrefix))
		case ex.name == ExportStart:
			start = true
		case ex.name == ExportInitialize:
			initialize = true
		case strings.HasPrefix(ex.name, "moat_") && !abiExport(ex.name):
			m.log.Warn("export is not part of moat ABI v1 and is ignored (misspelt?)", "export", ex.kindName()+"["+ex.name+"]")
		}
	}
	if start && !initialize {
		problems = append(problems, fmt.Sprintf("exports %s without %s: it is a command (a program), whose exports may run its constructors afresh at every call; "+
			"build a reactor (a library) instead: Go: GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared; TinyGo: -buildmode=c-shared; "+
			"Rust: crate-type = [\"cdylib\"]; C/C++ with wasi-sdk: -mexec-model=reactor", ExportStart, ExportInitialize))
	}
	return problems
}

// abiExport tells whether name is an export of sdk/ABI.md §1.
func abiExport(name string) bool {
	switch name {
	case ExportBuffer, ExportAuthenticate, ExportAuthorize, ExportPayload, ExportConfigure:
		return true
	}
	v, ok := strings.CutPrefix(name, ExportABIPrefix)
	if !ok || v == "" {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// check validates the exports and imports of a compiled module against
// sdk/ABI.md §1 and §6, collecting every problem so that a plugin author
// sees them all at once.
func (m *Module) check(c wazero.CompiledModule, info moduleInfo, host, wasi api.Module) error {
	exports := c.ExportedFunctions()

	// The version comes first: a module for another ABI would fail every
	// other check, and the version is the one problem worth reporting.
	if d, ok := exports[ExportABIVersion]; !ok {
		var other []string
		for name := range exports {
			if v, ok := strings.CutPrefix(name, ExportABIPrefix); ok {
				if _, err := strconv.ParseUint(v, 10, 32); err == nil {
					other = append(other, "v"+v)
				}
			}
		}
		if len(other) > 0 {
			slices.Sort(other)
			return fmt.Errorf("speaks moat ABI %s, this broker speaks v%d", strings.Join(other, ", "), ABIVersion)
		}
		return fmt.Errorf("not a moat module: missing export func[%s] %v", ExportABIVersion, sigVoid)
	} else if !sigVoid.equal(d) {
		return fmt.Errorf("export func[%s] has type %v, want %v", ExportABIVersion, defSig(d), sigVoid)
	}

	var problems []string
	want := func(name string, s sig, required bool) bool {
		d, ok := exports[name]
		switch {
		case !ok && required:
			problems = append(problems, fmt.Sprintf("missing export func[%s] %v", name, s))
		case ok && !s.equal(d):
			problems = append(problems, fmt.Sprintf("export func[%s] has type %v, want %v", name, defSig(d), s))
			return false
		}
		return ok
	}
	if _, ok := c.ExportedMemories()[ExportMemory]; !ok {
		problems = append(problems, fmt.Sprintf("missing export memory[%s]", ExportMemory))
	}
	want(ExportBuffer, sigDecide, true)
	decides := false
	for k := KindAuthn; k <= KindPayload; k++ {
		if want(decisionEx[k], sigDecide, m.decides[k]) {
			decides = true
		}
	}
	if !decides {
		problems = append(problems, fmt.Sprintf("exports no decision: want func[%s], func[%s] or func[%s] %v",
			ExportAuthenticate, ExportAuthorize, ExportPayload, sigDecide))
	}
	want(ExportInitialize, sigVoid, false)
	want(ExportConfigure, sigDecide, false)
	problems = append(problems, m.checkExportNames(info)...)
	if _, ok := exports[ExportConfigure]; !ok && !emptyObject(m.config) {
		problems = append(problems, fmt.Sprintf("has a [plugin.config] but no export func[%s] %v to receive it", ExportConfigure, sigDecide))
	}

	hostFns := host.ExportedFunctionDefinitions()
	wasiFns := wasi.ExportedFunctionDefinitions()
	funcs := c.ImportedFunctions()
	for _, im := range info.imports {
		where := im.module + "." + im.name
		if im.kind != externFunc {
			problems = append(problems, fmt.Sprintf("imports %s %s, but moat provides only functions", im.kindName(), where))
			continue
		}
		var provided map[string]api.FunctionDefinition
		switch im.module {
		case HostModule:
			provided = hostFns
			if (im.name == HostFileSize || im.name == HostFileRead) && len(m.files) == 0 {
				problems = append(problems, fmt.Sprintf("imports %s, which needs a [plugin.files] grant", where))
				continue
			}
		case WASIModule:
			provided = wasiFns
		default:
			problems = append(problems, fmt.Sprintf("imports %s from module %q; moat provides only %q and %q", where, im.module, HostModule, WASIModule))
			continue
		}
		p, ok := provided[im.name]
		if !ok {
			problems = append(problems, fmt.Sprintf("imports %s, which %s does not provide", where, im.module))
			continue
		}
		for _, d := range funcs {
			if mod, name, _ := d.Import(); mod == im.module && name == im.name && !defSig(p).equal(d) {
				problems = append(problems, fmt.Sprintf("imports %s with type %v, but moat provides %v", where, defSig(d), defSig(p)))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}
