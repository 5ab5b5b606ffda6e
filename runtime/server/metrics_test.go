package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// scrape GETs /metrics and returns every sample, keyed by the series as
// exposed ("name" or `name{a="x",b="y"}`, labels in the registry's order),
// and the set of metric family names.
func scrape(t *testing.T, addr string) (map[string]float64, map[string]bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	samples, families := map[string]float64{}, map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			families[strings.Fields(f)[0]] = true
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return samples, families
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsEndToEnd runs a real broker with the demo plugin, real MQTT
// 3.1.1 and 5 clients, and checks the scraped counters against the
// traffic the test made, /healthz and /readyz, the audit records of the
// JSON log (and that no password is in it), and that every metric the
// Grafana dashboard queries exists.
func TestMetricsEndToEnd(t *testing.T) {
	const (
		alicePW = "alice-Secret-pw-4711"
		wrongPW = "mallory-Guess-pw-0815"
	)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "demo.wasm"), demoWasm(t))
	doc := header() + `
[metrics]
listen = "127.0.0.1:0"

[log]
format = "json"
level = "info"
audit_allow_sample = 1.0
` + demo([]demoUser{{"alice", alicePW}}, []demoRule{{"alice", "all", "m/#"}})
	writeFile(t, filepath.Join(dir, "moat.toml"), []byte(doc))
	cfg, err := config.Load(filepath.Join(dir, "moat.toml"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log, err := NewLogger(cfg.Log, logs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		s.Close(ctx)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	maddr := s.MetricsAddr()
	url := "tcp://" + s.Broker().Addr("tcp").String()

	if code, body := get(t, "http://"+maddr+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get(t, "http://"+maddr+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	before, _ := scrape(t, maddr)

	alice := testutil.MustConnectV3(t, url, testutil.V3Options{ClientID: "alice-1", Username: "alice", Password: alicePW})
	alice.Subscribe(t, "m/#", 1)
	for i := range 10 {
		alice.Publish(t, "m/x", 1, false, fmt.Sprintf("hello-%d", i)) // 7 bytes each
	}
	for range 10 {
		alice.Inbox.Next(t)
	}
	alice.Publish(t, "m/r", 1, true, "kept")
	alice.Inbox.Want(t, "m/r", "kept")
	alice.Publish(t, "elsewhere", 0, false, "nope") // denied: no rule
	_, ca, err := testutil.ConnectV5(t, s.Broker().Addr("tcp").String(), testutil.V5Options{ClientID: "mallory", Username: "alice", Password: wrongPW})
	if err == nil || ca == nil || ca.ReasonCode < 0x80 {
		t.Fatalf("connect with a wrong password: %v, %+v", err, ca)
	}
	if res := s.Reload(ctx, Trigger{Source: TriggerAPI}); !res.Applied {
		t.Fatalf("reload: %v", res.Errors)
	}
	// The denied QoS 0 publish has no acknowledgement: wait until the
	// broker counted it.
	var after map[string]float64
	var families map[string]bool
	waitFor(t, 5*time.Second, "the denied publish counted", func() bool {
		after, families = scrape(t, maddr)
		return after[`moat_messages_dropped_total{reason="not_authorized"}`] == 1
	})
	delta := func(series string) float64 { return after[series] - before[series] }

	tests := []struct {
		series string
		want   float64
		abs    bool // an absolute value, not a difference
	}{
		{series: `moat_messages_received_total{qos="1"}`, want: 11},
		{series: `moat_messages_received_total{qos="0"}`, want: 1},
		{series: `moat_message_payload_received_bytes_total{qos="1"}`, want: 10*7 + 4},
		{series: `moat_messages_sent_total{qos="1"}`, want: 11},
		{series: `moat_message_payload_sent_bytes_total{qos="1"}`, want: 10*7 + 4},
		{series: `moat_messages_dropped_total{reason="not_authorized"}`, want: 1},
		{series: `moat_clients_connected{listener="tcp",protocol="3.1.1"}`, want: 1, abs: true},
		{series: `moat_clients_connected{listener="tcp",protocol="5"}`, want: 0, abs: true},
		{series: `moat_connections_total{listener="tcp",protocol="3.1.1"}`, want: 1},
		{series: `moat_connections_refused_total`, want: 1},
		{series: `moat_retained_messages`, want: 1, abs: true}, // not mochi's $SYS topics
		{series: `moat_subscriptions`, want: 1, abs: true},
		// alice's CONNECT, and its re-check by the reload (a reload
		// re-authenticates connected clients by default, as Mosquitto
		// does on SIGHUP); mallory's CONNECT.
		{series: `moat_plugin_decisions_total{decision="authn",plugin="demo",verdict="allow"}`, want: 2},
		{series: `moat_plugin_decisions_total{decision="authn",plugin="demo",verdict="deny"}`, want: 1},
		{series: `moat_plugin_decision_duration_seconds_count{decision="authn",plugin="demo"}`, want: 3},
		// Publish m/x (1 miss, 9 hits), deliver m/x (1 miss, 9 hits),
		// publish and deliver m/r (2 misses), subscribe m/# (1 miss),
		// publish elsewhere (1 miss), and the reload's re-check of m/# (1
		// miss: a reload empties the cache): 7 decided by the plugin, of
		// which 6 allowed and one ignored (no rule: no_match denies).
		{series: `moat_plugin_decisions_total{decision="authz",plugin="demo",verdict="allow"}`, want: 6},
		{series: `moat_plugin_decisions_total{decision="authz",plugin="demo",verdict="ignore"}`, want: 1},
		{series: `moat_decision_cache_hits_total`, want: 18},
		{series: `moat_decision_cache_misses_total`, want: 7},
		{series: `moat_reloads_total{outcome="applied"}`, want: 1},
		{series: `moat_reloads_total{outcome="failed"}`, want: 0},
	}
	for _, tc := range tests {
		got := delta(tc.series)
		if tc.abs {
			got = after[tc.series]
		}
		if _, ok := after[tc.series]; !ok {
			t.Errorf("%s: not exposed", tc.series)
		} else if got != tc.want {
			t.Errorf("%s: %v, want %v", tc.series, got, tc.want)
		}
	}
	for _, f := range []string{"go_goroutines", "process_resident_memory_bytes", "moat_network_received_bytes_total"} {
		if !families[f] {
			t.Errorf("metric %s not exposed", f)
		}
	}

	// A disconnect is uncounted.
	alice.Client.Disconnect(250)
	waitFor(t, 5*time.Second, "the disconnect counted", func() bool {
		m, _ := scrape(t, maddr)
		return m[`moat_clients_connected{listener="tcp",protocol="3.1.1"}`] == 0
	})

	// The dashboard queries only metrics that exist; those of shadow
	// plugins exist with one (TestMetricsOperations checks them).
	checkDashboard(t, families, "moat_shadow_")

	// The audit log: JSON records with an audit key, and no secret.
	out := logs.String()
	for _, secret := range []string{alicePW, wrongPW} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains the password %q", secret)
		}
	}
	audit := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		if a, ok := rec["audit"].(string); ok {
			audit[a+"/"+fmt.Sprint(rec["decision"])]++
		}
	}
	for key, n := range map[string]int{"deny/authn": 1, "deny/authz": 1, "allow/authn": 1, "reload/<nil>": 1} {
		if audit[key] != n {
			t.Errorf("audit records %s: %d, want %d; all: %v", key, audit[key], n, audit)
		}
	}
	if audit["allow/authz"] < 5 {
		t.Errorf("audit allow/authz records: %d, want every allow (audit_allow_sample = 1)", audit["allow/authz"])
	}
}

// checkDashboard parses the Grafana dashboard and checks that every
// metric name in every query is one the registry exposes, but for names
// with one of the prefixes in absent: metrics of a feature the test's
// configuration does not use.
func checkDashboard(t *testing.T, families map[string]bool, absent ...string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "examples", "grafana", "moat-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("moat-dashboard.json: %v", err)
	}
	name := regexp.MustCompile(`\b(moat|go|process)_[a-z0-9_]+`)
	exprs := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs++
			ms := name.FindAllString(tg.Expr, -1)
			if len(ms) == 0 {
				t.Errorf("panel %q: expr %q names no moat metric", p.Title, tg.Expr)
			}
			for _, m := range ms {
				base := m
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(m, suf); ok && families[b] {
						base = b
					}
				}
				if !families[base] && !slices.ContainsFunc(absent, func(p string) bool { return strings.HasPrefix(base, p) }) {
					t.Errorf("panel %q: expr %q: metric %s is not exposed", p.Title, tg.Expr, m)
				}
			}
		}
	}
	if exprs < 10 {
		t.Errorf("the dashboard has %d queries, want the panels of issue 13", exprs)
	}
}

// TestReadyz checks /readyz answers 503 with the reason before the
// broker's listeners are open.
func TestReadyz(t *testing.T) {
	dir := t.TempDir()
	doc := header() + anonymous + "[metrics]\nlisten = \"127.0.0.1:0\"\n"
	writeFile(t, filepath.Join(dir, "moat.toml"), []byte(doc))
	cfg, err := config.Load(filepath.Join(dir, "moat.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if err := ready(s.broker, s.decider); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("ready before Start: %v, want not started", err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ready(s.broker, s.decider); err != nil {
		t.Errorf("ready after Start: %v", err)
	}
	b, d := s.broker, s.decider
	addr := s.MetricsAddr()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := ready(b, d); err == nil {
		t.Error("ready after Close")
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("the metrics listener still serves after Close")
	}
}
