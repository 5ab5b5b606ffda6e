package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
)

// connectV5 connects as demo/demo over MQTT 5 and returns the socket and
// the CONNACK reason code.
func connectV5(t *testing.T, addr, id string) (net.Conn, byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion, c.ClientID, c.CleanStart, c.KeepAlive = "MQTT", 5, id, true, 30
	c.UsernameFlag, c.Username, c.PasswordFlag, c.Password = true, "demo", true, []byte("demo")
	c.Properties = &packets.Properties{}
	if _, err := cp.WriteTo(conn); err != nil {
		t.Fatal(err)
	}
	return conn, readPacket(t, conn, packets.CONNACK).Content.(*packets.Connack).ReasonCode
}

func readPacket(t *testing.T, conn net.Conn, typ byte) *packets.ControlPacket {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	cp, err := packets.ReadPacket(conn)
	if err != nil || cp.Type != typ {
		t.Fatalf("read: %v, %v; want packet type %d", cp, err, typ)
	}
	return cp
}

// TestBanCommand drives `moat ban` against a running `moat serve`: a ban
// disconnects the connected client and refuses it again, is listed, is
// written to the ban file, and is lifted by rm.
func TestBanCommand(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, demoTOML)
	s := startServe(t, dir)
	addr := s.address(t, "tcp")
	conn, code := connectV5(t, addr, "victim")
	if code != 0 {
		t.Fatalf("CONNACK %#x", code)
	}

	r := moat(t, dir, "ban", "add", "-c", "moat.toml", "-for", "1h", "-reason", "test", "client_id", "victim")
	if r.code != 0 || !strings.Contains(r.stdout, `banned client_id "victim" until `) || !strings.Contains(r.stdout, "disconnected 1 clients") {
		t.Fatalf("ban add: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if d := readPacket(t, conn, packets.DISCONNECT).Content.(*packets.Disconnect); d.ReasonCode != 0x8A {
		t.Errorf("DISCONNECT %#x, want 0x8A", d.ReasonCode)
	}
	if _, code := connectV5(t, addr, "victim"); code != 0x8A {
		t.Errorf("banned client reconnecting: CONNACK %#x, want 0x8A", code)
	}
	data, err := os.ReadFile(filepath.Join(dir, "moat.bans"))
	if err != nil || !strings.Contains(string(data), `"victim"`) {
		t.Errorf("ban file: %v\n%s", err, data)
	}

	r = moat(t, dir, "ban", "list", "-c", "moat.toml")
	if r.code != 0 || !regexp.MustCompile(`(?m)^client_id\s+victim\s+\S+Z\s+test$`).MatchString(r.stdout) {
		t.Errorf("ban list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = moat(t, dir, "ban", "add", "-c", "moat.toml", "ip", "not-an-address")
	if r.code != 1 || !strings.Contains(r.stderr, `ip "not-an-address"`) {
		t.Errorf("bad ban: exit %d, stderr %s", r.code, r.stderr)
	}
	r = moat(t, dir, "ban", "rm", "-c", "moat.toml", "client_id", "victim")
	if r.code != 0 {
		t.Errorf("ban rm: exit %d: %s", r.code, r.stderr)
	}
	r = moat(t, dir, "ban", "rm", "-c", "moat.toml", "client_id", "victim")
	if r.code != 1 || !strings.Contains(r.stderr, "no client_id ban") {
		t.Errorf("second ban rm: exit %d: %s", r.code, r.stderr)
	}
	if _, code := connectV5(t, addr, "victim"); code != 0 {
		t.Errorf("after ban rm: CONNACK %#x", code)
	}
	if r := moat(t, dir, "ban", "frobnicate"); r.code != 2 {
		t.Errorf("unknown verb: exit %d", r.code)
	}
}
