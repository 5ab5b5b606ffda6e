package broker

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the package boundaries of STYLE.md: the broker knows
// policy, not the wasm engine nor what assembles it.
func TestImports(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, forbidden := range []string{
		"github.com/tetratelabs/wazero",
		"github.com/moat-mqtt/moat/runtime/wasm",
		"github.com/moat-mqtt/moat/runtime/server",
		"github.com/moat-mqtt/moat/cmd/moat",
	} {
		for _, d := range deps {
			if d == forbidden || strings.HasPrefix(d, forbidden+"/") {
				t.Errorf("runtime/broker depends on %s", d)
			}
		}
	}
}
