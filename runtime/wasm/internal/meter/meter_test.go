package meter

//go:generate sh -c "for f in testdata/*.wat; do wat2wasm --enable-threads --enable-tail-call --enable-exceptions --debug-names $DOLLAR{f} -o $DOLLAR{f%.wat}.wasm || exit 1; done"

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// testdata holds the modules built from testdata/*.wat by go generate.
//
//go:embed testdata/*.wasm
var testdata embed.FS

// features are what the testdata needs: wazero's default (core 2.0) plus
// threads, tail calls and exception handling.
const features = api.CoreFeaturesV2 |
	experimental.CoreFeaturesThreads |
	experimental.CoreFeaturesTailCall |
	experimental.CoreFeaturesExceptionHandling

// engines are wazero's two engines. Only the compiler is used in
// production; the interpreter checks that the output does not depend on it.
var engines = []struct {
	name   string
	config func() wazero.RuntimeConfig
}{
	{"compiler", wazero.NewRuntimeConfigCompiler},
	{"interpreter", wazero.NewRuntimeConfigInterpreter},
}

func load(tb testing.TB, name string) []byte {
	tb.Helper()
	bin, err := testdata.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

func mustInstrument(tb testing.TB, bin []byte) []byte {
	tb.Helper()
	out, err := Instrument(bin, Limits{})
	if err != nil {
		tb.Fatalf("Instrument: %v", err)
	}
	return out
}

// newRuntime returns a runtime with the "env" module that imports.wasm
// needs, closed when the test ends.
func newRuntime(tb testing.TB, config wazero.RuntimeConfig) wazero.Runtime {
	tb.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, config.WithCoreFeatures(features))
	tb.Cleanup(func() { r.Close(ctx) })
	if _, err := r.InstantiateWithConfig(ctx, load(tb, "env.wasm"), wazero.NewModuleConfig().WithName("env")); err != nil {
		tb.Fatalf("instantiate env: %v", err)
	}
	return r
}

// instantiate runs no start function (the start section of an
// uninstrumented module still runs).
func instantiate(tb testing.TB, r wazero.Runtime, bin []byte) api.Module {
	tb.Helper()
	mod, err := r.InstantiateWithConfig(context.Background(), bin, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		tb.Fatalf("instantiate: %v", err)
	}
	return mod
}

// exportedGlobal returns an exported mutable global.
func exportedGlobal(tb testing.TB, mod api.Module, name string) api.MutableGlobal {
	tb.Helper()
	g := mod.ExportedGlobal(name)
	if g == nil {
		tb.Fatalf("no global exported as %q", name)
	}
	mg, ok := g.(api.MutableGlobal)
	if !ok {
		tb.Fatalf("global %q is not mutable", name)
	}
	if mg.Type() != api.ValueTypeI64 {
		tb.Fatalf("global %q has type %s, want i64", name, api.ValueTypeName(mg.Type()))
	}
	return mg
}

// sectionInfo is a section as listSections sees it.
type sectionInfo struct {
	id   byte
	name string // custom sections
	end  int    // offset after the section
}

// listSections splits a well-formed binary into sections. It is written
// apart from the package's parser so that each checks the other.
func listSections(tb testing.TB, bin []byte) []sectionInfo {
	tb.Helper()
	uleb := func(pos int) (int, int) {
		v, shift := 0, 0
		for {
			c := bin[pos]
			pos++
			v |= int(c&0x7f) << shift
			shift += 7
			if c < 0x80 {
				return v, pos
			}
		}
	}
	var out []sectionInfo
	for pos := 8; pos < len(bin); {
		id := bin[pos]
		size, start := uleb(pos + 1)
		s := sectionInfo{id: id, end: start + size}
		if id == 0 {
			n, p := uleb(start)
			s.name = string(bin[p : p+n])
		}
		out = append(out, s)
		pos = s.end
	}
	return out
}

// testModules are the testdata modules Instrument accepts.
var testModules = []struct {
	file  string
	start bool // has a start section
}{
	{file: "loops.wasm"},
	{file: "start.wasm", start: true},
	{file: "startspin.wasm", start: true},
	{file: "noglobals.wasm"},
	{file: "empty.wasm"},
	{file: "datacode.wasm"},
	{file: "env.wasm"},
	{file: "imports.wasm"},
	{file: "multivalue.wasm"},
	{file: "simd.wasm"},
	{file: "bulk.wasm"},
	{file: "fill.wasm"},
	{file: "threads.wasm"},
	{file: "tag.wasm"},
}

// TestInstrument checks the shape of the output: sections in canonical
// order, the globals and exports added, the start section gone, original
// exports kept.
func TestInstrument(t *testing.T) {
	ctx := context.Background()
	for _, tc := range testModules {
		t.Run(tc.file, func(t *testing.T) {
			in := load(t, tc.file)
			out := mustInstrument(t, in)

			// Sections: canonical order, one global and one export
			// section, no start section, custom sections kept.
			var ids []byte
			var customs []string
			last := 0
			for _, s := range listSections(t, out) {
				if s.id == secCustom {
					customs = append(customs, s.name)
					continue
				}
				ids = append(ids, s.id)
				if rank := sectionRank[s.id]; rank <= last {
					t.Errorf("section %d out of order in %v", s.id, ids)
				} else {
					last = rank
				}
			}
			for _, id := range []byte{secTable, secGlobal, secExport} {
				if !slices.Contains(ids, id) {
					t.Errorf("sections %v lack %s", ids, sectionNames[id])
				}
			}
			if slices.Contains(ids, secStart) {
				t.Errorf("start section left in %v", ids)
			}
			var inCustoms []string
			for _, s := range listSections(t, in) {
				if s.id == secCustom {
					inCustoms = append(inCustoms, s.name)
				}
			}
			if !slices.Equal(customs, inCustoms) {
				t.Errorf("custom sections %q, want %q", customs, inCustoms)
			}

			r := newRuntime(t, wazero.NewRuntimeConfigCompiler())
			origCompiled, err := r.CompileModule(ctx, in)
			if err != nil {
				t.Fatalf("compile original: %v", err)
			}
			compiled, err := r.CompileModule(ctx, out)
			if err != nil {
				t.Fatalf("compile instrumented: %v", err)
			}

			// Every original export is still there, with the same type.
			for name, def := range origCompiled.ExportedFunctions() {
				got, ok := compiled.ExportedFunctions()[name]
				if !ok {
					t.Errorf("export %q lost", name)
					continue
				}
				if !slices.Equal(got.ParamTypes(), def.ParamTypes()) || !slices.Equal(got.ResultTypes(), def.ResultTypes()) {
					t.Errorf("export %q changed its signature", name)
				}
			}
			if len(compiled.ExportedMemories()) != len(origCompiled.ExportedMemories()) {
				t.Errorf("exported memories changed")
			}
			_, hasStart := compiled.ExportedFunctions()[ExportStart]
			if hasStart != tc.start {
				t.Errorf("%s exported: %v, want %v", ExportStart, hasStart, tc.start)
			}
			wantFuncs := len(origCompiled.ExportedFunctions())
			if tc.start {
				wantFuncs++
			}
			if got := len(compiled.ExportedFunctions()); got != wantFuncs {
				t.Errorf("%d exported functions, want %d", got, wantFuncs)
			}

			mod, err := r.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
			if err != nil {
				t.Fatalf("instantiate instrumented: %v", err)
			}
			if got := exportedGlobal(t, mod, ExportEpoch).Get(); got != 0 {
				t.Errorf("%s = %d, want 0", ExportEpoch, got)
			}
			if got := exportedGlobal(t, mod, ExportDeadline).Get(); got != math.MaxUint64 {
				t.Errorf("%s = %#x, want %#x", ExportDeadline, got, uint64(math.MaxUint64))
			}
		})
	}
}

