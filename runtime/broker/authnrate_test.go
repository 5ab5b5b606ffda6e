package broker

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// connackFrom connects an MQTT 5 client from the local address from (any
// of 127.0.0.0/8 reaches a loopback listener) with a password, and returns
// the CONNACK reason code.
func connackFrom(t *testing.T, from, addr, id, password string) byte {
	t.Helper()
	d := &net.Dialer{Timeout: testutil.Wait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	defer conn.Close()
	c := paho.NewClient(paho.ClientConfig{ClientID: id, Conn: conn, PacketTimeout: testutil.Wait})
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	ca, err := c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true,
		Username: "dev", UsernameFlag: true, Password: []byte(password), PasswordFlag: true})
	if err == nil {
		_ = c.Disconnect(&paho.Disconnect{})
		return 0
	}
	if ca == nil {
		t.Fatalf("connect %q from %s: no CONNACK: %v", id, from, err)
	}
	return ca.ReasonCode
}

// countingUsers allows user "dev" with password "right" and counts the
// calls, so that a test sees which CONNECTs reached the authn chain.
func countingUsers(calls *atomic.Int64) *policy.Policy {
	return policy.New([]policy.Step[policy.Authenticator]{{Name: "users", Module: authnFunc(func(r *policy.AuthnRequest) policy.AuthnResult {
		calls.Add(1)
		if r.Client.Username == "dev" && string(r.Password) == "right" {
			return policy.AuthnResult{Verdict: policy.Allow}
		}
		return policy.AuthnResult{Verdict: policy.Deny, Reason: policy.ReasonBadUserNameOrPass}
	})}}, nil, policy.Options{AuthzNoMatch: policy.Allow})
}

func TestLimitAuthnFailureRate(t *testing.T) {
	var calls atomic.Int64
	// One failure a second, three at once; the failed-login cache is off
	// so that every attempt would reach the module without the limit.
	h := startHarness(t, tcpConfig+"[limits]\nauthn_failure_rate_per_ip = 1\nauthn_failure_burst_per_ip = 3\nauthn_failure_ttl = \"0s\"\n", countingUsers(&calls))
	addr := h.addr("tcp")
	want := func(step string, got, code byte, n int64) {
		t.Helper()
		if got != code {
			t.Errorf("%s: CONNACK %#x, want %#x", step, got, code)
		}
		if c := calls.Load(); c != n {
			t.Errorf("%s: %d authn calls, want %d", step, c, n)
		}
	}

	// Logins that succeed take no token: more of them than the burst.
	for i := range 5 {
		want("good login", connackFrom(t, "127.0.0.1", addr, "ok", "right"), 0, int64(i+1))
	}
	// Three failures (rotating client ids) use up the bucket...
	for i := range 3 {
		want("failure within the burst", connackFrom(t, "127.0.0.1", addr, "bad"+string(rune('a'+i)), "wrong"), 0x86, int64(5+i+1))
	}
	// ... and then every CONNECT from the address is refused unasked, the
	// right password too, MQTT 3.1.1 with return code 3.
	want("failure past the burst", connackFrom(t, "127.0.0.1", addr, "badx", "wrong"), 0x9F, 8)
	want("good login from the exhausted address", connackFrom(t, "127.0.0.1", addr, "ok", "right"), 0x9F, 8)
	if _, code, _ := testutil.ConnectV3(t, "tcp://"+addr, testutil.V3Options{ClientID: "v3", Username: "dev", Password: "wrong"}); code != 3 {
		t.Errorf("3.1.1 CONNECT from the exhausted address: return code %d, want 3", code)
	}
	if c := calls.Load(); c != 8 {
		t.Errorf("after the 3.1.1 CONNECT: %d authn calls, want 8", c)
	}
	// Another address is not affected.
	want("good login from another address", connackFrom(t, "127.0.0.2", addr, "ok2", "right"), 0, 9)

	if n := h.Refused("authn_failure_rate_per_ip"); n != 3 {
		t.Errorf("Refused(authn_failure_rate_per_ip) = %d, want 3", n)
	}
	if n := h.LimitStats().ConnectionsRefused["authn_failure_rate_per_ip"]; n != 3 {
		t.Errorf("LimitStats refused authn_failure_rate_per_ip = %d, want 3", n)
	}
	if !h.logs.contains("authn_failure_rate_per_ip") {
		t.Error("no audit record names authn_failure_rate_per_ip")
	}

	// A token comes back after a second: one more attempt reaches the module.
	deadline := time.Now().Add(testutil.Wait)
	for {
		time.Sleep(200 * time.Millisecond)
		code := connackFrom(t, "127.0.0.1", addr, "ok", "right")
		if code == 0 {
			break
		}
		if code != 0x9F || time.Now().After(deadline) {
			t.Fatalf("good login after the refill: CONNACK %#x", code)
		}
	}
	if c := calls.Load(); c != 10 {
		t.Errorf("after the refill: %d authn calls, want 10", c)
	}
}

