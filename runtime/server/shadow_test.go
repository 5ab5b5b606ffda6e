package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// shadowOf turns a [[plugin]] block named "demo" into a shadow plugin
// named name.
func shadowOf(block, name string) string {
	return strings.Replace(block, `name = "demo"`, "name = \""+name+"\"\nshadow = true", 1)
}

func shadowStats(e *env, name string) policy.ShadowStats {
	for _, st := range e.s.ShadowStats() {
		if st.Name == name {
			return st
		}
	}
	return policy.ShadowStats{}
}

// TestShadowPlugin runs the demo plugin live and, as a shadow, the demo
// plugin with a stricter user list and rules: real clients get what the
// live policy decides, while every question the shadow answers otherwise
// is counted and logged, naming the request and never the password.
func TestShadowPlugin(t *testing.T) {
	users := []demoUser{{"alice", "alice-pw-1"}, {"bob", "bob-pw-2"}}
	live := demo(users, []demoRule{{"alice", "all", "#"}, {"bob", "all", "#"}})
	strict := shadowOf(demo(users[:1], []demoRule{{"alice", "all", "feed/#"}}), "next")
	// The shadow comes first in the file: were it a step of the chain,
	// it would decide before the live plugin.
	e := startEnv(t, map[string][]byte{"demo.wasm": demoWasm(t)}, strict+live)

	alice := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "alice", Username: "alice", Password: "alice-pw-1"})
	alice.Subscribe(t, "feed/#", 1)  // shadow agrees
	alice.Subscribe(t, "inbox/#", 1) // shadow refuses
	// bob is unknown to the shadow: its CONNECT and publishes disagree.
	bob := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "bob", Username: "bob", Password: "bob-pw-2"})
	bob.Publish(t, "feed/1", 1, false, "m1")
	alice.Inbox.Want(t, "feed/1", "m1")
	bob.Publish(t, "inbox/alice", 1, false, "m2")
	alice.Inbox.Want(t, "inbox/alice", "m2")
	if !alice.IsConnected() || !bob.IsConnected() {
		t.Fatal("a live client was disconnected")
	}

	// Disagreements: bob's CONNECT, alice's inbox/# subscription, bob's
	// two publishes, the delivery of inbox/alice to alice.
	waitFor(t, 10*time.Second, "the shadow's disagreements", func() bool { return shadowStats(e, "next").Disagreed >= 5 })
	st := shadowStats(e, "next")
	if st.Disagreed != 5 || st.Dropped != 0 || st.Errors != 0 {
		t.Errorf("stats = %+v, want 5 disagreements, nothing dropped, no error", st)
	}
	// alice's CONNECT, feed/# and the delivery of feed/1.
	waitFor(t, 10*time.Second, "the shadow's agreements", func() bool { return shadowStats(e, "next").Agreed >= 3 })
	logs := e.logs.String()
	for _, want := range []string{
		`msg="shadow plugin disagrees" module=next chain=authn client_id=bob username=bob`,
		`msg="shadow plugin disagrees" module=next chain=authz client_id=alice username=alice action=subscribe topic=inbox/# live=allow live_module=demo shadow=deny`,
		`msg="shadow plugin disagrees" module=next chain=authz client_id=bob username=bob action=publish topic=feed/1 live=allow live_module=demo shadow=deny`,
		`msg="shadow plugin disagrees" module=next chain=authz client_id=alice username=alice action=deliver topic=inbox/alice live=allow`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks\n%s\nin\n%s", want, logs)
		}
	}
	if !strings.Contains(logs, `msg="policy: shadow: plugins next; asked what the live chains are asked, they decide nothing`) {
		t.Error("the start log does not name the shadow plugin")
	}
	if !strings.Contains(logs, "authz: plugins demo; ") {
		t.Error("the start log counts the shadow in the live authz chain")
	}
	if n := e.logs.count("shadow plugin disagrees"); n != 5 {
		t.Errorf("%d disagreement records, want 5", n)
	}
	for _, secret := range []string{"alice-pw-1", "bob-pw-2"} {
		if strings.Contains(logs, secret) {
			t.Errorf("password %q is in the log", secret)
		}
	}

	// A shadow plugin is a [[plugin]]: a reload takes it out and puts it
	// back without a restart.
	e.config(live)
	if res := e.reload(true); len(res.NeedsRestart) != 0 {
		t.Errorf("removing a shadow needs a restart: %v", res.NeedsRestart)
	}
	if got := e.s.ShadowStats(); len(got) != 0 {
		t.Errorf("shadows after removing it: %+v", got)
	}
	waitFor(t, 10*time.Second, "the removed shadow's totals in the log", func() bool {
		return e.logs.count(`msg="shadow plugin totals" module=next sampled=8 dropped=0 agreed=3 disagreed=5`) == 1
	})
	e.config(shadowOf(gate("demo", "deny.wasm"), "deny-all") + live)
	e.write("deny.wasm", wat(t, "deny"))
	res := e.reload(true)
	if len(res.NeedsRestart) != 0 || len(res.Modules) != 2 || !res.Modules[0].Shadow || res.Modules[1].Shadow {
		t.Errorf("adding a shadow: modules %+v, needs restart %v", res.Modules, res.NeedsRestart)
	}
	bob.Publish(t, "feed/2", 1, false, "m3")
	alice.Inbox.Want(t, "feed/2", "m3")
	waitFor(t, 10*time.Second, "the deny-all shadow disagrees", func() bool { return shadowStats(e, "deny-all").Disagreed >= 2 })

	// The CONNECTs of alice and bob carried passwords, which the history
	// does not keep: a dry run says it cannot replay them.
	dr := e.s.DryRun(context.Background(), Trigger{Source: TriggerAPI}, "")
	if !dr.Loadable || dr.NotReplayable != 2 || len(dr.Changes) != 0 ||
		!slices.ContainsFunc(dr.Notes, func(n string) bool { return strings.Contains(n, "2 recorded CONNECTs carried a password") }) {
		t.Errorf("dry run: %+v, want 2 CONNECTs not replayable and no change", dr)
	}
}
