package server

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// TestMetricsOperations makes real clients trip each protection added
// after the traffic metrics (a per-IP connection cap, a ban added and
// lifted through the admin API, a message rate, the failed-login cache, a
// shadow plugin's disagreement) and checks the scraped counters, then
// that every admin action left one audit=admin record and no token.
func TestMetricsOperations(t *testing.T) {
	const (
		alicePW = "alice-Secret-pw-4711"
		bobPW   = "bob-Secret-pw-0042"
		wrongPW = "mallory-Guess-pw-0815"
		badTok  = "fedcba9876543210fedcba9876543210"
	)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users := []demoUser{{"alice", alicePW}, {"bob", bobPW}}
	rules := []demoRule{{"alice", "all", "m/#"}, {"bob", "all", "m/#"}}
	doc := `
[metrics]
listen = "127.0.0.1:0"

[admin]
http = "127.0.0.1:0"
token_file = "token"

[limits]
max_connections_per_ip = 3
message_rate = 2
message_burst = 1
rate_grace = "1ms"
ban_file = "off"
authn_failure_ttl = "1m"
` + shadowOf(demo(users[:1], rules[:1]), "next") + demo(users, rules)
	e := startEnvIn(t, dir, map[string][]byte{"demo.wasm": demoWasm(t)}, doc)
	a, err := e.s.OpenAdmin(AdminOptions{Version: "v9.9.9-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(t.Context()) })
	maddr, base, hc := e.s.MetricsAddr(), "http://"+a.HTTPAddr(), http.DefaultClient
	before, _ := scrape(t, maddr)

	// A per-IP cap of 3: the fourth connection from 127.0.0.1 is refused
	// (MQTT 5: 0x97 quota exceeded). bob is unknown to the shadow: his
	// CONNECT is one disagreement.
	c1 := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "c1", Username: "alice", Password: alicePW})
	c2 := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "c2", Username: "alice", Password: alicePW})
	c3 := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "c3", Username: "bob", Password: bobPW})
	if _, ca, err := testutil.ConnectV5(t, e.addr, testutil.V5Options{ClientID: "c4", Username: "alice", Password: alicePW}); err == nil || ca == nil || ca.ReasonCode != 0x97 {
		t.Fatalf("fourth connection from one address: %v, %+v; want CONNACK 0x97", err, ca)
	}
	c2.Client.Disconnect(250)
	c3.Client.Disconnect(250)
	waitFor(t, 5*time.Second, "c2 and c3 gone", func() bool { return len(e.s.Broker().Clients()) == 1 })

	// A ban through the admin API refuses its client id, and is lifted.
	if code, body := call(t, hc, "POST", base+"/bans", adminToken, nil, `{"kind":"client_id","value":"evil","reason":"test"}`); code != 200 {
		t.Fatalf("POST /bans: %d %s", code, body)
	}
	banned, _ := scrape(t, maddr)
	if _, ca, err := testutil.ConnectV5(t, e.addr, testutil.V5Options{ClientID: "evil", Username: "alice", Password: alicePW}); err == nil || ca == nil || ca.ReasonCode != 0x8A {
		t.Fatalf("banned client id: %v, %+v; want CONNACK 0x8A", err, ca)
	}
	if code, body := call(t, hc, "DELETE", base+"/bans?kind=client_id&value=evil", adminToken, nil, ""); code != 200 {
		t.Fatalf("DELETE /bans: %d %s", code, body)
	}
	if code, body := call(t, hc, "DELETE", base+"/bans?kind=client_id&value=evil", adminToken, nil, ""); code != http.StatusNotFound {
		t.Fatalf("DELETE /bans again: %d %s, want 404", code, body)
	}
	// A refused admin request (a wrong token).
	if code, _ := call(t, hc, "GET", base+"/clients", badTok, nil, ""); code != http.StatusUnauthorized {
		t.Errorf("GET /clients with a wrong token: %d, want 401", code)
	}

	// The failed-login cache: the same wrong attempt twice within
	// authn_failure_ttl asks the plugins once.
	for range 2 {
		if _, _, err := testutil.ConnectV5(t, e.addr, testutil.V5Options{ClientID: "mallory", Username: "alice", Password: wrongPW}); err == nil {
			t.Fatal("mallory connected")
		}
	}

	// A message rate of 2/s with a burst of 1 and a grace of 1ms: the
	// second publish in a row is slowed, and past the grace disconnected.
	for range 2 {
		c1.Publish(t, "m/rate", 0, false, "x")
	}
	waitFor(t, 5*time.Second, "the rate-limited client disconnected", func() bool { return len(e.s.Broker().Clients()) == 0 })

	var after map[string]float64
	var families map[string]bool
	waitFor(t, 10*time.Second, "the shadow's disagreement", func() bool {
		after, families = scrape(t, maddr)
		return after[`moat_shadow_answers_total{plugin="next",result="disagreed"}`] >= 1
	})
	delta := func(series string) float64 { return after[series] - before[series] }
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{`moat_limits_connections_refused_total{reason="max_connections_per_ip"}`, 1},
		{`moat_limits_connections_refused_total{reason="banned"}`, 1},
		{`moat_limits_connections_refused_total{reason="max_connections"}`, 0},
		{`moat_bans_added_total`, 1},
		{`moat_bans_removed_total`, 1},
		{`moat_flapping_bans_total`, 0},
		{`moat_rate_limit_events_total{action="slowed"}`, 1},
		{`moat_rate_limit_events_total{action="disconnected"}`, 1},
		{`moat_authn_failure_cache_hits_total`, 1},
		{`moat_authn_coalesced_total`, 0},
		{`moat_overload_messages_dropped_total{qos="0",reason="evicted_oldest"}`, 0},
		{`moat_overload_messages_dropped_total{qos="0",reason="queue_full"}`, 0},
		{`moat_overload_messages_dropped_total{qos="1_2",reason="stuck_subscriber"}`, 0},
		{`moat_overload_slow_subscribers_total`, 0},
		// The shadow is asked bob's and alice's CONNECTs (4: c1..c3 and
		// evil's, refused by the ban before any plugin, is not one; the
		// wrong password once, the cache answering the second) and c1's
		// publishes: bob's CONNECT is the one disagreement.
		{`moat_shadow_answers_total{plugin="next",result="disagreed"}`, 1},
		{`moat_shadow_questions_total{plugin="next",result="dropped"}`, 0},
	} {
		if _, ok := after[tc.series]; !ok {
			t.Errorf("%s: not exposed", tc.series)
		} else if got := delta(tc.series); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.series, got, tc.want)
		}
	}
	if got := banned[`moat_bans{kind="client_id",source="operator"}`]; got != 1 {
		t.Errorf("moat_bans while banned: %v, want 1", got)
	}
	if got := after[`moat_bans{kind="client_id",source="operator"}`]; got != 0 {
		t.Errorf("moat_bans after the ban was lifted: %v, want 0", got)
	}
	if q, ag := after[`moat_shadow_questions_total{plugin="next",result="queued"}`], after[`moat_shadow_answers_total{plugin="next",result="agreed"}`]; q < 3 || ag < 2 {
		t.Errorf("shadow: %v queued, %v agreed; want the CONNECTs and publishes", q, ag)
	}
	checkDashboard(t, families)

	// The audit log: one audit=admin record per action and per refused
	// request, and no token.
	out := e.logs.String()
	for _, secret := range []string{adminToken, badTok, alicePW, bobPW, wrongPW} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains the secret %q", secret)
		}
	}
	for _, want := range []string{
		`msg="admin action" audit=admin action="ban add" kind=client_id value=evil`,
		`msg="admin action" audit=admin action="ban remove" kind=client_id value=evil by.endpoint=`,
		`msg="admin action" audit=admin action="ban remove" kind=client_id value=evil err="no such ban"`,
		`msg="admin request refused" audit=admin action=request method=GET path=/clients err="bad or missing token"`,
	} {
		if n := e.logs.count(want); n != 1 {
			t.Errorf("log records %q: %d, want 1", want, n)
		}
	}
}

