package broker

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

const boltConfig = tcpConfig + `
[persistence]
type = "bolt"
path = "state.db"
`

// TestPersistenceRestart: QoS 1 messages queued for offline persistent
// sessions, the sessions' subscriptions and retained messages survive a
// restart on the same bolt file.
func TestPersistenceRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHarnessIn(t, dir, boltConfig, nil)

	v3opts := testutil.V3Options{ClientID: "persist-v3", Persistent: true}
	v5opts := testutil.V5Options{ClientID: "persist-v5", Resume: true, SessionExpiry: 3600}
	c3 := testutil.MustConnectV3(t, h.url("tcp", "tcp"), v3opts)
	c3.Subscribe(t, "persist/queue", 1)
	c3.Client.Disconnect(250)
	c5 := testutil.MustConnectV5(t, h.addr("tcp"), v5opts)
	c5.Subscribe(t, "persist/queue", 1)
	if err := c5.Disconnect(&paho.Disconnect{}); err != nil {
		t.Fatal(err)
	}

	p := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
	p.Publish(t, "persist/queue", 1, false, "queued 1")
	p.Publish(t, "persist/queue", 1, false, "queued 2")
	p.Publish(t, "persist/retained", 1, true, "kept")
	p.Client.Disconnect(250)
	h.close()

	h = startHarnessIn(t, dir, boltConfig, nil)
	c3 = testutil.MustConnectV3(t, h.url("tcp", "tcp"), v3opts)
	wantPayloads(t, c3.Inbox, "persist/queue", "queued 1", "queued 2")
	c5 = testutil.MustConnectV5(t, h.addr("tcp"), v5opts)
	if !c5.Connack.SessionPresent {
		t.Error("MQTT 5 CONNACK after restart: session present = false")
	}
	wantPayloads(t, c5.Inbox, "persist/queue", "queued 1", "queued 2")

	// The subscriptions were restored: the clients receive without
	// subscribing again.
	p = testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
	p.Publish(t, "persist/queue", 1, false, "after restart")
	c3.Inbox.Want(t, "persist/queue", "after restart")
	c5.Inbox.Want(t, "persist/queue", "after restart")

	late := testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{})
	late.Subscribe(t, "persist/retained", 1)
	if m := late.Inbox.Want(t, "persist/retained", "kept"); !m.Retain {
		t.Error("restored retained message delivered without the retain flag")
	}
}

// wantPayloads receives len(want) messages on topic, in any order (mochi
// resends restored messages in map order), and nothing more.
func wantPayloads(t *testing.T, in *testutil.Inbox, topic string, want ...string) {
	t.Helper()
	var got []string
	for range want {
		m := in.Next(t)
		if m.Topic != topic {
			t.Fatalf("message on %q, want %q", m.Topic, topic)
		}
		got = append(got, m.Payload)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("payloads %q, want %q", got, want)
	}
	in.None(t, 50*time.Millisecond)
}

// TestPersistenceLocked: a second broker on a bolt file in use fails to
// start, naming the file, and leaves the first one serving.
func TestPersistenceLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := startHarnessIn(t, dir, boltConfig, nil)

	second := newHarness(t, dir, boltConfig, nil)
	err := second.Start(context.Background())
	if err == nil {
		second.close()
		t.Fatal("a second broker opened the same bolt file")
	}
	t.Logf("Start: %v", err)
	if !strings.Contains(err.Error(), "state.db") {
		t.Errorf("Start: %v, want it to name the file", err)
	}
	if err := second.Close(context.Background()); err != nil {
		t.Errorf("Close after failed Start: %v", err)
	}
	roundTrip(t, v3Peer{testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})}, "locked/still-serving")
}

func TestPersistenceMissingDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, dir, tcpConfig+`
[persistence]
type = "bolt"
path = "no/such/dir/state.db"
`, nil)
	err := h.Start(context.Background())
	if err == nil {
		h.close()
		t.Fatal("Start succeeded without the store's directory")
	}
	t.Logf("Start: %v", err)
	if !strings.Contains(err.Error(), "state.db") {
		t.Errorf("Start: %v, want it to name the file", err)
	}
	// The listener was released.
	if err := h.Close(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestBoltStoreSubscriptions: only granted filters are stored, so a filter
// the policy refused is not restored after a restart.
func TestBoltStoreSubscriptions(t *testing.T) {
	t.Parallel()
	s := newBoltStore()
	srv := mqtt.New(&mqtt.Options{Logger: newMochiLogger(newTestLogger(t))})
	if err := srv.AddHook(s, boltOptions(filepath.Join(t.TempDir(), "s.db"))); err != nil {
		t.Fatal(err)
	}
	cl := srv.NewClient(nil, "tcp", "c1", false)
	pk := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Subscribe},
		Filters: packets.Subscriptions{
			{Filter: "granted/qos1", Qos: 1},
			{Filter: "refused/by/policy", Qos: 1},
			{Filter: "granted/qos0"},
			{Filter: "refused/wildcard/#", Qos: 2},
		},
	}
	s.OnSubscribed(cl, pk, []byte{1, packets.ErrNotAuthorized.Code, 0, packets.ErrWildcardSubscriptionsNotSupported.Code})
	subs, err := s.StoredSubscriptions()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]byte{}
	for _, sub := range subs {
		got[sub.Filter] = sub.Qos
	}
	want := map[string]byte{"granted/qos1": 1, "granted/qos0": 0}
	if len(got) != len(want) || got["granted/qos1"] != 1 || got["granted/qos0"] != 0 {
		t.Errorf("stored subscriptions %v, want %v", got, want)
	}

	// After Stop every call is a no-op, not a "db not open" error or a race.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s.OnSubscribed(cl, pk, []byte{1, 1, 1, 1})
	s.OnSysInfoTick(srv.Info)
	if _, err := s.StoredSubscriptions(); err == nil {
		t.Error("StoredSubscriptions after Stop: no error")
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// TestBoltStoreReadsMochiFile: a file written by mochi's own bolt hook (an
// earlier moat's store) loads: its client, subscription, inflight message
// (with the packet id recovered from its key) and retained message. Its
// client has no persisted identity.
func TestBoltStoreReadsMochiFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "old.db")
	srv := mqtt.New(&mqtt.Options{Logger: newMochiLogger(newTestLogger(t))})
	old := new(bolt.Hook)
	if err := srv.AddHook(old, &bolt.Options{Path: path}); err != nil {
		t.Fatal(err)
	}
	cl := srv.NewClient(nil, "tcp", "c1", false)
	cl.Properties.Username = []byte("alice")
	old.OnSessionEstablished(cl, packets.Packet{})
	old.OnSubscribed(cl, packets.Packet{Filters: packets.Subscriptions{{Filter: "a/#", Qos: 1}}}, []byte{1})
	old.OnQosPublish(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "a/b", PacketID: 7, Payload: []byte("p")}, 0, 0)
	old.OnRetainMessage(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true}, TopicName: "r", Payload: []byte("kept")}, 1)
	if err := old.Stop(); err != nil {
		t.Fatal(err)
	}

	s := newBoltStore()
	srv2 := mqtt.New(&mqtt.Options{Logger: newMochiLogger(newTestLogger(t))})
	if err := srv2.AddHook(s, boltOptions(path)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	clients, err := s.StoredClients()
	if err != nil || len(clients) != 1 || clients[0].ID != "c1" || string(clients[0].Username) != "alice" {
		t.Fatalf("clients %+v, %v", clients, err)
	}
	if _, ok := s.identity("c1"); ok {
		t.Error("an identity for a client stored without one")
	}
	subs, err := s.StoredSubscriptions()
	if err != nil || len(subs) != 1 || subs[0].Filter != "a/#" || subs[0].Qos != 1 {
		t.Fatalf("subscriptions %+v, %v", subs, err)
	}
	inflight, err := s.StoredInflightMessages()
	if err != nil || len(inflight) != 1 || inflight[0].PacketID != 7 || inflight[0].TopicName != "a/b" {
		t.Fatalf("inflight %+v, %v", inflight, err)
	}
	retained, err := s.StoredRetainedMessages()
	if err != nil || len(retained) != 1 || string(retained[0].Payload) != "kept" {
		t.Fatalf("retained %+v, %v", retained, err)
	}
}
