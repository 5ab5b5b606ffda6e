package broker

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// TestSysTopicsMosquittoSub reads $SYS with mosquitto_sub, as a Mosquitto
// dashboard would: moat's version, Mosquitto's topic names, and counters
// that match what the test did (none negative).
func TestSysTopicsMosquittoSub(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("mosquitto_sub")
	if err != nil {
		t.Fatalf("mosquitto_sub not installed: %v", err)
	}
	h := newHarness(t, t.TempDir(), tcpConfig, nil)
	h.sys.every = 100 * time.Millisecond
	h.sys.version = newSysPublisher(h.srv, "v9.9.9-test", nil, nil).version
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.close)
	addr := h.addr("tcp")

	sub := testutil.MustConnectV3(t, "tcp://"+addr, testutil.V3Options{ClientID: "sys-sub"})
	sub.Subscribe(t, "a/#", 1)
	pub := testutil.MustConnectV3(t, "tcp://"+addr, testutil.V3Options{ClientID: "sys-pub"})
	for range 5 {
		pub.Publish(t, "a/b", 1, false, "hello")
	}
	pub.Publish(t, "r/1", 1, true, "kept")
	for range 5 {
		sub.Inbox.Want(t, "a/b", "hello")
	}
	time.Sleep(300 * time.Millisecond) // a few $SYS refreshes

	host, port, _ := net.SplitHostPort(addr)
	n := len(h.sys.values(time.Now()))
	// The retained values, then at least one refresh that counts
	// mosquitto_sub's own connection and subscription; later values win.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-V", "mqttv311", "-h", host, "-p", port,
		"-t", "$SYS/#", "-v", "-C", strconv.Itoa(2*n)).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_sub: %v\n%s", err, out)
	}
	got := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// "$SYS/broker/retained messages/count 1": the topic has a space.
		i := strings.LastIndexByte(line, ' ')
		got[line[:i]] = line[i+1:]
	}
	num := func(topic string) int64 {
		t.Helper()
		v, ok := got[topic]
		if !ok {
			t.Fatalf("%s not published; got %v", topic, got)
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("%s = %q, not a number", topic, v)
		}
		if x < 0 {
			t.Errorf("%s = %v, negative", topic, x)
		}
		return int64(x)
	}
	if v := strings.TrimPrefix(lineOf(string(out), "$SYS/broker/version "), "$SYS/broker/version "); v != "moat version v9.9.9-test" {
		t.Errorf("$SYS/broker/version = %q, want moat version v9.9.9-test", v)
	}
	if v := lineOf(string(out), "$SYS/broker/uptime "); !regexp.MustCompile(`^\$SYS/broker/uptime \d+ seconds$`).MatchString(v) {
		t.Errorf("uptime line %q", v)
	}
	// sub, pub and mosquitto_sub itself.
	if c := num("$SYS/broker/clients/connected"); c != 3 {
		t.Errorf("clients/connected = %d, want 3", c)
	}
	if c := num("$SYS/broker/clients/total"); c != 3 {
		t.Errorf("clients/total = %d, want 3", c)
	}
	if c := num("$SYS/broker/clients/maximum"); c != 3 {
		t.Errorf("clients/maximum = %d, want 3", c)
	}
	num("$SYS/broker/clients/disconnected")
	if c := num("$SYS/broker/messages/inflight"); c != 0 {
		t.Errorf("messages/inflight = %d, want 0", c)
	}
	// 6 publishes received; $SYS messages are not counted as received.
	if c := num("$SYS/broker/publish/messages/received"); c != 6 {
		t.Errorf("publish/messages/received = %d, want 6", c)
	}
	if c := num("$SYS/broker/publish/messages/sent"); c < 5 {
		t.Errorf("publish/messages/sent = %d, want at least 5", c)
	}
	// sub's a/# and mosquitto_sub's $SYS/#.
	if c := num("$SYS/broker/subscriptions/count"); c != 2 {
		t.Errorf("subscriptions/count = %d, want 2", c)
	}
	// r/1 and the $SYS topics themselves, as in Mosquitto.
	if c := num("$SYS/broker/retained messages/count"); c != int64(n)+1 {
		t.Errorf("retained messages/count = %d, want %d", c, n+1)
	}
	if num("$SYS/broker/bytes/received") == 0 || num("$SYS/broker/bytes/sent") == 0 {
		t.Error("byte counters are zero")
	}
	for _, k := range []string{"messages/received", "publish/received", "bytes/sent", "connections"} {
		for _, w := range []string{"1min", "5min", "15min"} {
			num("$SYS/broker/load/" + k + "/" + w)
		}
	}
	if num("$SYS/broker/load/publish/received/1min") <= 0 {
		t.Error("load/publish/received/1min is 0 after 6 publishes")
	}
}

// lineOf returns the line of out that starts with prefix.
func lineOf(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
