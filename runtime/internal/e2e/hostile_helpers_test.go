package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/server"
)

// hostilePlugin is the [[plugin]] entry of a case's module.
type hostilePlugin struct {
	module, decisions, timeout, memoryLimit string
	instances                               int
}

func (p hostilePlugin) toml() string {
	return fmt.Sprintf(`
[[plugin]]
name = "hostile"
module = %q
decisions = %s
timeout = %q
memory_limit = %q
instances = %d
on_error = "deny"
`, p.module, p.decisions, p.timeout, p.memoryLimit, p.instances)
}

// budget is what the operator let the plugin have: memory_limit for each
// instance (sdk/ABI.md §7).
func (p hostilePlugin) budget(t *testing.T) int64 {
	t.Helper()
	n, err := config.ParseByteSize(p.memoryLimit)
	if err != nil {
		t.Fatal(err)
	}
	return int64(n) * int64(p.instances)
}

// countingLog is the broker's log sink in a case: it counts every byte
// and every line a module logged, and keeps the first 64 KiB, shown when
// the case fails.
type countingLog struct {
	n     atomic.Int64
	guest atomic.Int64 // lines a module logged
	mu    sync.Mutex
	head  bytes.Buffer
}

func (l *countingLog) Write(p []byte) (int, error) {
	l.n.Add(int64(len(p)))
	if bytes.Contains(p, []byte(" source=guest")) { // one record per Write
		l.guest.Add(1)
	}
	l.mu.Lock()
	if room := 64<<10 - l.head.Len(); room > 0 {
		l.head.Write(p[:min(room, len(p))])
	}
	l.mu.Unlock()
	return len(p), nil
}

func (l *countingLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head.String()
}

// hostileBroker is a started broker of a case.
type hostileBroker struct {
	srv  *server.Server
	path string // moat.toml
	addr string
	logs *countingLog
	doc  string // moat.toml without the hostile plugin
}

// startHostileBroker serves a broker that admits anyone no module decides
// about ([auth] no_match = "allow"), with the hostile plugin unless
// loadLater (then runAttack loads it by a reload). It logs at debug level,
// the most a broker logs. It returns server.New's error, and fails the
// test on any other.
func startHostileBroker(t *testing.T, dir string, pl hostilePlugin, loadLater bool) (*hostileBroker, error) {
	t.Helper()
	doc := fmt.Sprintf(`
[[listener]]
name = %q
type = "tcp"
address = "127.0.0.1:0"

[auth]
allow_anonymous = true
no_match = "allow"
timeout = "2s"

[limits]
# Every evil CONNECT must reach the hostile module.
authn_failure_rate_per_ip = 0

[wasm]
cache_dir = %q
`, listener, wasmCache)
	if !strings.Contains(pl.decisions, "authn") {
		// no_match applies only to a non-empty authn chain.
		admit, err := filepath.Abs(filepath.Join("testdata", "hostile", "admit.wasm"))
		if err != nil {
			t.Fatal(err)
		}
		doc += fmt.Sprintf("\n[[plugin]]\nname = \"admit\"\nmodule = %q\ndecisions = [\"authn\"]\n", admit)
	}
	b := &hostileBroker{path: filepath.Join(dir, "moat.toml"), logs: &countingLog{}, doc: doc}
	if !loadLater {
		doc += pl.toml()
	}
	if err := os.WriteFile(b.path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(b.path)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, doc)
	}
	log := slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	b.srv = srv
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if t.Failed() {
			t.Logf("moat log (first 64 KiB):\n%s", b.logs.String())
		}
	})
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	b.addr = srv.Broker().Addr(listener).String()
	return b, nil
}

// alive reports whether a new client can connect.
func (b *hostileBroker) alive(t *testing.T) bool {
	_, _, err := testutil.ConnectV5(t, b.addr, testutil.V5Options{ClientID: "after-the-attack"})
	return err == nil
}

