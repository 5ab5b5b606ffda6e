package server

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pahov3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// soakDuration is how long TestSoakReload runs: MOAT_SOAK (a duration,
// `make soak` sets it), else 20s, or 5s with -short.
func soakDuration(t *testing.T) time.Duration {
	if s := os.Getenv("MOAT_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("MOAT_SOAK=%q: %v", s, err)
		}
		return d
	}
	if testing.Short() {
		return 5 * time.Second
	}
	return 20 * time.Second
}

// soak publishing rate: each publisher sends one QoS 1 message per
// soakInterval, so a run of d sends d/soakInterval messages per publisher.
const (
	soakPublishers  = 2
	soakSubscribers = 2
	soakInterval    = 10 * time.Millisecond
)

// TestSoakReload publishes QoS 1 at a steady rate to subscribers while the
// policy is rewritten, good and bad versions alternating: the demo
// plugin's config (users and rules) changes in every version and a second
// module's binary in every good one. It checks that
//
//   - no client is disconnected by a reload (re-authentication is on, and
//     every user stays in every version);
//   - no QoS 1 message is lost: every message acknowledged to a publisher
//     reaches every subscriber, and duplicates are counted (without a
//     reconnect MQTT has no reason to resend, so there must be none);
//   - every bad version is refused with the old policy in force, and every
//     good version is in force when Reload returns, as a real client's
//     SUBSCRIBE tells.
func TestSoakReload(t *testing.T) {
	d := soakDuration(t)
	perPublisher := int(d / soakInterval)
	demoBin, ignore := demoWasm(t), wat(t, "ignore")
	users := []demoUser{{"probe", "p"}}
	for i := range soakPublishers {
		users = append(users, demoUser{fmt.Sprint("pub", i), "x"})
	}
	for i := range soakSubscribers {
		users = append(users, demoUser{fmt.Sprint("sub", i), "x"})
	}
	// Version k: the demo plugin authenticates everyone and lets them use
	// soak/# (its config changes every fourth version, which reloads a Go
	// guest); the topics plugin lets the probe use probe/<k>; the gate
	// module has no opinion, and a new binary in every good version.
	version := func(k int) string {
		us := users
		if k%8 >= 4 {
			us = append(slices.Clone(users), demoUser{"extra", "x"})
		}
		return "\n[reload]\nreauthenticate = true\n" +
			demo(us, []demoRule{{"*", "all", "soak/#"}}) +
			gate("topics", "topics.wasm") + fmt.Sprintf("[plugin.config]\ntopics = [%q]\n", fmt.Sprint("probe/", k)) +
			gate("gate", "gate.wasm")
	}
	e := startEnv(t, map[string][]byte{"demo.wasm": demoBin, "gate.wasm": ignore, "topics.wasm": wat(t, "topics"),
		"trap.wasm": wat(t, "trap"), "refuse.wasm": wat(t, "refuse")}, version(0))

	var clients []*testutil.V3 // every client; none may lose its connection
	connect := func(user, password string) *testutil.V3 {
		c := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: user, Username: user, Password: password})
		clients = append(clients, c)
		return c
	}

	// Subscribers count what they receive, by message id.
	type inbox struct {
		mu  sync.Mutex
		got map[string]int
	}
	subs := make([]*inbox, soakSubscribers)
	for i := range subs {
		in := &inbox{got: map[string]int{}}
		subs[i] = in
		c := connect(fmt.Sprint("sub", i), "x")
		tok := c.Client.Subscribe("soak/#", 1, func(_ pahov3.Client, m pahov3.Message) {
			in.mu.Lock()
			in.got[string(m.Payload())]++
			in.mu.Unlock()
		})
		if !tok.WaitTimeout(testutil.Wait) || tok.Error() != nil {
			t.Fatalf("subscribe: %v", tok.Error())
		}
	}
	probe := connect("probe", "p")
	canSubscribe := func(k int) bool {
		t.Helper()
		topic := fmt.Sprint("probe/", k)
		ok := probe.SubscribeCode(t, topic, 1) < 0x80
		if tok := probe.Client.Unsubscribe(topic); !tok.WaitTimeout(testutil.Wait) || tok.Error() != nil {
			t.Fatalf("unsubscribe: %v", tok.Error())
		}
		return ok
	}

	// Publishers send at a steady rate and remember what was acknowledged.
	var (
		acked   sync.Map // message id -> true
		nacked  atomic.Int64
		pubWG   sync.WaitGroup
		pubDone = make(chan struct{})
	)
	for p := range soakPublishers {
		c := connect(fmt.Sprint("pub", p), "x")
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			tick := time.NewTicker(soakInterval)
			defer tick.Stop()
			for i := range perPublisher {
				<-tick.C
				id := fmt.Sprintf("p%d-%d", p, i)
				tok := c.Client.Publish(fmt.Sprint("soak/", p), 1, false, id)
				if !tok.WaitTimeout(2*testutil.Wait) || tok.Error() != nil {
					nacked.Add(1)
					t.Errorf("publish %s: %v", id, tok.Error())
					continue
				}
				acked.Store(id, true)
			}
		}()
	}
	go func() { pubWG.Wait(); close(pubDone) }()

	// The reload loop: good and bad versions alternate until the
	// publishers are done and at least minVersions were tried (dozens in
	// `make test`; a slow machine keeps reloading a little longer, without
	// traffic, rather than test fewer), bounded by a deadline.
	minVersions := 8
	if d >= 20*time.Second {
		minVersions = 36
	}
	deadline := time.Now().Add(d + time.Minute)
	bad := []struct {
		name  string
		apply func(k int)
		want  string
	}{
		{"syntax error", func(k int) { e.config(version(k) + "[[plugin]\n") }, "syntax error"},
		{"missing module", func(k int) { e.config(strings.Replace(version(k), "gate.wasm", "gone.wasm", 1)) }, "gone.wasm"},
		{"module that does not compile", func(k int) {
			e.write("broken.wasm", []byte("\x00asm\x01\x00\x00\x00\x01\xff"))
			e.config(strings.Replace(version(k), "gate.wasm", "broken.wasm", 1))
		}, `plugin "gate"`},
		{"module refuses its config", func(k int) { e.config(strings.Replace(version(k), "topics.wasm", "refuse.wasm", 1)) }, "this config is refused"},
		{"sha256 mismatch", func(k int) {
			e.config(strings.Replace(version(k), `module = "gate.wasm"`, `module = "gate.wasm"`+"\n"+`sha256 = "`+strings.Repeat("0", 64)+`"`, 1))
		}, "but the config pins"},
		{"trap at load", func(k int) { e.config(strings.Replace(version(k), "gate.wasm", "trap.wasm", 1)) }, "unreachable"},
		{"Go guest refuses its config", func(k int) { e.config(strings.Replace(version(k), `action = "all"`, `action = "everything"`, 1)) }, "config refused"},
	}
	current, good, refused := 0, 0, 0
	var worst time.Duration
