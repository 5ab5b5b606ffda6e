package wasm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm/internal/meter"
)

// Run: go test -run='^$' -bench=. -benchmem -count=5 ./runtime/wasm/
//
// The figures and what they justify are in runtime/RATIONALE.md, "Wasm
// engine". No benchmark writes guest output: the modules print nothing
// and the engines log to a discarding logger.

// rawModule instantiates a testdata module in its own runtime, with
// wazero's defaults apart from the config given.
func rawModule(b *testing.B, file string, cfg wazero.RuntimeConfig, instrument bool) api.Module {
	b.Helper()
	ctx := context.Background()
	bin := wasmFile(b, file)
	if instrument {
		var err error
		if bin, err = meter.Instrument(bin, meter.Limits{}); err != nil {
			b.Fatal(err)
		}
	}
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	b.Cleanup(func() { r.Close(ctx) })
	mod, err := r.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		b.Fatal(err)
	}
	return mod
}

// BenchmarkCallNoop is the floor: a bare CallWithStack into a no-op export
// of an uninstrumented module, with a reused stack.
func BenchmarkCallNoop(b *testing.B) {
	fn := rawModule(b, "noop", wazero.NewRuntimeConfigCompiler(), false).ExportedFunction("noop")
	stack := make([]uint64, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := fn.CallWithStack(ctx, stack); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorize is one authz decision through Module.Authorize: pool,
// deadline, request encoding, the guest comparing the topic prefix, result
// decoding. Nothing is cached; moat's decision cache sits above this.
func BenchmarkAuthorize(b *testing.B) {
	e := newEngine(b, nil)
	m := testModule(b, e, "basic", ModuleConfig{Instances: runtime.GOMAXPROCS(0), Timeout: time.Second})
	req := authz("public/sensors/1/temperature")
	ctx := context.Background()
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if res, err := m.Authorize(ctx, req); err != nil || res.Verdict != policy.Allow {
				b.Fatal(res, err)
			}
		}
	})
	// Each call from another client: the client's part of the request is
	// encoded afresh every time (see clientPrefix).
	b.Run("manyClients", func(b *testing.B) {
		reqs := make([]*policy.AuthzRequest, 64)
		for i := range reqs {
			c := *testClient
			c.ClientID = fmt.Sprintf("client-%d", i)
			reqs[i] = &policy.AuthzRequest{Client: &c, Action: policy.ActionPublish, Topic: req.Topic, QoS: 1}
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if res, err := m.Authorize(ctx, reqs[i%len(reqs)]); err != nil || res.Verdict != policy.Allow {
				b.Fatal(res, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res, err := m.Authorize(ctx, req); err != nil || res.Verdict != policy.Allow {
					b.Error(res, err)
					return
				}
			}
		})
	})
}

// BenchmarkStackGuard is BenchmarkAuthorize/uncached with and without the
// meter's stack guard (meter.Limits.Stack), in the same run: the guard
// adds a global update and a compare at every function entry, one global
// update at every exit, and a global write before each call.
//
// The go/ cases do the same with the Go example module (TestGoGuest), whose
// decision makes many small calls.
func BenchmarkStackGuard(b *testing.B) {
	ctx := context.Background()
	goPath := testutil.Example(b, "demo")
	goBin, err := os.ReadFile(goPath)
	if err != nil {
		b.Fatal(err)
	}
	demo := &policy.Client{ClientID: "c1", Username: "demo", ProtocolVersion: 5,
		Attributes: []policy.Attribute{{Key: "tenant", Value: "acme"}}}
	for _, module := range []string{"basic", "go"} {
		req, cfg := authz("public/sensors/1/temperature"), ModuleConfig{Instances: 1, Timeout: time.Second}
		file := "basic"
		if module == "go" {
			file = "demo"
			req = &policy.AuthzRequest{Client: demo, Action: policy.ActionPublish, Topic: "demo/a"}
			cfg.Path, cfg.Binary, cfg.Decisions = goPath, goBin, []string{"authz"}
			cfg.ConfigJSON = []byte(`{"rules": [{"username": "demo", "action": "all", "topic": "demo/#"}]}`)
		}
		for _, guard := range []bool{false, true} {
			e := newEngine(b, nil)
			e.noStackGuard = !guard
			m := testModule(b, e, file, cfg)
			if (m.stackLimit != 0) != guard {
				b.Fatalf("stack limit %d with guard %v", m.stackLimit, guard)
			}
			name := module + "/none"
			if guard {
				name = module + "/guard"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if res, err := m.Authorize(ctx, req); err != nil || res.Verdict != policy.Allow {
						b.Fatal(res, err)
					}
				}
			})
		}
	}
}

