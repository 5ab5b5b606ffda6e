package broker

import (
	"context"
	_ "embed"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// session.wasm denies everything under "secret/", allows "tenant/" only to
// clients with attributes, and allows the rest; built from session.wat.
//
//go:embed testdata/session.wasm
var sessionWasm []byte

// sessionAuthz loads session.wasm as an authorizer for the test.
func sessionAuthz(t testing.TB) policy.Authorizer {
	t.Helper()
	ctx := context.Background()
	engine, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A generous timeout: under the race detector on a loaded machine a
	// decision can overrun the default, which would deny for the wrong reason.
	m, err := engine.Load(ctx, wasm.ModuleConfig{Name: "session", Binary: sessionWasm, Decisions: []string{"authz"}, Instances: 2, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Close()
		_ = engine.Close(ctx)
	})
	return m
}

// sessionPolicy is anonymous clients and the users of attrsAuthn, each
// authorized by session.wasm.
func sessionPolicy(az policy.Authorizer, users map[string][]policy.Attribute) *policy.Policy {
	var authn []policy.Step[policy.Authenticator]
	if users != nil {
		authn = append(authn, policy.Step[policy.Authenticator]{Name: "users", Module: attrsAuthn(users)})
	}
	return policy.New(authn, []policy.Step[policy.Authorizer]{{Name: "session", Module: az}},
		policy.Options{AllowAnonymous: true})
}

// attrsAuthn allows each listed user with its attributes and ignores the
// rest (anonymous clients then pass by AllowAnonymous; others are refused).
func attrsAuthn(users map[string][]policy.Attribute) policy.Authenticator {
	return authnFunc(func(r *policy.AuthnRequest) policy.AuthnResult {
		attrs, ok := users[r.Client.Username]
		if !ok {
			return policy.AuthnResult{Verdict: policy.Ignore}
		}
		return policy.AuthnResult{Verdict: policy.Allow, Attributes: attrs}
	})
}

// mtlsConfig has a listener that requires a client certificate, one that
// accepts a verified one, and a plain one, all beside a bolt store.
const mtlsConfig = boltConfig + `
[[listener]]
name = "mtls"
type = "tls"
address = "127.0.0.1:0"
cert_file = "server.pem"
key_file = "server-key.pem"
client_ca_file = "ca.pem"
require_client_cert = true

[[listener]]
name = "optional"
type = "tls"
address = "127.0.0.1:0"
cert_file = "server.pem"
key_file = "server-key.pem"
client_ca_file = "ca.pem"
`

// TestTakeoverComparesWholeIdentity: a persistent session is passed on to
// a connection with its client id only when the identity is the same as
// far as authorization can tell, client certificate and listener included;
// another identity gets an empty session, without the QoS 1 message queued
// for the first one. MQTT 3.1.1 (paho.mqtt.golang) over real TLS.
func TestTakeoverComparesWholeIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs := testutil.WriteCerts(t, dir)
	other := certs.CA.Issue(t, testutil.LeafOptions{CommonName: "other-device", Client: true})
	az := sessionAuthz(t)
	h := startHarnessIn(t, dir, mtlsConfig, sessionPolicy(az, nil))

	tests := []struct {
		name                string
		first, second       testutil.V3Options
		firstURL, secondURL string
		gets                bool
	}{
		{
			name:     "same certificate",
			first:    testutil.V3Options{TLS: certs.ClientTLS(certs.Client)},
			second:   testutil.V3Options{TLS: certs.ClientTLS(certs.Client)},
			firstURL: h.url("ssl", "mtls"), secondURL: h.url("ssl", "mtls"),
			gets: true,
		},
		{
			name:     "another certificate",
			first:    testutil.V3Options{TLS: certs.ClientTLS(certs.Client)},
			second:   testutil.V3Options{TLS: certs.ClientTLS(other)},
			firstURL: h.url("ssl", "mtls"), secondURL: h.url("ssl", "mtls"),
		},
		{
			name:     "another listener",
			first:    testutil.V3Options{TLS: certs.ClientTLS(nil)},
			second:   testutil.V3Options{},
			firstURL: h.url("ssl", "optional"), secondURL: h.url("tcp", "tcp"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := "device-" + tc.name
			tc.first.ClientID, tc.first.Persistent = id, true
			tc.second.ClientID, tc.second.Persistent = id, true
			topic := "dev/" + id
			first := testutil.MustConnectV3(t, tc.firstURL, tc.first)
			first.Subscribe(t, topic, 1)
			first.Client.Disconnect(250)
			waitUntil(t, "the session is offline", func() bool { return offline(h.Broker, id) })

			p := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
			p.Publish(t, topic, 1, false, "for the first device")
			waitUntil(t, "the message is queued", func() bool { return queued(h.Broker, id) == 1 })

			second := testutil.MustConnectV3(t, tc.secondURL, tc.second)
			if tc.gets {
				second.Inbox.Want(t, topic, "for the first device")
				return
			}
			second.Inbox.None(t, 300*time.Millisecond)
			// Nor does it inherit the subscription.
			p.Publish(t, topic, 1, false, "live")
			second.Inbox.None(t, 300*time.Millisecond)
		})
	}
}

