package broker

import (
	"errors"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// TestAdminClientsKick lists a connected client with its subscriptions,
// kicks an MQTT 5 client (DISCONNECT 0x98 with the reason) and a 3.1.1 one
// (connection closed), and refuses to kick an unknown id.
func TestAdminClientsKick(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig, users(map[string]bool{"": false, "u3": false}))
	before := time.Now().Add(-time.Second)
	r, ack := dialRawV5(t, h.addr("tcp"), "v5/with slash", 30)
	if ack.ReasonCode != 0 {
		t.Fatalf("connack %#x", ack.ReasonCode)
	}
	if codes := r.subscribe("a/#", "b"); len(codes) != 2 || codes[0] > 2 {
		t.Fatalf("suback %v", codes)
	}
	v3 := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "v3", Username: "u3"})

	cs := h.Clients()
	if len(cs) != 2 || cs[0].ID != "v3" || cs[1].ID != "v5/with slash" {
		t.Fatalf("clients = %+v", cs)
	}
	c3, c5 := cs[0], cs[1]
	if c3.Username != "u3" || c3.Protocol != "3.1.1" || c3.Listener != "tcp" || !c3.Connected || c3.Remote == "" {
		t.Errorf("v3 = %+v", c3)
	}
	if c5.Protocol != "5" || c5.ConnectedSince.Before(before) || c5.ConnectedSince.After(time.Now()) {
		t.Errorf("v5 = %+v", c5)
	}
	if len(c5.Subscriptions) != 2 || c5.Subscriptions[0] != (Subscription{Filter: "a/#", QoS: 1}) || c5.Subscriptions[1].Filter != "b" {
		t.Errorf("v5 subscriptions = %+v", c5.Subscriptions)
	}
	if ls := h.Listeners(); len(ls) != 1 || ls[0].Name != "tcp" || ls[0].Type != "tcp" || ls[0].Clients != 2 {
		t.Errorf("listeners = %+v", ls)
	}

	if _, err := h.Kick("nobody", "x"); !errors.Is(err, ErrNoClient) {
		t.Errorf("kick nobody: %v, want ErrNoClient", err)
	}
	if _, err := h.Kick("v5/with slash", "maintenance"); err != nil {
		t.Fatal(err)
	}
	d := r.read(packets.DISCONNECT).Content.(*packets.Disconnect)
	if d.ReasonCode != ReasonAdministrativeAction || d.Properties == nil || d.Properties.ReasonString != "maintenance" {
		t.Errorf("disconnect = %#x %+v, want 0x98 \"maintenance\"", d.ReasonCode, d.Properties)
	}
	if _, err := h.Kick("v3", ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the 3.1.1 client is disconnected", func() bool { return !v3.IsConnectionOpen() })
	waitUntil(t, "no client listed", func() bool { return len(h.Clients()) == 0 })
}

// TestAdminDeleteSession deletes an offline persistent session: it is gone
// from the list, no longer receives, and a restart on the same store does
// not bring it back. A connected one is disconnected and deleted too.
func TestAdminDeleteSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHarnessIn(t, dir, boltConfig, nil)
	off := testutil.V3Options{ClientID: "offline", Persistent: true}
	c := testutil.MustConnectV3(t, h.url("tcp", "tcp"), off)
	c.Subscribe(t, "q/#", 1)
	c.Client.Disconnect(250)
	p := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "pub"})
	p.Publish(t, "q/1", 1, false, "queued")
	live := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "live", Persistent: true})
	live.Subscribe(t, "q/#", 1)

	// mochi acknowledges a publish before it queues it for the offline
	// session: wait for the queue.
	waitUntil(t, "the publish queued for the offline session", func() bool {
		ss := h.Sessions()
		return len(ss) == 3 && ss[1].Queued == 1
	})
	ss := h.Sessions()
	if len(ss) != 3 || ss[1].ID != "offline" || ss[1].Connected || ss[1].Queued != 1 || ss[1].DisconnectedAt.IsZero() || len(ss[1].Subscriptions) != 1 {
		t.Fatalf("sessions = %+v", ss)
	}
	if _, err := h.DeleteSession("none", ""); !errors.Is(err, ErrNoClient) {
		t.Errorf("delete none: %v, want ErrNoClient", err)
	}
	if _, err := h.DeleteSession("offline", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.DeleteSession("live", "gone"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "only pub's session", func() bool { s := h.Sessions(); return len(s) == 1 && s[0].ID == "pub" })
	h.close()

	h = startHarnessIn(t, dir, boltConfig, nil)
	if s := h.Sessions(); len(s) != 0 {
		t.Fatalf("after restart: sessions %+v, want none", s)
	}
	c = testutil.MustConnectV3(t, h.url("tcp", "tcp"), off)
	p = testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
	p.Publish(t, "q/2", 1, false, "new")
	c.Inbox.None(t, 300*time.Millisecond) // no subscription, no queued message
}