// BenchmarkAuthenticate is one authn decision: "zed" is ignored (the
// cheapest answer), "alice" is allowed with an attribute and an expiry,
// which the host copies out of the guest.
func BenchmarkAuthenticate(b *testing.B) {
	e := newEngine(b, nil)
	m := testModule(b, e, "basic", ModuleConfig{Decisions: []string{"authn"}, Instances: 1, Timeout: time.Second})
	ctx := context.Background()
	for _, user := range []string{"zed", "alice"} {
		req := authn(user)
		b.Run(user, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Authenticate(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkProtection compares ways of bounding a call, on the same no-op
// export: none; moat's epoch interruption (set the deadline global, call
// the instrumented export); wazero's WithCloseOnContextDone with one
// long-lived context (which bounds nothing per call), and with the
// per-call context.WithTimeout that a per-call deadline needs.
func BenchmarkProtection(b *testing.B) {
	ctx := context.Background()
	stack := make([]uint64, 1)
	b.Run("none", func(b *testing.B) {
		fn := rawModule(b, "noop", wazero.NewRuntimeConfigCompiler(), false).ExportedFunction("noop")
		b.ReportAllocs()
		for b.Loop() {
			if err := fn.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("metered", func(b *testing.B) {
		mod := rawModule(b, "noop", wazero.NewRuntimeConfigCompiler(), true)
		fn := mod.ExportedFunction("noop")
		deadline := mod.ExportedGlobal(meter.ExportDeadline).(api.MutableGlobal)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			deadline.Set(uint64(i + 100))
			if err := fn.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("closeOnContextDone", func(b *testing.B) {
		fn := rawModule(b, "noop", wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true), false).ExportedFunction("noop")
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		b.ReportAllocs()
		for b.Loop() {
			if err := fn.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("closeOnContextDone+WithTimeout", func(b *testing.B) {
		fn := rawModule(b, "noop", wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true), false).ExportedFunction("noop")
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			if err := fn.CallWithStack(ctx, stack); err != nil {
				b.Fatal(err)
			}
			cancel()
		}
	})
}

// BenchmarkGuestLoop measures one loop iteration of a guest, plain and
// instrumented: the per-iteration cost of the check (and of the meter's
// periodic yield to Go).
func BenchmarkGuestLoop(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	for _, metered := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "metered"}[metered]
		b.Run(name, func(b *testing.B) {
			mod := rawModule(b, "count", wazero.NewRuntimeConfigCompiler(), metered)
			fn := mod.ExportedFunction("count")
			stack := make([]uint64, 1)
			b.ReportAllocs()
			for b.Loop() {
				if metered {
					mod.ExportedGlobal(meter.ExportDeadline).(api.MutableGlobal).Set(1 << 62)
				}
				stack[0] = n
				if err := fn.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/iter")
		})
	}
}

// BenchmarkRequestEncoding writes one authz request into a buffer standing
// for guest memory: with the ABI's binary layout, and as JSON of the same
// fields (which the guest would then have to parse, not measured here).
func BenchmarkRequestEncoding(b *testing.B) {
	req := authz("public/sensors/1/temperature")
	buf := make([]byte, 4096)
	b.Run("binary", func(b *testing.B) {
		var p clientPrefix
		b.ReportAllocs()
		for b.Loop() {
			encodeAuthz(buf, req, authzSize(req), &p)
		}
	})
	b.Run("json", func(b *testing.B) {
		type jsonAuthz struct {
			Kind       int                `json:"kind"`
			Action     int                `json:"action"`
			QoS        int                `json:"qos"`
			Retain     bool               `json:"retain"`
			Protocol   int                `json:"protocol"`
			ClientID   string             `json:"client_id"`
			Username   string             `json:"username"`
			RemoteAddr string             `json:"remote_addr"`
			Listener   string             `json:"listener"`
			Topic      string             `json:"topic"`
			ShareGroup string             `json:"share_group,omitempty"`
			Attributes []policy.Attribute `json:"attributes"`
		}
		b.ReportAllocs()
		for b.Loop() {
			c := req.Client
			j, err := json.Marshal(jsonAuthz{KindAuthz, int(req.Action), int(req.QoS), req.Retain, int(c.ProtocolVersion),
				c.ClientID, c.Username, c.RemoteAddr, c.Listener, req.Topic, req.ShareGroup, c.Attributes})
			if err != nil {
				b.Fatal(err)
			}
			copy(buf, j)
		}
	})
}

// BenchmarkNative is the rule of testdata/basic.wat's moat_authorize in Go.
func BenchmarkNative(b *testing.B) {
	req := authz("public/sensors/1/temperature")
	decide := func(req *policy.AuthzRequest) policy.AuthzResult {
		switch {
		case strings.HasPrefix(req.Topic, "public/"):
			return policy.AuthzResult{Verdict: policy.Allow}
		case strings.HasPrefix(req.Topic, "deny"):
			return policy.AuthzResult{Verdict: policy.Deny, Reason: 0x87}
		}
		return policy.AuthzResult{Verdict: policy.Ignore}
	}
	b.ReportAllocs()
	for b.Loop() {
		if decide(req).Verdict != policy.Allow {
			b.Fatal()
		}
	}
}

// BenchmarkPoolHint compares the first-slot hints, all goroutines claiming
// and releasing a pool of GOMAXPROCS slots.
func BenchmarkPoolHint(b *testing.B) {
	for _, mode := range []hintMode{hintStack, hintRoundRobin, hintLastFreed} {
		b.Run(fmt.Sprint(mode), func(b *testing.B) {
			p := fullPool(runtime.GOMAXPROCS(0), mode)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					s, err := p.acquire(context.Background(), time.Second)
					if err != nil {
						b.Error(err)
						return
					}
					p.release(s)
				}
			})
		})
	}
}

// BenchmarkTick is one tick of the epoch ticker over 64 live instances.
func BenchmarkTick(b *testing.B) {
	e := newEngine(b, nil)
	m := testModule(b, e, "basic", ModuleConfig{Instances: 64, IdleTimeout: time.Hour, Timeout: 5 * time.Second})
	// The pool grows on demand: claim 64 instances so that it has them.
	var held []*slot
	for range 64 {
		s, err := m.acquire(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, s)
	}
	for _, s := range held {
		m.done(s)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		e.publish(uint64(i))
	}
}

func (h hintMode) String() string {
	return [...]string{"stack", "roundrobin", "lastfreed"}[h]
}
