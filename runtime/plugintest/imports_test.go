package plugintest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps plugintest off the broker: it runs modules through
// runtime/wasm and runtime/policy only, so that `moat plugin test` needs no
// MQTT server code and tests exactly what the runtime does.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/moat-mqtt/moat/runtime/plugintest").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	for _, forbidden := range []string{
		"github.com/mochi-mqtt/server/v2",
		"github.com/moat-mqtt/moat/runtime/broker",
		"github.com/moat-mqtt/moat/runtime/server",
	} {
		for _, d := range deps {
			if d == forbidden || strings.HasPrefix(d, forbidden+"/") {
				t.Errorf("runtime/plugintest depends on %s", d)
			}
		}
	}
}