loop:
	for k := 1; ; k++ {
		select {
		case <-pubDone:
			if good+refused >= minVersions {
				break loop
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d versions tried by %v, want %d", good+refused, d+time.Minute, minVersions)
			}
		default:
		}
		if k%2 == 0 {
			b := bad[(k/2)%len(bad)]
			b.apply(k)
			res := e.s.Reload(t.Context(), Trigger{Source: TriggerAPI})
			if res.Applied || !strings.Contains(strings.Join(res.Errors, "\n"), b.want) {
				t.Fatalf("version %d (%s): applied %v, errors %q; want refused with %q", k, b.name, res.Applied, res.Errors, b.want)
			}
			if !canSubscribe(current) || canSubscribe(k) {
				t.Fatalf("after refusing version %d (%s), the policy of version %d is not in force", k, b.name, current)
			}
			refused++
			continue
		}
		e.write("gate.wasm", withSection(ignore, k))
		e.config(version(k))
		start := time.Now()
		res := e.s.Reload(t.Context(), Trigger{Source: TriggerAPI})
		worst = max(worst, time.Since(start))
		if !res.Applied {
			t.Fatalf("version %d refused: %q", k, res.Errors)
		}
		if res.Disconnected != 0 {
			t.Fatalf("version %d disconnected %d clients", k, res.Disconnected)
		}
		if !canSubscribe(k) || canSubscribe(current) {
			t.Fatalf("version %d is not in force right after Reload returned", k)
		}
		current = k
		good++
	}

	// Every acknowledged message reaches every subscriber.
	var sent int
	acked.Range(func(_, _ any) bool { sent++; return true })
	var missing, dups int
	waitFor(t, 3*testutil.Wait, "every acknowledged message delivered", func() bool {
		missing = 0
		acked.Range(func(k, _ any) bool {
			for _, in := range subs {
				in.mu.Lock()
				if in.got[k.(string)] == 0 {
					missing++
				}
				in.mu.Unlock()
			}
			return true
		})
		return missing == 0
	})
	for _, in := range subs {
		in.mu.Lock()
		for _, n := range in.got {
			dups += n - 1
		}
		in.mu.Unlock()
	}
	disconnected := 0
	for _, c := range clients {
		if !c.IsConnected() {
			disconnected++
		}
	}
	if disconnected > 0 {
		t.Errorf("%d of %d clients lost their connection during the soak", disconnected, len(clients))
	}
	if dups != 0 {
		t.Errorf("%d duplicate deliveries without a reconnect", dups)
	}
	if n := int(nacked.Load()); n > 0 || sent != perPublisher*soakPublishers {
		t.Errorf("%d of %d publishes acknowledged", sent, perPublisher*soakPublishers)
	}
	t.Logf("%v: %d good versions applied, %d bad refused (slowest good reload %v); %d QoS 1 messages acknowledged, each delivered to %d subscribers, %d duplicates, %d of %d clients disconnected",
		d, good, refused, worst, sent, soakSubscribers, dups, disconnected, len(clients))
}
