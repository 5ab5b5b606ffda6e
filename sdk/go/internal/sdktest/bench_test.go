package sdktest

import (
	"testing"

	"github.com/tetratelabs/wazero/api"
)

// benchDemoConfig gives the demo three rules, the third of which allows
// the benchmark's request.
const benchDemoConfig = `{"users":[{"username":"demo","password":"demo"}],"rules":[
	{"username":"admin","action":"all","topic":"#"},
	{"username":"demo","action":"subscribe","topic":"public/+"},
	{"username":"demo","action":"all","topic":"demo/#"}]}`

// benchAuthz is a typical authorization request: about 120 bytes, the
// fields the broker sends for a publish, laid out as the broker does.
func benchAuthz(topic string) []byte {
	return (&Request{Kind: KindAuthz, Action: 1, QoS: 1, Protocol: 5}).
		SetString(FieldClientID, "sensor-0042").
		SetString(FieldUsername, "demo").
		SetString(FieldRemoteAddr, "127.0.0.1:50000").
		SetString(FieldListener, "tcp").
		SetString(FieldTopic, topic).
		Set(FieldAttributes, Pairs("tenant", "acme")).
		Full().Encode()
}

// BenchmarkGoGuestAuthorize measures one authorization decision in a warm
// instance of a Go module built with the SDK, as the host makes it: write
// the request into the guest buffer, then CallWithStack. The floor is a
// Go export that does nothing (noop-export); sdk-allow adds the SDK's
// decoding and result packing around a handler that allows at once;
// demo-* is the example plugin with three rules. guest-allocs/op counts
// heap allocations inside the guest, which b.ReportAllocs (host side)
// does not see.
func BenchmarkGoGuestAuthorize(b *testing.B) {
	run := func(b *testing.B, g *guest, export string, req []byte, want uint32) {
		b.Helper()
		if len(req) > int(g.bufSize) {
			b.Fatal("request larger than the buffer")
		}
		f := g.fn(export)
		mem := g.mod.Memory()
		var mallocs api.Function
		if g.mod.ExportedFunction("probe_mallocs") != nil {
			mallocs = g.fn("probe_mallocs")
		}
		count := func() uint64 {
			if mallocs == nil {
				return 0
			}
			res, err := mallocs.Call(g.ctx)
			if err != nil {
				b.Fatal(err)
			}
			return res[0]
		}
		g.st.phase = deciding
		before := count()
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			mem.Write(g.buf, req)
			g.stack[0] = uint64(len(req))
			if err := f.CallWithStack(g.ctx, g.stack); err != nil {
				b.Fatal(err)
			}
			if uint32(g.stack[0]) != want {
				b.Fatalf("result %#x, want %#x", g.stack[0], want)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(mem.Size()/65536), "memory-pages")
		if mallocs != nil {
			b.ReportMetric(float64(count()-before)/float64(b.N), "guest-allocs/op")
		}
	}
	b.Run("noop-export", func(b *testing.B) {
		g := instantiate(b, "probe", nil)
		req := benchAuthz("allow")
		run(b, g, "probe_noop", req, uint32(len(req)))
	})
	b.Run("sdk-allow", func(b *testing.B) {
		run(b, instantiate(b, "probe", nil), "moat_authorize", benchAuthz("allow"), 1)
	})
	demo := func(b *testing.B) *guest {
		g := instantiate(b, "demo", nil)
		if res, msg := g.configure(b, benchDemoConfig); res != 0 {
			b.Fatalf("configure: %q", msg)
		}
		return g
	}
	b.Run("demo-allow", func(b *testing.B) {
		run(b, demo(b), "moat_authorize", benchAuthz("demo/sensors/0042/temperature"), 1)
	})
	b.Run("demo-ignore", func(b *testing.B) {
		run(b, demo(b), "moat_authorize", benchAuthz("other/sensors/0042/temperature"), 3)
	})
}