// tryTableModule is a module wat2wasm 1.0.32 cannot write: try_table (the
// final exception handling proposal) catching a throw from inside a loop.
//
//	(func (export "catch") (result i32)
//	  (block $h (result i32)
//	    (try_table (catch $e $h)
//	      (loop (throw $e (i32.const 7))))
//	    (i32.const 0)))
func tryTableModule() []byte {
	return wasmModule(
		newSection(secType, vec(
			[]byte{0x60, 0x00, 0x01, 0x7f}, // () -> i32
			[]byte{0x60, 0x01, 0x7f, 0x00}, // (i32) -> ()
		)),
		newSection(secFunction, vec([]byte{0x00})),
		newSection(secTag, vec([]byte{0x00, 0x01})), // attribute 0, type 1
		newSection(secExport, vec(append(name("catch"), kindFunc, 0x00))),
		newSection(secCode, vec(funcBody(
			0x02, 0x7f, // block (result i32)
			0x1f, 0x40, 0x01, 0x00, 0x00, 0x00, // try_table, 1 catch: tag 0 to label 0
			0x03, 0x40, // loop
			0x41, 0x07, 0x08, 0x00, // i32.const 7, throw 0
			0x0b,       // end loop
			0x0b,       // end try_table
			0x41, 0x00, // i32.const 0
			0x0b, // end block
			0x0b, // end function
		))),
	)
}

// TestResults checks that instrumented functions compute what the
// originals do, on both engines.
func TestResults(t *testing.T) {
	tests := []struct {
		name string
		bin  []byte
		fn   string
		args []uint64
		want []uint64
	}{
		{"loop sum", load(t, "loops.wasm"), "sum", []uint64{1000}, []uint64{500500}},
		{"recursion", load(t, "loops.wasm"), "fac", []uint64{10}, []uint64{3628800}},
		{"nested loops", load(t, "loops.wasm"), "nested", []uint64{6, 4}, []uint64{480}},
		{"br_table 0", load(t, "loops.wasm"), "classify", []uint64{0}, []uint64{10}},
		{"br_table 2", load(t, "loops.wasm"), "classify", []uint64{7}, []uint64{30}},
		{"br_table default", load(t, "loops.wasm"), "classify", []uint64{9}, []uint64{40}},
		{"br_table in loop", load(t, "loops.wasm"), "collatz", []uint64{27}, []uint64{111}},
		{"multi-value block", load(t, "multivalue.wasm"), "divmod", []uint64{17, 5}, []uint64{3, 2}},
		{"multi-value loop", load(t, "multivalue.wasm"), "countdown", []uint64{5}, []uint64{5}},
		{"simd", load(t, "simd.wasm"), "simd", []uint64{10}, []uint64{254}},
		{"bulk memory", load(t, "bulk.wasm"), "bulk", []uint64{3}, []uint64{2147484017}},
		{"imported globals", load(t, "imports.wasm"), "get", nil, []uint64{1107}},
		{"imported function", load(t, "imports.wasm"), "call", []uint64{4}, []uint64{20}},
		{"threads and tail calls", load(t, "threads.wasm"), "count", []uint64{10}, []uint64{10}},
		{"no globals", load(t, "noglobals.wasm"), "add", []uint64{2, 3}, []uint64{5}},
		{"tag", load(t, "tag.wasm"), "boom", []uint64{0}, []uint64{}},
		{"try_table", tryTableModule(), "catch", nil, []uint64{7}},
	}
	ctx := context.Background()
	for _, tc := range tests {
		instrumented := mustInstrument(t, tc.bin)
		guarded, err := Instrument(tc.bin, Limits{Stack: 1 << 20})
		if err != nil {
			t.Fatalf("%s: Instrument with a stack guard: %v", tc.name, err)
		}
		for _, e := range engines {
			t.Run(tc.name+"/"+e.name, func(t *testing.T) {
				for _, v := range []struct {
					name string
					bin  []byte
				}{{"original", tc.bin}, {"instrumented", instrumented}, {"stack guard", guarded}} {
					// A runtime each: imports.wasm changes a global of env.
					mod := instantiate(t, newRuntime(t, e.config()), v.bin)
					got, err := mod.ExportedFunction(tc.fn).Call(ctx, tc.args...)
					if err != nil {
						t.Fatalf("%s: %s%v: %v", v.name, tc.fn, tc.args, err)
					}
					if !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
						t.Errorf("%s: %s%v = %v, want %v", v.name, tc.fn, tc.args, got, tc.want)
					}
					if v.name == "stack guard" {
						if d := depthGlobal(t, mod).Get(); d != 0 {
							t.Errorf("%s: depth %d after %s%v, want 0", v.name, d, tc.fn, tc.args)
						}
					}
				}
			})
		}
	}
}

// TestPreempt checks the point of the package: a guest that does not
// return is stopped when another goroutine moves the epoch past the
// deadline. It needs the compiler: with the interpreter, Set while a call
// runs is a Go data race (see the package documentation).
//
// If this test times out, the compiler keeps the epoch in a register across
// loop iterations and epoch interruption cannot work.
func TestPreempt(t *testing.T) {
	tests := []struct {
		name string
		file string
		fn   string
		args []uint64
	}{
		{"infinite loop", "loops.wasm", "spin", nil},
		{"infinite loop with a result", "loops.wasm", "spin_value", nil},
		{"long loop", "loops.wasm", "sum", []uint64{math.MaxInt64}},
		{"long simd loop", "simd.wasm", "simd", []uint64{math.MaxUint32}},
		{"start function", "startspin.wasm", ExportStart, nil},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRuntime(t, wazero.NewRuntimeConfigCompiler())
			mod := instantiate(t, r, mustInstrument(t, load(t, tc.file)))
			epoch := exportedGlobal(t, mod, ExportEpoch)
			deadline := exportedGlobal(t, mod, ExportDeadline)
			deadline.Set(epoch.Get() + 1) // as the host does before a call

			done := make(chan error, 1)
			go func() {
				_, err := mod.ExportedFunction(tc.fn).Call(ctx, tc.args...)
				done <- err
			}()

			time.Sleep(20 * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("%s returned before the epoch moved: %v", tc.fn, err)
			default:
			}
			set := time.Now()
			epoch.Set(1)

			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "unreachable") {
					t.Fatalf("%s returned %v, want an unreachable trap", tc.fn, err)
				}
				t.Logf("trapped %v after the epoch moved", time.Since(set))
			case <-time.After(10 * time.Second):
				// The guest goroutine cannot be stopped, and the next
				// stop-the-world (garbage collection) would wait for it
				// forever. Panic, so that the test binary reports this
				// test and exits instead of hanging.
				t.Errorf("%s still running 10s after the epoch moved past the deadline: "+
					"the compiler does not re-read the epoch global, so epoch interruption is broken", tc.fn)
				panic("meter: guest not preempted")
			}
		})
	}
}

// TestStopTheWorld checks that a looping guest lets the garbage collector
// stop the world. Go cannot preempt a goroutine in wazero's compiled code,
// so without the periodic exit to Go (see yieldInterval) runtime.GC waits
// for the guest, every other goroutine waits for runtime.GC, and nothing is
// left to move the epoch: the process freezes, timers included. So the test
// runs in a child process, which the parent kills after 10 s.
func TestStopTheWorld(t *testing.T) {
	if os.Getenv("MOAT_METER_STW_CHILD") == "1" {
		stopTheWorld(t)
		return
	}
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestStopTheWorld$", "-test.v")
	cmd.Env = append(os.Environ(), "MOAT_METER_STW_CHILD=1")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("child process: %v\n%s", err, &out)
		}
		t.Logf("child process:\n%s", &out)
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-waited
		t.Fatalf("process froze: a looping guest blocks the garbage collector's stop-the-world, "+
			"so the epoch never moves\n%s", &out)
	}
}

