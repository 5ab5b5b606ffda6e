package broker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ppackets "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"go.etcd.io/bbolt"

	"github.com/moat-mqtt/moat/runtime/crypto"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/sdk/envelope"
)

// ---- the payload test policy: native Go modules ----

// payloadUsers lets anyone in. Usernames carry roles: "ta-sub" and
// "tb-sub" belong to tenants whose subscriber keys are "ta" and "tb";
// "blind" may receive everything but decrypt nothing; "admin" is a
// superuser.
type payloadUsers struct{}

func (payloadUsers) Authenticate(_ context.Context, req *policy.AuthnRequest) (policy.AuthnResult, error) {
	res := policy.AuthnResult{Verdict: policy.Allow, Superuser: req.Client.Username == "admin"}
	switch req.Client.Username {
	case "ta-sub":
		res.Attributes = []policy.Attribute{{Key: "tenant-key", Value: "ta"}}
	case "tb-sub":
		res.Attributes = []policy.Attribute{{Key: "tenant-key", Value: "tb"}}
	}
	return res, nil
}

// decryptRules allows everything except decrypt for "blind" and for the
// tenant subscribers, who get their own envelopes instead.
type decryptRules struct{}

func (decryptRules) Authorize(_ context.Context, req *policy.AuthzRequest) (policy.AuthzResult, error) {
	if req.Action == policy.ActionDecrypt {
		switch req.Client.Username {
		case "blind", "ta-sub", "tb-sub":
			return policy.AuthzResult{Verdict: policy.Deny}, nil
		}
	}
	return policy.AuthzResult{Verdict: policy.Allow}, nil
}

// topicModes is the payload policy: one topic tree per mode.
type topicModes struct{}

func (topicModes) Payload(_ context.Context, req *policy.PayloadRequest) (policy.PayloadResult, error) {
	allow := func(m policy.Mode, key string) (policy.PayloadResult, error) {
		return policy.PayloadResult{Verdict: policy.Allow, Mode: m, KeyID: key}, nil
	}
	if req.Action == policy.ActionDeliver {
		for _, a := range req.Client.Attributes {
			if a.Key == "tenant-key" {
				return allow(0, a.Value)
			}
		}
		return policy.PayloadResult{Verdict: policy.Deny}, nil
	}
	t := req.Topic
	switch {
	case strings.HasPrefix(t, "plain/"):
		return allow(policy.ModePlaintext, "")
	case strings.HasPrefix(t, "e2e/only-dev/"):
		return allow(policy.ModeRequireE2E, "dev")
	case strings.HasPrefix(t, "e2e/"):
		return allow(policy.ModeRequireE2E, "")
	case strings.HasPrefix(t, "rest/k2/"):
		return allow(policy.ModeAtRest, "k2")
	case strings.HasPrefix(t, "rest/bad-key/"):
		return allow(policy.ModeAtRest, "no-such-key")
	case strings.HasPrefix(t, "rest/"):
		return allow(policy.ModeAtRest, "")
	case strings.HasPrefix(t, "reenc/"):
		return allow(policy.ModeReencrypt, "")
	case strings.HasPrefix(t, "deny/"):
		return policy.PayloadResult{Verdict: policy.Deny, Reason: 0x97, Message: "payload refused by rule"}, nil
	case strings.HasPrefix(t, "peek/"):
		if bytes.Contains(req.Payload, []byte("forbidden")) {
			return policy.PayloadResult{Verdict: policy.Deny, Message: "forbidden word"}, nil
		}
		return allow(policy.ModeAtRest, "")
	}
	return policy.PayloadResult{Verdict: policy.Ignore}, nil
}

func payloadPolicy() *policy.Policy {
	return policy.New(
		[]policy.Step[policy.Authenticator]{{Name: "users", Module: payloadUsers{}}},
		[]policy.Step[policy.Authorizer]{{Name: "rules", Module: decryptRules{}}},
		policy.Options{Payload: []policy.Step[policy.Payloader]{{Name: "modes", Module: topicModes{}}}})
}

// ---- keys and brokers ----

// payloadKeyIDs are the keys of the test ring: k1 (active at rest), k2,
// dev (a publishing device's key), ta and tb (tenants' subscriber keys).
var payloadKeyIDs = []string{"k1", "k2", "dev", "ta", "tb"}

// payloadEnv is a directory with key files and a moat.toml naming them.
type payloadEnv struct {
	dir  string
	keys map[string][]byte // key material, as the devices and tenants hold it
}

