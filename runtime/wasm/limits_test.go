package wasm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm/internal/meter"
)

// TestLoadSealed loads hostile modules that reach for what the meter adds
// to every module (its deadline, epoch and yield countdown globals, its
// yield table, its "moat." exports). Each must be refused at load, before
// any of its code runs: on a meter that validated only its own output,
// the decision and moat_configure ran past their deadline and the start
// function never returned.
func TestLoadSealed(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string
	}{
		{"decision resets the deadline", "nocheck_deadline_authorize",
			"meter: function 2: global index 1 out of range (0 in the module)"},
		{"start function resets the deadline", "nocheck_deadline_start",
			"meter: function 0: global index 1 out of range (0 in the module)"},
		{"moat_configure resets the epoch", "nocheck_deadline_configure",
			"meter: function 3: global index 2 out of range (1 in the module)"},
		{"exports the deadline", "nocheck_export_deadline",
			`export 1 "d": global index 1 out of range (0 in the module)`},
		{"exports a reserved name", "reserved_export",
			`meter: export 4: name "moat.deadline2" is in the reserved "moat." namespace`},
	}
	e := newEngine(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			guardGC(t)
			cfg := moduleConfig(t, tc.file, ModuleConfig{InitTimeout: 80 * time.Millisecond})
			m, err := e.Load(context.Background(), cfg)
			if err == nil {
				m.Close()
				t.Fatal("loaded")
			}
			wantErr(t, err, `wasm: plugin "`+cfg.Name+`" (`+cfg.Path+`): `, tc.want)
		})
	}
}

// TestBulkFillDeadlineAndGC runs a decision of 300 straight-line 64 MiB
// memory.fill instructions (seconds of native memset with no loop for the
// meter's check). The meter charges each by its length: the call must stop
// at its deadline, and a garbage collection started meanwhile must not wait
// for all of them. Unmetered, the call returned after all 300 fills and the
// collection waited as long. The bounds are loose: one fill takes some
// 5-50 ms.
func TestBulkFillDeadlineAndGC(t *testing.T) {
	e := newEngine(t, nil)
	m := testModule(t, e, "bulk_fill", ModuleConfig{Instances: 1, Timeout: 400 * time.Millisecond})
	gcTook := make(chan time.Duration, 1)
	go func() {
		time.Sleep(80 * time.Millisecond) // the guest is filling by now
		start := time.Now()
		runtime.GC()
		gcTook <- time.Since(start)
	}()
	start := time.Now()
	_, err := m.Authorize(context.Background(), authz("a"))
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("decision: %v, want a deadline error", err)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("decision took %v with a 400ms timeout", took)
	}
	// On main the collection waited for every fill (6.4 s); a loaded
	// machine under the race detector takes a few hundred milliseconds
	// for an unhindered one.
	if gc := <-gcTook; gc > time.Second {
		t.Errorf("a garbage collection during the fills took %v", gc)
	}
}

// TestTables loads hostile table modules under memory_limit = 64 KiB,
// where tables may hold 1024 elements: each is refused or contained, and
// the Go heap does not grow by what they ask (1 GiB each, outside linear
// memory, before tables counted against the budget).
func TestTables(t *testing.T) {
	tests := []struct {
		name string
		file string
		want string // a load error, or "" for a module that loads and allows
	}{
		{"table.grow by 2^27 and 0xfffffffe returns -1", "table_grow", ""},
		{"four 2^25-element tables", "table_min", "tables need at least 134217728 elements, limit 1024"},
		{"start function grows and fills a table", "table_fill_start", "start function: "},
	}
	e := newEngine(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			cfg := moduleConfig(t, tc.file, ModuleConfig{MemoryLimit: 64 << 10, Instances: 1})
			m, err := e.Load(context.Background(), cfg)
			if tc.want != "" {
				if err == nil {
					m.Close()
					t.Fatal("loaded")
				}
				wantErr(t, err, `wasm: plugin "`+cfg.Name+`"`, tc.want)
			} else {
				if err != nil {
					t.Fatal(err)
				}
				for range 3 {
					res, err := m.Authorize(context.Background(), authz("a"))
					if err != nil || res.Verdict != policy.Allow {
						t.Errorf("decision: %+v, %v; want allow (every grow refused)", res, err)
					}
				}
				m.Close()
			}
			runtime.ReadMemStats(&after)
			if grew := int64(after.HeapSys) - int64(before.HeapSys); grew > 256<<20 {
				t.Errorf("the heap grew by %d MiB", grew>>20)
			}
		})
	}
}

