package sdktest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/plugintest"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// The cost modules split what a Go module's decision costs into Go's
// floor and the SDK's part: bare answers without the SDK, empty goes
// through the SDK's dispatch to handlers that allow at once, reference is
// the reference policy of examples/reference. Each is built with the probe
// exports below added (through go build -overlay, so the reference's
// sources stay as users see them), which let the tiny host read the
// guest's allocation counters. They are built on first use, so that
// tests which do not need them do not wait for them.
var costModules = []struct{ name, pkg string }{
	{"bare", "./testdata/bare"},
	{"empty", "./testdata/empty"},
	{"reference", "../../../../examples/reference/go"},
}

// probeExports is the file added to every cost module: probe_memstats(i)
// returns the guest's runtime.MemStats counter i (memstat*).
const probeExports = `package main

import "runtime"

//go:wasmexport probe_memstats
func probeMemstats(i int32) int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	switch i {
	case 0:
		return int64(ms.Mallocs)
	case 1:
		return int64(ms.TotalAlloc)
	case 2:
		return int64(ms.NumGC)
	case 3:
		return int64(ms.HeapSys)
	case 4:
		return int64(ms.Sys)
	}
	return -1
}
`

const (
	memstatMallocs = iota
	memstatTotalAlloc
	memstatNumGC
	memstatHeapSys
	memstatSys
)

var costBuild struct {
	once sync.Once
	err  error
}

// buildCostModules builds the cost modules into the tiny host's runtime
// and env.binaries, once per test binary.
func buildCostModules(t testing.TB) {
	t.Helper()
	costBuild.once.Do(func() {
		costBuild.err = func() error {
			dir, err := os.MkdirTemp("", "sdktest-cost")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			probe := filepath.Join(dir, "probe_exports.go")
			if err := os.WriteFile(probe, []byte(probeExports), 0o644); err != nil {
				return err
			}
			ctx := context.Background()
			for _, m := range costModules {
				pkg, err := filepath.Abs(m.pkg)
				if err != nil {
					return err
				}
				overlay, err := json.Marshal(map[string]map[string]string{
					"Replace": {filepath.Join(pkg, "zz_probe_exports.go"): probe},
				})
				if err != nil {
					return err
				}
				ov := filepath.Join(dir, m.name+".overlay.json")
				if err := os.WriteFile(ov, overlay, 0o644); err != nil {
					return err
				}
				out := filepath.Join(dir, m.name+".wasm")
				cmd := exec.Command("go", "build", "-buildmode=c-shared", "-overlay", ov, "-o", out, pkg)
				cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
				if b, err := cmd.CombinedOutput(); err != nil {
					return fmt.Errorf("go build %s: %w\n%s", m.pkg, err, b)
				}
				bin, err := os.ReadFile(out)
				if err != nil {
					return err
				}
				cm, err := env.rt.CompileModule(ctx, bin)
				if err != nil {
					return fmt.Errorf("compile %s: %w", m.name, err)
				}
				env.binaries[m.name], env.compiled[m.name] = bin, cm
			}
			return nil
		}()
	})
	if costBuild.err != nil {
		t.Fatal(costBuild.err)
	}
}