// offline reports whether the session of id exists without a connection.
func offline(b *Broker, id string) bool {
	cl, ok := b.srv.Clients.Get(id)
	return ok && cl.Closed()
}

// queued returns the number of messages waiting in the session of id.
func queued(b *Broker, id string) int {
	cl, ok := b.srv.Clients.Get(id)
	if !ok {
		return -1
	}
	return cl.State.Inflight.Len()
}

// TestQueuedRevoked: QoS 1 messages queued for an offline session are
// decided again when they leave. After a reload that revokes them, and
// after a restart with the stricter policy, the same identity reconnects
// and receives only what it may still read; the rest is dropped from the
// session and counted. MQTT 5 (paho.golang).
func TestQueuedRevoked(t *testing.T) {
	t.Parallel()
	az := sessionAuthz(t)
	strict := func() *policy.Policy { return sessionPolicy(az, nil) }
	tests := []struct {
		name   string
		revoke func(t *testing.T, h *harness) *harness
	}{
		{name: "reload", revoke: func(t *testing.T, h *harness) *harness {
			h.policy.decider.Swap(strict())
			res := h.Recheck(context.Background(), false)
			if res.Revoked != 1 || res.Dropped != 1 {
				t.Errorf("recheck = %+v, want secret/# revoked and its queued message dropped", res)
			}
			return h
		}},
		{name: "restart", revoke: func(t *testing.T, h *harness) *harness {
			h.close()
			return startHarnessIn(t, h.dir, boltConfig, strict())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := startHarnessIn(t, t.TempDir(), boltConfig, nil) // allow all
			opts := testutil.V5Options{ClientID: "sub", Resume: true, SessionExpiry: 3600}
			c := testutil.MustConnectV5(t, h.addr("tcp"), opts)
			c.Subscribe(t, "secret/#", 1)
			c.Subscribe(t, "open/#", 1)
			if err := c.Disconnect(&paho.Disconnect{}); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the session is offline", func() bool { return offline(h.Broker, "sub") })
			p := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
			p.Publish(t, "secret/a", 1, false, "revoked")
			p.Publish(t, "open/a", 1, false, "still allowed")
			waitUntil(t, "both messages are queued", func() bool { return queued(h.Broker, "sub") == 2 })
			p.Client.Disconnect(250)

			h = tc.revoke(t, h)
			c = testutil.MustConnectV5(t, h.addr("tcp"), opts)
			c.Inbox.Want(t, "open/a", "still allowed")
			c.Inbox.None(t, 300*time.Millisecond)
			if n := h.QueuedRefused(); n != 1 {
				t.Errorf("QueuedRefused = %d, want 1", n)
			}
			if !h.logs.contains("queued messages dropped: not authorized for delivery") {
				t.Error("the dropped message was not logged")
			}
		})
	}
}

// usersAuthn allows each listed user with its attributes, refuses any
// other username, and leaves anonymous clients to AllowAnonymous.
func usersAuthn(users map[string][]policy.Attribute) policy.Authenticator {
	return authnFunc(func(r *policy.AuthnRequest) policy.AuthnResult {
		if r.Client.Username == "" {
			return policy.AuthnResult{Verdict: policy.Ignore}
		}
		attrs, ok := users[r.Client.Username]
		if !ok {
			return policy.AuthnResult{Verdict: policy.Deny, Message: "unknown user"}
		}
		return policy.AuthnResult{Verdict: policy.Allow, Attributes: attrs}
	})
}

// denyPublish refuses publishing to one topic and ignores the rest.
type denyPublish string

func (d denyPublish) Authorize(_ context.Context, req *policy.AuthzRequest) (policy.AuthzResult, error) {
	if req.Action == policy.ActionPublish && req.Topic == string(d) {
		return policy.AuthzResult{Verdict: policy.Deny}, nil
	}
	return policy.AuthzResult{Verdict: policy.Ignore}, nil
}

var acme = []policy.Attribute{{Key: "tenant", Value: "acme"}}

