package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// postDryRun sends POST DryRunPath over the admin socket; query is "" or
// "?config=...".
func postDryRun(t *testing.T, sock, query string) (int, DryRunResult) {
	t.Helper()
	resp, err := unixClient(sock).Post("http://moat"+DryRunPath+query, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var res DryRunResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatalf("%s: %v\n%s", resp.Status, err, body)
	}
	return resp.StatusCode, res
}

// TestDryRun runs the acl plugin with real clients, then asks, over the
// admin socket, what a stricter ACL file would do: the report names the
// subscription it would revoke and the recorded decisions it would
// refuse, and nothing changes: the subscriber keeps receiving and a new
// client still gets the old decisions. A real reload then does what the
// dry run said.
func TestDryRun(t *testing.T) {
	acl := "@subscribe check\ntopic readwrite public/#\ntopic readwrite private/#\n"
	doc := anonymous + "\n[admin]\nsocket = \"admin.sock\"\n" + aclPlugin
	e := startEnv(t, map[string][]byte{"acl.wasm": mustRead(t, testutil.Plugin(t, "acl")), "acl.txt": []byte(acl)}, doc)
	openAdmin(t, e)
	sock := filepath.Join(e.dir, "admin.sock")

	watcher := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "watcher"})
	watcher.Subscribe(t, "public/#", 1)
	watcher.Subscribe(t, "private/#", 1)
	pub := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "pub"})
	pub.Publish(t, "private/a", 1, false, "before")
	watcher.Inbox.Want(t, "private/a", "before")

	e.replace("acl.txt", []byte("@subscribe check\ntopic readwrite public/#\n"))
	code, res := postDryRun(t, sock, "")
	if code != http.StatusOK || !res.Loadable || len(res.Errors) != 0 {
		t.Fatalf("dry run: %d %+v", code, res)
	}
	if len(res.Revoked) != 1 || res.Revoked[0].ClientID != "watcher" || res.Revoked[0].Filter != "private/#" ||
		!res.Revoked[0].Connected || res.Revoked[0].Module != "acl" {
		t.Errorf("revoked = %+v, want watcher's private/#", res.Revoked)
	}
	changed := map[string]string{}
	for _, c := range res.Changes {
		changed[c.ClientID+" "+c.Action+" "+c.Topic] = c.Old + "->" + c.New
	}
	want := map[string]string{
		"watcher subscribe private/#": "allow->deny",
		"pub publish private/a":       "allow->deny",
		"watcher deliver private/a":   "allow->deny",
	}
	if len(changed) != len(want) {
		t.Errorf("changes = %v, want %v", changed, want)
	}
	for k, v := range want {
		if changed[k] != v {
			t.Errorf("change %q = %q, want %q (all: %v)", k, changed[k], v, changed)
		}
	}
	// Anonymous CONNECTs carry no secret: replayed, and unchanged.
	if res.NotReplayable != 0 || res.Replayed != 6 || res.Recorded != 6 {
		t.Errorf("recorded %d, replayed %d, not replayable %d; want 6, 6 (2 connects, 2 subscribes, publish, delivery), 0",
			res.Recorded, res.Replayed, res.NotReplayable)
	}

	// Nothing changed: the subscription stays, the cached and the fresh
	// decisions are the old policy's, and the module loaded for the dry
	// run is closed again.
	pub.Publish(t, "private/b", 1, false, "after")
	watcher.Inbox.Want(t, "private/b", "after")
	if !subscribes(t, e, "private/x") {
		t.Error("after the dry run a new client may not subscribe to private/x: the running policy changed")
	}
	waitFor(t, 10*time.Second, "the dry run's module closes", func() bool { return e.s.modules.loaded() == 1 })
	if n := e.logs.count("subscription revoked"); n != 0 {
		t.Errorf("the dry run revoked %d subscriptions", n)
	}
	if n := e.logs.count(`msg="reload dry run" audit="reload dry run"`); n != 1 {
		t.Errorf("%d dry-run audit records, want 1:\n%s", n, e.logs)
	}

	// A candidate file beside the config: a deny-all gate would revoke
	// both subscriptions.
	e.write("deny.wasm", wat(t, "deny"))
	e.write("next.toml", []byte(header()+doc[:len(doc)-len(aclPlugin)]+gate("gate", "deny.wasm")))
	next := filepath.Join(e.dir, "next.toml")
	code, cand := postDryRun(t, sock, "?config="+url.QueryEscape(next))
	if code != http.StatusOK || cand.Config != next || len(cand.Revoked) != 2 {
		t.Errorf("candidate: %d, config %q, revoked %+v; want 200, %s and 2", code, cand.Config, cand.Revoked, next)
	}
	if !subscribes(t, e, "private/y") {
		t.Error("after the candidate's dry run a new client may not subscribe to private/y")
	}

	// A refused config is reported as a reload would report it.
	e.replace("moat.toml", []byte(header()+doc+"\nbogus = 1\n"))
	code, bad := postDryRun(t, sock, "")
	if code != http.StatusUnprocessableEntity || bad.Loadable || len(bad.Errors) != 1 {
		t.Errorf("broken config: %d %+v, want 422 and one error", code, bad)
	}

	// The real reload does what the dry run said.
	e.replace("moat.toml", []byte(header()+doc))
	if r := e.reload(true); r.Revoked != len(res.Revoked) {
		t.Errorf("reload revoked %d subscriptions, the dry run said %d", r.Revoked, len(res.Revoked))
	}
	pub2 := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "pub2"})
	pub2.Publish(t, "public/c", 1, false, "marker")
	watcher.Inbox.Want(t, "public/c", "marker")
}
