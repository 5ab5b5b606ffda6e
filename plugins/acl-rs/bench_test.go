package aclrs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// benchFile is aclfile's benchmark file (plugins/acl/aclfile/bench_test.go)
// of n rules: a section for the benchmarked user with n/2 topic rules,
// other users' sections, and n/2 patterns.
func benchFile(n int) string {
	var b strings.Builder
	half := n / 2
	b.WriteString("topic read public/#\nuser bench\n")
	for i := 0; i < half; i++ {
		switch i % 10 {
		case 0:
			fmt.Fprintf(&b, "topic read site%d/#\n", i)
		case 1:
			fmt.Fprintf(&b, "topic deny site%d/+/secret\n", i)
		default:
			fmt.Fprintf(&b, "topic readwrite site%d/+/temp\n", i)
		}
	}
	fmt.Fprintf(&b, "user other\ntopic readwrite other/#\n")
	for i := 0; i < half; i++ {
		if i%10 == 1 {
			fmt.Fprintf(&b, "pattern deny tenant%d/%%u/admin\n", i)
		} else {
			fmt.Fprintf(&b, "pattern readwrite tenant%d/%%u/#\n", i)
		}
	}
	return b.String()
}

// goModule is the Go build of plugins/acl, which `make build` writes to
// bin/plugins/acl-go.wasm.
func goModule(b testing.TB) string {
	p := filepath.Join(repoRoot(), "bin", "plugins", "acl-go.wasm")
	if _, err := os.Stat(p); err != nil {
		b.Skipf("no %s: run make build", p) // a benchmark, not a test: nothing is asserted without it
	}
	return p
}

// BenchmarkDecision measures an uncached decision (Module.Authorize, no
// chain cache) at 1,000 rules, the Rust module against the Go module of
// plugins/acl in the same run, on aclfile's benchmark requests, and the
// cost of a call that decides nothing ("floor"), which the decision's own
// cost is the difference from.
func BenchmarkDecision(b *testing.B) {
	const n = 1000
	last := n/2 - 1
	bench := &policy.Client{ClientID: "bench-1", Username: "bench", ProtocolVersion: 5}
	queries := []struct {
		name string
		req  *policy.AuthzRequest
		want policy.Verdict
	}{
		{"publish-hit", &policy.AuthzRequest{Client: bench, Action: policy.ActionPublish, Topic: fmt.Sprintf("site%d/dev7/temp", last)}, policy.Allow},
		{"deliver-miss", &policy.AuthzRequest{Client: bench, Action: policy.ActionDeliver, Topic: "nowhere/dev7/temp"}, policy.Deny},
		{"pattern-u", &policy.AuthzRequest{Client: bench, Action: policy.ActionDeliver, Topic: fmt.Sprintf("tenant%d/bench/inbox", last)}, policy.Allow},
		// The floor: a decrypt request, which both modules ignore at once,
		// costs the call itself (host encoding, guest dispatch, result).
		{"floor", &policy.AuthzRequest{Client: bench, Action: policy.ActionDecrypt, Topic: "nowhere/dev7/temp"}, policy.Ignore},
	}
	text := benchFile(n)
	ctx := context.Background()
	for _, mod := range []struct{ lang, path string }{{"go", goModule(b)}, {"rust", rustModule(b)}} {
		e := engine(b)
		m, err := loadACL(b, e, mod.path, text, "")
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range queries {
			b.Run(fmt.Sprintf("rules=%d/%s/%s", n, q.name, mod.lang), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if res, err := m.Authorize(ctx, q.req); err != nil || res.Verdict != q.want {
						b.Fatal(res, err)
					}
				}
			})
		}
	}
}

// substFile is a file of n patterns whose first level is %u or %c, the
// Mosquitto idiom for per-user and per-device trees: the rules that a
// module cannot key by a literal first level.
func substFile(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			fmt.Fprintf(&b, "pattern readwrite %%u/dev%d/#\n", i)
		} else {
			fmt.Fprintf(&b, "pattern read %%c/dev%d/+\n", i)
		}
	}
	return b.String()
}

// BenchmarkDecisionSubst is BenchmarkDecision on substFile: a hit of a %u
// rule, of a %c rule, and a miss whose first level is the username.
func BenchmarkDecisionSubst(b *testing.B) {
	const n = 1000
	bench := &policy.Client{ClientID: "bench-1", Username: "bench", ProtocolVersion: 5}
	queries := []struct {
		name string
		req  *policy.AuthzRequest
		want policy.Verdict
	}{
		{"user-hit", &policy.AuthzRequest{Client: bench, Action: policy.ActionPublish, Topic: fmt.Sprintf("bench/dev%d/x/y", n-2)}, policy.Allow},
		{"client-hit", &policy.AuthzRequest{Client: bench, Action: policy.ActionDeliver, Topic: fmt.Sprintf("bench-1/dev%d/x", n-1)}, policy.Allow},
		{"user-miss", &policy.AuthzRequest{Client: bench, Action: policy.ActionPublish, Topic: "bench/nowhere/x"}, policy.Deny},
	}
	text := substFile(n)
	ctx := context.Background()
	for _, mod := range []struct{ lang, path string }{{"go", goModule(b)}, {"rust", rustModule(b)}} {
		e := engine(b)
		m, err := loadACL(b, e, mod.path, text, "")
		if err != nil {
			b.Fatal(err)
		}
		for _, q := range queries {
			b.Run(fmt.Sprintf("rules=%d/%s/%s", n, q.name, mod.lang), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if res, err := m.Authorize(ctx, q.req); err != nil || res.Verdict != q.want {
						b.Fatal(res, err)
					}
				}
			})
		}
	}
}

// BenchmarkFootprint measures what a module costs the broker: its size, a
// cold load (fresh engine: compile, instantiate, configure with the
// 1,000-rule file) and the Go heap each further instance takes (a load of
// 9 instances minus a load of 1, over 8).
func BenchmarkFootprint(b *testing.B) {
	text := benchFile(1000)
	ctx := context.Background()
	for _, mod := range []struct{ lang, path string }{{"go", goModule(b)}, {"rust", rustModule(b)}} {
		bin, err := os.ReadFile(mod.path)
		if err != nil {
			b.Fatal(err)
		}
		file := filepath.Join(b.TempDir(), "acl.conf")
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
		mc := wasm.ModuleConfig{Name: "acl", Path: mod.path, Binary: bin, Decisions: []string{"authz"},
			Files: map[string]string{"acl": file}}
		b.Run(mod.lang+"/load", func(b *testing.B) {
			mc := mc
			mc.Instances = 1
			for b.Loop() {
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
			b.ReportMetric(float64(len(bin)), "module-bytes")
		})
		b.Run(mod.lang+"/instance", func(b *testing.B) {
			var total float64
			for b.Loop() {
				total += float64(loadHeap(b, mc, 9)-loadHeap(b, mc, 1)) / 8
			}
			b.ReportMetric(total/float64(b.N), "heap-bytes/instance")
		})
	}
}

// loadHeap is the Go heap that loading mc with n instances on a fresh
// engine adds. The pool starts with MinInstances, so both are n.
func loadHeap(b *testing.B, mc wasm.ModuleConfig, n int) int64 {
	ctx := context.Background()
	mc.Instances = n
	mc.MinInstances = n
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)
	before := heap()
	m, err := e.Load(ctx, mc)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	return heap() - before
}

// heap is the live Go heap after a collection.
func heap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
