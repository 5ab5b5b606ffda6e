package wasm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadRefused loads modules and configs that must be refused, and
// checks that each error names the plugin, its file and the problem.
func TestLoadRefused(t *testing.T) {
	tests := []struct {
		name string
		file string
		cfg  ModuleConfig
		want []string
	}{
		{"exports nothing", "empty", ModuleConfig{},
			[]string{"not a moat module: missing export func[moat_abi_v1] () -> ()"}},
		{"other ABI version", "abi_v2", ModuleConfig{},
			[]string{"speaks moat ABI v2, this broker speaks v1"}},
		{"no decision", "no_decision", ModuleConfig{},
			[]string{"missing export func[moat_authorize] (i32) -> i32", "exports no decision"}},
		{"decision not exported", "basic", ModuleConfig{Decisions: []string{"payload"}},
			[]string{"missing export func[moat_payload] (i32) -> i32"}},
		{"wrong export types", "wrong_export_type", ModuleConfig{},
			[]string{"missing export func[moat_buffer] (i32) -> i32", "export func[moat_authorize] has type () -> i32, want (i32) -> i32"}},
		{"capability without grant", "capability", ModuleConfig{},
			[]string{"imports moat.file_read, which needs a [plugin.files] grant"}},
		{"unknown host function", "unknown_func", ModuleConfig{},
			[]string{"imports moat.exec, which moat does not provide"}},
		{"unknown module", "unknown_module", ModuleConfig{},
			[]string{`imports env.abort from module "env"`, "imports global env.limit, but moat provides only functions"}},
		{"wrong import type", "wrong_import_type", ModuleConfig{},
			[]string{"imports moat.log with type (i32) -> (), but moat provides (i32, i32, i32) -> ()"}},
		{"minimum memory over the limit", "big_memory", ModuleConfig{MemoryLimit: 1 << 20},
			[]string{"memory needs at least 100 pages (6553600 bytes), over the memory_limit of 1048576 bytes"}},
		{"config without moat_configure", "hostile", ModuleConfig{ConfigJSON: []byte(`{"topics":[]}`)},
			[]string{"has a [plugin.config] but no export func[moat_configure]"}},
		{"config refused", "refuse_config", ModuleConfig{},
			[]string{`config refused (moat_configure returned 1): unknown key "topics"`}},
		{"wild moat_buffer", "wild_buffer", ModuleConfig{},
			[]string{"moat_buffer(4096) returned 0xfffff000", "outside memory (65536 bytes)"}},
		{"start function loops", "loop_start", ModuleConfig{InitTimeout: 80 * time.Millisecond},
			[]string{"start function: deadline exceeded (timeout 80ms)"}},
		{"_initialize loops", "loop_initialize", ModuleConfig{InitTimeout: 80 * time.Millisecond},
			[]string{"_initialize: deadline exceeded (timeout 80ms)"}},
		{"moat_configure loops", "loop_configure", ModuleConfig{InitTimeout: 80 * time.Millisecond},
			[]string{"moat_configure: deadline exceeded (timeout 80ms)"}},
		{"pin mismatch", "basic", ModuleConfig{SHA256: strings.Repeat("ab", 32)},
			[]string{"but the config pins abab"}},
		{"not wasm", "", ModuleConfig{Name: "text", Path: "x.wasm", Binary: []byte("hello, world"), Decisions: []string{"authz"}},
			[]string{"not a WebAssembly binary"}},
		{"bad config", "basic", ModuleConfig{Decisions: []string{"authz", "authz", "pub"}, MemoryLimit: 1000, Instances: -1, ConfigJSON: []byte("{")},
			[]string{`decision "authz" listed twice`, `unknown decision "pub"`, "memory_limit 1000", "instances -1", "config is not valid JSON"}},
	}
	e := newEngine(t, nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.file, "loop") {
				guardGC(t)
			}
			cfg := tc.cfg
			if tc.file != "" {
				cfg = moduleConfig(t, tc.file, cfg)
			}
			start := time.Now()
			m, err := e.Load(context.Background(), cfg)
			if err == nil {
				m.Close()
			}
			wantErr(t, err, append([]string{`wasm: plugin "` + cfg.Name + `" (` + cfg.Path + `): `}, tc.want...)...)
			if d := time.Since(start); d > 2*time.Second { // the loops stop at 50ms
				t.Errorf("load took %v", d)
			}
		})
	}
}

func TestLoadFromPathAndPin(t *testing.T) {
	e := newEngine(t, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "basic.wasm")
	if err := os.WriteFile(path, wasmFile(t, "basic"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := e.Load(context.Background(), ModuleConfig{Name: "b", Path: path, Decisions: []string{"authz"}, Instances: 1})
	if err != nil {
		t.Fatal(err)
	}
	digest := m.Digest()
	m.Close()
	if len(digest) != 64 || m.Name() != "b" {
		t.Fatalf("digest %q name %q", digest, m.Name())
	}
	m, err = e.Load(context.Background(), ModuleConfig{Name: "b", Path: path, Decisions: []string{"authz"}, Instances: 1, SHA256: strings.ToUpper(digest)})
	if err != nil {
		t.Fatalf("pinned load: %v", err)
	}
	m.Close()
	_, err = e.Load(context.Background(), ModuleConfig{Name: "b", Path: filepath.Join(dir, "missing.wasm"), Decisions: []string{"authz"}})
	wantErr(t, err, `wasm: plugin "b"`, "missing.wasm", "no such file")
}

// TestCompilationCacheDir checks that a cache directory is filled and that
// a second engine loads from it.
func TestCompilationCacheDir(t *testing.T) {
	dir := t.TempDir()
	for range 2 {
		e, err := NewEngine(context.Background(), EngineOptions{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		m, err := e.Load(context.Background(), moduleConfig(t, "basic", ModuleConfig{}))
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.Authorize(context.Background(), authz("public/a"))
		if err != nil || res.Verdict != 1 {
			t.Fatalf("authorize: %+v, %v", res, err)
		}
		m.Close()
		if err := e.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			n++
		}
		return nil
	})
	if n == 0 {
		t.Fatal("cache directory is empty")
	}
}

func TestEngineCloseWithOpenModule(t *testing.T) {
	e, err := NewEngine(context.Background(), EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Load(context.Background(), moduleConfig(t, "basic", ModuleConfig{}))
	if err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.Close(context.Background()), "wasm: engine close: 1 modules still open")
	m.Close()
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err = e.Load(context.Background(), moduleConfig(t, "basic", ModuleConfig{}))
	wantErr(t, err, `wasm: plugin "basic"`, "engine closed")
}
