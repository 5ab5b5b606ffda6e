package broker

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
)

func TestRefusalLog(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	t0 := time.Now()
	tests := []struct {
		name string
		// refusals are (address, offset from t0) in order.
		refusals []netip.Addr
		at       []time.Duration
		want     []bool   // allow's answers
		summary  []string // summaries logged by close
	}{
		{
			name:     "burst then counted",
			refusals: repeatAddr(a, refusalBurst+3),
			want:     append(repeatBool(true, refusalBurst), false, false, false),
			summary:  []string{"remote=192.0.2.1 count=3"},
		},
		{
			name:     "addresses apart",
			refusals: append(repeatAddr(a, refusalBurst), b),
			want:     append(repeatBool(true, refusalBurst), true),
		},
		{
			name:     "a new episode after a quiet gap",
			refusals: repeatAddr(b, refusalBurst+1),
			at:       append(make([]time.Duration, refusalBurst), episodeGap+time.Second),
			want:     repeatBool(true, refusalBurst+1),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := newTestLog(t)
			l := newRefusalLog(slog.New(logs))
			for i, addr := range tc.refusals {
				var off time.Duration
				if i < len(tc.at) {
					off = tc.at[i]
				}
				if got := l.allow(addr, t0.Add(off)); got != tc.want[i] {
					t.Errorf("refusal %d from %v: allow %v, want %v", i, addr, got, tc.want[i])
				}
			}
			l.close()
			var got []string
			for _, r := range logs.all() {
				if r.msg == refusalSummary {
					got = append(got, r.text)
				}
			}
			if len(got) != len(tc.summary) {
				t.Fatalf("summaries %q, want %q", got, tc.summary)
			}
			for i, s := range tc.summary {
				if !strings.Contains(got[i], s) || !strings.Contains(got[i], "audit=deny") {
					t.Errorf("summary %q, want %q and audit=deny", got[i], s)
				}
			}
		})
	}
}

// TestRefusalLogTable: past ipPruneAt addresses in an episode, the others
// share one entry: the table does not grow.
func TestRefusalLogTable(t *testing.T) {
	l := newRefusalLog(slog.New(slog.DiscardHandler))
	now := time.Now()
	for i := range ipPruneAt + 100 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), now)
	}
	if n := len(l.m); n != ipPruneAt+1 {
		t.Errorf("%d entries, want %d", n, ipPruneAt+1)
	}
	// Once their episodes ended, old entries make room.
	l.allow(netip.MustParseAddr("192.0.2.9"), now.Add(2*episodeGap))
	if n := len(l.m); n > 2 {
		t.Errorf("%d entries after the episodes ended, want at most 2", n)
	}
	l.close()
}

// TestRefusedConnectLogBounded: a storm of refused CONNECTs from one
// address writes refusalBurst audit records, and one summary counting the
// rest; the metrics count every refusal.
func TestRefusedConnectLogBounded(t *testing.T) {
	logs := newTestLog(t)
	log := slog.New(logs)
	dir := t.TempDir()
	// More failures than authn_failure_burst_per_ip: every one must reach
	// the policy.
	cfg := parseConfig(t, dir, tcpConfig+"[limits]\nauthn_failure_rate_per_ip = 0\n")
	b, err := New(Options{Config: cfg, Decider: newDecider(t, policy.New(nil, nil, policy.Options{AllowAnonymous: false}), log), Logger: log, Stats: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{Broker: b, t: t, dir: dir, cfg: cfg, logs: logs}
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	const n = refusalBurst + 15
	for i := range n {
		if _, code, _ := testutil.ConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: fmt.Sprint("c", i)}); code != 5 {
			t.Fatalf("CONNECT %d: return code %d, want 5", i, code)
		}
	}
	h.close()
	var refused, summaries int
	for _, r := range h.logs.all() {
		switch r.msg {
		case "connection refused":
			refused++
		case refusalSummary:
			summaries++
			if !strings.Contains(r.text, fmt.Sprintf("count=%d", n-refusalBurst)) {
				t.Errorf("summary %q, want count=%d", r.text, n-refusalBurst)
			}
		}
	}
	if refused != refusalBurst || summaries != 1 {
		t.Errorf("%d refusals and %d summaries logged, want %d and 1", refused, summaries, refusalBurst)
	}
	if got := h.Stats().Refused; got != n {
		t.Errorf("%d refusals counted, want %d", got, n)
	}
}

func repeatAddr(a netip.Addr, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = a
	}
	return out
}

func repeatBool(b bool, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = b
	}
	return out
}
