package plugintest_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/plugintest"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// BenchmarkReference measures every language's build of the reference
// policy found in bin/examples (the Rust one rebuilt when stale) on the
// same requests: a cold load (compile, instantiate, configure), an authn
// allow and an authz allow. Each reports the module's size. Compare the
// languages with one another within one run, not across runs.
func BenchmarkReference(b *testing.B) {
	root := testutil.RepoRoot(b)
	suite, err := plugintest.Load(filepath.Join(root, "examples", "reference", "cases.toml"))
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := suite.ConfigJSON()
	if err != nil {
		b.Fatal(err)
	}
	modules := map[string]string{}
	found, _ := filepath.Glob(filepath.Join(root, "bin", "examples", "reference-*.wasm"))
	for _, p := range found {
		modules[strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "reference-"), ".wasm")] = p
	}
	modules["rust"] = referenceRust(b, root)
	langs := make([]string, 0, len(modules))
	for l := range modules {
		langs = append(langs, l)
	}
	sort.Strings(langs)

	ctx := context.Background()
	alice := &policy.Client{ClientID: "alice-1", Username: "alice", ProtocolVersion: 5, Attributes: []policy.Attribute{{Key: "tenant", Value: "acme"}}}
	for _, lang := range langs {
		path := modules[lang]
		bin, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		mc := wasm.ModuleConfig{Name: "reference-" + lang, Path: path, Binary: bin,
			Decisions: []string{"authn", "authz", "payload"}, Instances: 1, ConfigJSON: cfg}
		b.Run(lang+"/load", func(b *testing.B) {
			// A fresh engine per iteration: its compilation cache would
			// otherwise make every load after the first a warm one.
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
			b.ReportMetric(float64(len(bin)), "module-bytes")
		})
		e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
		if err != nil {
			b.Fatal(err)
		}
		m, err := e.Load(ctx, mc)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(lang+"/authn", func(b *testing.B) {
			req := &policy.AuthnRequest{Client: alice, Password: []byte("alice-pw")}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if res, err := m.Authenticate(ctx, req); err != nil || res.Verdict != policy.Allow {
					b.Fatal(res, err)
				}
			}
		})
		b.Run(lang+"/authz", func(b *testing.B) {
			req := &policy.AuthzRequest{Client: alice, Action: policy.ActionPublish, Topic: "tenants/acme/news"}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if res, err := m.Authorize(ctx, req); err != nil || res.Verdict != policy.Allow {
					b.Fatal(res, err)
				}
			}
		})
		m.Close()
		e.Close(ctx)
	}
}
