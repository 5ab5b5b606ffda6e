package meter

import (
	"context"
	"reflect"
	"testing"

	"github.com/tetratelabs/wazero/api"
)

// depthGlobal returns the stack guard's exported depth global.
func depthGlobal(tb testing.TB, mod api.Module) api.MutableGlobal {
	tb.Helper()
	g, ok := mod.ExportedGlobal(ExportDepth).(api.MutableGlobal)
	if !ok {
		tb.Fatalf("no mutable global exported as %q", ExportDepth)
	}
	if g.Type() != api.ValueTypeI32 {
		tb.Fatalf("global %q has type %s, want i32", ExportDepth, api.ValueTypeName(g.Type()))
	}
	return g
}

// catchModule is a module whose export "catch" (i32) -> i32 calls a
// function that recurses n deep and throws, catches the exception with
// try_table and returns n. wat2wasm cannot write try_table yet.
func catchModule() []byte {
	return wasmModule(
		newSection(secType, vec(
			[]byte{0x60, 0x01, 0x7f, 0x01, 0x7f}, // (i32) -> i32
			[]byte{0x60, 0x01, 0x7f, 0x00},       // (i32) -> ()
			[]byte{0x60, 0x00, 0x00},             // () -> ()
		)),
		newSection(secFunction, vec([]byte{0x00}, []byte{0x01})),
		newSection(secTag, vec([]byte{0x00, 0x02})), // attribute 0, type 2
		newSection(secExport, vec(append(name("catch"), kindFunc, 0x00))),
		newSection(secCode, vec(
			funcBody(
				0x02, 0x40, // block
				0x1f, 0x40, 0x01, 0x00, 0x00, 0x00, // try_table, catch tag 0 to label 0
				0x20, 0x00, 0x10, 0x01, // local.get 0, call 1
				0x0b,       // end try_table
				0x0b,       // end block
				0x20, 0x00, // local.get 0
				0x0b,
			),
			funcBody(
				0x20, 0x00, 0x45, 0x04, 0x40, 0x08, 0x00, 0x0b, // if n == 0: throw 0
				0x20, 0x00, 0x41, 0x01, 0x6b, 0x10, 0x01, // call 1 (n-1)
				0x0b,
			),
		)),
	)
}

// TestStackGuard checks the stack guard (Limits.Stack): every way out of
// a function counts its frame out, so that a recursive function called
// over and over leaves the depth at 0 (a missed decrement would make a
// long-lived instance refuse legal calls later, or here trap within a few
// calls); recursion past the budget traps, leaving the depth above the
// limit; tail calls do not add up.
func TestStackGuard(t *testing.T) {
	const (
		n     = 500 // recursion depth of each call (the interpreter traps at 2,000 frames)
		calls = 20
	)
	// Room for 2n frames of the largest function ($pair: 3 parameters).
	limit := 2 * n * frameBytes(3)
	bin, err := Instrument(load(t, "depth.wasm"), Limits{Stack: limit})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			mod := instantiate(t, newRuntime(t, e.config()), bin)
			depth := depthGlobal(t, mod)
			for _, tc := range []struct {
				fn   string
				n    uint64
				want uint64
			}{
				{"fall", n, n},
				{"return", n, n},
				{"br", n, n},
				{"br_if", n, n},
				{"br_table", n, n},
				{"multivalue", n, n},
				{"mixed", n, n},
				// Far deeper than the budget: a tail call replaces its frame.
				{"return_call", 20 * n, 0},
				{"return_call_indirect", 20 * n, 0},
			} {
				fn := mod.ExportedFunction(tc.fn)
				for i := range calls {
					got, err := fn.Call(ctx, tc.n)
					if err != nil {
						t.Fatalf("%s(%d), call %d: %v", tc.fn, tc.n, i, err)
					}
					if got[0] != tc.want {
						t.Fatalf("%s(%d) = %d, want %d", tc.fn, tc.n, got[0], tc.want)
					}
					if d := depth.Get(); d != 0 {
						t.Fatalf("%s(%d), call %d: depth %d after the call, want 0", tc.fn, tc.n, i, d)
					}
				}
			}

			// Past the budget: a trap, the depth left above the limit.
			if _, err := mod.ExportedFunction("fall").Call(ctx, 3*n); err == nil {
				t.Fatalf("fall(%d) returned; want a trap at %d bytes of stack", 3*n, limit)
			}
			if d := depth.Get(); d <= limit {
				t.Errorf("depth %d after the guard trapped, want above the limit %d", d, limit)
			}
			// An uncaught exception unwinds frames without counting them
			// out: the depth stays high.
			depth.Set(0)
			if _, err := mod.ExportedFunction("throw").Call(ctx, 10); err == nil {
				t.Fatal("throw returned")
			}
			if d := depth.Get(); d == 0 {
				t.Error("depth 0 after an exception unwound 11 frames; the test expects them left counted")
			}
			// After the host resets it, calls work again.
			depth.Set(0)
			if got, err := mod.ExportedFunction("fall").Call(ctx, n); err != nil || got[0] != n {
				t.Fatalf("after reset: fall(%d) = %v, %v", n, got, err)
			}
		})
	}
}