func newPayloadEnv(t testing.TB) *payloadEnv {
	t.Helper()
	e := &payloadEnv{dir: t.TempDir(), keys: map[string][]byte{}}
	if err := os.Mkdir(filepath.Join(e.dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, id := range payloadKeyIDs {
		p := filepath.Join(e.dir, "keys", id+".key")
		if err := crypto.GenerateKeyFile(p); err != nil {
			t.Fatal(err)
		}
		k, err := crypto.ReadKeyFile(p)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[id] = k
	}
	return e
}

// doc returns a moat.toml with the given keys (all when none), k1 active
// at rest unless active says otherwise, and extra appended.
func (e *payloadEnv) doc(active string, ids []string, extra string) string {
	if ids == nil {
		ids = payloadKeyIDs
	}
	if active == "" {
		active = "k1"
	}
	var b strings.Builder
	b.WriteString(tcpConfig)
	for _, id := range ids {
		fmt.Fprintf(&b, "[[key]]\nid = %q\nfile = \"keys/%s.key\"\n", id, id)
	}
	fmt.Fprintf(&b, "[keys]\nat_rest = %q\n", active)
	b.WriteString(extra)
	return b.String()
}

// ring loads the ring of doc.
func (e *payloadEnv) ring(t testing.TB, doc string) *crypto.RingHolder {
	t.Helper()
	r, err := LoadRing(context.Background(), parseConfig(t, e.dir, doc), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := new(crypto.RingHolder)
	h.Store(r)
	return h
}

// seal makes an envelope as a device holding key id would.
func (e *payloadEnv) seal(t testing.TB, id, topic, plain string) []byte {
	t.Helper()
	env, err := envelope.Seal(envelope.AES256GCM, id, e.keys[id], topic, []byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// open opens env with key id as a subscriber holding it would.
func (e *payloadEnv) open(id, topic string, env []byte) (string, error) {
	b, err := envelope.Open(e.keys[id], topic, env)
	return string(b), err
}

// startPayloadBroker starts a broker on doc in dir with the payload policy
// and ring, and closes it at the end of the test.
func startPayloadBroker(t testing.TB, dir, doc string, ring *crypto.RingHolder) *harness {
	t.Helper()
	logs := newTestLog(t)
	return startPayloadBrokerLog(t, dir, doc, ring, logs, slog.New(logs))
}

// startPayloadBrokerLog is startPayloadBroker logging to log (benchmarks
// discard their logs; logs may be nil then).
func startPayloadBrokerLog(t testing.TB, dir, doc string, ring *crypto.RingHolder, logs *testLog, log *slog.Logger) *harness {
	t.Helper()
	cfg := parseConfig(t, dir, doc)
	b, err := New(Options{Config: cfg, Decider: newDecider(t, payloadPolicy(), log), Logger: log, Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{Broker: b, t: t, dir: dir, cfg: cfg, logs: logs}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.close() })
	return h
}

// ---- an MQTT 5 client that sees whole PUBLISH packets ----

type v5Msgs struct {
	*paho.Client
	msgs chan *paho.Publish
	disc chan *paho.Disconnect
}

type v5Opts struct {
	id, username string
	resume       bool
	expiry       uint32
	aliasMax     uint16
	will         *paho.WillMessage
}

func dialV5Msgs(t testing.TB, addr string, o v5Opts) (*v5Msgs, *paho.Connack, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, testutil.Wait)
	if err != nil {
		t.Fatal(err)
	}
	c := &v5Msgs{msgs: make(chan *paho.Publish, 4096), disc: make(chan *paho.Disconnect, 1)}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID:      o.id,
		Conn:          ppackets.NewThreadSafeConn(conn),
		PacketTimeout: testutil.Wait,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			select {
			case c.msgs <- pr.Packet:
			default:
			}
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case c.disc <- d:
			default:
			}
		},
	})
	// RequestProblemInfo: mochi v2.7.9 drops the user properties of every
	// packet, PUBLISH included, for a client that asks for no problem
	// information (paho.golang's default).
	cp := &paho.Connect{ClientID: o.id, KeepAlive: 30, CleanStart: !o.resume,
		Properties: &paho.ConnectProperties{RequestProblemInfo: true}}
	if o.username != "" {
		cp.Username, cp.UsernameFlag = o.username, true
	}
	if o.expiry > 0 {
		cp.Properties.SessionExpiryInterval = &o.expiry
	}
	if o.aliasMax > 0 {
		cp.Properties.TopicAliasMaximum = &o.aliasMax
	}
	if o.will != nil {
		cp.WillMessage, cp.WillProperties = o.will, &paho.WillProperties{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	ca, err := c.Connect(ctx, cp)
	if err != nil {
		conn.Close()
		return nil, ca, err
	}
	t.Cleanup(func() { _ = c.Disconnect(&paho.Disconnect{}); conn.Close() })
	return c, ca, nil
}

func mustV5Msgs(t testing.TB, addr string, o v5Opts) *v5Msgs {
	t.Helper()
	c, ca, err := dialV5Msgs(t, addr, o)
	if err != nil {
		t.Fatalf("connect %q: %v (connack %+v)", o.username, err, ca)
	}
	return c
}

func (c *v5Msgs) sub(t testing.TB, filter string, qos byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	sa, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: qos}}})
	if err != nil || sa.Reasons[0] >= 0x80 {
		t.Fatalf("subscribe %q: %v %v", filter, err, sa)
	}
}

// pub publishes and returns the PUBACK or PUBREC reason code (0 at QoS 0).
// mochi acknowledges QoS 1 with 0x01 when the PUBACK carries properties:
// success is any code below 0x80.
func (c *v5Msgs) pub(t testing.TB, p *paho.Publish) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	pr, err := c.Publish(ctx, p)
	if pr != nil {
		return pr.ReasonCode
	}
	if err != nil {
		t.Fatalf("publish %q: %v", p.Topic, err)
	}
	return 0
}

func (c *v5Msgs) next(t testing.TB) *paho.Publish {
	t.Helper()
	select {
	case p := <-c.msgs:
		return p
	case <-time.After(testutil.Wait):
		t.Fatal("no message")
		return nil
	}
}

func (c *v5Msgs) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case p := <-c.msgs:
		t.Fatalf("unexpected message on %q: %q retain=%v", p.Topic, p.Payload, p.Retain)
	case <-time.After(d):
	}
}

