package wasm

import (
	"context"
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
