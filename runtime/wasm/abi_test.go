package wasm

import (
	"os"
	"strings"
	"testing"
)

// TestABIDocument keeps abi.go and host.go from drifting away from
// sdk/ABI.md: every export, host function and limit named here must be in
// the spec, host functions with the types the host registers.
func TestABIDocument(t *testing.T) {
	b, err := os.ReadFile("../../sdk/ABI.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, name := range []string{ExportMemory, ExportABIVersion, ExportBuffer, ExportAuthenticate,
		ExportAuthorize, ExportPayload, ExportConfigure, ExportInitialize, HostModule, WASIModule} {
		if !strings.Contains(doc, "`"+name+"`") && !strings.Contains(doc, `"`+name+`"`) {
			t.Errorf("sdk/ABI.md does not mention %s", name)
		}
	}
	for _, h := range hostFuncs {
		row := "| `" + h.name + "` | `"
		i := strings.Index(doc, row)
		if i < 0 {
			t.Errorf("sdk/ABI.md has no table row for host function %s", h.name)
			continue
		}
		typ, _, _ := strings.Cut(doc[i+len(row):], "`")
		if got := normaliseSig(typ); got != h.sig.String() {
			t.Errorf("host function %s: sdk/ABI.md says %s, the host registers %s", h.name, got, h.sig)
		}
	}
	for _, n := range []string{"1024 bytes", "64 pairs, 4096 bytes", "65535 bytes", "255 bytes", "65536 per call", "1 MiB", "4096 bytes"} {
		if !strings.Contains(doc, n) {
			t.Errorf("sdk/ABI.md does not state the limit %q", n)
		}
	}
}

// normaliseSig turns the spec's "(level i32, ptr i32, len i32) -> ()" or
// "(ptr, len) -> i32" into sig.String's "(i32, i32, i32) -> ()": a
// parameter without a type is an i32 pointer or length.
func normaliseSig(s string) string {
	params, results, _ := strings.Cut(s, " -> ")
	params = strings.TrimSuffix(strings.TrimPrefix(params, "("), ")")
	var out []string
	for p := range strings.SplitSeq(params, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		switch f := strings.Fields(p); {
		case len(f) == 2:
			out = append(out, f[1])
		default:
			out = append(out, "i32")
		}
	}
	return "(" + strings.Join(out, ", ") + ") -> " + results
}