func userProp(p *paho.Publish, key string) (string, bool) {
	if p.Properties == nil {
		return "", false
	}
	for _, u := range p.Properties.User {
		if u.Key == key {
			return u.Value, true
		}
	}
	return "", false
}

// ---- tests ----

// TestPayloadModes publishes on each mode's tree and checks what each kind
// of subscriber receives, over MQTT 5 and 3.1.1.
func TestPayloadModes(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", nil, "")
	h := startPayloadBroker(t, e.dir, doc, e.ring(t, doc))
	addr := h.addr("tcp")

	subs := map[string]*v5Msgs{}
	for _, u := range []string{"reader", "blind", "ta-sub", "tb-sub", "admin"} {
		subs[u] = mustV5Msgs(t, addr, v5Opts{username: u})
		subs[u].sub(t, "#", 1)
	}
	reader3 := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Username: "reader"})
	reader3.Subscribe(t, "#", 1)
	blind3 := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Username: "blind"})
	blind3.Subscribe(t, "#", 1)
	pub := mustV5Msgs(t, addr, v5Opts{username: "publisher"})

	// expect says what a subscriber gets: the plaintext, or an envelope
	// under a key that the check opens it with.
	type expect struct {
		plain    bool   // the published payload unchanged
		envKey   string // else: an envelope under this key, opening to the plaintext
		exactEnv bool   // the publisher's own envelope, byte for byte
	}
	tests := []struct {
		name  string
		topic string
		e2e   string // publish an envelope sealed under this key
		want  map[string]expect
	}{
		{"plaintext", "plain/a", "", map[string]expect{
			"reader": {plain: true}, "blind": {plain: true}, "ta-sub": {plain: true},
		}},
		{"at-rest", "rest/a", "", map[string]expect{
			"reader": {plain: true}, "admin": {plain: true}, "blind": {envKey: "k1"}, "ta-sub": {envKey: "k1"},
		}},
		{"at-rest with the module's key", "rest/k2/a", "", map[string]expect{
			"reader": {plain: true}, "blind": {envKey: "k2"},
		}},
		{"require-e2e is never opened", "e2e/a", "dev", map[string]expect{
			"reader": {exactEnv: true}, "admin": {exactEnv: true}, "blind": {exactEnv: true},
		}},
		{"reencrypt per tenant", "reenc/a", "dev", map[string]expect{
			"ta-sub": {envKey: "ta"}, "tb-sub": {envKey: "tb"},
			// no tenant key: the deliver decision denies, the stored envelope goes out
			"reader": {envKey: "k1"}, "blind": {envKey: "k1"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plain := "payload of " + tc.name
			payload := []byte(plain)
			if tc.e2e != "" {
				payload = e.seal(t, tc.e2e, tc.topic, plain)
			}
			if code := pub.pub(t, &paho.Publish{Topic: tc.topic, QoS: 1, Payload: payload,
				Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: "app", Value: "x"}}}}); code >= 0x80 {
				t.Fatalf("publish: reason code %#x", code)
			}
			for u, s := range subs {
				m := s.next(t)
				if m.Topic != tc.topic {
					t.Fatalf("%s: message on %q", u, m.Topic)
				}
				if _, ok := userProp(m, markerKey); ok {
					t.Errorf("%s: the internal marker reached a subscriber", u)
				}
				if v, _ := userProp(m, "app"); v != "x" {
					t.Errorf("%s: the publisher's user property is gone", u)
				}
				w, ok := tc.want[u]
				if !ok {
					continue
				}
				switch {
				case w.plain:
					if string(m.Payload) != plain {
						t.Errorf("%s: got %q, want the plaintext", u, m.Payload)
					}
				case w.exactEnv:
					if !bytes.Equal(m.Payload, payload) {
						t.Errorf("%s: the publisher's envelope was changed", u)
					}
				default:
					got, err := e.open(w.envKey, tc.topic, m.Payload)
					if err != nil || got != plain {
						t.Errorf("%s: envelope does not open with %s: %q %v", u, w.envKey, got, err)
					}
					if v, _ := userProp(m, envelope.Property); v != "1" {
						t.Errorf("%s: envelope without the %s property", u, envelope.Property)
					}
					if m.Properties.ContentType != envelope.ContentType {
						t.Errorf("%s: content type %q", u, m.Properties.ContentType)
					}
					for _, other := range payloadKeyIDs {
						if other == w.envKey {
							continue
						}
						if _, err := e.open(other, tc.topic, m.Payload); err == nil {
							t.Errorf("%s: envelope for %s opens with %s", u, w.envKey, other)
						}
					}
				}
			}
			r3, b3 := reader3.Inbox.Next(t), blind3.Inbox.Next(t)
			if tc.want["reader"].plain && r3.Payload != plain {
				t.Errorf("3.1.1 reader: got %q, want the plaintext", r3.Payload)
			}
			if w := tc.want["blind"]; w.envKey != "" {
				if got, err := e.open(w.envKey, tc.topic, []byte(b3.Payload)); err != nil || got != plain {
					t.Errorf("3.1.1 blind: %q %v", got, err)
				}
			}
		})
	}
	st := h.PayloadStats()
	if st.Sealed != 3 || st.Decrypted == 0 || st.Reencrypted != 2 || st.DeliveryFailures != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestPayloadRefusals: every way a publish is refused, with the reason