// TestWillUnderNewPolicy: a will leaves only if the policy in force when
// it leaves allows it. A client that re-authentication disconnects has its
// will decided for the identity the new policy gives it, and dropped when
// the new policy refuses the client or that identity may not publish it;
// a client that loses its connection after a reload has its will decided
// by the new policy. The will's publisher is MQTT 3.1.1, the observer
// MQTT 5; session.wasm lets only clients with attributes use "tenant/".
func TestWillUnderNewPolicy(t *testing.T) {
	t.Parallel()
	az := sessionAuthz(t)
	withUsers := func(users map[string][]policy.Attribute, pre ...policy.Step[policy.Authorizer]) *policy.Policy {
		return policy.New([]policy.Step[policy.Authenticator]{{Name: "users", Module: usersAuthn(users)}},
			append(pre, policy.Step[policy.Authorizer]{Name: "session", Module: az}), policy.Options{AllowAnonymous: true})
	}
	tests := []struct {
		name   string
		reauth bool
		next   *policy.Policy
		kill   bool // the client loses its connection rather than being disconnected
		// takeover: another connection with the client's id replaces it
		takeover bool
		gets     bool
	}{
		{name: "re-authentication refuses the client", reauth: true,
			next: withUsers(map[string][]policy.Attribute{"obs": acme})},
		{name: "re-authentication: another identity that may not publish it", reauth: true,
			next: withUsers(map[string][]policy.Attribute{"w": nil, "obs": acme})},
		{name: "re-authentication: another identity that may publish it", reauth: true,
			next: withUsers(map[string][]policy.Attribute{"w": {{Key: "tenant", Value: "other"}}, "obs": acme}),
			gets: true},
		{name: "connection lost after a reload that revokes it", kill: true,
			next: withUsers(map[string][]policy.Attribute{"w": acme, "obs": acme},
				policy.Step[policy.Authorizer]{Name: "deny", Module: denyPublish("tenant/w")})},
		{name: "connection lost after a reload that keeps it", kill: true,
			next: withUsers(map[string][]policy.Attribute{"w": acme, "obs": acme}), gets: true},
		{name: "taken over after a reload that revokes it", takeover: true,
			next: withUsers(map[string][]policy.Attribute{"w": acme, "obs": acme},
				policy.Step[policy.Authorizer]{Name: "deny", Module: denyPublish("tenant/w")})},
		{name: "taken over after a reload that keeps it", takeover: true,
			next: withUsers(map[string][]policy.Attribute{"w": acme, "obs": acme}), gets: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc := tcpConfig
			if tc.reauth {
				doc += "\n[reload]\nreauthenticate = true\n"
			}
			h := startHarness(t, doc, withUsers(map[string][]policy.Attribute{"w": acme, "obs": acme}))
			obs := testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{ClientID: "obs", Username: "obs", Password: "x"})
			obs.Subscribe(t, "tenant/#", 1)
			w := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "w", Username: "w", Password: "x",
				Will: &testutil.Will{Topic: "tenant/w", Payload: "gone", QoS: 1}})

			h.policy.decider.Swap(tc.next)
			res := h.Recheck(context.Background(), tc.reauth)
			switch {
			case tc.kill:
				w.Kill(t)
			case tc.takeover:
				testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "w", Username: "w", Password: "x"})
			case res.Disconnected != 1:
				t.Fatalf("recheck = %+v, want the will's client disconnected", res)
			}
			if tc.gets {
				obs.Inbox.Want(t, "tenant/w", "gone")
				return
			}
			obs.Inbox.None(t, 300*time.Millisecond)
		})
	}
}

// TestRestoredSessionIdentity: the identity authentication gave a session
// is persisted with it. After a real restart on the same bolt file, the
// restored session, its client still offline, keeps a subscription that
// an attribute rule granted through a reload, queues a message that only
// that identity may read, and its client, reconnecting as the same
// identity, receives it; reconnecting as another identity (another
// tenant), it does not inherit the restored session.
func TestRestoredSessionIdentity(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	az := sessionAuthz(t)
	pol := func() *policy.Policy {
		return policy.New([]policy.Step[policy.Authenticator]{{Name: "users", Module: usersAuthn(map[string][]policy.Attribute{
			"alice": acme, "pub": acme,
		})}}, []policy.Step[policy.Authorizer]{{Name: "session", Module: az}}, policy.Options{})
	}
	alice := testutil.V3Options{ClientID: "alice", Username: "alice", Password: "x", Persistent: true}
	h := startHarnessIn(t, dir, boltConfig, pol())
	c := testutil.MustConnectV3(t, h.url("tcp", "tcp"), alice)
	if code := c.SubscribeCode(t, "tenant/acme/#", 1); code != 1 {
		t.Fatalf("SUBACK %#x, want 1", code)
	}
	c.Client.Disconnect(250)
	h.close()

	h = startHarnessIn(t, dir, boltConfig, pol())
	h.policy.decider.Swap(pol()) // a reload, which checks every subscription again
	if res := h.Recheck(context.Background(), false); res != (RecheckResult{}) {
		t.Fatalf("recheck after restart = %+v, want nothing revoked", res)
	}
	p := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Username: "pub", Password: "x"})
	p.Publish(t, "tenant/acme/1", 1, false, "for alice")
	waitUntil(t, "the message is queued for the restored session", func() bool { return queued(h.Broker, "alice") == 1 })
	h.close()

	// Restarted again: alice gets what was queued for her.
	h = startHarnessIn(t, dir, boltConfig, pol())
	c = testutil.MustConnectV3(t, h.url("tcp", "tcp"), alice)
	c.Inbox.Want(t, "tenant/acme/1", "for alice")
	c.Client.Disconnect(250)
	waitUntil(t, "alice is offline", func() bool { return offline(h.Broker, "alice") })
	p = testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Username: "pub", Password: "x"})
	p.Publish(t, "tenant/acme/2", 1, false, "for alice only")
	waitUntil(t, "the message is queued", func() bool { return queued(h.Broker, "alice") == 1 })
	h.close()

	// And again, with a policy that gives alice another tenant: the
	// restored session is of another identity, so her new connection
	// inherits neither its message nor its subscription.
	h = startHarnessIn(t, dir, boltConfig, policy.New([]policy.Step[policy.Authenticator]{{Name: "users",
		Module: usersAuthn(map[string][]policy.Attribute{"alice": {{Key: "tenant", Value: "other"}}})}},
		[]policy.Step[policy.Authorizer]{{Name: "session", Module: az}}, policy.Options{}))
	c = testutil.MustConnectV3(t, h.url("tcp", "tcp"), alice)
	c.Inbox.None(t, 300*time.Millisecond)
	if !h.logs.contains("session of another identity discarded") {
		t.Error("the restored session was not discarded")
	}
}

