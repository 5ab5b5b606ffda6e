package plugintest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/plugintest"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// rustc is the toolchain with the wasm32-unknown-unknown standard library
// (sdk/rust/README.md): Debian's, not rustup's.
func rustc() string {
	if r := os.Getenv("RUSTC"); r != "" {
		return r
	}
	return "/usr/bin/rustc"
}

// RustFlags are the SDK's recipe (sdk/rust/README.md).
var rustFlags = []string{"--edition", "2021", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib",
	"-C", "panic=abort", "-C", "opt-level=s", "-C", "link-arg=-zstack-size=65536", "-C", "strip=symbols"}

// buildRust compiles a Rust module (the file src of the repository) to
// out with the SDK's recipe.
func buildRust(t testing.TB, src, out string) {
	t.Helper()
	if err := rustBuild(src, out); err != nil {
		t.Fatal(err)
	}
}

func rustBuild(src, out string) error {
	cmd := exec.Command(rustc(), append(rustFlags, src, "-o", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", rustc(), src, err, b)
	}
	return nil
}

// referenceRust returns bin/examples/reference-rust.wasm, rebuilding it
// into a temporary directory when it is missing or older than its sources
// (a bare `go test` after an edit), so the suite always runs this tree's
// module.
func referenceRust(t testing.TB, root string) string {
	t.Helper()
	built := filepath.Join(root, "bin", "examples", "reference-rust.wasm")
	srcs := []string{filepath.Join(root, "examples", "reference", "rust", "reference.rs"), filepath.Join(root, "sdk", "rust", "moat.rs")}
	if st, err := os.Stat(built); err == nil {
		fresh := true
		for _, s := range srcs {
			if ss, err := os.Stat(s); err != nil || ss.ModTime().After(st.ModTime()) {
				fresh = false
			}
		}
		if fresh {
			return built
		}
	}
	out := filepath.Join(t.TempDir(), "reference-rust.wasm")
	buildRust(t, srcs[0], out)
	return out
}

// TestReferenceConformance runs the reference policy's conformance suite
// against every language's build of it found in bin/examples
// (reference-<lang>.wasm). The Rust build must be there; the others are
// tested when their toolchain built them.
func TestReferenceConformance(t *testing.T) {
	root := testutil.RepoRoot(t)
	suite, err := plugintest.Load(filepath.Join(root, "examples", "reference", "cases.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(suite.Cases) < 30 {
		t.Fatalf("the reference suite has %d cases, want at least 30", len(suite.Cases))
	}
	modules := map[string]string{"rust": referenceRust(t, root)}
	found, _ := filepath.Glob(filepath.Join(root, "bin", "examples", "reference-*.wasm"))
	for _, p := range found {
		lang := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "reference-"), ".wasm")
		if _, ok := modules[lang]; !ok {
			modules[lang] = p
		}
	}
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	for lang, path := range modules {
		t.Run(lang, func(t *testing.T) {
			rep, err := plugintest.Run(ctx, e, path, suite, plugintest.Options{Name: "reference-" + lang})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.Write(&out)
			if rep.Failed() > 0 {
				t.Fatalf("%s", out.String())
			}
			t.Logf("%s", strings.TrimSpace(out.String()))
		})
	}
}