// code an MQTT 5 client sees, over PUBACK (QoS 1) and PUBREC (QoS 2).
func TestPayloadRefusals(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", nil, "")
	h := startPayloadBroker(t, e.dir, doc, e.ring(t, doc))
	watch := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "reader"})
	watch.sub(t, "#", 1)

	good := e.seal(t, "dev", "reenc/x", "ok")
	mut := func(f func([]byte) []byte) []byte { return f(bytes.Clone(good)) }
	unknown, _ := envelope.Seal(envelope.AES256GCM, "stranger", bytes.Repeat([]byte{9}, 32), "reenc/x", []byte("ok"))
	tests := []struct {
		name    string
		topic   string
		payload []byte
		code    byte
		stat    func(PayloadStats) uint64
	}{
		{"not an envelope under require-e2e", "e2e/x", []byte("plain text"), 0x99, func(s PayloadStats) uint64 { return s.Invalid }},
		{"key id not accepted", "e2e/only-dev/x", e.seal(t, "k2", "e2e/only-dev/x", "hi"), 0x99, func(s PayloadStats) uint64 { return s.Invalid }},
		{"unknown envelope version", "e2e/x", mut(func(b []byte) []byte { b[2] = 9; return b }), 0x99, func(s PayloadStats) uint64 { return s.Invalid }},
		{"truncated envelope", "e2e/x", good[:12], 0x99, func(s PayloadStats) uint64 { return s.Invalid }},
		{"reencrypt of plaintext", "reenc/x", []byte("plain text"), 0x99, func(s PayloadStats) uint64 { return s.Invalid }},
		{"reencrypt of tampered ciphertext", "reenc/x", mut(func(b []byte) []byte { b[len(b)-20] ^= 1; return b }), 0x99, func(s PayloadStats) uint64 { return s.Invalid }},
		{"reencrypt on the wrong topic (AAD)", "reenc/y", good, 0x99, func(s PayloadStats) uint64 { return s.Invalid }},
		{"reencrypt of a truncated envelope", "reenc/x", good[:len(good)-1], 0x99, func(s PayloadStats) uint64 { return s.Invalid }},
		{"reencrypt of an unknown version", "reenc/x", mut(func(b []byte) []byte { b[2] = 2; return b }), 0x99, func(s PayloadStats) uint64 { return s.Invalid }},
		{"reencrypt under a key not in the ring", "reenc/x", unknown, 0x99, func(s PayloadStats) uint64 { return s.Invalid }},
		{"deny with the module's code", "deny/x", []byte("x"), 0x97, func(s PayloadStats) uint64 { return s.Denied }},
		{"deny after reading the payload", "peek/x", []byte("a forbidden word"), 0x87, func(s PayloadStats) uint64 { return s.Denied }},
		{"at-rest under a key not in the ring", "rest/bad-key/x", []byte("x"), 0x80, func(s PayloadStats) uint64 { return s.Failed }},
	}
	for _, tc := range tests {
		for _, qos := range []byte{1, 2} {
			t.Run(fmt.Sprintf("%s/qos%d", tc.name, qos), func(t *testing.T) {
				before := tc.stat(h.PayloadStats())
				r, _ := dialRawV5(t, h.addr("tcp"), "", 30)
				cp := ppackets.NewControlPacket(ppackets.PUBLISH)
				p := cp.Content.(*ppackets.Publish)
				p.Topic, p.QoS, p.PacketID, p.Payload = tc.topic, qos, 7, tc.payload
				p.Properties = &ppackets.Properties{}
				r.write(cp)
				var code byte
				var reason string
				if qos == 1 {
					ack := r.read(ppackets.PUBACK).Content.(*ppackets.Puback)
					code, reason = ack.ReasonCode, ack.Properties.ReasonString
				} else {
					ack := r.read(ppackets.PUBREC).Content.(*ppackets.Pubrec)
					code, reason = ack.ReasonCode, ack.Properties.ReasonString
				}
				if code != tc.code {
					t.Errorf("reason code %#x (%q), want %#x", code, reason, tc.code)
				}
				if reason == "" {
					t.Error("no reason string")
				}
				if got := tc.stat(h.PayloadStats()); got != before+1 {
					t.Errorf("counter %d, want %d", got, before+1)
				}
				// The connection is still usable: a good publish goes through.
				cp = ppackets.NewControlPacket(ppackets.PUBLISH)
				p = cp.Content.(*ppackets.Publish)
				p.Topic, p.QoS, p.PacketID, p.Payload = "plain/after", 1, 8, []byte("after")
				p.Properties = &ppackets.Properties{}
				r.write(cp)
				if ack := r.read(ppackets.PUBACK).Content.(*ppackets.Puback); ack.ReasonCode != 0 {
					t.Errorf("next publish: %#x", ack.ReasonCode)
				}
				if m := watch.next(t); m.Topic != "plain/after" {
					t.Errorf("a refused message was delivered on %q", m.Topic)
				}
			})
		}
	}
	if !h.logs.contains("payload refused") {
		t.Error("refusals were not logged")
	}
	for _, l := range h.logs.atLeast(slog.LevelDebug) {
		if strings.Contains(l, "a forbidden word") || strings.Contains(l, "plain text") {
			t.Errorf("a payload reached the log: %s", l)
		}
	}
}

