package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// TestReloadHammer reloads in a loop, alternating an allow and a deny
// module, while goroutines authorize through the Decider and a real client
// publishes. Under the race detector this checks the swap path; in any
// mode, that no decision ever reaches a module that was closed under it
// (which would surface as a module error) and that every verdict is one of
// the two versions'.
func TestReloadHammer(t *testing.T) {
	allow, deny := wat(t, "allow"), wat(t, "deny")
	// Eight goroutines share two instances on a loaded machine: a long
	// timeout keeps waiting for an instance from passing for a failure.
	e := startEnv(t, map[string][]byte{"gate.wasm": allow}, anonymous+gate("gate", "gate.wasm")+"timeout = \"10s\"\n")
	reloads := 40
	if testing.Short() {
		reloads = 10
	}

	var (
		stop      atomic.Bool
		decisions atomic.Int64
		wg        sync.WaitGroup
		errs      = make(chan error, 16)
	)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess := e.s.Decider().NewSession(&policy.Client{ClientID: fmt.Sprint("hammer-", g)})
			for i := 0; !stop.Load(); i++ {
				req := &policy.AuthzRequest{Action: policy.ActionPublish, Topic: fmt.Sprint("t/", i%32), QoS: byte(i % 2)}
				res := e.s.Decider().Authorize(context.Background(), sess, req)
				if (res.Verdict != policy.Allow && res.Verdict != policy.Deny) || res.Message == "module error" {
					errs <- fmt.Errorf("decision %d of goroutine %d: %+v", i, g, res)
					return
				}
				decisions.Add(1)
			}
		}()
	}
	// A real client: its connection must survive every reload.
	c := testutil.MustConnectV3(t, e.url, testutil.V3Options{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			tok := c.Client.Publish(fmt.Sprint("c/", i%8), 0, false, "x")
			tok.Wait()
		}
	}()

	for i := range reloads {
		bin := withSection(allow, i)
		if i%2 == 1 {
			bin = withSection(deny, i)
		}
		e.write("gate.wasm", bin)
		if res := e.reload(true); res.Modules[0].Digest != digest(bin) {
			t.Fatalf("reload %d put %s in force, want %s", i, res.Modules[0].Digest, digest(bin))
		}
		// In force right after Reload returns, even for a session whose
		// verdict was cached a moment ago.
		sess := e.s.Decider().NewSession(&policy.Client{ClientID: "check"})
		want := policy.Allow
		if i%2 == 1 {
			want = policy.Deny
		}
		if got := e.s.Decider().Authorize(context.Background(), sess, &policy.AuthzRequest{Action: policy.ActionPublish, Topic: "t/0"}).Verdict; got != want {
			t.Fatalf("after reload %d: verdict %v, want %v", i, got, want)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !c.IsConnected() {
		t.Error("the client was disconnected by a reload")
	}
	t.Logf("%d reloads, %d decisions", reloads, decisions.Load())
	for _, l := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(l, "module failed") {
			t.Log(l)
		}
	}
	waitFor(t, testutil.Wait, "every replaced module closes", func() bool { return e.s.modules.loaded() == 1 })
}
