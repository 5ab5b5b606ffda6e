package server

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// TestSlowDeliveriesDoNotStallOthers: a plugin whose deliver decisions
// for ten subscribers run to their deadline every time must not stall the
// publishers of other clients. mochi decides each delivery on the
// publisher's goroutine, one subscriber after another, so before the
// per-plugin circuit breaker every message to "#" cost the publisher ten
// deadlines (2 s here) and a good pair's QoS 1 round trips took as long.
// Once the breaker has opened, the plugin's on_error (deny) answers at once:
// the slow subscribers miss those messages, the good pair is unaffected.
func TestSlowDeliveriesDoNotStallOthers(t *testing.T) {
	e := startEnv(t, map[string][]byte{"slow.wasm": wat(t, "slowdeliver")}, anonymous+`
[[plugin]]
name = "slow"
module = "slow.wasm"
decisions = ["authz"]
timeout = "200ms"
instances = 2
`)
	for i := range 10 {
		c := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "slow-" + strconv.Itoa(i)})
		c.Subscribe(t, "#", 1)
	}
	sub := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "good-sub"})
	sub.Subscribe(t, "good/t", 1)
	pub := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "good-pub"})

	// Each round trip on the old code took ten deadlines (2 s); with the
	// breaker only the first one takes five (1 s) before it opens. Give up
	// as soon as the outcome is certain rather than wait for all of them.
	const n, bound = 100, 1500 * time.Millisecond
	var rtts []time.Duration
	slow := 0
	for i := range n {
		start := time.Now()
		payload := fmt.Sprint(i)
		pub.Publish(t, "good/t", 1, false, payload)
		sub.Inbox.Want(t, "good/t", payload)
		d := time.Since(start)
		rtts = append(rtts, d)
		if d > bound {
			if slow++; slow > n/100 {
				t.Fatalf("round trip %d took %v; %d of %d over %v", i, d, slow, i+1, bound)
			}
		}
	}
	slices.Sort(rtts)
	t.Logf("QoS 1 round trips: p50 %v, p99 %v, max %v", rtts[n/2], rtts[n*99/100-1], rtts[n-1])
	if p99 := rtts[n*99/100-1]; p99 > bound {
		t.Errorf("p99 round trip %v, want under %v", p99, bound)
	}
}
