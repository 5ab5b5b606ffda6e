package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// abiExample returns the WAT block of sdk/ABI.md §8.
func abiExample(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "sdk", "ABI.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "\n## 8. ")
	if i < 0 {
		t.Fatal("sdk/ABI.md: no section 8")
	}
	doc = doc[i:]
	if j := strings.Index(doc[1:], "\n## "); j >= 0 {
		doc = doc[:j+1]
	}
	start := strings.Index(doc, "```wat\n")
	if start < 0 {
		t.Fatal("sdk/ABI.md §8: no ```wat block")
	}
	doc = doc[start+len("```wat\n"):]
	end := strings.Index(doc, "```")
	if end < 0 {
		t.Fatal("sdk/ABI.md §8: unterminated ```wat block")
	}
	return doc[:end]
}

// TestABIExample checks that the module of sdk/ABI.md §8 is what
// testdata/hostile/abi_example.wat holds (after its two comment lines),
// assembles it when wat2wasm is installed (as in CI) and compares with the
// committed .wasm, then makes real decisions with it through runtime/wasm:
// topics under public/ are allowed, others ignored, and a request larger
// than the module's first page (a 65535-byte topic) still works, because
// moat_buffer grows memory; under a 64KiB memory_limit that request is a
// plugin error, not a wrong answer.
func TestABIExample(t *testing.T) {
	src := abiExample(t)
	wat, err := os.ReadFile(filepath.Join("testdata", "hostile", "abi_example.wat"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(wat), "\n", 3)
	if len(lines) != 3 || lines[2] != src {
		t.Fatalf("testdata/hostile/abi_example.wat differs from the block of sdk/ABI.md §8: copy the block there (below the two comment lines) and run make")
	}
	bin, err := os.ReadFile(filepath.Join("testdata", "hostile", "abi_example.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if wat2wasm, err := exec.LookPath("wat2wasm"); err == nil {
		out := filepath.Join(t.TempDir(), "abi.wasm")
		in := filepath.Join(t.TempDir(), "abi.wat")
		if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command(wat2wasm, "--enable-all", in, "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("sdk/ABI.md §8 does not assemble: %v\n%s", err, b)
		}
		fresh, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fresh, bin) {
			t.Fatal("testdata/hostile/abi_example.wasm is stale: run make")
		}
	} else {
		t.Log("wat2wasm not installed: deciding with the committed abi_example.wasm")
	}

	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	load := func(limit int64) *wasm.Module {
		m, err := e.Load(ctx, wasm.ModuleConfig{Name: "abi-example", Path: "abi_example.wasm", Binary: bin,
			Decisions: []string{"authz"}, Instances: 1, MemoryLimit: limit})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	m := load(1 << 20)
	client := &policy.Client{ClientID: "sensor-1", Username: "u", ProtocolVersion: 5}
	long := "public/" + strings.Repeat("x", 65535-len("public/"))
	for _, tc := range []struct {
		action policy.Action
		topic  string
		want   policy.Verdict
	}{
		{policy.ActionPublish, "public/news", policy.Allow},
		{policy.ActionPublish, "public/", policy.Allow},
		{policy.ActionSubscribe, "public/#", policy.Allow},
		{policy.ActionPublish, "public", policy.Ignore},
		{policy.ActionPublish, "publicX/news", policy.Ignore},
		{policy.ActionPublish, "private/x", policy.Ignore},
		{policy.ActionPublish, "Public/x", policy.Ignore},
		{policy.ActionPublish, "x", policy.Ignore},
		{policy.ActionPublish, long, policy.Allow},
		{policy.ActionPublish, "private/" + long, policy.Ignore},
	} {
		res, err := m.Authorize(ctx, &policy.AuthzRequest{Client: client, Action: tc.action, Topic: tc.topic})
		if err != nil || res.Verdict != tc.want {
			t.Errorf("%.20q (%d bytes): %v, %v; want %v", tc.topic, len(tc.topic), res.Verdict, err, tc.want)
		}
	}
	small := load(64 << 10)
	if res, err := small.Authorize(ctx, &policy.AuthzRequest{Client: client, Action: policy.ActionPublish, Topic: long}); err == nil {
		t.Errorf("65535-byte topic under a 64KiB memory_limit: %v, want a plugin error", res.Verdict)
	}
	if res, err := small.Authorize(ctx, &policy.AuthzRequest{Client: client, Action: policy.ActionPublish, Topic: "public/a"}); err != nil || res.Verdict != policy.Allow {
		t.Errorf("after the plugin error: %v, %v; want allow", res.Verdict, err)
	}
}