// stopTheWorld is TestStopTheWorld's child process.
func stopTheWorld(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, wazero.NewRuntimeConfigCompiler())
	mod := instantiate(t, r, mustInstrument(t, load(t, "loops.wasm")))
	epoch := exportedGlobal(t, mod, ExportEpoch)
	exportedGlobal(t, mod, ExportDeadline).Set(1)

	done := make(chan error, 1)
	go func() {
		_, err := mod.ExportedFunction("spin").Call(ctx)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	for range 3 {
		start := time.Now()
		runtime.GC()
		t.Logf("runtime.GC took %v while the guest looped", time.Since(start))
	}
	epoch.Set(1)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("spin returned %v, want an unreachable trap", err)
	}
}

// TestStart checks that instantiation no longer runs the start function
// and that the host can call it as moat.start.
func TestStart(t *testing.T) {
	ctx := context.Background()
	in := load(t, "start.wasm")
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			r := newRuntime(t, e.config())
			started := func(mod api.Module) uint64 {
				res, err := mod.ExportedFunction("started").Call(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return res[0]
			}

			if got := started(instantiate(t, r, in)); got != 1 {
				t.Fatalf("original: started = %d after instantiation, want 1", got)
			}
			mod := instantiate(t, r, mustInstrument(t, in))
			if got := started(mod); got != 0 {
				t.Fatalf("instrumented: started = %d after instantiation, want 0", got)
			}
			if _, err := mod.ExportedFunction(ExportStart).Call(ctx); err != nil {
				t.Fatalf("call %s: %v", ExportStart, err)
			}
			if got := started(mod); got != 1 {
				t.Fatalf("instrumented: started = %d after %s, want 1", got, ExportStart)
			}
		})
	}
}

// check is the code Instrument inserts in a module with no globals and no
// tables: epoch is global 0, deadline 1, countdown 2, the yield table 0.
var check = []byte{
	0x23, 0x00, 0x23, 0x01, 0x5a, 0x04, 0x40, 0x00, 0x0b, // epoch >= deadline: unreachable
	0x23, 0x02, 0x41, 0x01, 0x6b, 0x24, 0x02, // countdown--
	0x23, 0x02, 0x41, 0x00, 0x4c, 0x04, 0x40, // if countdown <= 0
	0xd0, 0x70, 0x41, 0x00, 0xfc, 0x0f, 0x00, 0x1a, // drop(table.grow 0 (ref.null func) 0)
	0x41, 0x80, 0x20, 0x24, 0x02, // countdown = 4096
	0x0b,
}

// TestDecode checks that every kind of instruction is decoded to its full
// length: each is followed by a loop, whose check must land right after
// the loop's block type. The immediates hold 0x03 (loop) and 0x0b (end)
// bytes that a decoder off by a byte would take for instructions.
func TestDecode(t *testing.T) {
	b16 := bytes.Repeat([]byte{0x03, 0x0b}, 8)
	tests := []struct {
		name  string
		instr []byte
	}{
		{"unreachable", []byte{0x00}},
		{"nop", []byte{0x01}},
		{"block", []byte{0x02, 0x40, 0x0b}},
		{"block i32", []byte{0x02, 0x7f, 0x41, 0x03, 0x0b}},
		{"block type index", []byte{0x02, 0x03, 0x0b}},
		{"block type index in two bytes", []byte{0x02, 0xc3, 0x00, 0x0b}},
		{"block ref null type", []byte{0x02, 0x63, 0x03, 0x0b}},
		{"block ref func", []byte{0x02, 0x64, 0x70, 0x0b}},
		{"if else", []byte{0x41, 0x00, 0x04, 0x40, 0x05, 0x0b}},
		{"throw", []byte{0x08, 0x03}},
		{"throw_ref", []byte{0x0a}},
		{"br", []byte{0x0c, 0x03}},
		{"br_if", []byte{0x0d, 0x8b, 0x01}},
		{"br_table", []byte{0x0e, 0x02, 0x03, 0x0b, 0x83, 0x03}},
		{"return", []byte{0x0f}},
		{"call", []byte{0x10, 0x83, 0x03}},
		{"call_indirect", []byte{0x11, 0x03, 0x0b}},
		{"return_call", []byte{0x12, 0x03}},
		{"return_call_indirect", []byte{0x13, 0x03, 0x00}},
		{"call_ref", []byte{0x14, 0x03}},
		{"return_call_ref", []byte{0x15, 0x0b}},
		{"drop", []byte{0x1a}},
		{"select", []byte{0x1b}},
		{"select typed", []byte{0x1c, 0x01, 0x7f}},
		{"select typed ref", []byte{0x1c, 0x02, 0x63, 0x03, 0x70}},
		{"try_table", []byte{0x1f, 0x40, 0x04,
			0x00, 0x03, 0x0b, // catch
			0x01, 0x03, 0x0b, // catch_ref
			0x02, 0x03, // catch_all
			0x03, 0x0b, // catch_all_ref
			0x0b}},
		{"try_table type index", []byte{0x1f, 0x03, 0x00, 0x0b}},
		{"local.get", []byte{0x20, 0x03}},
		{"local.tee", []byte{0x22, 0x83, 0x83, 0x03}},
		{"global.set", []byte{0x24, 0x0b}},
		{"table.get", []byte{0x25, 0x03}},
		{"table.set", []byte{0x26, 0x0b}},
		{"i32.load", []byte{0x28, 0x02, 0x83, 0x03}},
		{"i64.store32", []byte{0x3e, 0x02, 0x0b}},
		{"memory.size", []byte{0x3f, 0x00}},
		{"memory.grow", []byte{0x40, 0x00}},
		{"i32.const", []byte{0x41, 0x83, 0x80, 0x80, 0x80, 0x03}},
		{"i64.const", []byte{0x42, 0x83, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}},
		{"f32.const", []byte{0x43, 0x03, 0x0b, 0x03, 0x0b}},
		{"f64.const", append([]byte{0x44}, b16[:8]...)},
		{"i32.add", []byte{0x6a}},
		{"i64.extend32_s", []byte{0xc4}},
		{"ref.null func", []byte{0xd0, 0x70}},
		{"ref.null type index", []byte{0xd0, 0x83, 0x03}},
		{"ref.is_null", []byte{0xd1}},
		{"ref.func", []byte{0xd2, 0x03}},
		{"ref.as_non_null", []byte{0xd4}},
		{"br_on_null", []byte{0xd5, 0x03}},
		{"br_on_non_null", []byte{0xd6, 0x0b}},
		{"i32.trunc_sat_f32_s", []byte{0xfc, 0x00}},
		{"i64.trunc_sat_f64_u", []byte{0xfc, 0x07}},
		{"memory.init", []byte{0xfc, 0x08, 0x03, 0x00}},
		{"memory.init two-byte opcode", []byte{0xfc, 0x88, 0x00, 0x03, 0x00}},
		{"data.drop", []byte{0xfc, 0x09, 0x03}},
		{"memory.copy", []byte{0xfc, 0x0a, 0x00, 0x00}},
		{"memory.fill", []byte{0xfc, 0x0b, 0x00}},
		{"table.init", []byte{0xfc, 0x0c, 0x03, 0x0b}},
		{"elem.drop", []byte{0xfc, 0x0d, 0x03}},
		{"table.copy", []byte{0xfc, 0x0e, 0x03, 0x0b}},
		{"table.grow", []byte{0xfc, 0x0f, 0x03}},
		{"table.size", []byte{0xfc, 0x10, 0x0b}},
		{"table.fill", []byte{0xfc, 0x11, 0x03}},
		{"v128.load", []byte{0xfd, 0x00, 0x04, 0x03}},
		{"v128.load64_splat", []byte{0xfd, 0x0a, 0x03, 0x0b}},
		{"v128.store", []byte{0xfd, 0x0b, 0x04, 0x0b}},
		{"v128.const", append([]byte{0xfd, 0x0c}, b16...)},
		{"i8x16.shuffle", append([]byte{0xfd, 0x0d}, b16...)},
		{"i8x16.swizzle", []byte{0xfd, 0x0e}},
		{"i8x16.extract_lane_s", []byte{0xfd, 0x15, 0x03}},
		{"f64x2.replace_lane", []byte{0xfd, 0x22, 0x01}},
		{"v128.load8_lane", []byte{0xfd, 0x54, 0x00, 0x03, 0x0b}},
		{"v128.store64_lane", []byte{0xfd, 0x5b, 0x03, 0x0b, 0x01}},
		{"v128.load32_zero", []byte{0xfd, 0x5c, 0x02, 0x03}},
		{"v128.load64_zero", []byte{0xfd, 0x5d, 0x03, 0x0b}},
		{"f64x2.promote_low_f32x4", []byte{0xfd, 0x5f}},
		{"i16x8.abs", []byte{0xfd, 0x80, 0x01}},
		{"i32x4.dot_i16x8_s", []byte{0xfd, 0xba, 0x01}},
		{"f64x2.convert_low_i32x4_u", []byte{0xfd, 0xff, 0x01}},
		{"memory.atomic.notify", []byte{0xfe, 0x00, 0x02, 0x03}},
		{"memory.atomic.wait64", []byte{0xfe, 0x02, 0x03, 0x0b}},
		{"atomic.fence", []byte{0xfe, 0x03, 0x00}},
		{"i32.atomic.load", []byte{0xfe, 0x10, 0x02, 0x03}},
		{"i64.atomic.rmw32.cmpxchg_u", []byte{0xfe, 0x4e, 0x02, 0x0b}},
	}
	// The immediates name indices up to 49539 (a local) and branch depths
	// up to 387, so the body runs in a module whose index spaces hold
	// them, inside 400 blocks.
	m := &module{
		types:           1000,
		typeParams:      make([]uint32, 1000),
		funcTypes:       make([]uint32, 1000),
		importedTables:  20,
		importedGlobals: 20,
		memories:        1,
		tags:            20,
		elems:           20,
		dataCount:       20,
		hasDataCount:    true,
	}
	ix := indices{epoch: 0, deadline: 1, countdown: 2, table: 0}
	const scratch = maxLocals
	open := bytes.Repeat([]byte{0x02, 0x40}, 400)
	closing := bytes.Repeat([]byte{0x0b}, 400)
	loop := []byte{0x03, 0x40}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := cat([]byte{0x00}, open, tc.instr, loop, []byte{0x0b}, closing, []byte{0x0b})
			f := fnScope{m: m, locals: maxLocals}
			got, err := f.instrumentBody(nil, body, check, ix, 0)
			if err != nil {
				t.Fatal(err)
			}
			locals, charge := []byte{0x00}, []byte(nil)
			if tc.instr[0] == 0xfc && isBulk(tc.instr, 0) {
				locals = []byte{0x01, 0x01, 0x7f} // the scratch local
				charge = cat(appendBulkCharge(nil, ix, scratch), check)
			}
			want := cat(locals, check, open, charge, tc.instr, loop, check, []byte{0x0b}, closing, []byte{0x0b})
			if !bytes.Equal(got, want) {
				t.Errorf("body\n got % x\nwant % x", got, want)
			}
		})
	}
}