// TestPayloadRefusalsOldClients: MQTT 3.1.1 and QoS 0 refusals, which no
// acknowledgement can carry, with and without require_e2e_disconnect.
func TestPayloadRefusalsOldClients(t *testing.T) {
	t.Parallel()
	for _, disconnect := range []bool{false, true} {
		t.Run(fmt.Sprintf("require_e2e_disconnect=%v", disconnect), func(t *testing.T) {
			t.Parallel()
			e := newPayloadEnv(t)
			doc := e.doc("", nil, fmt.Sprintf("[payload]\nrequire_e2e_disconnect = %v\n", disconnect))
			h := startPayloadBroker(t, e.dir, doc, e.ring(t, doc))
			watch := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "reader"})
			watch.sub(t, "#", 1)

			// 3.1.1, QoS 1, not an envelope: acked and dropped, or disconnected.
			c3 := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Username: "p3"})
			tok := c3.Client.Publish("e2e/x", 1, false, "plain text")
			tok.WaitTimeout(testutil.Wait)
			waitFor := time.Now().Add(testutil.Wait)
			for disconnect && c3.Client.IsConnectionOpen() && time.Now().Before(waitFor) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := c3.Client.IsConnectionOpen(); got == disconnect {
				t.Errorf("3.1.1 connection open = %v after an invalid publish", got)
			}
			if !disconnect && tok.Error() != nil {
				t.Errorf("3.1.1 QoS 1 invalid publish not acknowledged: %v", tok.Error())
			}

			// 3.1.1, QoS 1, denied: disconnected, as mochi does for authz.
			d3 := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Username: "p3"})
			d3.Client.Publish("deny/x", 1, false, "x").WaitTimeout(200 * time.Millisecond)
			for d3.Client.IsConnectionOpen() && time.Now().Before(waitFor) {
				time.Sleep(5 * time.Millisecond)
			}
			if d3.Client.IsConnectionOpen() {
				t.Error("3.1.1 client still connected after a denied QoS 1 publish")
			}

			// MQTT 5, QoS 0: dropped, or DISCONNECT 0x99.
			r, _ := dialRawV5(t, h.addr("tcp"), "", 30)
			cp := ppackets.NewControlPacket(ppackets.PUBLISH)
			p := cp.Content.(*ppackets.Publish)
			p.Topic, p.Payload, p.Properties = "e2e/x", []byte("plain"), &ppackets.Properties{}
			r.write(cp)
			if disconnect {
				if d := r.read(ppackets.DISCONNECT).Content.(*ppackets.Disconnect); d.ReasonCode != 0x99 {
					t.Errorf("DISCONNECT %#x, want 0x99", d.ReasonCode)
				}
			}
			watch.none(t, 100*time.Millisecond)
			eventually(t, "2 invalid and 1 denied publish counted", func() bool {
				st := h.PayloadStats()
				return st.Invalid == 2 && st.Denied == 1
			})
		})
	}
}

// boltPayload is the payload tests' config addition for a bolt store.
const boltPayload = "[persistence]\ntype = \"bolt\"\npath = \"state.db\"\n"

// plainIn reports whether the file holds plain in any form mochi's store
// could write it: raw, or base64 (JSON []byte) at any alignment.
func plainIn(t *testing.T, path, plain string) bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(plain)) {
		return true
	}
	for shift := 0; shift < 3; shift++ {
		enc := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("_", shift) + plain))
		// Skip the characters that depend on the prefix and the suffix.
		start, end := (shift*4+2)/3+1, len(enc)-4
		if end > start && bytes.Contains(data, []byte(enc[start:end])) {
			return true
		}
	}
	return false
}

// TestPayloadAtRestStore: retained messages, messages queued for offline
// sessions (3.1.1 and MQTT 5) and wills are stored only as envelopes; the
// file shows no plaintext; a restart with the same ring serves them all.
func TestPayloadAtRestStore(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", nil, boltPayload)
	ring := e.ring(t, doc)
	h := startPayloadBroker(t, e.dir, doc, ring)

	v3opts := testutil.V3Options{ClientID: "queue-v3", Username: "reader", Persistent: true}
	c3 := testutil.MustConnectV3(t, h.url("tcp", "tcp"), v3opts)
	c3.Subscribe(t, "rest/queue", 1)
	c3.Client.Disconnect(250)
	v5opts := v5Opts{id: "queue-v5", username: "reader", resume: true, expiry: 3600}
	c5 := mustV5Msgs(t, h.addr("tcp"), v5opts)
	c5.sub(t, "rest/queue", 1)
	_ = c5.Disconnect(&paho.Disconnect{})
	waitOffline(t, h, "queue-v3")
	waitOffline(t, h, "queue-v5")

	const (
		queued   = "QUEUED-SECRET-PAYLOAD-0123456789"
		retained = "RETAINED-SECRET-PAYLOAD-987654321"
		will     = "WILL-SECRET-PAYLOAD-abcdefghijklmno"
		control  = "PLAINTEXT-CONTROL-PAYLOAD-XYZ-42"
	)
	p := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "publisher"})
	for _, m := range []struct {
		topic, payload string
		retain         bool
	}{{"rest/queue", queued, false}, {"rest/retained", retained, true}, {"plain/retained", control, true}} {
		if code := p.pub(t, &paho.Publish{Topic: m.topic, QoS: 1, Retain: m.retain, Payload: []byte(m.payload)}); code >= 0x80 {
			t.Fatalf("publish %s: %#x", m.topic, code)
		}
	}
	// A persistent client with a will on an at-rest topic: its will sits in
	// its client record while it is connected.
	wc := mustV5Msgs(t, h.addr("tcp"), v5Opts{id: "will-holder", username: "w", resume: true, expiry: 3600,
		will: &paho.WillMessage{Topic: "rest/will", QoS: 1, Retain: true, Payload: []byte(will)}})
	_ = wc
	h.close()

	db := filepath.Join(e.dir, "state.db")
	if !plainIn(t, db, control) {
		t.Fatal("the control payload is not found in the store: the search is broken")
	}
	for _, s := range []string{queued, retained, will} {
		if plainIn(t, db, s) {
			t.Errorf("the store holds %q in clear", s)
		}
	}

	h = startPayloadBroker(t, e.dir, doc, ring)
	c3 = testutil.MustConnectV3(t, h.url("tcp", "tcp"), v3opts)
	c3.Inbox.Want(t, "rest/queue", queued)
	c5 = mustV5Msgs(t, h.addr("tcp"), v5opts)
	if m := c5.next(t); m.Topic != "rest/queue" || string(m.Payload) != queued {
		t.Errorf("MQTT 5 queued after restart: %q %q", m.Topic, m.Payload)
	}
	late := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "reader"})
	late.sub(t, "rest/retained", 1)
	if m := late.next(t); string(m.Payload) != retained || !m.Retain {
		t.Errorf("retained after restart: %q retain=%v", m.Payload, m.Retain)
	}
	blind := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "blind"})
	blind.sub(t, "rest/retained", 1)
	if m := blind.next(t); bytes.Contains(m.Payload, []byte(retained)) {
		t.Error("a subscriber without decrypt got the retained plaintext")
	} else if got, err := e.open("k1", "rest/retained", m.Payload); err != nil || got != retained {
		t.Errorf("retained envelope: %q %v", got, err)
	}
	if st := h.PayloadStats(); st.DeliveryFailures != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestPayloadWill: a will on an at-rest topic is delivered decrypted; a
