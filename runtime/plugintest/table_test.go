package plugintest_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/plugintest"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

var updateTable = flag.Bool("update-table", false, "measure every reference-*.wasm and rewrite the table in examples/reference/POLICY.md and sdk/*/README.md")

// tableDocs are the files, from the repository root, that carry the table.
var tableDocs = []string{
	"examples/reference/POLICY.md",
	"sdk/rust/README.md",
	"sdk/c/README.md",
	"sdk/assemblyscript/README.md",
	"sdk/go/README.md",
}

const (
	tableBegin = "<!-- BEGIN reference table: go test ./runtime/plugintest -run TestReferenceTable -args -update-table -->"
	tableEnd   = "<!-- END reference table -->"
)

// TestReferenceTable keeps the per-language table of examples/reference/
// POLICY.md and of every SDK's README (tableDocs), which nobody edits by
// hand. Without -update-table it only checks that the markers are there;
// with it, it measures every build of
// the reference policy found in bin/examples and rewrites the table:
// module size, cold load (compile, instantiate, configure; a fresh engine
// each time), heap per instance (HeapInuse growth per instance of a pool
// of 17, after GC), and ns per authn and authz decision (a pool of one).
func TestReferenceTable(t *testing.T) {
	root := testutil.RepoRoot(t)
	re := regexp.MustCompile("(?s)" + regexp.QuoteMeta(tableBegin) + ".*?" + regexp.QuoteMeta(tableEnd))
	texts := map[string][]byte{}
	for _, d := range tableDocs {
		doc := filepath.Join(root, filepath.FromSlash(d))
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		if !re.Match(text) {
			t.Errorf("%s lacks the table markers %q ... %q", d, tableBegin, tableEnd)
		}
		texts[doc] = text
	}
	if t.Failed() || !*updateTable {
		return
	}
	suite, err := plugintest.Load(filepath.Join(root, "examples", "reference", "cases.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := suite.ConfigJSON()
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]string{}
	found, _ := filepath.Glob(filepath.Join(root, "bin", "examples", "reference-*.wasm"))
	for _, p := range found {
		modules[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "reference-"), ".wasm")] = p
	}
	modules["rust"] = referenceRust(t, root)
	langs := make([]string, 0, len(modules))
	for l := range modules {
		langs = append(langs, l)
	}
	sort.Strings(langs)

	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", tableBegin)
	fmt.Fprintf(&b, "Measured %s on %s/%s, %d CPUs (GOMAXPROCS %d), %s.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	b.WriteString("| language | module | cold load | heap per instance | authn | authz |\n|---|---:|---:|---:|---:|---:|\n")
	ctx := context.Background()
	alice := &policy.Client{ClientID: "alice-1", Username: "alice", ProtocolVersion: 5, Attributes: []policy.Attribute{{Key: "tenant", Value: "acme"}}}
	for _, lang := range langs {
		bin, err := os.ReadFile(modules[lang])
		if err != nil {
			t.Fatal(err)
		}
		mc := wasm.ModuleConfig{Name: "reference-" + lang, Path: modules[lang], Binary: bin,
			Decisions: []string{"authn", "authz", "payload"}, Instances: 1, ConfigJSON: cfg,
			// A generous deadline: on a loaded machine a call may be descheduled
			// for longer than the default 100 ms, and a measurement must not fail.
			Timeout: 10 * time.Second}
		load := testing.Benchmark(func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
				if err != nil {
					b.Fatal(err)
				}
				m, err := e.Load(ctx, mc)
				if err != nil {
					b.Fatal(err)
				}
				m.Close()
				e.Close(ctx)
			}
		})

		e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
		if err != nil {
			t.Fatal(err)
		}
		heap := func() uint64 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return ms.HeapInuse
		}
		one, err := e.Load(ctx, mc)
		if err != nil {
			t.Fatal(err)
		}
		before := heap()
		many := mc
		many.Instances = 17
		many.MinInstances = 17 // all instantiated now, not on demand
		m, err := e.Load(ctx, many)
		if err != nil {
			t.Fatal(err)
		}
		perInstance := (float64(heap()) - float64(before)) / 17
		m.Close()
		m = one // decisions on a pool of one: the cost of a call, not of the pool

		if res, err := m.Authorize(ctx, &policy.AuthzRequest{Client: alice, Action: policy.ActionPublish, Topic: "tenants/acme/news"}); err != nil || res.Verdict != policy.Allow {
			t.Fatalf("%s: authz %+v %v", lang, res, err)
		}
		authn := testing.Benchmark(func(b *testing.B) {
			req := &policy.AuthnRequest{Client: alice, Password: []byte("alice-pw")}
			for i := 0; i < b.N; i++ {
				if res, err := m.Authenticate(ctx, req); err != nil || res.Verdict != policy.Allow {
					t.Errorf("%s: authn: %+v %v", lang, res, err)
					b.FailNow()
				}
			}
		})
		authz := testing.Benchmark(func(b *testing.B) {
			req := &policy.AuthzRequest{Client: alice, Action: policy.ActionPublish, Topic: "tenants/acme/news"}
			for i := 0; i < b.N; i++ {
				if res, err := m.Authorize(ctx, req); err != nil || res.Verdict != policy.Allow {
					t.Errorf("authz: %+v %v", res, err)
					b.FailNow()
				}
			}
		})
		if authn.N == 0 || authz.N == 0 || load.N == 0 {
			t.Fatalf("%s: a measurement failed (load %v, authn %v, authz %v)", lang, load, authn, authz)
		}
		m.Close()
		e.Close(ctx)
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d ns | %d ns |\n", lang, bytesIEC(float64(len(bin))),
			time.Duration(load.NsPerOp()).Round(100*time.Microsecond), bytesIEC(perInstance), authn.NsPerOp(), authz.NsPerOp())
	}
	b.WriteString("\nThe heap column counts Go heap only (wazero keeps linear memory there); compiled code is mapped outside it.\n")
	b.WriteString(tableEnd)
	for doc, text := range texts {
		out := re.ReplaceAllLiteral(text, []byte(b.String()))
		if err := os.WriteFile(doc, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%s", b.String())
}

func bytesIEC(n float64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}