// TestLoops checks where checks go in bodies with several loops and
// locals.
func TestLoops(t *testing.T) {
	tests := []struct {
		name string
		body []byte // with the locals
		want []byte
	}{
		{
			name: "no loop",
			body: []byte{0x00, 0x0b},
			want: cat([]byte{0x00}, check, []byte{0x0b}),
		},
		{
			name: "locals",
			body: []byte{0x02, 0x01, 0x7f, 0x83, 0x01, 0x63, 0x03, 0x0b},
			want: cat([]byte{0x02, 0x01, 0x7f, 0x83, 0x01, 0x63, 0x03}, check, []byte{0x0b}),
		},
		{
			name: "the most locals allowed",
			body: cat([]byte{0x02, 0x01, 0x7f}, uleb(49999), []byte{0x7e, 0x0b}),
			want: cat([]byte{0x02, 0x01, 0x7f}, uleb(49999), []byte{0x7e}, check, []byte{0x0b}),
		},
		{
			name: "nested loops",
			body: []byte{0x00, 0x03, 0x40, 0x03, 0x7f, 0x41, 0x00, 0x0b, 0x1a, 0x0b, 0x0b},
			want: cat([]byte{0x00}, check, []byte{0x03, 0x40}, check, []byte{0x03, 0x7f}, check,
				[]byte{0x41, 0x00, 0x0b, 0x1a, 0x0b, 0x0b}),
		},
		{
			name: "loop after br in dead code",
			body: []byte{0x00, 0x0c, 0x00, 0x03, 0x40, 0x0b, 0x0b},
			want: cat([]byte{0x00}, check, []byte{0x0c, 0x00, 0x03, 0x40}, check, []byte{0x0b, 0x0b}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Instrument(funcModuleBody(tc.body), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if got := onlyBody(t, out); !bytes.Equal(got, tc.want) {
				t.Errorf("body\n got % x\nwant % x", got, tc.want)
			}
		})
	}
}

// TestErrors checks that bad input fails with a useful error.
func TestErrors(t *testing.T) {
	withStart := wasmModule(
		newSection(secType, vec([]byte{0x60, 0x00, 0x00})),
		newSection(secFunction, vec([]byte{0x00})),
		newSection(secExport, vec(append(name(ExportStart), kindFunc, 0x00))),
		newSection(secStart, []byte{0x00}),
		newSection(secCode, vec(funcBody(0x0b))),
	)
	exportsStart := wasmModule(
		newSection(secType, vec([]byte{0x60, 0x00, 0x00})),
		newSection(secFunction, vec([]byte{0x00})),
		newSection(secExport, vec(append(name(ExportStart), kindFunc, 0x00))),
		newSection(secCode, vec(funcBody(0x0b))),
	)
	exportsDeadline := wasmModule(
		newSection(secType, vec([]byte{0x60, 0x00, 0x00})),
		newSection(secFunction, vec([]byte{0x00})),
		newSection(secExport, vec(append(name(ExportDeadline), kindFunc, 0x00))),
		newSection(secCode, vec(funcBody(0x0b))),
	)
	loops := load(t, "loops.wasm")
	tests := []struct {
		name string
		bin  []byte
		want string // the whole message, or a part with "..."
	}{
		{"empty input", nil, "meter: not a wasm binary: bad magic number"},
		{"not wasm", []byte("\x7fELF\x02\x01\x01\x00"), "meter: not a wasm binary: bad magic number"},
		{"component", []byte("\x00asm\x0d\x00\x01\x00"), "meter: unsupported wasm binary version 0d 00 01 00"},
		{"exports moat.epoch", load(t, "exports_epoch.wasm"), `meter: export 0: name "moat.epoch" is in the reserved "moat." namespace`},
		{"exports moat.deadline", exportsDeadline, `meter: export 0: name "moat.deadline" is in the reserved "moat." namespace`},
		{"exports moat.start", withStart, `meter: export 0: name "moat.start" is in the reserved "moat." namespace`},
		{"exports moat.start without a start section", exportsStart, `meter: export 0: name "moat.start" is in the reserved "moat." namespace`},
		{"instrumented twice", mustInstrument(t, loops), `meter: export ...: name "moat.epoch" is in the reserved "moat." namespace`},
		// The first opcode of the body is at 0x17: header 8, type
		// section 6, function section 4, code section id, size, count,
		// body size and locals count 5.
		{"unknown misc opcode", funcModule(0xfc, 0x55, 0x0b), "meter: function 0: unknown opcode 0xfc 0x55 at offset 0x17"},
		{"unknown opcode", funcModule(0x01, 0xc5, 0x0b), "meter: function 0: unknown opcode 0xc5 at offset 0x18"},
		{"legacy try", funcModule(0x06, 0x40, 0x0b, 0x0b), "meter: function 0: unknown opcode 0x06 at offset 0x17"},
		{"reserved simd opcode", funcModule(0xfd, 0x9a, 0x01, 0x0b), "meter: function 0: unknown opcode 0xfd 0x9a at offset 0x17"},
		{"relaxed simd opcode", funcModule(0xfd, 0x80, 0x02, 0x0b), "meter: function 0: unknown opcode 0xfd 0x100 at offset 0x17"},
		{"unknown atomic opcode", funcModule(0xfe, 0x04, 0x0b), "meter: function 0: unknown opcode 0xfe 0x04 at offset 0x17"},
		{"function index counts imports", wasmModule(
			newSection(secType, vec([]byte{0x60, 0x00, 0x00})),
			newSection(secImport, vec(cat(name("env"), name("f"), []byte{kindFunc, 0x00}))),
			newSection(secFunction, vec([]byte{0x00})),
			newSection(secCode, vec(funcBody(0xff, 0x0b))),
		), "meter: function 1: unknown opcode 0xff at offset ..."},
		{"truncated immediate", funcModule(0x41), "meter: function 0: truncated or malformed immediate of opcode 0x41 at offset 0x17"},
		{"LEB128 too long", funcModule(0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b), "meter: function 0: truncated or malformed immediate of opcode 0x41 at offset 0x17"},
		{"truncated v128.const", funcModule(0xfd, 0x0c, 0x00, 0x0b), "meter: function 0: truncated or malformed immediate of opcode 0xfd at offset 0x17"},
		{"missing end", funcModule(0x01), "meter: function 0: body ends inside 1 unclosed blocks at offset 0x18"},
		{"unclosed block", funcModule(0x02, 0x40, 0x0b), "meter: function 0: body ends inside 1 unclosed blocks at offset 0x1a"},
		{"code after end", funcModule(0x0b, 0x01), "meter: function 0: function ends with 1 bytes left in its body at offset 0x17"},
		{"bad catch kind", funcModule(0x1f, 0x40, 0x01, 0x04, 0x00, 0x0b, 0x0b), "meter: function 0: truncated or malformed immediate of opcode 0x1f at offset 0x17"},
		{"bad local type", funcModuleBody([]byte{0x01, 0x01, 0x55, 0x0b}), "meter: function 0: read locals: unknown value type 0x55 at offset 0x18"},
		{"body overruns section", wasmModule(
			newSection(secType, vec([]byte{0x60, 0x00, 0x00})),
			newSection(secFunction, vec([]byte{0x00})),
			newSection(secCode, []byte{0x01, 0x05, 0x00, 0x0b}),
		), "meter: function 0 at offset 0x15: body size 5 exceeds the 2 bytes left in the code section"},
		{"section overruns input", loops[:len(loops)-1], "meter: section custom at offset ...: size ... exceeds the ... bytes left"},
		{"section size too long", append(wasmModule(), 0x01, 0x80, 0x80, 0x80, 0x80, 0x10), "meter: section type at offset 0x8: read size: LEB128 number too long"},
		{"truncated section size", append(wasmModule(), 0x01, 0x80), "meter: section type at offset 0x8: read size: unexpected end of input"},
		{"unknown section", append(wasmModule(), 0x0e, 0x00), "meter: unknown section id 14 at offset 0x8"},
		{"duplicate section", wasmModule(newSection(secType, vec()), newSection(secType, vec())), "meter: section type at offset 0xb is duplicated or out of order"},
		{"tag after global", wasmModule(newSection(secGlobal, vec()), newSection(secTag, vec())), "meter: section tag at offset 0xb is duplicated or out of order"},
		{"data count after code", wasmModule(newSection(secCode, vec()), newSection(secDataCount, []byte{0x00})), "meter: section data count at offset 0xb is duplicated or out of order"},
		{"bad import kind", wasmModule(newSection(secImport, vec(cat(name("a"), name("b"), []byte{0x05})))), "meter: section import at offset 0xb: import 0: unknown kind 0x5"},
		{"memory64 import", wasmModule(newSection(secImport, vec(cat(name("a"), name("b"), []byte{kindMemory, 0x04, 0x01})))), "meter: section import at offset 0xb: import 0: unsupported limits flags 0x4"},
		{"truncated import", wasmModule(newSection(secImport, vec(cat(name("a"), name("b"), []byte{kindGlobal, 0x7f})))), "meter: section import at offset 0xb: import 0: unexpected end of input"},
		{"function type out of range", wasmModule(
			newSection(secType, vec([]byte{0x60, 0x00, 0x00})),
			newSection(secFunction, vec([]byte{0x00}, []byte{0x30})),
		), "meter: section function at offset 0x12: function 1: type index 48 out of range (1 types)"},
		// Counts larger than the bytes left, which would make wazero
		// allocate gigabytes (see bounds.go).
		{"huge parameter count", wasmModule(newSection(secType, vec(cat([]byte{0x60}, uleb(505165936))))),
			"meter: section type at offset 0xb: type 0: 505165936 entries in 0 bytes: unexpected end of input"},
		{"huge rec group", wasmModule(newSection(secType, vec(cat([]byte{0x4e}, uleb(1<<30))))),
			"meter: section type at offset 0xb: type 0: 1073741824 entries in 0 bytes: unexpected end of input"},
		{"huge import count", wasmModule(newSection(secImport, cat(uleb(1000), []byte{0x00, 0x00}))),
			"meter: section import at offset 0xa: read count: 1000 entries in 2 bytes: unexpected end of input"},
		{"huge global count", wasmModule(newSection(secGlobal, uleb(1<<20))),
			"meter: section global at offset 0xa: read count: 1048576 entries in 0 bytes: unexpected end of input"},
		{"huge data segment", wasmModule(newSection(secData, vec(cat([]byte{0x01}, uleb(1<<31))))),
			"meter: section data at offset 0xb: data segment 0: 2147483648 entries in 0 bytes: unexpected end of input"},
		{"huge active data segment", wasmModule(newSection(secMemory, vec([]byte{0x00, 0x01})), newSection(secData, vec(cat([]byte{0x00, 0x41, 0x0b, 0x0b}, uleb(1<<31))))),
			"meter: section data at offset 0x10: data segment 0: 2147483648 entries in 0 bytes: unexpected end of input"},
		{"unknown data flags", wasmModule(newSection(secData, vec([]byte{0x03}))),
			"meter: section data at offset 0xb: data segment 0: unknown flags 3"},
		{"huge element vector", wasmModule(newSection(secTable, vec([]byte{0x70, 0x00, 0x00})), newSection(secElement, vec(cat([]byte{0x00, 0x41, 0x00, 0x0b}, uleb(1<<30))))),
			"meter: section element at offset 0x11: element segment 0: 1073741824 entries in 0 bytes: unexpected end of input"},
		{"huge element expressions", wasmModule(newSection(secElement, vec(cat([]byte{0x05, 0x70}, uleb(1<<30))))),
			"meter: section element at offset 0xb: element segment 0: 1073741824 entries in 0 bytes: unexpected end of input"},
		{"block in element expression", wasmModule(newSection(secTable, vec([]byte{0x70, 0x00, 0x00})), newSection(secElement, vec([]byte{0x04, 0x02, 0x40, 0x0b, 0x0b, 0x00}))),
			"meter: section element at offset 0x11: element segment 0: block in a constant expression"},
		{"huge function name map", wasmModule(newSection(secCustom, cat(name("name"), []byte{0x01, 0x05}, uleb(1<<30)))),
			"meter: section custom at offset 0xf: name subsection 1: 1073741824 entries in 0 bytes: unexpected end of input"},
		{"huge local name map", wasmModule(newSection(secCustom, cat(name("name"), []byte{0x02, 0x07, 0x01, 0x00}, uleb(1<<30)))),
			"meter: section custom at offset 0xf: name subsection 2: 1073741824 entries in 0 bytes: unexpected end of input"},
		{"name subsection longer than its content", wasmModule(newSection(secCustom, cat(name("name"), []byte{0x01, 0x03, 0x00, 0x30, 0x30}))),
			"meter: section custom at offset 0xf: name subsection 1: 2 bytes left after its content"},
		{"name subsection shorter than its content", wasmModule(newSection(secCustom, cat(name("name"), []byte{0x00, 0x01, 0x03, 0x61, 0x62, 0x63}))),
			"meter: section custom at offset 0xf: name subsection 0: unexpected end of input"},
		{"too many locals", funcModuleBody(cat([]byte{0x02, 0x01, 0x7f}, uleb(50000), []byte{0x7e, 0x0b})),
			"meter: function 0: more than 50000 locals at offset 0x19"},
		{"start with extra bytes", wasmModule(newSection(secStart, []byte{0x00, 0x00})), "meter: section start at offset 0xb: 1 bytes after the function index"},
		{"truncated custom section name", wasmModule(newSection(secCustom, []byte{0x05, 'a'})), "meter: custom section at offset 0x8: name overruns the section"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Instrument(tc.bin, Limits{})
			if err == nil {
				t.Fatalf("no error; output % x", out)
			}
			if out != nil {
				t.Errorf("output with error")
			}
			if !matches(err.Error(), tc.want) {
				t.Errorf("error\n got %q\nwant %q", err, tc.want)
			}
		})
	}
}