// will that is not an envelope where one is required refuses the CONNECT.
func TestPayloadWill(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", nil, "")
	h := startPayloadBroker(t, e.dir, doc, e.ring(t, doc))
	reader := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "reader"})
	reader.sub(t, "rest/will/#", 1)
	blind := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "blind"})
	blind.sub(t, "rest/will/#", 1)

	c3 := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Username: "w",
		Will: &testutil.Will{Topic: "rest/will/a", Payload: "gone", QoS: 1}})
	c3.Kill(t)
	if m := reader.next(t); string(m.Payload) != "gone" {
		t.Errorf("reader got will %q", m.Payload)
	}
	if m := blind.next(t); string(m.Payload) == "gone" {
		t.Error("blind got the will in clear")
	} else if got, err := e.open("k1", "rest/will/a", m.Payload); err != nil || got != "gone" {
		t.Errorf("will envelope: %q %v", got, err)
	}

	_, ca, err := dialV5Msgs(t, h.addr("tcp"), v5Opts{username: "w",
		will: &paho.WillMessage{Topic: "e2e/will", Payload: []byte("not an envelope")}})
	if err == nil || ca == nil || ca.ReasonCode != 0x99 {
		t.Errorf("CONNECT with an invalid will: %v, connack %+v; want 0x99", err, ca)
	}
	if _, code, err := testutil.ConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Username: "w",
		Will: &testutil.Will{Topic: "deny/will", Payload: "x"}}); err == nil || code != 5 {
		t.Errorf("3.1.1 CONNECT with a denied will: code %d, %v", code, err)
	}
	// The refused connections left no state behind (the killed client's
	// goes when mochi has processed its disconnection).
	eventually(t, "2 client states (the subscribers)", func() bool {
		n := 0
		h.policy.clients.Range(func(_, _ any) bool { n++; return true })
		return n == 2
	})
}

// eventually waits until cond holds, failing the test after testutil.Wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testutil.Wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestPayloadDeliveryFailures: an envelope whose key left the ring, and a
// stored envelope tampered with on disk, reach a subscriber allowed to
// decrypt as envelopes, counted and logged by key id and topic.
func TestPayloadDeliveryFailures(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", nil, boltPayload)
	h := startPayloadBroker(t, e.dir, doc, e.ring(t, doc))
	p := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "publisher"})
	for _, topic := range []string{"rest/lost-key", "rest/k2/tampered"} {
		if code := p.pub(t, &paho.Publish{Topic: topic, QoS: 1, Retain: true, Payload: []byte("CONTENT-" + topic)}); code >= 0x80 {
			t.Fatal(code)
		}
	}
	h.close()

	// Flip one ciphertext byte of the retained message under k2.
	editStore(t, filepath.Join(e.dir, "state.db"), "RET_rest/k2/tampered", func(payload []byte) { payload[len(payload)-3] ^= 0x10 })

	// Restart without k1.
	doc2 := e.doc("k2", []string{"k2", "dev", "ta", "tb"}, boltPayload)
	h = startPayloadBroker(t, e.dir, doc2, e.ring(t, doc2))
	reader := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "reader"})
	reader.sub(t, "rest/#", 1)
	got := map[string][]byte{}
	for range 2 {
		m := reader.next(t)
		got[m.Topic] = m.Payload
	}
	if s, err := e.open("k1", "rest/lost-key", got["rest/lost-key"]); err != nil || s != "CONTENT-rest/lost-key" {
		t.Errorf("lost key: the subscriber did not get the envelope: %v", err)
	}
	if h, err := envelope.Parse(got["rest/k2/tampered"]); err != nil || h.KeyID != "k2" {
		t.Errorf("tampered: the subscriber did not get the envelope: %v", err)
	}
	if st := h.PayloadStats(); st.DeliveryFailures != 2 || st.Decrypted != 0 {
		t.Errorf("stats %+v", st)
	}
	for _, want := range []string{"key_id=k1 ", "topic=rest/lost-key", "key_id=k2 ", "topic=rest/k2/tampered"} {
		if !h.logs.contains(want) {
			t.Errorf("no log line with %q", want)
		}
	}
	if h.logs.contains("CONTENT-") {
		t.Error("a payload reached the log")
	}
	// The broker still works.
	p = mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "publisher"})
	p.pub(t, &paho.Publish{Topic: "rest/after", QoS: 1, Payload: []byte("fine")})
	if m := reader.next(t); string(m.Payload) != "fine" {
		t.Errorf("after failures: %q", m.Payload)
	}
}

