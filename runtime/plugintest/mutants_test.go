package plugintest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/plugintest"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// TestSuiteCatchesMutants builds the Rust reference policy with one
// plausible bug at a time and checks that the conformance suite fails
// each one, naming a case that the bug breaks: the suite is only worth
// running against other languages if it can tell a wrong policy. Each
// mutant is a rustc build (about 2 s of CPU); -short runs two.
func TestSuiteCatchesMutants(t *testing.T) {
	root := testutil.RepoRoot(t)
	ref, err := os.ReadFile(filepath.Join(root, "examples", "reference", "rust", "reference.rs"))
	if err != nil {
		t.Fatal(err)
	}
	sdk, err := os.ReadFile(filepath.Join(root, "sdk", "rust", "moat.rs"))
	if err != nil {
		t.Fatal(err)
	}
	suite, err := plugintest.Load(filepath.Join(root, "examples", "reference", "cases.toml"))
	if err != nil {
		t.Fatal(err)
	}
	mutants := []struct {
		name     string
		file     string // "ref" or "sdk"
		old, new string
		breaks   string // a case the bug must fail
	}{
		{"any password", "ref", "if !ct_eq(user.password.as_bytes(), given) || r.password().is_none() {", "if false {",
			"alice with a wrong password is denied"},
		{"prefix password", "ref", "ct_eq(user.password.as_bytes(), given)", "user.password.as_bytes().starts_with(given)",
			"a prefix of alice's password is denied"},
		{"names with wildcards", "sdk", "!s.is_empty() && !s.iter().any(|&c| c == b'/' || c == b'+' || c == b'#')", "!s.is_empty()",
			"a user name with + never matches"},
		{"tenant from the user name", "ref", `Filter::new("tenants/%{tenant}/#")`, `Filter::new("tenants/%u/#")`,
			"the tenant comes from the attribute, not the user name"},
		{"secure as a prefix", "ref", "if SECURE.matches(r.topic()) {", `if r.topic().starts_with("secure") {`,
			"securex is not secure"},
		{"unknown users denied", "ref", "None => return Authn::ignore(),", "None => return Authn::deny(),",
			"an unknown user is ignored"},
	}
	if testing.Short() {
		mutants = mutants[:2] // each costs a rustc build
	}
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	for _, mu := range mutants {
		t.Run(mu.name, func(t *testing.T) {
			r, s := string(ref), string(sdk)
			target := &r
			if mu.file == "sdk" {
				target = &s
			}
			if !strings.Contains(*target, mu.old) {
				t.Fatalf("the source no longer contains %q: update the mutant", mu.old)
			}
			*target = strings.Replace(*target, mu.old, mu.new, 1)
			dir := t.TempDir()
			src := filepath.Join(dir, "examples", "reference", "rust", "reference.rs")
			for p, text := range map[string]string{src: r, filepath.Join(dir, "sdk", "rust", "moat.rs"): s} {
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			mod := filepath.Join(dir, "mutant.wasm")
			buildRust(t, src, mod)
			rep, err := plugintest.Run(ctx, e, mod, suite, plugintest.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, res := range rep.Results {
				if res.Case.Name == mu.breaks && len(res.Diffs) > 0 {
					return
				}
			}
			t.Errorf("the suite did not fail case %q on this mutant (%d cases failed)", mu.breaks, rep.Failed())
		})
	}
}
