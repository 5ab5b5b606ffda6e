package broker

import (
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkIdleConnections measures what an idle MQTT 3.1.1 connection
// costs the process: n connections are opened to the broker (each CONNECT
// answered), the garbage collector run, and the growth of Go heap, of Go
// stacks and of RSS divided by n. The clients live in the same process but
// hold no goroutine and no buffer, only a socket, so nearly all of the
// growth is the broker's. Bare mochi is measured in the same run:
//
//	MOAT_CONNS=10000 go test -run='^$' -bench=IdleConnections -benchtime=1x -count=3 ./runtime/broker/
//
// MOAT_CONNS defaults to 2,000 (each connection takes two file
// descriptors here, client and server).
func BenchmarkIdleConnections(b *testing.B) {
	n := 2000
	if s := os.Getenv("MOAT_CONNS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("MOAT_CONNS=%q: want a positive count", s)
		}
		n = v
	}
	for _, tc := range []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"bare", startBare},
		{"moat", func(b *testing.B) string { return startMoat(b, false, false, true) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			addr := tc.start(b)
			var sum connCost
			for b.Loop() {
				c := idleConnCost(b, addr, n)
				sum.heap += c.heap
				sum.stack += c.stack
				sum.rss += c.rss
			}
			b.ReportMetric(sum.heap/float64(b.N), "heap-B/conn")
			b.ReportMetric(sum.stack/float64(b.N), "stack-B/conn")
			b.ReportMetric(sum.rss/float64(b.N), "rss-B/conn")
		})
	}
}

// TestIdleConnectionStack checks that the goroutine of an idle connection
// keeps a 4 KiB stack (8 KiB with the race detector, which doubles the
// runtime's stack guard). The runtime halves a parked goroutine's stack
// only while under a quarter of it is in use, and the frames under mochi's
// wait for the next packet, moat's listener.handle among them, are within
// about 200 bytes of the size that keeps 8 KiB (mochi patch 4 in
// third_party/mochi/PATCHES.md): this fails if they grow past it.
func TestIdleConnectionStack(t *testing.T) {
	h := startHarness(t, tcpConfig, allowAll())
	c := idleConnCost(t, h.addr("tcp"), 200)
	want := float64(4 << 10)
	if raceEnabled {
		want = 8 << 10
	}
	t.Logf("stack per idle connection: %.0f B", c.stack)
	if c.stack >= want*1.5 {
		t.Errorf("stack per idle connection: %.0f B, want %.0f", c.stack, want)
	}
}

// connCost is the growth of Go heap in use, of Go stacks in use and of
// RSS, in bytes per connection.
type connCost struct{ heap, stack, rss float64 }

// idleConnCost opens n idle connections to addr and returns what each
// costs.
func idleConnCost(b testing.TB, addr string, n int) connCost {
	b.Helper()
	m0 := memNow()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		time.Sleep(100 * time.Millisecond) // let the broker see the closes
	}()
	connack := make([]byte, 4)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		id := "idle-" + strconv.Itoa(i)
		body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, byte(len(id) >> 8), byte(len(id))}, id...)
		if _, err := c.Write(append([]byte{0x10, byte(len(body))}, body...)); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, connack); err != nil || connack[0] != 0x20 || connack[3] != 0 {
			b.Fatalf("connection %d: connack %v: %v", i, connack, err)
		}
	}
	time.Sleep(200 * time.Millisecond) // idle: past whatever follows CONNACK
	m1 := memNow()
	return connCost{
		heap:  float64(m1.heap-m0.heap) / float64(n),
		stack: float64(m1.stack-m0.stack) / float64(n),
		rss:   float64(m1.rss-m0.rss) / float64(n),
	}
}

// memSample is the Go heap and stacks in use and the process's resident
// set, in bytes.
type memSample struct{ heap, stack, rss int64 }

// memNow collects garbage and returns the memory in use.
func memNow() memSample {
	for range 4 { // each cycle may halve a stack that uses under a quarter of it
		runtime.GC()
	}
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	var rss int64
	if data, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(data)); len(f) > 1 {
			pages, _ := strconv.ParseInt(f[1], 10, 64)
			rss = pages * int64(os.Getpagesize())
		}
	}
	return memSample{heap: int64(ms.HeapInuse), stack: int64(ms.StackInuse), rss: rss}
}