// matches reports whether s matches pattern, in which "..." stands for
// anything.
func matches(s, pattern string) bool {
	parts := strings.Split(pattern, "...")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1:] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return s == "" || strings.HasSuffix(pattern, "...")
}

// TestTruncated cuts every test module at every length: Instrument must
// never panic, and must fail when the cut falls inside a section.
func TestTruncated(t *testing.T) {
	for _, tc := range testModules {
		t.Run(tc.file, func(t *testing.T) {
			bin := load(t, tc.file)
			ends := map[int]bool{8: true}
			for _, s := range listSections(t, bin) {
				ends[s.end] = true
			}
			for n := range len(bin) {
				out, err := Instrument(bin[:n], Limits{})
				if err == nil && !ends[n] {
					t.Fatalf("cut at %d of %d: no error; output % x", n, len(bin), out)
				}
			}
		})
	}
}

// TestCustomSections checks which custom sections survive, and where.
func TestCustomSections(t *testing.T) {
	custom := func(n string) []byte {
		return newSection(secCustom, cat(name(n), []byte("data")))
	}
	in := load(t, "noglobals.wasm")
	bin := cat(in[:8], custom("producers"), in[8:],
		custom(".debug_info"), custom(".debug_line"), custom("sourceMappingURL"),
		custom("external_debug_info"), custom("metadata.code.branch_hint"),
		custom("debug_info"), custom("keep.me"))
	out := mustInstrument(t, bin)

	var got []string
	for _, s := range listSections(t, out) {
		if s.id == secCustom {
			got = append(got, s.name)
		}
	}
	want := []string{"producers", "name", "debug_info", "keep.me"}
	if !slices.Equal(got, want) {
		t.Errorf("custom sections %q, want %q", got, want)
	}
	if first := listSections(t, out)[0]; first.name != "producers" {
		t.Errorf("first section %+v, want producers", first)
	}
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	if _, err := r.CompileModule(ctx, out); err != nil {
		t.Fatalf("compile: %v", err)
	}
}