func TestLimitAuthnFailureDefaultAndOff(t *testing.T) {
	var calls atomic.Int64
	// Off: every failure reaches the module.
	h := startHarness(t, tcpConfig+"[limits]\nauthn_failure_rate_per_ip = 0\nauthn_failure_ttl = \"0s\"\n", countingUsers(&calls))
	for i := range 25 {
		if code := connackFrom(t, "127.0.0.1", h.addr("tcp"), "bad"+string(rune('a'+i)), "wrong"); code != 0x86 {
			t.Fatalf("failure %d with the limit off: CONNACK %#x, want 0x86", i+1, code)
		}
	}
	if c := calls.Load(); c != 25 {
		t.Errorf("%d authn calls, want 25", c)
	}

	// The default: a burst of 20.
	calls.Store(0)
	h = startHarness(t, tcpConfig+"[limits]\nauthn_failure_ttl = \"0s\"\n", countingUsers(&calls))
	refused := 0
	for i := range 25 {
		if connackFrom(t, "127.0.0.1", h.addr("tcp"), "bad"+string(rune('a'+i)), "wrong") == 0x9F {
			refused++
		}
	}
	// 25 attempts at default 10/s may win back a token or a few while
	// they run, never many: the bucket holds 20.
	if c := calls.Load(); c < 20 || c == 25 || int(c)+refused != 25 {
		t.Errorf("default limit: %d authn calls and %d refused of 25, want 20 or a little more called", c, refused)
	}
}

// TestAuthnFailuresBounded checks that the table of addresses stays
// bounded under failures from ever new addresses, and that buckets which
// refilled are forgotten.
func TestAuthnFailuresBounded(t *testing.T) {
	f := &authnFailures{rate: 1, burst: 2, m: map[netip.Addr]*failBucket{}}
	now := time.Now()
	a := netip.AddrFrom4([4]byte{10, 0, 0, 1})
	f.failed(a, now)
	f.failed(a, now)
	if !f.exhausted(a, now) || f.exhausted(a, now.Add(1100*time.Millisecond)) {
		t.Fatal("a bucket of 2 at 1/s: want exhausted after 2 failures and a token back after 1s")
	}
	for i := range maxFailAddrs + 100 {
		f.failed(netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 12: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}), now)
	}
	if n := f.tracked(); n != maxFailAddrs {
		t.Errorf("%d addresses tracked, want the bound %d", n, maxFailAddrs)
	}
	// Past the bound a new address is not limited.
	b := netip.AddrFrom4([4]byte{10, 0, 0, 2})
	f.failed(b, now)
	f.failed(b, now)
	if f.exhausted(b, now) {
		t.Error("an untracked address is limited")
	}
	// Once the buckets refilled, a new failure prunes them.
	f.failed(b, now.Add(3*time.Second))
	if n := f.tracked(); n != 1 {
		t.Errorf("%d addresses tracked after the refill, want 1", n)
	}
	var nilF *authnFailures
	nilF.failed(a, now)
	if nilF.exhausted(a, now) {
		t.Error("a nil limiter limits")
	}
}