// good is the well-behaved client: a publisher and a subscriber of good/#.
type good struct {
	pub, sub *testutil.V5
	n        int // messages sent
}

func startGood(t *testing.T, addr string) *good {
	t.Helper()
	g := &good{
		sub: testutil.MustConnectV5(t, addr, testutil.V5Options{ClientID: "good-sub", Username: "good"}),
		pub: testutil.MustConnectV5(t, addr, testutil.V5Options{ClientID: "good-pub", Username: "good"}),
	}
	g.sub.Subscribe(t, "good/#", 1)
	for range 3 { // warm the decision cache; not measured
		g.roundTrip(t)
	}
	return g
}

// roundTrip publishes at QoS 1 and waits for the subscriber's copy.
func (g *good) roundTrip(t *testing.T) time.Duration {
	t.Helper()
	g.n++
	payload := "n" + strconv.Itoa(g.n)
	start := time.Now()
	if code := g.pub.Publish(t, "good/topic", 1, false, payload); code != 0 {
		t.Fatalf("good publish refused: reason %#x", code)
	}
	g.sub.Inbox.Want(t, "good/topic", payload)
	return time.Since(start)
}

// run makes round trips, one after the other, for d and after that until
// done is closed, and returns their durations. A stalled broker shows as
// few, long samples.
func (g *good) run(t *testing.T, d time.Duration, done <-chan struct{}) []time.Duration {
	t.Helper()
	var samples []time.Duration
	for end := time.Now().Add(d); !time.Now().After(end) || !closed(done); {
		samples = append(samples, g.roundTrip(t))
	}
	return samples
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// percentile returns the p-th quantile (nearest rank) of samples.
func percentile(samples []time.Duration, p float64) time.Duration {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	i := int(math.Ceil(float64(len(s))*p)) - 1
	return s[max(0, min(i, len(s)-1))]
}

// evilResult is what the attacker saw.
type evilResult struct {
	requests int      // hostile decisions asked for
	errs     []string // each one that did not end as on_error, and why
}

// evilTimeout bounds each request of the evil client: far beyond the
// plugin's 50ms timeout, so that only a broker that holds a hostile
// decision (or a frozen one) reaches it.
const evilTimeout = 5 * time.Second

// runAttack makes hostile requests until ctx ends; it runs beside the good
// client, so it never calls t.Fatal. A reload attack closes loaded when
// the reload has returned.
func runAttack(ctx context.Context, t *testing.T, hc hostileCase, b *hostileBroker, pl hostilePlugin, loaded chan<- struct{}) evilResult {
	var res evilResult
	fail := func(format string, args ...any) { res.errs = append(res.errs, fmt.Sprintf(format, args...)) }
	switch hc.attack {
	case publishEvil:
		evil, _, err := testutil.ConnectV5(t, b.addr, testutil.V5Options{ClientID: "evil-pub", Username: "evil"})
		if err != nil {
			fail("evil client: %v", err)
			return res
		}
		for n := 0; ctx.Err() == nil; n++ {
			pctx, cancel := context.WithTimeout(context.Background(), evilTimeout)
			start := time.Now()
			pr, err := evil.Client.Publish(pctx, &paho.Publish{Topic: "evil/" + strconv.Itoa(n), QoS: 1, Payload: []byte("x")})
			cancel()
			took := time.Since(start)
			res.requests++
			switch {
			case pr != nil && pr.ReasonCode >= 0x80:
			case pr != nil && took <= hc.allowWithin:
			case pr != nil:
				fail("evil publish %d: PUBACK %#x after %v: %v", n, pr.ReasonCode, took.Round(time.Millisecond), errAllowed)
				return res
			default:
				fail("evil publish %d: no PUBACK after %v: %v", n, took.Round(time.Millisecond), err)
				return res
			}
		}
	case connectEvil:
		for n := 0; ctx.Err() == nil; n++ {
			start := time.Now()
			c, ca, err := testutil.ConnectV5(t, b.addr, testutil.V5Options{ClientID: "evil-" + strconv.Itoa(n), Username: "evil"})
			took := time.Since(start)
			res.requests++
			switch {
			case err == nil && took <= hc.allowWithin:
				c.Kill()
			case err == nil:
				c.Kill()
				fail("evil connect %d: admitted after %v: %v", n, took.Round(time.Millisecond), errAllowed)
				return res
			case ca == nil:
				fail("evil connect %d: no CONNACK after %v: %v", n, took.Round(time.Millisecond), err)
				return res
			}
		}
	case deliverEvil:
		var got atomic.Int64 // messages delivered to an evil subscriber
		var subs []*testutil.V5
		for i := range 10 {
			s, _, err := testutil.ConnectV5(t, b.addr, testutil.V5Options{ClientID: fmt.Sprintf("evil-sub-%d", i), Username: fmt.Sprintf("evil-%d", i)})
			if err != nil {
				fail("evil subscriber %d: %v", i, err)
				return res
			}
			s.Client.AddOnPublishReceived(func(paho.PublishReceived) (bool, error) { got.Add(1); return true, nil })
			sctx, cancel := context.WithTimeout(context.Background(), evilTimeout)
			_, err = s.Client.Subscribe(sctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "#", QoS: 1}}})
			cancel()
			if err != nil {
				fail("evil subscriber %d: subscribe: %v", i, err)
				return res
			}
			subs = append(subs, s)
		}
		<-ctx.Done()
		// Every delivery to them was a hostile decision: none may have
		// reached them.
		time.Sleep(100 * time.Millisecond)
		res.requests += len(subs)
		if n := got.Load(); n > 0 {
			fail("the evil subscribers received %d messages: %v", n, errAllowed)
		}
	case enhancedAuthEvil:
		attackEnhancedAuth(ctx, b.addr, &res, fail)
	case reloadEvil, reloadBomb:
		done := sync.OnceFunc(func() { close(loaded) })
		defer done()
		doc := b.doc + pl.toml()
		if err := os.WriteFile(b.path, []byte(doc), 0o600); err != nil {
			fail("%v", err)
			return res
		}
		rctx, cancel := context.WithTimeout(context.Background(), hc.maxLoad)
		defer cancel()
		start := time.Now()
		rr := b.srv.Reload(rctx, server.Trigger{Source: server.TriggerAPI})
		took := time.Since(start)
		done()
		res.requests++
		t.Logf("measured: reload took %v, applied %v, errors %q", took.Round(time.Millisecond), rr.Applied, rr.Errors)
		if took > hc.maxLoad {
			fail("loading the module took %v, want under %v", took.Round(time.Millisecond), hc.maxLoad)
		}
		if rr.Applied && hc.attack == reloadEvil {
			fail("the hostile module was loaded, want it refused")
		}
		<-ctx.Done()
	}
	return res
}