// TestOrder checks where the added sections go.
func TestOrder(t *testing.T) {
	tests := []struct {
		file string
		want []byte // section ids, without custom sections
	}{
		{"empty.wasm", []byte{secTable, secGlobal, secExport}},
		{"datacode.wasm", []byte{secTable, secMemory, secGlobal, secExport, secData}},
		{"noglobals.wasm", []byte{secType, secFunction, secTable, secGlobal, secExport, secCode}},
		{"tag.wasm", []byte{secType, secFunction, secTable, secTag, secGlobal, secExport, secCode}},
		{"start.wasm", []byte{secType, secFunction, secTable, secGlobal, secExport, secCode}},
		{"imports.wasm", []byte{secType, secImport, secFunction, secTable, secGlobal, secExport, secCode}},
		{"bulk.wasm", []byte{secType, secFunction, secTable, secMemory, secGlobal, secExport, secElement, secDataCount, secCode, secData}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			var got []byte
			for _, s := range listSections(t, mustInstrument(t, load(t, tc.file))) {
				if s.id != secCustom {
					got = append(got, s.id)
				}
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("sections %v, want %v", got, tc.want)
			}
		})
	}
}

// goModule builds, once per test binary, a reactor module with the Go
// toolchain: its output is the largest and most varied wasm we will see.
var goModule = sync.OnceValues(func() ([]byte, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "meter-gomodule")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	const src = `package main

//go:wasmexport add
func add(a, b int32) int32 { return a + b }

func main() {}
`
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module add\n\ngo 1.26\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "add.wasm")
	cmd := exec.Command(gobin, "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	// GOCACHE stays the user's, so the wasm runtime is built once.
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, errors.Join(err, errors.New(string(msg)))
	}
	return os.ReadFile(out)
})

func loadGoModule(tb testing.TB) []byte {
	tb.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		tb.Skip("go not on PATH")
	}
	bin, err := goModule()
	if err != nil {
		tb.Fatalf("build Go module: %v", err)
	}
	return bin
}

// TestGoModule instruments what GOOS=wasip1 produces and runs it.
func TestGoModule(t *testing.T) {
	bin := loadGoModule(t)
	out := mustInstrument(t, bin)
	t.Logf("Go module: %d bytes, instrumented %d (+%.1f%%)", len(bin), len(out), 100*float64(len(out)-len(bin))/float64(len(bin)))

	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	mod := instantiate(t, r, out)
	exportedGlobal(t, mod, ExportEpoch)
	exportedGlobal(t, mod, ExportDeadline)
	if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
		t.Fatalf("_initialize: %v", err)
	}
	res, err := mod.ExportedFunction("add").Call(ctx, api.EncodeI32(2), api.EncodeI32(40))
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if got := api.DecodeI32(res[0]); got != 42 {
		t.Errorf("add(2, 40) = %d, want 42", got)
	}
}

// Helpers that assemble modules the .wat files cannot express. They encode
// by hand rather than with the package's own encoder.

func wasmModule(sections ...[]byte) []byte {
	return cat(append([][]byte{[]byte("\x00asm\x01\x00\x00\x00")}, sections...)...)
}

func newSection(id byte, content []byte) []byte {
	return cat([]byte{id}, uleb(len(content)), content)
}

func vec(items ...[]byte) []byte {
	return cat(append([][]byte{uleb(len(items))}, items...)...)
}