// TestLoadLimits refuses compile bombs, each while the meter parses and
// long before wazero would have finished compiling it (9-180 s), with an
// error that names the limit; and checks that the largest real module in
// the repository is within the limits.
func TestLoadLimits(t *testing.T) {
	tests := []struct {
		name string
		code []byte // the body of each function
		fns  int
		want string
	}{
		{"80,000 nested blocks", cat(bytes.Repeat([]byte{0x02, 0x40}, 80000), bytes.Repeat([]byte{0x0b}, 80000)), 1,
			"function 0 nests blocks 2049 deep, limit 2048"},
		{"64,000 sequential ifs", bytes.Repeat([]byte{0x41, 0x00, 0x04, 0x40, 0x01, 0x0b}, 64000), 1,
			"function 0 has 4097 weighted blocks (loops count 4, bulk instructions 6), limit 4096"},
		{"16,000 memory.fill", bytes.Repeat([]byte{0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xfc, 0x0b, 0x00}, 16000), 1,
			"function 0 has 4100 weighted blocks (loops count 4, bulk instructions 6), limit 4096"},
		{"five functions of 1,023 loops", bytes.Repeat([]byte{0x03, 0x40, 0x0b}, 1023), 5,
			"functions have a compile cost (blocks squared) of 83804180, limit 67108864"},
		{"too many locals", nil, 0, "function 0 has 10001 locals, limit 10000"},
	}
	e := newEngine(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bin := bombModule(tc.fns, tc.code)
			if tc.fns == 0 {
				bin = localsModule(10001)
			}
			start := time.Now()
			_, err := e.Load(context.Background(), ModuleConfig{Name: "bomb", Path: "bomb.wasm", Binary: bin, Decisions: []string{"authz"}})
			wantErr(t, err, `wasm: plugin "bomb" (bomb.wasm): `+tc.want)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusing took %v", d)
			}
		})
	}

	t.Run("real modules", func(t *testing.T) {
		root, err := filepath.Abs("../..")
		if err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(root, "bin", "*", "*.wasm"))
		if len(files) == 0 {
			t.Fatal("no modules in bin/: run make build")
		}
		// They are all Go modules of the same shape, the largest closest
		// to the limits; checking each would take seconds under -race.
		var largest string
		var size int64
		for _, f := range files {
			if fi, err := os.Stat(f); err == nil && fi.Size() > size {
				largest, size = f, fi.Size()
			}
		}
		bin, err := os.ReadFile(largest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := meter.Instrument(bin, loadLimits(DefaultMemoryLimit)); err != nil {
			t.Errorf("%s: %v", largest, err)
		}
	})
}

// bombModule returns a module of fns functions () -> () with the given
// body code, and one memory.
func bombModule(fns int, code []byte) []byte {
	sec := func(id byte, c []byte) []byte { return cat([]byte{id}, uleb(len(c)), c) }
	body := cat([]byte{0x00}, code, []byte{0x0b})
	funcs, bodies := uleb(fns), uleb(fns)
	for range fns {
		funcs = append(funcs, 0)
		bodies = cat(bodies, uleb(len(body)), body)
	}
	return cat([]byte("\x00asm\x01\x00\x00\x00"),
		sec(1, []byte{1, 0x60, 0, 0}),
		sec(3, funcs),
		sec(5, []byte{1, 0, 1}),
		sec(10, bodies))
}

// localsModule returns a module whose one function declares n i32 locals.
func localsModule(n int) []byte {
	sec := func(id byte, c []byte) []byte { return cat([]byte{id}, uleb(len(c)), c) }
	body := cat([]byte{0x01}, uleb(n), []byte{0x7f, 0x0b})
	return cat([]byte("\x00asm\x01\x00\x00\x00"),
		sec(1, []byte{1, 0x60, 0, 0}),
		sec(3, []byte{1, 0}),
		sec(10, cat([]byte{1}, uleb(len(body)), body)))
}

func uleb(v int) []byte {
	var out []byte
	for v >= 0x80 {
		out = append(out, byte(v)|0x80)
		v >>= 7
	}
	return append(out, byte(v))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