// waitOffline waits until the broker has seen client id disconnect.
func waitOffline(t *testing.T, h *harness, id string) {
	t.Helper()
	deadline := time.Now().Add(testutil.Wait)
	for time.Now().Before(deadline) {
		if cl, ok := h.srv.Clients.Get(id); ok && cl.Closed() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("client %q still connected", id)
}

// editStore changes the payload of one stored message in a bolt file.
func editStore(t *testing.T, path, key string, edit func([]byte)) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(boltBucket))
		var m storage.Message
		if err := json.Unmarshal(b.Get([]byte(key)), &m); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		edit(m.Payload)
		v, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPayloadRotation: a publisher at a steady rate while the ring is
// swapped for one with a new active key; every message is readable, old
// and new envelopes alike.
func TestPayloadRotation(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", []string{"k1"}, "")
	ring := e.ring(t, doc)
	h := startPayloadBroker(t, e.dir, doc, ring)
	reader := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "reader"})
	reader.sub(t, "rest/rot", 1)
	blind := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "blind"})
	blind.sub(t, "rest/rot", 1)
	p := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "publisher"})

	rotated := e.ring(t, e.doc("k2", []string{"k1", "k2"}, ""))
	const n = 200
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := range n {
			<-tick.C
			if i == n/2 {
				ring.Store(rotated.Load())
			}
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
			_, err := p.Publish(ctx, &paho.Publish{Topic: "rest/rot", QoS: 1, Payload: fmt.Appendf(nil, "m-%d", i)})
			cancel()
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	keys := map[string]int{}
	for i := range n {
		if m := reader.next(t); string(m.Payload) != fmt.Sprintf("m-%d", i) {
			t.Fatalf("message %d reads %q", i, m.Payload)
		}
		m := blind.next(t)
		hd, err := envelope.Parse(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		keys[hd.KeyID]++
		if got, err := e.open(hd.KeyID, "rest/rot", m.Payload); err != nil || got != fmt.Sprintf("m-%d", i) {
			t.Fatalf("envelope %d under %s: %q %v", i, hd.KeyID, got, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if keys["k1"] == 0 || keys["k2"] == 0 || keys["k1"]+keys["k2"] != n {
		t.Errorf("envelopes by key: %v", keys)
	}
}

// TestPayloadRewrap: stored envelopes under an old key are resealed under
// the new active key with the broker stopped; after it the old key can
// leave the ring. A running broker's file is refused.
func TestPayloadRewrap(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", nil, boltPayload)
	h := startPayloadBroker(t, e.dir, doc, e.ring(t, doc))
	sub := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "rw", Username: "reader", Persistent: true})
	sub.Subscribe(t, "#", 1)
	sub.Client.Disconnect(250)
	waitOffline(t, h, "rw")
	p := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "publisher"})
	p.pub(t, &paho.Publish{Topic: "rest/r", QoS: 1, Retain: true, Payload: []byte("retained one")})
	p.pub(t, &paho.Publish{Topic: "rest/q", QoS: 1, Payload: []byte("queued one")})
	p.pub(t, &paho.Publish{Topic: "reenc/q", QoS: 1, Payload: e.seal(t, "dev", "reenc/q", "queued two")})
	p.pub(t, &paho.Publish{Topic: "plain/q", QoS: 1, Payload: []byte("plain one")})

	rotatedDoc := e.doc("k2", nil, boltPayload)
	rotated := e.ring(t, rotatedDoc).Load()
	if _, err := Rewrap(context.Background(), parseConfig(t, e.dir, rotatedDoc), rotated, nil); err == nil ||
		!strings.Contains(err.Error(), "stop it first") {
		t.Errorf("Rewrap on a running broker's file: %v", err)
	}
	h.close()

	st, err := Rewrap(context.Background(), parseConfig(t, e.dir, rotatedDoc), rotated, newTestLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// retained rest/r; queued rest/r, rest/q and reenc/q; plain/q is not sealed
	if st.Retained != 1 || st.Inflight != 3 || st.Failed != 0 {
		t.Errorf("Rewrap = %+v", st)
	}
	again, err := Rewrap(context.Background(), parseConfig(t, e.dir, rotatedDoc), rotated, nil)
	if err != nil || again.Current != 4 || again.Retained+again.Inflight != 0 {
		t.Errorf("second Rewrap = %+v, %v", again, err)
	}

	// Without k1 in the ring, everything still opens.
	noK1 := e.doc("k2", []string{"k2", "dev", "ta", "tb"}, boltPayload)
	h = startPayloadBroker(t, e.dir, noK1, e.ring(t, noK1))
	sub = testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "rw", Username: "reader", Persistent: true})
	got := map[string]string{}
	for range 4 {
		m := sub.Inbox.Next(t)
		got[m.Topic] = m.Payload
	}
	want := map[string]string{"rest/r": "retained one", "rest/q": "queued one", "plain/q": "plain one"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	// The reader has no tenant key: it gets the stored envelope, now under k2.
	if s, err := e.open("k2", "reenc/q", []byte(got["reenc/q"])); err != nil || s != "queued two" {
		t.Errorf("reenc/q: %q %v", s, err)
	}
	late := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Username: "reader"})
	late.Subscribe(t, "rest/r", 1)
	late.Inbox.Want(t, "rest/r", "retained one")
	if st := h.PayloadStats(); st.DeliveryFailures != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestPayloadForgedMarker: a client cannot make the broker open a payload