// authDataBound is the most enhanced-authentication data the suite lets a
// broker send in one AUTH packet: ABI.md §6 lets a module set 65535 bytes,
// issue 9 asks for a bound, and 16 KiB is the one the session work on
// issue 9 chose (runtime/broker maxAuthData).
const authDataBound = 16 << 10

// attackEnhancedAuth opens MQTT 5 connections with an authentication
// method, one after the other, and keeps each open after the broker's
// answer: each must be refused (the module's oversized continue is a
// plugin error), cost the broker little, and get little back.
func attackEnhancedAuth(ctx context.Context, addr string, res *evilResult, fail func(string, ...any)) {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for n := 0; ctx.Err() == nil && n < 200; n++ {
		conn, err := net.DialTimeout("tcp", addr, evilTimeout)
		if err != nil {
			fail("evil connection %d: %v", n, err)
			return
		}
		conns = append(conns, conn)
		cp := packets.NewControlPacket(packets.CONNECT)
		c := cp.Content.(*packets.Connect)
		c.ProtocolName, c.ProtocolVersion, c.CleanStart, c.KeepAlive = "MQTT", 5, true, 30
		c.ClientID = "evil-auth-" + strconv.Itoa(n)
		c.Username, c.UsernameFlag = "evil", true
		c.Properties = &packets.Properties{AuthMethod: "X", AuthData: []byte("hi")}
		var sent bytes.Buffer
		if _, err := cp.WriteTo(&sent); err != nil {
			fail("encode CONNECT: %v", err)
			return
		}
		_ = conn.SetDeadline(time.Now().Add(evilTimeout))
		if _, err := conn.Write(sent.Bytes()); err != nil {
			fail("evil connection %d: write: %v", n, err)
			return
		}
		res.requests++
		in, err := packets.ReadPacket(bufio.NewReader(conn))
		if err != nil {
			fail("evil connection %d: no answer to CONNECT: %v", n, err)
			return
		}
		// The module's continue is beyond the bounds: a plugin error,
		// so the exchange ends at once as on_error (deny).
		switch p := in.Content.(type) {
		case *packets.Auth:
			var data []byte
			if p.Properties != nil {
				data = p.Properties.AuthData
			}
			fail("a %d-byte CONNECT got an AUTH with %d bytes of authentication data (at most %d), want a refusal (on_error)", sent.Len(), len(data), authDataBound)
			return
		case *packets.Connack:
			if p.ReasonCode < 0x80 {
				fail("evil connection %d: CONNACK %#x: %v", n, p.ReasonCode, errAllowed)
				return
			}
		default:
			fail("evil connection %d: answered CONNECT with packet type %d", n, in.Type)
			return
		}
	}
	<-ctx.Done()
}