// TestMetricsOverload makes a subscriber that never reads its socket fall
// behind a publisher of large QoS 0 messages, and checks that the overload
// rule's evictions are scraped as moat_overload_messages_dropped_total.
func TestMetricsOverload(t *testing.T) {
	const pw = "alice-Secret-pw-4711"
	doc := `
[metrics]
listen = "127.0.0.1:0"

[mqtt]
maximum_inflight = 16
maximum_queued_messages = 16
slow_subscriber_timeout = "300ms"
` + demo([]demoUser{{"alice", pw}}, []demoRule{{"alice", "all", "m/#"}})
	e := startEnv(t, map[string][]byte{"demo.wasm": demoWasm(t)}, doc)
	maddr := e.s.MetricsAddr()

	// The stuck subscriber: a raw MQTT 3.1.1 connection that reads its
	// CONNACK and SUBACK, then nothing.
	conn, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	str := func(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0xC2, 0, 60}
	body = append(append(append(body, str("stuck")...), str("alice")...), str(pw)...)
	sub := append(append([]byte{0, 1}, str("m/#")...), 0)
	if _, err := conn.Write(append(append([]byte{0x10, byte(len(body))}, body...), append([]byte{0x82, byte(len(sub))}, sub...)...)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4+5)
	if _, err := io.ReadFull(conn, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 || ack[4] != 0x90 || ack[8] != 0 {
		t.Fatalf("stuck subscriber: CONNACK and SUBACK % x: %v", ack, err)
	}

	pub := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "pub", Username: "alice", Password: pw})
	payload := strings.Repeat("x", 64<<10)
	for range 120 {
		pub.Publish(t, "m/t", 0, false, payload)
	}
	// Its queue holds QoS 0 only: each newer message evicts the oldest.
	const evicted = `moat_overload_messages_dropped_total{qos="0",reason="evicted_oldest"}`
	waitFor(t, 10*time.Second, "QoS 0 evictions for the stuck subscriber", func() bool {
		m, _ := scrape(t, maddr)
		return m[evicted] > 0
	})
	m, _ := scrape(t, maddr)
	st := e.s.Broker().OverloadStats()
	if got := m[evicted]; got > float64(st.QoS0Evicted) || got == 0 {
		t.Errorf("scraped %v QoS 0 evictions; the broker counts %d", got, st.QoS0Evicted)
	}
}
