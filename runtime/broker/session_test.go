package broker

import (
	"context"
	_ "embed"
	"testing"
	"time"

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
	m, err := engine.Load(ctx, wasm.ModuleConfig{Name: "session", Binary: sessionWasm, Decisions: []string{"authz"}, Instances: 2})
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