// TestStackGuardCatch: frames a caught exception unwinds stay counted
// until the host resets the depth (conservative: the call may trap
// sooner, never later).
func TestStackGuardCatch(t *testing.T) {
	bin, err := Instrument(catchModule(), Limits{Stack: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	mod := instantiate(t, newRuntime(t, engines[0].config()), bin)
	depth := depthGlobal(t, mod)
	got, err := mod.ExportedFunction("catch").Call(context.Background(), 100)
	if err != nil || got[0] != 100 {
		t.Fatalf("catch(100) = %v, %v", got, err)
	}
	if d, want := depth.Get(), 101*frameBytes(1+2); d != want {
		t.Errorf("depth %d after catch(100), want the 101 unwound frames (a parameter and two values on the stack), %d", d, want)
	}
}

// TestStackGuardOff: without Limits.Stack there is no guard, no depth
// global, and recursion goes as deep as the engine allows.
func TestStackGuardOff(t *testing.T) {
	mod := instantiate(t, newRuntime(t, engines[0].config()), mustInstrument(t, load(t, "depth.wasm")))
	if mod.ExportedGlobal(ExportDepth) != nil {
		t.Errorf("%s exported without a stack limit", ExportDepth)
	}
	if got, err := mod.ExportedFunction("fall").Call(context.Background(), 100_000); err != nil || got[0] != 100_000 {
		t.Fatalf("fall(100000) = %v, %v", got, err)
	}
}

// recursive returns a module whose export "f" (i64) -> i64 recurses n
// deep: a function with the given extra i64 locals, all live across the
// recursive call, and live operand-stack values (sums of the parameter
// and a constant, pushed before the call and added after it).
func recursive(locals, live int) []byte {
	const (
		localGet = 0x20
		localSet = 0x21
		i64Const = 0x42
		i64Add   = 0x7c
		i64Eqz   = 0x50
		i64Sub   = 0x7d
		call     = 0x10
		ifOp     = 0x04
		elseOp   = 0x05
		end      = 0x0b
		i64      = 0x7e
	)
	var code []byte
	// Each local gets n + i, so that none is a constant.
	for i := 1; i <= locals; i++ {
		code = append(code, localGet, 0x00, i64Const)
		code = append(code, sleb(i)...)
		code = append(code, i64Add, localSet)
		code = append(code, uleb(i)...)
	}
	code = append(code, localGet, 0x00, i64Eqz, ifOp, i64, localGet, 0x00, elseOp)
	for i := 0; i < live; i++ {
		code = append(code, localGet, 0x00, i64Const)
		code = append(code, sleb(i+1)...)
		code = append(code, i64Add)
	}
	code = append(code, localGet, 0x00, i64Const, 0x01, i64Sub, call, 0x00)
	for i := 0; i < live; i++ {
		code = append(code, i64Add)
	}
	for i := 1; i <= locals; i++ {
		code = append(code, localGet)
		code = append(code, uleb(i)...)
		code = append(code, i64Add)
	}
	code = append(code, end, end)
	body := cat(vec(cat(uleb(locals), []byte{i64})), code)
	if locals == 0 {
		body = cat([]byte{0x00}, code)
	}
	return wasmModule(
		newSection(secType, vec([]byte{0x60, 0x01, i64, 0x01, i64})),
		newSection(secFunction, vec([]byte{0x00})),
		newSection(secExport, vec(append(name("f"), kindFunc, 0x00))),
		newSection(secCode, vec(cat(uleb(len(body)), body))),
	)
}

// sleb encodes a small non-negative number as a signed LEB128.
func sleb(v int) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 && c&0x40 == 0 {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}

// engineStack is the length of wazero's engine stack of fn (the field
// runtime/wasm's stackField reads).
func engineStack(tb testing.TB, fn api.Function) int {
	tb.Helper()
	v := reflect.ValueOf(fn).Elem().FieldByName("stack")
	if !v.IsValid() {
		tb.Fatalf("%T has no field stack", fn)
	}
	return v.Len()
}

// spread returns a module whose export "f" (i64) -> i64 recurses n deep,
// and whose every frame first makes calls sequential calls to a leaf,
// each with a different value live across it: wazero gives each such
// value a spill slot of its own, though only one is live at a time.
func spread(calls int) []byte {
	const (
		localGet = 0x20
		i64Const = 0x42
		i64Add   = 0x7c
		i64Eqz   = 0x50
		i64Sub   = 0x7d
		call     = 0x10
		ifOp     = 0x04
		elseOp   = 0x05
		end      = 0x0b
		i64      = 0x7e
	)
	code := []byte{localGet, 0x00, i64Eqz, ifOp, i64, localGet, 0x00, elseOp, localGet, 0x00}
	for i := 0; i < calls; i++ {
		// acc; n+i; leaf(n); add; add
		code = append(code, localGet, 0x00, i64Const)
		code = append(code, sleb(i+1)...)
		code = append(code, i64Add, localGet, 0x00, call, 0x01, i64Add, i64Add)
	}
	code = append(code, localGet, 0x00, i64Const, 0x01, i64Sub, call, 0x00, i64Add, end, end)
	body := cat([]byte{0x00}, code)
	leaf := []byte{0x00, localGet, 0x00, end}
	return wasmModule(
		newSection(secType, vec([]byte{0x60, 0x01, i64, 0x01, i64})),
		newSection(secFunction, vec([]byte{0x00}, []byte{0x00})),
		newSection(secExport, vec(append(name("f"), kindFunc, 0x00))),
		newSection(secCode, vec(cat(uleb(len(body)), body), cat(uleb(len(leaf)), leaf))),
	)
}

// TestStackEstimate measures what frames really take on wazero's engine
// stack against what the guard charges: recursion without end must trap
// with an engine stack within twice the budget (the engine doubles it),
// whether the function's values are locals, stay on the operand stack
// across the recursive call, or are live across many different calls.
// On the guard's first version, which charged parameters and locals
// only, the live=200 case grew 49 MB and spread=400 68 MB under a 4 MiB
// budget.
func TestStackEstimate(t *testing.T) {
	const budget uint64 = 4 << 20
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		bin  []byte
	}{
		{"plain", recursive(0, 0)},
		{"locals=8", recursive(8, 0)},
		{"locals=32", recursive(32, 0)},
		{"locals=200", recursive(200, 0)},
		{"live=8", recursive(0, 8)},
		{"live=32", recursive(0, 32)},
		{"live=200", recursive(0, 200)},
		{"locals=50,live=500", recursive(50, 500)},
		{"spread=10", spread(10)},
		{"spread=100", spread(100)},
		{"spread=400", spread(400)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, err := Instrument(tc.bin, Limits{Stack: budget})
			if err != nil {
				t.Fatal(err)
			}
			mod := instantiate(t, newRuntime(t, engines[0].config()), bin)
			depth := depthGlobal(t, mod)
			f := mod.ExportedFunction("f")
			if _, err := f.Call(ctx, 10); err != nil {
				t.Fatalf("f(10): %v", err)
			}
			if _, err := f.Call(ctx, 1<<24); err == nil {
				t.Fatal("f(1<<24) returned")
			}
			if d := depth.Get(); d <= budget {
				t.Fatalf("depth %d after the trap: not the guard's (budget %d)", d, budget)
			}
			got := uint64(engineStack(t, f))
			t.Logf("engine stack %d bytes at the guard's trap (budget %d)", got, budget)
			if bound := 2*budget + 64<<10; got > bound {
				t.Errorf("engine stack %d bytes, want at most %d", got, bound)
			}
		})
	}
}