func name(s string) []byte { return cat(uleb(len(s)), []byte(s)) }

// funcBody returns a body with no locals.
func funcBody(code ...byte) []byte {
	return cat(uleb(len(code)+1), []byte{0x00}, code)
}

// funcModule returns a module with one function () -> () whose code
// follows an empty locals vector.
func funcModule(code ...byte) []byte {
	return funcModuleBody(cat([]byte{0x00}, code))
}

// funcModuleBody is funcModule with the locals in body.
func funcModuleBody(body []byte) []byte {
	return wasmModule(
		newSection(secType, vec([]byte{0x60, 0x00, 0x00})),
		newSection(secFunction, vec([]byte{0x00})),
		newSection(secCode, vec(cat(uleb(len(body)), body))),
	)
}

// onlyBody returns the body of the single function in a module made by
// funcModule and instrumented.
func onlyBody(tb testing.TB, bin []byte) []byte {
	tb.Helper()
	code := sectionContent(tb, bin, secCode)
	if code[0] != 1 {
		tb.Fatalf("code section has %d bodies", code[0])
	}
	size, rest := decodeULEB(code[1:])
	if size != len(rest) {
		tb.Fatalf("body size %d, %d bytes left", size, len(rest))
	}
	return rest
}

func sectionContent(tb testing.TB, bin []byte, id byte) []byte {
	tb.Helper()
	for pos := 8; pos < len(bin); {
		size, rest := decodeULEB(bin[pos+1:])
		start := len(bin) - len(rest)
		if bin[pos] == id {
			return bin[start : start+size]
		}
		pos = start + size
	}
	tb.Fatalf("no section %d", id)
	return nil
}

func decodeULEB(b []byte) (int, []byte) {
	v, shift := 0, 0
	for i, c := range b {
		v |= int(c&0x7f) << shift
		shift += 7
		if c < 0x80 {
			return v, b[i+1:]
		}
	}
	panic("truncated LEB128")
}

func uleb(v int) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, c|0x80)
			continue
		}
		return append(out, c)
	}
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestIndices checks that no index reaches past the module's own index
// spaces, where Instrument adds its globals and table: a binary that was
// never validated (wat2wasm --no-check) could otherwise write the deadline.
func TestIndices(t *testing.T) {
	oneGlobal := newSection(secGlobal, vec([]byte{0x7e, 0x01, 0x42, 0x00, 0x0b}))
	fnType := newSection(secType, vec([]byte{0x60, 0x00, 0x00}))
	oneFunc := newSection(secFunction, vec([]byte{0x00}))
	code := func(c ...byte) []byte { return newSection(secCode, vec(funcBody(c...))) }
	tests := []struct {
		name string
		bin  []byte
		want string
	}{
		{"global.set of the epoch", wasmModule(fnType, oneFunc, oneGlobal, code(0x42, 0x7f, 0x24, 0x01, 0x0b)),
			"meter: function 0: global index 1 out of range (1 in the module) at offset ..."},
		{"global.get with no globals", funcModule(0x23, 0x00, 0x1a, 0x0b),
			"meter: function 0: global index 0 out of range (0 in the module) at offset 0x17"},
		{"table.grow of the yield table", funcModule(0xd0, 0x70, 0x41, 0x00, 0xfc, 0x0f, 0x00, 0x1a, 0x0b),
			"meter: function 0: table index 0 out of range (0 in the module) at offset 0x1b"},
		{"call_indirect through the yield table", funcModule(0x41, 0x00, 0x11, 0x00, 0x00, 0x0b),
			"meter: function 0: table index 0 out of range (0 in the module) at offset 0x19"},
		{"call of a missing function", funcModule(0x10, 0x01, 0x0b),
			"meter: function 0: function index 1 out of range (1 in the module) at offset 0x17"},
		{"local beyond the function's", funcModule(0x20, 0x00, 0x1a, 0x0b),
			"meter: function 0: local index 0 out of range (0 in the module) at offset 0x17"},
		{"branch out of the function", funcModule(0x0c, 0x01, 0x0b),
			"meter: function 0: branch depth 1 out of range (1 enclosing blocks) at offset 0x17"},
		{"br_table default out of range", funcModule(0x41, 0x00, 0x0e, 0x00, 0x05, 0x0b),
			"meter: function 0: branch depth 5 out of range (1 enclosing blocks) at offset 0x19"},
		{"memory.fill without memory", funcModule(0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xfc, 0x0b, 0x00, 0x0b),
			"meter: function 0: memory index 0 out of range (0 in the module) at offset 0x1d"},
		{"data.drop without data count", funcModule(0xfc, 0x09, 0x00, 0x0b),
			"meter: function 0: data segment index 0 out of range (0 in the module) at offset 0x17"},
		{"elem.drop without elements", funcModule(0xfc, 0x0d, 0x00, 0x0b),
			"meter: function 0: element segment index 0 out of range (0 in the module) at offset 0x17"},
		{"block type index", funcModule(0x02, 0x05, 0x0b, 0x0b),
			"meter: function 0: type index 5 out of range (1 in the module) at offset 0x17"},
		{"export of the deadline", wasmModule(fnType, oneFunc, oneGlobal,
			newSection(secExport, vec(cat(name("d"), []byte{kindGlobal, 0x02}))), code(0x0b)),
			`meter: section export at offset ...: export 0 "d": global index 2 out of range (1 in the module)`},
		{"export of a missing function", wasmModule(fnType, oneFunc,
			newSection(secExport, vec(cat(name("f"), []byte{kindFunc, 0x01}))), code(0x0b)),
			`meter: section export at offset ...: export 0 "f": function index 1 out of range (1 in the module)`},
		{"export of the yield table", wasmModule(fnType, oneFunc,
			newSection(secExport, vec(cat(name("t"), []byte{kindTable, 0x00}))), code(0x0b)),
			`meter: section export at offset ...: export 0 "t": table index 0 out of range (0 in the module)`},
		{"export in the reserved namespace", wasmModule(fnType, oneFunc,
			newSection(secExport, vec(cat(name("moat.x"), []byte{kindFunc, 0x00}))), code(0x0b)),
			`meter: export 0: name "moat.x" is in the reserved "moat." namespace`},
		{"import in the reserved namespace", wasmModule(fnType,
			newSection(secImport, vec(cat(name("moat.epoch"), name("x"), []byte{kindFunc, 0x00})))),
			`meter: section import at offset ...: import 0: name "moat.epoch" is in the reserved "moat." namespace`},
		{"import of a reserved name", wasmModule(fnType,
			newSection(secImport, vec(cat(name("moat"), name("moat.deadline"), []byte{kindGlobal, 0x7e, 0x01})))),
			`meter: section import at offset ...: import 0: name "moat.deadline" is in the reserved "moat." namespace`},
		{"global initialiser reads a later global", wasmModule(
			newSection(secGlobal, vec([]byte{0x7e, 0x00, 0x23, 0x00, 0x0b}))),
			"meter: section global at offset ...: global 0: global index 0 out of range (0 in the module)"},
		{"element segment into the yield table", wasmModule(fnType, oneFunc,
			newSection(secElement, vec([]byte{0x00, 0x41, 0x00, 0x0b, 0x01, 0x00})), code(0x0b)),
			"meter: section element at offset ...: element segment 0: table index 0 out of range (0 in the module)"},
		{"element of a missing function", wasmModule(fnType, oneFunc,
			newSection(secTable, vec([]byte{0x70, 0x00, 0x01})),
			newSection(secElement, vec([]byte{0x00, 0x41, 0x00, 0x0b, 0x01, 0x07})), code(0x0b)),
			"meter: section element at offset ...: element segment 0: function index 7 out of range (1 in the module)"},
		{"start of a missing function", wasmModule(fnType, oneFunc, newSection(secStart, []byte{0x03}), code(0x0b)),
			"meter: section start at offset ...: function index 3 out of range (1 in the module)"},
		{"more bodies than functions", wasmModule(fnType, oneFunc, newSection(secCode, vec(funcBody(0x0b), funcBody(0x0b)))),
			"meter: section code at offset ...: 2 function bodies for 1 defined functions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Instrument(tc.bin, Limits{})
			if err == nil {
				t.Fatalf("no error; output % x", out)
			}
			if !matches(err.Error(), tc.want) {
				t.Errorf("error\n got %q\nwant %q", err, tc.want)
			}
		})
	}
}

