package broker

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// denyPrefix refuses every request on a topic under its prefix and allows
// the rest.
type denyPrefix string

func (d denyPrefix) Authorize(_ context.Context, req *policy.AuthzRequest) (policy.AuthzResult, error) {
	if strings.HasPrefix(req.Topic, string(d)) {
		return policy.AuthzResult{Verdict: policy.Deny}, nil
	}
	return policy.AuthzResult{Verdict: policy.Allow}, nil
}

// TestRecheckRestoredSession revokes a subscription of a session restored
// from the store whose client has not reconnected, and removes it from
// the store, so that the next restart does not bring it back.
func TestRecheckRestoredSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := testutil.V3Options{ClientID: "offline", Persistent: true}
	h := startHarnessIn(t, dir, boltConfig, nil)
	c := testutil.MustConnectV3(t, h.url("tcp", "tcp"), opts)
	c.Subscribe(t, "secret/#", 1)
	c.Subscribe(t, "public/#", 1)
	c.Client.Disconnect(250)
	h.close()

	h = startHarnessIn(t, dir, boltConfig, nil)
	h.policy.decider.Swap(policy.New(nil, []policy.Step[policy.Authorizer]{{Name: "deny", Module: denyPrefix("secret/")}},
		policy.Options{AllowAnonymous: true}))
	if res := h.Recheck(context.Background(), false); res != (RecheckResult{Revoked: 1}) {
		t.Errorf("recheck = %+v, want secret/# revoked", res)
	}
	h.close()

	// Allow-all again: only what the store still holds comes back.
	h = startHarnessIn(t, dir, boltConfig, nil)
	c = testutil.MustConnectV3(t, h.url("tcp", "tcp"), opts)
	p := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
	p.Publish(t, "secret/x", 1, false, "s")
	p.Publish(t, "public/x", 1, false, "p")
	c.Inbox.Want(t, "public/x", "p")
	c.Inbox.None(t, 200*time.Millisecond)
}

// authnFunc is an Authenticator in Go.
type authnFunc func(*policy.AuthnRequest) policy.AuthnResult

func (f authnFunc) Authenticate(_ context.Context, r *policy.AuthnRequest) (policy.AuthnResult, error) {
	return f(r), nil
}

// users is an authn policy: each listed user allowed (as superuser when
// the value says so), anyone else denied.
func users(list map[string]bool) *policy.Policy {
	return policy.New([]policy.Step[policy.Authenticator]{{Name: "users", Module: authnFunc(func(r *policy.AuthnRequest) policy.AuthnResult {
		super, ok := list[r.Client.Username]
		if !ok {
			return policy.AuthnResult{Verdict: policy.Deny}
		}
		return policy.AuthnResult{Verdict: policy.Allow, Superuser: super}
	})}}, nil, policy.Options{AuthzNoMatch: policy.Allow})
}

// TestRecheckReauthenticate re-authenticates connected clients: one the
// new policy refuses and one it gives another identity (superuser now) are
// disconnected, MQTT 5 clients with DISCONNECT 0x87 and a reason; one that
// is unchanged stays.
func TestRecheckReauthenticate(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig+"\n[reload]\nreauthenticate = true\n", users(map[string]bool{"stays": false, "removed": false, "promoted": false}))
	stays := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "stays", Username: "stays", Password: "x"})
	removed := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "removed", Username: "removed", Password: "x"})
	promoted := dialUserV5(t, h.addr("tcp"), "promoted")

	h.policy.decider.Swap(users(map[string]bool{"stays": false, "promoted": true}))
	if res := h.Recheck(context.Background(), true); res.Disconnected != 2 {
		t.Errorf("recheck = %+v, want 2 disconnected", res)
	}
	d := promoted.read(packets.DISCONNECT).Content.(*packets.Disconnect)
	if d.ReasonCode != 0x87 || d.Properties == nil || !strings.Contains(d.Properties.ReasonString, "another identity") {
		t.Errorf("DISCONNECT %#x %+v, want 0x87 saying why", d.ReasonCode, d.Properties)
	}
	waitUntil(t, "the refused 3.1.1 client is disconnected", func() bool { return !removed.IsConnected() })
	if !stays.IsConnected() {
		t.Error("an unchanged client was disconnected")
	}

	// Turned off, credentials are dropped: nothing to re-authenticate.
	h.SetReauthenticate(false)
	h.policy.decider.Swap(users(nil))
	if res := h.Recheck(context.Background(), true); res.Disconnected != 0 {
		t.Errorf("recheck after SetReauthenticate(false) = %+v, want nobody disconnected", res)
	}
}

// dialUserV5 connects an MQTT 5 client with a username and password,
// packet by packet.
func dialUserV5(t *testing.T, addr, user string) *rawV5 {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testutil.Wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := &rawV5{t: t, conn: conn}
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion = "MQTT", 5
	c.ClientID, c.CleanStart, c.KeepAlive = user, true, 30
	c.UsernameFlag, c.Username, c.PasswordFlag, c.Password = true, user, true, []byte("x")
	c.Properties = &packets.Properties{}
	r.write(cp)
	if ca := r.read(packets.CONNACK).Content.(*packets.Connack); ca.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", ca.ReasonCode)
	}
	return r
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testutil.Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, testutil.Wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
