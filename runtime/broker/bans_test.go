package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

func TestBans(t *testing.T) {
	dir := t.TempDir()
	doc := tcpConfig + "[limits]\nban_file = \"bans.json\"\n"
	h := startHarnessIn(t, dir, doc, nil)
	addr := h.addr("tcp")

	// A connected client is disconnected at once: MQTT 5 with 0x8A.
	r, _ := dialRawV5(t, addr, "evil", 30)
	v3 := testutil.MustConnectV3(t, "tcp://"+addr, testutil.V3Options{ClientID: "evil3"})
	n, err := h.AddBan(Ban{Kind: BanClientID, Value: "evil"})
	if err != nil || n != 1 {
		t.Fatalf("AddBan = %d, %v; want 1 disconnected", n, err)
	}
	if d := r.read(packets.DISCONNECT).Content.(*packets.Disconnect); d.ReasonCode != 0x8A {
		t.Errorf("DISCONNECT %#x, want 0x8A", d.ReasonCode)
	}
	if code := connackV5(t, addr, "evil"); code != 0x8A {
		t.Errorf("banned client id: CONNACK %#x, want 0x8A", code)
	}
	if code := connackV5(t, addr, "good"); code != 0 {
		t.Errorf("other client refused: %#x", code)
	}

	if n, err := h.AddBan(Ban{Kind: BanClientID, Value: "evil3"}); err != nil || n != 1 {
		t.Fatalf("AddBan(evil3) = %d, %v", n, err)
	}
	deadline := time.Now().Add(testutil.Wait)
	for v3.IsConnectionOpen() {
		if time.Now().After(deadline) {
			t.Fatal("banned 3.1.1 client still connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := connackV3(t, "tcp://"+addr, "evil3"); code != 5 {
		t.Errorf("banned 3.1.1 client: return code %d, want 5", code)
	}

	// A CIDR ban refuses at accept, with the CONNACK still correct.
	if _, err := h.AddBan(Ban{Kind: BanIP, Value: "127.0.0.0/8", Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if code := connackV5(t, addr, "good"); code != 0x8A {
		t.Errorf("banned address: CONNACK %#x, want 0x8A", code)
	}
	if ok, err := h.RemoveBan(BanIP, "127.0.0.1/8"); err != nil || !ok {
		t.Fatalf("RemoveBan = %v, %v", ok, err)
	}
	if code := connackV5(t, addr, "good"); code != 0 {
		t.Errorf("unbanned address refused: %#x", code)
	}

	// By username: refused before any module is asked.
	if _, err := h.AddBan(Ban{Kind: BanUsername, Value: "mallory"}); err != nil {
		t.Fatal(err)
	}
	_, ca, _ := testutil.ConnectV5(t, addr, testutil.V5Options{ClientID: "m1", Username: "mallory", Password: "x"})
	if ca == nil || ca.ReasonCode != 0x8A {
		t.Errorf("banned username: CONNACK %+v, want 0x8A", ca)
	}
	_, ca, _ = testutil.ConnectV5(t, addr, testutil.V5Options{ClientID: "m2", Username: "trent", Password: "x"})
	if ca == nil || ca.ReasonCode == 0x8A {
		t.Errorf("other username: CONNACK %+v, want the policy's refusal, not 0x8A", ca)
	}
	if _, err := h.RemoveBan(BanUsername, "mallory"); err != nil {
		t.Fatal(err)
	}

	// A ban ends at its expiry.
	if _, err := h.AddBan(Ban{Kind: BanClientID, Value: "brief", Expires: time.Now().Add(300 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if code := connackV5(t, addr, "brief"); code != 0x8A {
		t.Errorf("before expiry: CONNACK %#x, want 0x8A", code)
	}
	time.Sleep(400 * time.Millisecond)
	if code := connackV5(t, addr, "brief"); code != 0 {
		t.Errorf("after expiry: CONNACK %#x, want 0", code)
	}

	// An expired ban matches nothing.
	if _, err := h.AddBan(Ban{Kind: BanUsername, Value: "old", Expires: time.Now().Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	if got := h.Bans(); len(got) != 2 {
		t.Errorf("Bans() = %+v, want the two client id bans", got)
	}
	for _, bad := range []Ban{{Kind: "mac", Value: "x"}, {Kind: BanIP, Value: "300.1.1.1"}, {Kind: BanUsername}} {
		if _, err := h.AddBan(bad); err == nil {
			t.Errorf("AddBan(%+v) accepted", bad)
		}
	}

	// Persisted: a new broker on the same files refuses the same clients.
	h.close()
	if _, err := os.Stat(filepath.Join(dir, "bans.json")); err != nil {
		t.Fatal(err)
	}
	h2 := startHarnessIn(t, dir, doc, nil)
	if code := connackV5(t, h2.addr("tcp"), "evil"); code != 0x8A {
		t.Errorf("after restart: CONNACK %#x, want 0x8A", code)
	}
	if got := h2.Bans(); len(got) != 2 {
		t.Errorf("after restart Bans() = %+v", got)
	}
}

func TestBanFileBroken(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "moat.bans", "[{\"kind\":\"ip\",\"value\":\"nonsense\"}]")
	h := newHarness(t, dir, tcpConfig, nil)
	err := h.Start(t.Context())
	if err == nil {
		h.close()
		t.Fatal("started with a broken ban file")
	}
	if want := "moat.bans: entry 0"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not name %q", err, want)
	}
}

func TestFlapping(t *testing.T) {
	h := startHarness(t, tcpConfig+"[limits]\nflap_count = 3\nflap_window = \"1m\"\nflap_ban = \"1m\"\n", nil)
	addr := h.addr("tcp")
	// Rotating client ids: the address is what flaps.
	for i, id := range []string{"f1", "f2", "f3"} {
		c := testutil.MustConnectV3(t, "tcp://"+addr, testutil.V3Options{ClientID: id})
		c.Disconnect(50)
		// Wait until the broker has seen the disconnect.
		deadline := time.Now().Add(testutil.Wait)
		for h.srv.Clients.Len() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("disconnect %d not seen", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if code := connackV5(t, addr, "fresh"); code != 0x8A {
		t.Errorf("after 3 disconnects from one address: CONNACK %#x, want 0x8A", code)
	}
	bans := h.Bans()
	if len(bans) != 1 || bans[0].Kind != BanIP || bans[0].Reason != ReasonFlapping || time.Until(bans[0].Expires) > time.Minute {
		t.Errorf("Bans() = %+v, want one temporary flapping ban of 127.0.0.1", bans)
	}
	if h.Refused("flapping") != 1 {
		t.Errorf("Refused(flapping) = %d", h.Refused("flapping"))
	}
}
