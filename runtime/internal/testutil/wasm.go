package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// RepoRoot returns the repository root, found from this source file.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testutil: cannot locate the repository")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
)

// Plugin returns the path of a first-party plugin module built from
// plugins/<name>. `make test` builds every module into bin/ first; when the
// module is missing there (a bare `go test`), it is built once per test
// process into a temporary directory, so tests always run real modules made
// from this repository's sources.
//
// A plugin shipped in Rust (plugins/<name>-rs/<name>.rs: acl, passwd) is
// that module, as the Makefile builds it; a stale or missing bin/ copy is
// rebuilt with rustc, never replaced by the Go module of plugins/<name>.
func Plugin(t testing.TB, name string) string {
	rel := filepath.Join("bin", "plugins", name+".wasm")
	src := filepath.Join("plugins", name+"-rs", name+".rs")
	if _, err := os.Stat(filepath.Join(RepoRoot(t), src)); err == nil {
		return rustModule(t, rel, src)
	}
	return module(t, rel, "./plugins/"+name)
}

// rustFlags is RUSTFLAGS_WASM of the Makefile.
var rustFlags = []string{"--edition", "2021", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib",
	"-C", "panic=abort", "-C", "opt-level=s", "-C", "link-arg=-zstack-size=65536", "-C", "strip=symbols"}

func rustModule(t testing.TB, rel, src string) string {
	t.Helper()
	root := RepoRoot(t)
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[src]; ok {
		return p
	}
	built := filepath.Join(root, rel)
	if st, err := os.Stat(built); err == nil {
		fresh := true
		for _, s := range []string{src, filepath.Join("sdk", "rust", "moat.rs")} {
			if si, err := os.Stat(filepath.Join(root, s)); err != nil || si.ModTime().After(st.ModTime()) {
				fresh = false
			}
		}
		if fresh {
			buildCache[src] = built
			return built
		}
	}
	dir, err := os.MkdirTemp("", "moat-wasm-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(rel))
	rustc := os.Getenv("RUSTC")
	if rustc == "" {
		rustc = "/usr/bin/rustc"
	}
	cmd := exec.Command(rustc, append(rustFlags, src, "-o", out)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testutil: building %s: %v\n%s", src, err, b)
	}
	buildCache[src] = out
	return out
}

// Example returns the path of an example module built from
// examples/plugins/<name>, like Plugin.
func Example(t testing.TB, name string) string {
	return module(t, filepath.Join("bin", "examples", name+".wasm"), "./examples/plugins/"+name)
}

func module(t testing.TB, rel, pkg string) string {
	t.Helper()
	root := RepoRoot(t)
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[pkg]; ok {
		return p
	}
	// A prebuilt module is used only when it is newer than every source file
	// of its package, so a stale bin/ cannot hide a change.
	built := filepath.Join(root, rel)
	if st, err := os.Stat(built); err == nil && !newerSource(filepath.Join(root, pkg), st.ModTime().UnixNano()) {
		buildCache[pkg] = built
		return built
	}
	dir, err := os.MkdirTemp("", "moat-wasm-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(rel))
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testutil: building %s: %v\n%s", pkg, err, b)
	}
	buildCache[pkg] = out
	return out
}

// newerSource reports whether any .go file in dir is newer than t (unix
// nanoseconds). Subpackages are not looked at: bin/ modules built by make
// are rebuilt on every `make test`, so only a bare `go test` after an edit
// of the main package can meet a stale module, and that is what this
// catches.
func newerSource(dir string, t int64) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".go" {
			continue
		}
		if info, err := e.Info(); err == nil && info.ModTime().UnixNano() > t {
			return true
		}
	}
	return false
}
