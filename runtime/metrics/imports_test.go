package metrics

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps Prometheus out of the packages that count: policy,
// wasm and broker expose plain counters and observer interfaces, and this
// package alone adapts them.
func TestImports(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("no go command: the import rule cannot be checked")
	}
	for _, pkg := range []string{"../policy", "../wasm", "../broker", "../config"} {
		out, err := exec.Command(gobin, "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		for _, d := range strings.Fields(string(out)) {
			if strings.HasPrefix(d, "github.com/prometheus/") || d == "github.com/moat-mqtt/moat/runtime/metrics" {
				t.Errorf("runtime/%s depends on %s", strings.TrimPrefix(pkg, "../"), d)
			}
		}
	}
}