// by sending the internal marker itself.
func TestPayloadForgedMarker(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", nil, "")
	ring := e.ring(t, doc)
	h := startPayloadBroker(t, e.dir, doc, ring)
	reader := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "reader"})
	reader.sub(t, "#", 1)

	// An envelope under the broker's own at-rest key, for this topic: what
	// a subscriber without decrypt receives, replayed with a marker.
	stolen, err := ring.Load().Seal("k1", "plain/x", []byte("broker sealed"))
	if err != nil {
		t.Fatal(err)
	}
	p := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "publisher"})
	for _, v := range []string{"at-rest:plain/x", "reencrypt:plain/x", "garbage"} {
		p.pub(t, &paho.Publish{Topic: "plain/x", QoS: 1, Payload: stolen,
			Properties: &paho.PublishProperties{User: paho.UserProperties{{Key: markerKey, Value: v}}}})
		m := reader.next(t)
		if !bytes.Equal(m.Payload, stolen) {
			t.Errorf("marker %q: the broker changed the payload", v)
		}
		if _, ok := userProp(m, markerKey); ok {
			t.Errorf("marker %q reached a subscriber", v)
		}
	}
	if st := h.PayloadStats(); st.StrippedMarkers != 3 || st.Decrypted != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestPayloadTopicAlias: mochi blanks the topic of a delivery that uses a
// topic alias; the payload is opened with the topic from the marker.
func TestPayloadTopicAlias(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", nil, "")
	h := startPayloadBroker(t, e.dir, doc, e.ring(t, doc))
	reader := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "reader", aliasMax: 10})
	reader.sub(t, "rest/alias", 1)
	p := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "publisher"})
	for i := range 3 {
		p.pub(t, &paho.Publish{Topic: "rest/alias", QoS: 1, Payload: fmt.Appendf(nil, "aliased %d", i)})
		m := reader.next(t)
		if string(m.Payload) != fmt.Sprintf("aliased %d", i) {
			t.Errorf("message %d (topic %q): %q", i, m.Topic, m.Payload)
		}
		if i > 0 && m.Topic != "" {
			t.Logf("message %d came with its topic, not by alias", i)
		}
	}
	if st := h.PayloadStats(); st.DeliveryFailures != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestPayloadEmptyRetained: an empty retained publish on an at-rest topic
// still deletes the retained message.
func TestPayloadEmptyRetained(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", nil, "")
	h := startPayloadBroker(t, e.dir, doc, e.ring(t, doc))
	p := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "publisher"})
	p.pub(t, &paho.Publish{Topic: "rest/gone", QoS: 1, Retain: true, Payload: []byte("kept")})
	p.pub(t, &paho.Publish{Topic: "rest/gone", QoS: 1, Retain: true})
	late := mustV5Msgs(t, h.addr("tcp"), v5Opts{username: "reader"})
	late.sub(t, "rest/gone", 1)
	// mochi acknowledges before it delivers, so the empty publish itself
	// may still reach the late subscriber live; nothing else may.
	select {
	case m := <-late.msgs:
		if len(m.Payload) != 0 || m.Retain {
			t.Fatalf("retained message not deleted: %q retain=%v", m.Payload, m.Retain)
		}
	case <-time.After(100 * time.Millisecond):
	}
	late.none(t, 50*time.Millisecond)
}

// TestPayloadHooksOff: without a payload chain or a ring the hook provides
// nothing, so mochi never calls it on the hot path.
func TestPayloadHooksOff(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig, nil)
	for _, ev := range []byte{mqtt.OnPublish, mqtt.OnPacketEncode, mqtt.OnConnect} {
		if h.payload.Provides(ev) {
			t.Errorf("payload hook provides event %d without a payload policy", ev)
		}
	}
	h.payload.ring.Store(newPayloadEnv(t).ring(t, newPayloadEnv(t).doc("", nil, "")).Load())
	if !h.payload.Provides(mqtt.OnPacketEncode) {
		t.Error("a ring does not turn the delivery hook on")
	}
}

// TestPayloadRingErrors: key files with loose permissions or a wrong size
// refuse to load, naming key and file and never the material.
func TestPayloadRingErrors(t *testing.T) {
	t.Parallel()
	e := newPayloadEnv(t)
	doc := e.doc("", []string{"k1", "k2"}, "")
	cfg := parseConfig(t, e.dir, doc)
	if err := os.Chmod(cfg.Payload.Keys[1].File, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRing(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), `key "k2"`) || !strings.Contains(err.Error(), "k2.key") {
		t.Fatalf("LoadRing: %v", err)
	}
	if strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(e.keys["k2"])) {
		t.Error("the error holds key material")
	}
}
