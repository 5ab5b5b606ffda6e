package assemblyscript_test

import (
	"context"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
	"github.com/moat-mqtt/moat/sdk/c/reftest"
)

// TestReferenceAS runs the reference policy written in AssemblyScript
// (examples/reference/as) through the real runtime.
func TestReferenceAS(t *testing.T) {
	reftest.Run(t, reftest.Build(t, "bin/examples/reference-as.wasm"))
}

func TestReferenceASConfig(t *testing.T) {
	reftest.RefusedConfigs(t, reftest.Build(t, "bin/examples/reference-as.wasm"))
}

// buildTrap builds testdata/trap.ts with the Makefile.
func buildTrap(t *testing.T) string {
	return reftest.Build(t, "bin/sdk/trap-as.wasm")
}

// TestTrap checks that an AssemblyScript module's failures are plugin
// errors whose message reaches the log, that the failed instance is
// replaced, and that results the types cannot rule out are refused by the
// SDK, not guessed at.
func TestTrap(t *testing.T) {
	path := buildTrap(t)
	m, log, err := reftest.Load(t, path, &wasm.ModuleConfig{Decisions: []string{"authn", "authz"}, ConfigJSON: []byte{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	authz := func(topic string) (policy.AuthzResult, error) {
		return m.Authorize(ctx, &policy.AuthzRequest{Client: &policy.Client{ClientID: "c", Username: "u"}, Action: policy.ActionPublish, Topic: topic})
	}
	tests := []struct {
		topic string
		log   string // in the log
	}{
		{"abort", "abort: the topic asked for an abort at sdk/assemblyscript/testdata/trap.ts:30:"},
		{"panic", "panic: the topic asked for a panic"},
		{"index", "abort: Index out of range at ~lib/array.ts:"},
	}
	for _, tc := range tests {
		t.Run(tc.topic, func(t *testing.T) {
			_, err := authz(tc.topic)
			if err == nil || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), `plugin "reference"`) {
				t.Fatalf("error %v, want a plugin error (a trap)", err)
			}
			t.Logf("%s: %v", tc.topic, err)
			if !strings.Contains(log.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, log)
			}
			if res, err := authz("fine"); err != nil || res.Verdict != policy.Allow {
				t.Errorf("after %s: %v %v, want allow", tc.topic, res.Verdict, err)
			}
		})
	}
	t.Run("low deny reason", func(t *testing.T) {
		res, err := authz("reason")
		if err != nil || res.Verdict != policy.Deny || res.Reason != 0 {
			t.Errorf("got %v reason %#x err %v, want deny with the default reason", res.Verdict, res.Reason, err)
		}
	})
	t.Run("continue without auth_method", func(t *testing.T) {
		_, err := m.Authenticate(ctx, &policy.AuthnRequest{Client: &policy.Client{Username: "u"}})
		if err == nil || !strings.Contains(err.Error(), "malformed result") {
			t.Fatalf("error %v, want a malformed result", err)
		}
		if want := "moat_authenticate: continue for a request without an auth_method"; !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
		res, err := m.Authenticate(ctx, &policy.AuthnRequest{Client: &policy.Client{Username: "u"}, AuthMethod: "SCRAM-SHA-1"})
		if err != nil || res.Verdict != policy.Continue {
			t.Errorf("with an auth_method: %v %v, want continue", res.Verdict, err)
		}
	})
}

// TestBufferLimit checks moat_buffer's defined failure: a request larger
// than the plugin's memory_limit allows is a plugin error whose log line
// says why, and smaller requests are still served.
func TestBufferLimit(t *testing.T) {
	path := buildTrap(t)
	m, log, err := reftest.Load(t, path, &wasm.ModuleConfig{Decisions: []string{"authz"}, ConfigJSON: []byte{}, MemoryLimit: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	authz := func(topic string) (policy.AuthzResult, error) {
		return m.Authorize(ctx, &policy.AuthzRequest{Client: &policy.Client{ClientID: "c", Username: "u"}, Action: policy.ActionPublish, Topic: topic})
	}
	if res, err := authz(strings.Repeat("a", 1<<20)); err != nil || res.Verdict != policy.Allow {
		t.Fatalf("1 MiB topic: %v %v, want allow (the buffer grows)\n%s", res.Verdict, err, log)
	}
	_, err = authz(strings.Repeat("a", 8<<20))
	if err == nil || !strings.Contains(err.Error(), "moat_buffer") {
		t.Fatalf("8 MiB topic with a 4 MiB memory_limit: %v, want a moat_buffer plugin error", err)
	}
	if want := "panic: moat_buffer: out of memory for"; !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
	if res, err := authz("small"); err != nil || res.Verdict != policy.Allow {
		t.Errorf("after the failure: %v %v, want allow", res.Verdict, err)
	}
}

// FuzzJSON checks the SDK's JSONParser against encoding/json.
func FuzzJSON(f *testing.F) {
	reftest.FuzzJSON(f, reftest.Build(f, "bin/sdk/trap-as.wasm"), true)
}

// FuzzMatch checks the SDK's match against the shared semantics.
func FuzzMatch(f *testing.F) {
	reftest.FuzzMatch(f, reftest.Build(f, "bin/sdk/trap-as.wasm"), true)
}

// BenchmarkReference measures the AssemblyScript reference policy's
// decisions against a hand-written WAT module in the same run.
func BenchmarkReference(b *testing.B) {
	reftest.Benchmark(b, map[string]string{"as": reftest.Build(b, "bin/examples/reference-as.wasm")})
}

// TestGarbageCollected checks that the SDK runs the collector of the
// minimal runtime: 2,000 decisions that each leave 20 KB of garbage (a
// decoded 10 KB topic) would need 40 MB, and the plugin has 8 MiB.
func TestGarbageCollected(t *testing.T) {
	m, log, err := reftest.Load(t, buildTrap(t), &wasm.ModuleConfig{Decisions: []string{"authz"}, ConfigJSON: []byte{}, MemoryLimit: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	req := &policy.AuthzRequest{Client: &policy.Client{ClientID: "c", Username: "u"}, Action: policy.ActionPublish, Topic: strings.Repeat("t", 10_000)}
	for i := range 2000 {
		if res, err := m.Authorize(context.Background(), req); err != nil || res.Verdict != policy.Allow {
			t.Fatalf("decision %d: %v %v\n%s", i, res.Verdict, err, log)
		}
	}
}

// TestBroker runs the AssemblyScript reference policy in a real broker,
// with real MQTT clients.
func TestBroker(t *testing.T) {
	reftest.Broker(t, reftest.Build(t, "bin/examples/reference-as.wasm"))
}
