package wasm

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
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
	if gc := <-gcTook; gc > 300*time.Millisecond {
		t.Errorf("a garbage collection during the fills took %v", gc)
	}
}