// TestHeldBackRevokedByReload: a connected MQTT 5 client with a receive
// maximum of 1 has one message in flight and two held back by the broker.
// A reload revokes one of those held back: it is dropped, and when the
// client acknowledges the first message the broker sends the other one,
// never the revoked one.
func TestHeldBackRevokedByReload(t *testing.T) {
	t.Parallel()
	az := sessionAuthz(t)
	h := startHarness(t, tcpConfig, nil) // allow all
	conn, err := net.DialTimeout("tcp", h.addr("tcp"), testutil.Wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	r := &rawV5{t: t, conn: conn}
	cp := packets.NewControlPacket(packets.CONNECT)
	c := cp.Content.(*packets.Connect)
	c.ProtocolName, c.ProtocolVersion = "MQTT", 5
	c.ClientID, c.CleanStart, c.KeepAlive = "slow", true, 30
	one := uint16(1)
	c.Properties = &packets.Properties{ReceiveMaximum: &one}
	r.write(cp)
	if ca := r.read(packets.CONNACK).Content.(*packets.Connack); ca.ReasonCode != 0 {
		t.Fatalf("CONNACK %#x", ca.ReasonCode)
	}
	if got := r.subscribe("#"); len(got) != 1 || got[0] != 1 {
		t.Fatalf("SUBACK % X", got)
	}

	p := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
	p.Publish(t, "open/1", 1, false, "sent")
	first := r.read(packets.PUBLISH).Content.(*packets.Publish)
	p.Publish(t, "secret/2", 1, false, "held, then revoked")
	p.Publish(t, "open/3", 1, false, "held")
	waitUntil(t, "two messages are held back", func() bool { return queued(h.Broker, "slow") == 3 })

	h.policy.decider.Swap(sessionPolicy(az, nil))
	if res := h.Recheck(context.Background(), false); res.Dropped != 1 {
		t.Fatalf("recheck = %+v, want the held-back secret/2 dropped", res)
	}
	ack := packets.NewControlPacket(packets.PUBACK)
	ack.Content.(*packets.Puback).PacketID = first.PacketID
	r.write(ack)
	if next := r.read(packets.PUBLISH).Content.(*packets.Publish); next.Topic != "open/3" {
		t.Fatalf("after the PUBACK the broker sent %q, want open/3", next.Topic)
	}
}

// TestTakeoverHammer: connections with one client id replace one another
// from several goroutines, some closing their sockets, some sending
// DISCONNECT. Every replaced connection's state is forgotten (replace and
// OnDisconnect, whichever runs second): at the end the hook holds the
// state of the one session left, and nothing else.
func TestTakeoverHammer(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig, nil)
	rounds := 20
	if testing.Short() {
		rounds = 8
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				c, _, err := testutil.ConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "hammer", Persistent: true})
				if err != nil {
					continue // refused while another took over: fine
				}
				if (g+i)%2 == 0 {
					c.Kill(t)
				} else {
					c.Client.Disconnect(0)
				}
			}
		}()
	}
	wg.Wait()
	waitUntil(t, "only the last session's state is left", func() bool {
		n := 0
		h.policy.clients.Range(func(k, _ any) bool {
			n++
			return true
		})
		return n <= 1
	})
}