// memoryPeak is the growth of the process over its baseline.
type memoryPeak struct {
	rss, heap int64
}

// memoryWatch samples the process's resident set (/proc/self/status
// VmRSS, everything: Go heap, engine stacks, guest memories, mmaps) and
// the Go heap's objects (which counts a table the Go runtime allocated
// but never touched, invisible in RSS) every few milliseconds.
type memoryWatch struct {
	base memoryPeak
	peak atomic.Pointer[memoryPeak]
	done chan struct{}
	wg   sync.WaitGroup
}

// abortMargin is how far beyond the limit a case may take the process
// before the watcher ends it, to spare the machine: the case has failed
// by then.
const abortMargin = 512 << 20

func watchMemory(t *testing.T, limit int64) *memoryWatch {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	w := &memoryWatch{base: sampleMemory(t), done: make(chan struct{})}
	w.peak.Store(&memoryPeak{})
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tick.C:
			}
			s := sampleMemory(nil)
			p := *w.peak.Load()
			p.rss = max(p.rss, s.rss-w.base.rss)
			p.heap = max(p.heap, s.heap-w.base.heap)
			w.peak.Store(&p)
			if p.rss > limit+abortMargin || p.heap > limit+abortMargin {
				fmt.Fprintf(os.Stderr, "    hostile_helpers_test.go:0: memory: RSS +%d MiB, Go heap +%d MiB over the baseline, want at most %d MiB: case ended to spare the machine\n",
					p.rss>>20, p.heap>>20, limit>>20)
				os.Exit(3)
			}
		}
	}()
	return w
}

func (w *memoryWatch) stop() memoryPeak {
	close(w.done)
	w.wg.Wait()
	return *w.peak.Load()
}

var heapMetric = "/memory/classes/heap/objects:bytes"

// sampleMemory reads VmRSS and the Go heap's objects; t may be nil.
func sampleMemory(t *testing.T) memoryPeak {
	var s memoryPeak
	b, err := os.ReadFile("/proc/self/status")
	if err != nil && t != nil {
		t.Fatalf("memory: %v (the suite needs Linux)", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			s.rss = kb << 10
		}
	}
	m := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(m)
	if m[0].Value.Kind() == metrics.KindUint64 {
		s.heap = int64(m[0].Value.Uint64())
	}
	return s
}