// costConfig is the reference policy's configuration from its conformance
// cases; the other modules take none.
func costConfig(t testing.TB, module string) []byte {
	t.Helper()
	if module != "reference" {
		return nil
	}
	suite, err := plugintest.Load("../../../../examples/reference/cases.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := suite.ConfigJSON()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// The requests of the per-language table (runtime/plugintest,
// TestReferenceTable): alice, a listed user, connects with her password
// and publishes under her tenant. The reference allows both.
var costClient = &policy.Client{ClientID: "alice-1", Username: "alice", ProtocolVersion: 5,
	Attributes: []policy.Attribute{{Key: "tenant", Value: "acme"}}}

func costAuthn() *policy.AuthnRequest {
	return &policy.AuthnRequest{Client: costClient, Password: []byte("alice-pw")}
}

func costAuthz() *policy.AuthzRequest {
	return &policy.AuthzRequest{Client: costClient, Action: policy.ActionPublish, Topic: "tenants/acme/news"}
}

// The same requests in the ABI's encoding, laid out as the broker does,
// for the tiny host.
func costAuthnBytes() []byte {
	return (&Request{Kind: KindAuthn, Protocol: 5}).
		SetString(FieldClientID, "alice-1").SetString(FieldUsername, "alice").
		SetString(FieldPassword, "alice-pw").Full().Encode()
}

func costAuthzBytes() []byte {
	return (&Request{Kind: KindAuthz, Action: 1, Protocol: 5}).
		SetString(FieldClientID, "alice-1").SetString(FieldUsername, "alice").
		SetString(FieldTopic, "tenants/acme/news").
		Set(FieldAttributes, Pairs("tenant", "acme")).Full().Encode()
}

// costGuest is an instance of a cost module in the tiny host, configured
// and ready for decisions.
func costGuest(t testing.TB, module string) *guest {
	t.Helper()
	g := instantiate(t, module, nil)
	if cfg := costConfig(t, module); cfg != nil {
		if res, msg := g.configure(t, string(cfg)); res != 0 {
			t.Fatalf("%s: configure: %q", module, msg)
		}
	}
	g.st.phase = deciding
	return g
}

// memstat reads one of the guest's runtime.MemStats counters.
func (g *guest) memstat(t testing.TB, i int) uint64 {
	t.Helper()
	res, err := g.fn("probe_memstats").Call(g.ctx, uint64(i))
	if err != nil {
		t.Fatal(err)
	}
	return res[0]
}

// BenchmarkGoCost attributes what a Go module costs per decision and per
// instance. For each cost module (bare: Go without the SDK; empty: the
// SDK with handlers that allow at once; reference: the reference policy)
// and each decision:
//
//   - engine is the decision as the broker makes it, through runtime/wasm
//     (request encoding, the pool, the metering instrumentation, the
//     guest);
//   - guest is the same request written into a warm instance of the
//     uninstrumented module by the tiny host and the export called: the
//     guest's own time, and the guest's heap allocations, bytes and
//     garbage collections per decision (guest-allocs/op, guest-B/op,
//     guest-gcs/op), which the host's b.ReportAllocs does not see, and
//     the instance's linear memory at the end (pages).
//
// bare's rows are Go's floor: the runtime's wasmexport entry and exit;
// empty minus bare is the SDK's part; reference minus empty is the
// policy's. The instance sub-benchmark reports the memory of one
// instance: its linear memory after initialisation and configuration
// (pages), and the Go heap of the broker that holds it (the per-language
// table's "heap per instance").
//
//	go test ./sdk/go/internal/sdktest -run '^$' -bench GoCost -benchtime 20000x
func BenchmarkGoCost(b *testing.B) {
	buildCostModules(b)
	ctx := context.Background()
	for _, m := range costModules {
		cfg := wasm.ModuleConfig{Name: m.name, Decisions: []string{"authn", "authz"}, Instances: 1,
			ConfigJSON: costConfig(b, m.name), Timeout: 10 * time.Second}
		mod, err := load(b, cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(m.name+"/authz/engine", func(b *testing.B) {
			req := costAuthz()
			b.ReportAllocs()
			for b.Loop() {
				if res, err := mod.Authorize(ctx, req); err != nil || res.Verdict != policy.Allow {
					b.Fatal(res, err)
				}
			}
		})
		b.Run(m.name+"/authn/engine", func(b *testing.B) {
			req := costAuthn()
			b.ReportAllocs()
			for b.Loop() {
				if res, err := mod.Authenticate(ctx, req); err != nil || res.Verdict != policy.Allow {
					b.Fatal(res, err)
				}
			}
		})
		b.Run(m.name+"/authz/guest", func(b *testing.B) {
			benchGuest(b, costGuest(b, m.name), "moat_authorize", costAuthzBytes())
		})
		b.Run(m.name+"/authn/guest", func(b *testing.B) {
			benchGuest(b, costGuest(b, m.name), "moat_authenticate", costAuthnBytes())
		})
	}
}

// benchGuest calls export with req in g until b is done; the result must
// be an allow.
func benchGuest(b *testing.B, g *guest, export string, req []byte) {
	b.Helper()
	if len(req) > int(g.bufSize) {
		b.Fatal("request larger than the buffer")
	}
	f := g.fn(export)
	mem := g.mod.Memory()
	mallocs, bytes, gcs := g.memstat(b, memstatMallocs), g.memstat(b, memstatTotalAlloc), g.memstat(b, memstatNumGC)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		g.st.call = record{}
		mem.Write(g.buf, req)
		g.stack[0] = uint64(len(req))
		if err := f.CallWithStack(g.ctx, g.stack); err != nil {
			b.Fatal(err)
		}
		if uint8(g.stack[0]) != 1 {
			b.Fatalf("result %#x, want allow", g.stack[0])
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(g.memstat(b, memstatMallocs)-mallocs)/n, "guest-allocs/op")
	b.ReportMetric(float64(g.memstat(b, memstatTotalAlloc)-bytes)/n, "guest-B/op")
	b.ReportMetric(float64(g.memstat(b, memstatNumGC)-gcs)/n, "guest-gcs/op")
	b.ReportMetric(float64(mem.Size()/65536), "pages")
}

// instancePool is how many instances TestGoInstanceMemory loads into the
// broker's engine to measure one.
const instancePool = 8

// TestGoInstanceMemory measures the memory of one instance of each cost
// module after initialisation and configuration: its linear memory
// (pages, what wazero allocates for it) split into the module's static
// image (its memory's minimum: data, bss and what the linker adds) and
// what initialisation grew it by, the guest runtime's view of it
// (runtime.MemStats Sys and HeapSys), and the broker's Go heap per
// instance of a pool (the per-language table's "heap per instance"). It
// fails when the SDK makes an instance bigger than Go's own floor, the
// bare module, by more than its code and data: when initialising a module
// built with the SDK grows its memory more than the bare module's does
// (package-level buffers, tables built in init, initialisers of packages
// it imports, such as fmt's), or when its static image is more than four
// pages larger.
func TestGoInstanceMemory(t *testing.T) {
	buildCostModules(t)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	static, grown := map[string]uint32{}, map[string]uint32{}
	for _, m := range costModules {
		g := costGuest(t, m.name)
		static[m.name] = env.compiled[m.name].ExportedMemories()["memory"].Min()
		pages := g.mod.Memory().Size() / 65536
		grown[m.name] = pages - static[m.name]
		cfg := wasm.ModuleConfig{Name: m.name, Decisions: []string{"authn", "authz"},
			Instances: instancePool, MinInstances: instancePool, ConfigJSON: costConfig(t, m.name)}
		before := heap()
		mod, err := load(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		perInstance := (float64(heap()) - float64(before)) / instancePool
		mod.Close()
		t.Logf("%-9s %3d pages (%4.2f MiB) of linear memory: %d static + %d grown; guest Sys %4.2f MiB, HeapSys %4.2f MiB; broker heap per instance %4.2f MiB",
			m.name, pages, float64(pages)/16, static[m.name], grown[m.name],
			mib(g.memstat(t, memstatSys)), mib(g.memstat(t, memstatHeapSys)), perInstance/(1<<20))
	}
	if grown["empty"] > grown["bare"] {
		t.Errorf("initialising a module built with the SDK grows its memory by %d pages, Go without the SDK by %d: the SDK allocates at start",
			grown["empty"], grown["bare"])
	}
	if static["empty"] > static["bare"]+4 {
		t.Errorf("a module built with the SDK starts with %d pages, Go without the SDK with %d: the SDK adds more than four pages of code and data",
			static["empty"], static["bare"])
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
