package broker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// Shared helpers of this package's tests. Certificates and MQTT clients
// come from runtime/internal/testutil, which other packages' tests use too;
// what needs the broker's internals lives here.

// tcpConfig is the smallest useful moat.toml: one plain listener.
const tcpConfig = `
[[listener]]
name = "tcp"
type = "tcp"
address = "127.0.0.1:0"
`

// parseConfig parses a moat.toml held in a string as if it were dir/moat.toml,
// so that relative paths resolve against dir.
func parseConfig(t testing.TB, dir, doc string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(doc), filepath.Join(dir, "moat.toml"))
	if err != nil {
		t.Fatalf("parse config: %v\n%s", err, doc)
	}
	return cfg
}

// allowAll is the policy of most tests: anonymous clients may do anything.
func allowAll() *policy.Policy {
	return policy.New(nil, nil, policy.Options{AllowAnonymous: true, AuthzNoMatch: policy.Allow})
}

// newDecider runs p for the duration of the test.
func newDecider(t testing.TB, p *policy.Policy, log *slog.Logger) *policy.Decider {
	d := policy.NewDecider(p, policy.CacheOptions{}, log)
	t.Cleanup(d.Close)
	return d
}

// harness is a started broker and what a test needs around it.
type harness struct {
	*Broker
	t    testing.TB
	dir  string
	cfg  *config.Config
	logs *testLog
}

// startHarness starts a broker from doc (a moat.toml) running policy p
// (allowAll when nil), and closes it at the end of the test.
func startHarness(t testing.TB, doc string, p *policy.Policy) *harness {
	t.Helper()
	return startHarnessIn(t, t.TempDir(), doc, p)
}

// startHarnessIn is startHarness with the config's directory given, for tests
// that restart a broker on the same files.
func startHarnessIn(t testing.TB, dir, doc string, p *policy.Policy) *harness {
	t.Helper()
	h := newHarness(t, dir, doc, p)
	if err := h.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { h.close() })
	return h
}

// newHarness builds an unstarted broker.
func newHarness(t testing.TB, dir, doc string, p *policy.Policy) *harness {
	t.Helper()
	if p == nil {
		p = allowAll()
	}
	logs := newTestLog(t)
	log := slog.New(logs)
	cfg := parseConfig(t, dir, doc)
	b, err := New(Options{Config: cfg, Decider: newDecider(t, p, log), Logger: log})
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return &harness{Broker: b, t: t, dir: dir, cfg: cfg, logs: logs}
}

// close closes the broker with a generous grace period and fails the test
// on error.
func (h *harness) close() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.Close(ctx); err != nil {
		h.t.Errorf("close: %v", err)
	}
}

// addr returns host:port of the named listener.
func (h *harness) addr(name string) string {
	h.t.Helper()
	a := h.Addr(name)
	if a == nil {
		h.t.Fatalf("no listener %q", name)
	}
	return a.String()
}

// url returns the paho.mqtt.golang URL of the named listener.
func (h *harness) url(scheme, name string) string {
	return scheme + "://" + h.addr(name)
}

// writeFile writes data to name in the harness directory.
func writeFile(t testing.TB, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// testLog is a slog.Handler that writes to the test log while the test
// runs, and remembers every record so that tests can assert on levels and
// on what must never be logged.
type testLog struct {
	mu      *sync.Mutex
	t       testing.TB
	done    *bool
	records *[]logRecord
	attrs   []slog.Attr
}

type logRecord struct {
	level slog.Level
	msg   string
	text  string // message and attributes, formatted
}

func newTestLog(t testing.TB) *testLog {
	l := &testLog{mu: new(sync.Mutex), t: t, done: new(bool), records: new([]logRecord)}
	if _, ok := t.(*testing.F); ok {
		// f.Log may not be called while the fuzz target runs; keep records only.
		*l.done = true
	}
	// Registered first, so it runs last: nothing is written to t after the
	// test, even by goroutines that outlive the broker by a moment.
	t.Cleanup(func() {
		l.mu.Lock()
		*l.done = true
		l.mu.Unlock()
	})
	return l
}

// quiet stops writing to the test log (benchmarks); records are kept.
func (l *testLog) quiet() {
	l.mu.Lock()
	*l.done = true
	l.mu.Unlock()
}

// newTestLogger logs to the test log.
func newTestLogger(t testing.TB) *slog.Logger { return slog.New(newTestLog(t)) }

func (l *testLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *testLog) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	for _, a := range l.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	*l.records = append(*l.records, logRecord{level: r.Level, msg: r.Message, text: b.String()})
	if !*l.done {
		l.t.Log(b.String())
	}
	return nil
}

func (l *testLog) WithAttrs(as []slog.Attr) slog.Handler {
	c := *l
	c.attrs = append(append([]slog.Attr(nil), l.attrs...), as...)
	return &c
}

func (l *testLog) WithGroup(string) slog.Handler { return l }

// atLeast returns the records at level or above.
func (l *testLog) atLeast(level slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range *l.records {
		if r.level >= level {
			out = append(out, r.text)
		}
	}
	return out
}

// all returns a copy of every record.
func (l *testLog) all() []logRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]logRecord(nil), *l.records...)
}

// contains reports whether any record's text contains s.
func (l *testLog) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range *l.records {
		if strings.Contains(r.text, s) {
			return true
		}
	}
	return false
}

// rawV5 is an MQTT 5 connection driven packet by packet, for what paho's
// client refuses to send (it honours the CONNACK's capabilities) or to read
// exact reason codes.
type rawV5 struct {
	t    testing.TB
	conn net.Conn
}

// dialRawV5 connects and sends CONNECT; it returns the CONNACK.
func dialRawV5(t testing.TB, addr, clientID string, keepalive uint16) (*rawV5, *packets.Connack) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testutil.Wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := &rawV5{t: t, conn: conn}
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion = "MQTT", 5
	c.ClientID, c.CleanStart, c.KeepAlive = clientID, true, keepalive
	c.Properties = &packets.Properties{}
	r.write(cp)
	return r, r.read(packets.CONNACK).Content.(*packets.Connack)
}

func (r *rawV5) write(cp *packets.ControlPacket) {
	r.t.Helper()
	_ = r.conn.SetWriteDeadline(time.Now().Add(testutil.Wait))
	if _, err := cp.WriteTo(r.conn); err != nil {
		r.t.Fatalf("write %s: %v", cp.PacketType(), err)
	}
}

// read returns the next packet, which must be of type typ.
func (r *rawV5) read(typ byte) *packets.ControlPacket {
	r.t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(testutil.Wait))
	cp, err := packets.ReadPacket(r.conn)
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	if cp.Type != typ {
		r.t.Fatalf("got %s, want packet type %d", cp.PacketType(), typ)
	}
	return cp
}

// subscribe sends one SUBSCRIBE and returns the SUBACK reason codes.
func (r *rawV5) subscribe(filters ...string) []byte {
	r.t.Helper()
	cp := packets.NewControlPacket(packets.SUBSCRIBE)
	s := cp.Content.(*packets.Subscribe)
	s.PacketID = 1
	s.Properties = &packets.Properties{}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, packets.SubOptions{Topic: f, QoS: 1})
	}
	r.write(cp)
	return r.read(packets.SUBACK).Content.(*packets.Suback).Reasons
}