// TestLimits checks that each limit refuses a module just over it, with a
// *LimitError, and admits one at it.
func TestLimits(t *testing.T) {
	fnType := newSection(secType, vec([]byte{0x60, 0x00, 0x00}))
	twoFuncs := wasmModule(fnType, newSection(secFunction, vec([]byte{0x00}, []byte{0x00})),
		newSection(secCode, vec(funcBody(0x0b), funcBody(0x0b))))
	nested := funcModule(0x02, 0x40, 0x02, 0x40, 0x0b, 0x0b, 0x0b) // depth 3 with the body
	loop := funcModule(0x03, 0x40, 0x0b, 0x0b)                     // 2 + 4
	fill := wasmModule(fnType, newSection(secFunction, vec([]byte{0x00})), newSection(secMemory, vec([]byte{0x00, 0x01})),
		newSection(secCode, vec(funcBody(0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xfc, 0x0b, 0x00, 0x0b)))) // 2 + 6
	locals := funcModuleBody([]byte{0x01, 0x03, 0x7f, 0x0b})
	data := wasmModule(newSection(secData, vec([]byte{0x01, 0x03, 'a', 'b', 'c'}, []byte{0x01, 0x00})))
	globals := wasmModule(newSection(secGlobal, vec([]byte{0x7f, 0x00, 0x41, 0x00, 0x0b}, []byte{0x7f, 0x00, 0x41, 0x00, 0x0b})))
	exports := wasmModule(fnType, newSection(secFunction, vec([]byte{0x00})),
		newSection(secExport, vec(cat(name("a"), []byte{kindFunc, 0x00}), cat(name("b"), []byte{kindFunc, 0x00}))),
		newSection(secCode, vec(funcBody(0x0b))))
	tables := wasmModule(newSection(secTable, vec([]byte{0x70, 0x00, 0x05}, []byte{0x70, 0x00, 0x06})))
	twoTypes := wasmModule(newSection(secType, vec([]byte{0x60, 0x00, 0x00}, []byte{0x60, 0x00, 0x00})))
	tests := []struct {
		name string
		bin  []byte
		at   Limits // admits bin
		over Limits // refuses it
		want string
	}{
		{"module size", twoFuncs, Limits{ModuleSize: uint64(len(twoFuncs))}, Limits{ModuleSize: uint64(len(twoFuncs)) - 1}, "module is ... bytes, limit ..."},
		{"functions", twoFuncs, Limits{Functions: 2}, Limits{Functions: 1}, "module has 2 functions, limit 1"},
		{"body size", twoFuncs, Limits{BodySize: 2}, Limits{BodySize: 1}, "function 0 is 2 bytes, limit 1"},
		{"depth", nested, Limits{Depth: 3}, Limits{Depth: 2}, "function 0 nests blocks 3 deep, limit 2"},
		{"loop weight", loop, Limits{Blocks: 6}, Limits{Blocks: 5}, "function 0 has 6 weighted blocks (loops count 4, bulk instructions 6), limit 5"},
		{"bulk weight", fill, Limits{Blocks: 8}, Limits{Blocks: 7}, "function 0 has 8 weighted blocks (loops count 4, bulk instructions 6), limit 7"},
		{"block cost", twoFuncs, Limits{BlockCost: 8}, Limits{BlockCost: 7}, "functions have a compile cost (blocks squared) of 8, limit 7"},
		{"locals", locals, Limits{Locals: 3}, Limits{Locals: 2}, "function 0 has 3 locals, limit 2"},
		{"data size", data, Limits{DataSize: 3}, Limits{DataSize: 2}, "data segments hold 3 bytes, limit 2"},
		{"data segments", data, Limits{DataSegments: 2}, Limits{DataSegments: 1}, "module has 2 data segments, limit 1"},
		{"globals", globals, Limits{Globals: 2}, Limits{Globals: 1}, "module has 2 globals, limit 1"},
		{"exports", exports, Limits{Exports: 2}, Limits{Exports: 1}, "module has 2 exports, limit 1"},
		{"tables", tables, Limits{Tables: 2}, Limits{Tables: 1}, "module has 2 tables, limit 1"},
		{"table elements", tables, Limits{TableElements: 11}, Limits{TableElements: 10}, "tables need at least 11 elements, limit 10"},
		{"types", twoTypes, Limits{Types: 2}, Limits{Types: 1}, "module has 2 types, limit 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Instrument(tc.bin, tc.at); err != nil {
				t.Fatalf("at the limit: %v", err)
			}
			_, err := Instrument(tc.bin, tc.over)
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("over the limit: %v, want a *LimitError", err)
			}
			if !matches(err.Error(), tc.want) {
				t.Errorf("error\n got %q\nwant %q", err, tc.want)
			}
		})
	}
}

// TestTableCap checks that Instrument lowers table maxima to the budget,
// so that table.grow past it returns -1, and keeps lower declared maxima.
func TestTableCap(t *testing.T) {
	// (table $a 2 funcref) (table $b 1 3 funcref)
	// (func (export "grow") (param i32 i32) (result i32)
	//   (table.grow $a (ref.null func) (local.get 0)) ... both)
	grow := func(table byte) []byte {
		return []byte{0xd0, 0x70, 0x20, table, 0xfc, 0x0f, table}
	}
	bin := wasmModule(
		newSection(secType, vec([]byte{0x60, 0x02, 0x7f, 0x7f, 0x02, 0x7f, 0x7f})),
		newSection(secFunction, vec([]byte{0x00})),
		newSection(secTable, vec([]byte{0x70, 0x00, 0x02}, []byte{0x70, 0x01, 0x01, 0x03})),
		newSection(secExport, vec(cat(name("grow"), []byte{kindFunc, 0x00}))),
		newSection(secCode, vec(funcBody(cat(grow(0), grow(1), []byte{0x0b})...))),
	)
	// Budget 13: minima 3, slack 10, 5 each: $a may reach 7, $b its own 3.
	out, err := Instrument(bin, Limits{TableElements: 13})
	if err != nil {
		t.Fatal(err)
	}
	r := newRuntime(t, wazero.NewRuntimeConfigCompiler())
	mod := instantiate(t, r, out)
	f := mod.ExportedFunction("grow")
	tests := []struct{ a, b, wantA, wantB uint64 }{
		{6, 3, math.MaxUint32, math.MaxUint32}, // 2+6 > 7, 1+3 > 3
		{5, 2, 2, 1},                           // to 7 and 3: the caps
		{1, 1, math.MaxUint32, math.MaxUint32}, // full
	}
	for _, tc := range tests {
		res, err := f.Call(context.Background(), tc.a, tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if uint32(res[0]) != uint32(tc.wantA) || uint32(res[1]) != uint32(tc.wantB) {
			t.Errorf("grow(%d, %d) = %d, %d; want %d, %d", tc.a, tc.b, int32(res[0]), int32(res[1]), int32(tc.wantA), int32(tc.wantB))
		}
	}
}
