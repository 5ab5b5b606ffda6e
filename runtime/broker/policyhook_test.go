package broker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ppackets "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	paho3 "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// waitFor bounds every wait for an event that must happen; reaching it is a
// failure, never a measurement.
const waitFor = 5 * time.Second

// ---- the test policy: Go-native modules with simple rules ----

type testUser struct {
	password  string
	superuser bool
	attrs     []policy.Attribute
	expiry    time.Duration
	// reason, when set, refuses every login of the user with that code.
	reason  byte
	message string
}

// userTable authenticates the users it knows and ignores the others, so
// that the next module of the chain decides.
type userTable map[string]testUser

func (u userTable) Authenticate(_ context.Context, req *policy.AuthnRequest) (policy.AuthnResult, error) {
	user, ok := u[req.Client.Username]
	if !ok || req.AuthMethod != "" {
		return policy.AuthnResult{Verdict: policy.Ignore}, nil
	}
	if user.reason != 0 {
		return policy.AuthnResult{Verdict: policy.Deny, Reason: user.reason, Message: user.message}, nil
	}
	if req.Password == nil || string(req.Password) != user.password {
		return policy.AuthnResult{Verdict: policy.Deny, Message: "bad password"}, nil
	}
	res := policy.AuthnResult{Verdict: policy.Allow, Superuser: user.superuser, Attributes: user.attrs}
	if user.expiry > 0 {
		res.Expiry = time.Now().Add(user.expiry)
	}
	return res, nil
}

func testUsers() userTable {
	return userTable{
		"alice":   {password: "alice-pw", attrs: []policy.Attribute{{Key: "tenant", Value: "acme"}}},
		"bob":     {password: "bob-pw"},
		"carol":   {password: "carol-pw"},
		"admin":   {password: "admin-pw", superuser: true},
		"brief":   {password: "brief-pw", expiry: 300 * time.Millisecond},
		"mallory": {reason: policy.ReasonBanned, message: "banned until further notice"},
	}
}

// challengeAuthn implements two MQTT 5 enhanced-authentication methods:
// "TEST-2ROUND", a challenge and response over two rounds that keeps its
// state in AuthState as the ABI requires, and "TEST-LOOP", which never ends.
type challengeAuthn struct{}

func (challengeAuthn) Authenticate(_ context.Context, req *policy.AuthnRequest) (policy.AuthnResult, error) {
	switch req.AuthMethod {
	case "":
		return policy.AuthnResult{Verdict: policy.Ignore}, nil
	case "TEST-2ROUND":
		switch {
		case req.Round == 0 && string(req.AuthData) == "client-first":
			return policy.AuthnResult{Verdict: policy.Continue, AuthData: []byte("server-challenge"), AuthState: []byte("state-1")}, nil
		case req.Round == 1 && string(req.AuthData) == "client-proof" && string(req.AuthState) == "state-1":
			return policy.AuthnResult{Verdict: policy.Allow, AuthData: []byte("server-final"),
				Attributes: []policy.Attribute{{Key: "tenant", Value: "acme"}}}, nil
		}
		return policy.AuthnResult{Verdict: policy.Deny, Reason: policy.ReasonNotAuthorized, Message: "challenge failed"}, nil
	case "TEST-LOOP":
		return policy.AuthnResult{Verdict: policy.Continue, AuthData: []byte("again")}, nil
	}
	return policy.AuthnResult{Verdict: policy.Deny, Reason: policy.ReasonBadAuthMethod, Message: "unknown method"}, nil
}

// topicRules authorizes:
//   - a client with a "tenant" attribute: anything under "<tenant>/", nothing else;
//   - other clients: anything but publishing or subscribing under
//     "forbidden/", receiving "secret/", publishing retained under
//     "noretain/" or at QoS 2 under "noqos2/", and subscribing in the
//     share group "blocked".
type topicRules struct{}

func (topicRules) Authorize(_ context.Context, req *policy.AuthzRequest) (policy.AuthzResult, error) {
	deny := policy.AuthzResult{Verdict: policy.Deny, Message: "rule"}
	for _, a := range req.Client.Attributes {
		if a.Key == "tenant" {
			if strings.HasPrefix(req.Topic, a.Value+"/") {
				return policy.AuthzResult{Verdict: policy.Allow}, nil
			}
			return deny, nil
		}
	}
	t := req.Topic
	switch req.Action {
	case policy.ActionPublish:
		if strings.HasPrefix(t, "forbidden/") ||
			(req.Retain && strings.HasPrefix(t, "noretain/")) ||
			(req.QoS == 2 && strings.HasPrefix(t, "noqos2/")) {
			return deny, nil
		}
	case policy.ActionSubscribe:
		if strings.HasPrefix(t, "forbidden/") || req.ShareGroup == "blocked" {
			return deny, nil
		}
	case policy.ActionDeliver:
		if strings.HasPrefix(t, "secret/") {
			return deny, nil
		}
	}
	return policy.AuthzResult{Verdict: policy.Allow}, nil
}

// ---- the broker under test ----

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type brokerSetup struct {
	authn []policy.Step[policy.Authenticator]
	authz []policy.Step[policy.Authorizer]
	opts  policy.Options
	// pki, when set, makes the listener a TLS one that verifies client
	// certificates given against pki's CA.
	pki *testPKI
	// hooks are test observers added to mochi after Start; none may
	// provide authentication or ACL checks.
	hooks []mqtt.Hook
	// config is appended to the broker's moat.toml.
	config string
}

type testBroker struct {
	b    *Broker
	hook *policyHook
	addr string
	logs *syncBuffer // the broker's log, JSON at debug level
}

// startPolicyBroker runs a broker (broker.New: capabilities, listeners and
// the policy hook as its only auth hook) on a loopback port, with the test
// policy unless configure changes it. It stops with the test.
func startPolicyBroker(t testing.TB, configure ...func(*brokerSetup)) *testBroker {
	t.Helper()
	s := brokerSetup{
		authn: []policy.Step[policy.Authenticator]{
			{Name: "challenge", Module: challengeAuthn{}},
			{Name: "users", Module: testUsers()},
		},
		authz: []policy.Step[policy.Authorizer]{{Name: "rules", Module: topicRules{}}},
	}
	for _, c := range configure {
		c(&s)
	}
	dir := t.TempDir()
	doc := "[[listener]]\nname = \"test\"\ntype = \"tcp\"\naddress = \"127.0.0.1:0\"\n"
	if s.pki != nil {
		doc = fmt.Sprintf("[[listener]]\nname = \"test\"\ntype = \"tls\"\naddress = \"127.0.0.1:0\"\n"+
			"cert_file = %q\nkey_file = %q\nclient_ca_file = %q\n", s.pki.serverCert, s.pki.serverKey, s.pki.caFile)
	}
	doc += s.config
	cfg, err := config.Parse([]byte(doc), filepath.Join(dir, "moat.toml"))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := policy.NewDecider(policy.New(s.authn, s.authz, s.opts), policy.CacheOptions{}, log)
	b, err := New(Options{Config: cfg, Decider: d, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		d.Close()
	})
	for _, h := range s.hooks {
		if h.Provides(mqtt.OnConnectAuthenticate) || h.Provides(mqtt.OnACLCheck) {
			t.Fatalf("test hook %s provides auth", h.ID())
		}
		if err := b.srv.AddHook(h, nil); err != nil {
			t.Fatal(err)
		}
	}
	return &testBroker{b: b, hook: b.policy, addr: b.Addr("test").String(), logs: logs}
}

// ---- MQTT 3.1.1 clients (paho.mqtt.golang) ----

type ph3Client struct {
	c    paho3.Client
	msgs chan paho3.Message
	lost chan error
}

// dialV3 connects an MQTT 3.1.1 client and returns it with the CONNACK
// return code. The client disconnects when the test ends.
func dialV3(t testing.TB, addr, id, user, pass string, tweak func(*paho3.ClientOptions)) (*ph3Client, byte, error) {
	t.Helper()
	v := &ph3Client{msgs: make(chan paho3.Message, 1024), lost: make(chan error, 1)}
	o := paho3.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(waitFor).SetKeepAlive(30 * time.Second).SetOrderMatters(true).
		SetUsername(user).SetPassword(pass).
		SetDefaultPublishHandler(func(_ paho3.Client, m paho3.Message) { v.msgs <- m }).
		SetConnectionLostHandler(func(_ paho3.Client, err error) {
			select {
			case v.lost <- err:
			default:
			}
		})
	if tweak != nil {
		tweak(o)
	}
	v.c = paho3.NewClient(o)
	tok := v.c.Connect()
	if !tok.WaitTimeout(waitFor) {
		t.Fatalf("v3 connect %q: no CONNACK", id)
	}
	rc := tok.(*paho3.ConnectToken).ReturnCode()
	if err := tok.Error(); err != nil {
		return nil, rc, err
	}
	t.Cleanup(func() { v.c.Disconnect(0) })
	return v, rc, nil
}

func mustV3(t testing.TB, addr, id, user, pass string) *ph3Client {
	t.Helper()
	v, rc, err := dialV3(t, addr, id, user, pass, nil)
	if err != nil {
		t.Fatalf("v3 connect %s as %q: return code %d: %v", id, user, rc, err)
	}
	return v
}

func (v *ph3Client) subscribe(t testing.TB, filters ...string) map[string]byte {
	t.Helper()
	m := make(map[string]byte, len(filters))
	for _, f := range filters {
		m[f] = 1
	}
	tok := v.c.SubscribeMultiple(m, nil)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("v3 subscribe %v: %v", filters, tok.Error())
	}
	return tok.(*paho3.SubscribeToken).Result()
}

func (v *ph3Client) publish(t testing.TB, topic string, qos byte, retain bool) {
	t.Helper()
	tok := v.c.Publish(topic, qos, retain, []byte("payload of "+topic))
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("v3 publish %s: %v", topic, tok.Error())
	}
}

// next returns the topic of the next message received.
func (v *ph3Client) next(t testing.TB) string {
	t.Helper()
	select {
	case m := <-v.msgs:
		return m.Topic()
	case <-time.After(waitFor):
		t.Fatal("v3: no message received")
	}
	return ""
}

// until collects the topics received up to and including topic.
func (v *ph3Client) until(t testing.TB, topic string) []string {
	t.Helper()
	var got []string
	for {
		m := v.next(t)
		if strings.HasPrefix(m, "$SYS") {
			continue
		}
		got = append(got, m)
		if m == topic {
			return got
		}
	}
}

func (v *ph3Client) waitLost(t testing.TB) {
	t.Helper()
	select {
	case <-v.lost:
	case <-time.After(waitFor):
		t.Fatal("v3: connection not closed by the broker")
	}
}

// ---- MQTT 5 clients (paho.golang) ----

type ph5Client struct {
	c    *paho.Client
	msgs chan *paho.Publish
	disc chan *paho.Disconnect
}

// dialV5 connects an MQTT 5 client and returns it with its CONNACK. The
// client disconnects when the test ends.
func dialV5(t testing.TB, addr string, cp *paho.Connect, auth paho.Auther) (*ph5Client, *paho.Connack, error) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return startV5(t, conn, cp, auth)
}

func startV5(t testing.TB, conn net.Conn, cp *paho.Connect, auth paho.Auther) (*ph5Client, *paho.Connack, error) {
	t.Helper()
	v := &ph5Client{msgs: make(chan *paho.Publish, 1024), disc: make(chan *paho.Disconnect, 1)}
	v.c = paho.NewClient(paho.ClientConfig{
		Conn:        conn,
		AuthHandler: auth,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(pr paho.PublishReceived) (bool, error) { v.msgs <- pr.Packet; return true, nil },
		},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case v.disc <- d:
			default:
			}
		},
		OnClientError: func(error) {},
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	ca, err := v.c.Connect(ctx, cp)
	if err != nil {
		return nil, ca, err
	}
	t.Cleanup(func() {
		_ = v.c.Disconnect(&paho.Disconnect{})
		select {
		case <-v.c.Done():
		case <-time.After(waitFor):
			t.Error("v5 client did not stop")
		}
	})
	return v, ca, nil
}

func v5Login(id, user, pass string) *paho.Connect {
	return &paho.Connect{
		ClientID: id, KeepAlive: 30, CleanStart: true,
		Username: user, UsernameFlag: user != "",
		Password: []byte(pass), PasswordFlag: pass != "",
	}
}

func mustV5(t testing.TB, addr, id, user, pass string) *ph5Client {
	t.Helper()
	v, ca, err := dialV5(t, addr, v5Login(id, user, pass), nil)
	if err != nil {
		t.Fatalf("v5 connect %s as %q: %+v: %v", id, user, ca, err)
	}
	return v
}

// publish sends a message and returns the PUBACK/PUBREC reason code (0 for
// QoS 0).
func (v *ph5Client) publish(t testing.TB, topic string, qos byte, retain bool) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	pr, err := v.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte("payload of " + topic)})
	if pr == nil {
		if err != nil || qos > 0 {
			t.Fatalf("v5 publish %s: %v", topic, err)
		}
		return 0
	}
	return pr.ReasonCode
}

func (v *ph5Client) subscribe(t testing.TB, filters ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	s := &paho.Subscribe{}
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, paho.SubscribeOptions{Topic: f, QoS: 1})
	}
	sa, err := v.c.Subscribe(ctx, s)
	if sa == nil {
		t.Fatalf("v5 subscribe %v: %v", filters, err)
	}
	return sa.Reasons
}

func (v *ph5Client) until(t testing.TB, topic string) []string {
	t.Helper()
	var got []string
	for {
		select {
		case m := <-v.msgs:
			if strings.HasPrefix(m.Topic, "$SYS") {
				continue
			}
			got = append(got, m.Topic)
			if m.Topic == topic {
				return got
			}
		case <-time.After(waitFor):
			t.Fatalf("v5: %q not received; got %v", topic, got)
		}
	}
}

func (v *ph5Client) waitDisconnect(t testing.TB) *paho.Disconnect {
	t.Helper()
	select {
	case d := <-v.disc:
		return d
	case <-time.After(waitFor):
		t.Fatal("v5: no DISCONNECT from the broker")
	}
	return nil
}

// ---- a raw MQTT 5 connection (paho.golang's codec, no client logic) ----

type rawConn struct {
	t testing.TB
	c net.Conn
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rawConn{t: t, c: c}
}

func (r *rawConn) send(cp *ppackets.ControlPacket) {
	r.t.Helper()
	if _, err := cp.WriteTo(r.c); err != nil {
		r.t.Fatalf("raw: send %s: %v", cp.PacketType(), err)
	}
}

// recv returns the next packet, or nil when the broker closed the
// connection.
func (r *rawConn) recv() *ppackets.ControlPacket {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(waitFor))
	cp, err := ppackets.ReadPacket(r.c)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.t.Fatal("raw: nothing received")
		}
		return nil
	}
	return cp
}

// subscribe sends one SUBSCRIBE at QoS 1 and returns the SUBACK codes.
func (r *rawConn) subscribe(filters ...string) []byte {
	r.t.Helper()
	cp := ppackets.NewControlPacket(ppackets.SUBSCRIBE)
	s := cp.Content.(*ppackets.Subscribe)
	s.PacketID = 1
	for _, f := range filters {
		s.Subscriptions = append(s.Subscriptions, ppackets.SubOptions{Topic: f, QoS: 1})
	}
	r.send(cp)
	ack := r.recv()
	if ack == nil || ack.Type != ppackets.SUBACK {
		r.t.Fatalf("raw: got %v, want SUBACK", ack)
	}
	return ack.Content.(*ppackets.Suback).Reasons
}

func rawConnect(id, user, pass string) *ppackets.ControlPacket {
	cp := ppackets.NewControlPacket(ppackets.CONNECT)
	c := cp.Content.(*ppackets.Connect)
	c.ClientID, c.CleanStart, c.KeepAlive = id, true, 30
	if user != "" {
		c.UsernameFlag, c.Username = true, user
	}
	if pass != "" {
		c.PasswordFlag, c.Password = true, []byte(pass)
	}
	return cp
}

func rawAuth(method string, data []byte, reason byte) *ppackets.ControlPacket {
	cp := ppackets.NewControlPacket(ppackets.AUTH)
	cp.Flags = 0 // paho.golang sets 1; [MQTT-3.15.1-1] says 0
	a := cp.Content.(*ppackets.Auth)
	a.ReasonCode = reason
	a.Properties.AuthMethod = method
	a.Properties.AuthData = data
	return cp
}

func rawPublish(topic string, alias uint16, qos byte, id uint16) *ppackets.ControlPacket {
	cp := ppackets.NewControlPacket(ppackets.PUBLISH)
	p := cp.Content.(*ppackets.Publish)
	p.Topic, p.QoS, p.PacketID, p.Payload = topic, qos, id, []byte("x")
	if alias > 0 {
		p.Properties.TopicAlias = &alias
	}
	return cp
}

// ---- authentication tests ----

func TestConnectCredentials(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	tests := []struct {
		name, user, pass string
		v5Code           byte
		v5Reason         string
		v3Code           byte
	}{
		{name: "right password", user: "bob", pass: "bob-pw", v5Code: 0, v3Code: 0},
		{name: "wrong password", user: "bob", pass: "nope", v5Code: 0x86, v5Reason: "bad password", v3Code: 4},
		{name: "no password", user: "bob", v5Code: 0x86, v5Reason: "bad password", v3Code: 4},
		{name: "module reason code", user: "mallory", pass: "x", v5Code: 0x8A, v5Reason: "banned until further notice", v3Code: 5},
		{name: "unknown user: no module matches", user: "nobody", pass: "x", v5Code: 0x87, v5Reason: "no module matched", v3Code: 5},
		{name: "anonymous not allowed", v5Code: 0x87, v5Reason: "no module matched", v3Code: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/v5", func(t *testing.T) {
			_, ca, err := dialV5(t, b.addr, v5Login("", tc.user, tc.pass), nil)
			if ca == nil {
				t.Fatalf("no CONNACK: %v", err)
			}
			if ca.ReasonCode != tc.v5Code || (err == nil) != (tc.v5Code == 0) {
				t.Fatalf("CONNACK reason 0x%02X (err %v), want 0x%02X", ca.ReasonCode, err, tc.v5Code)
			}
			var reason string
			if ca.Properties != nil {
				reason = ca.Properties.ReasonString
			}
			if reason != tc.v5Reason {
				t.Errorf("reason string %q, want %q", reason, tc.v5Reason)
			}
		})
		t.Run(tc.name+"/v3", func(t *testing.T) {
			_, rc, err := dialV3(t, b.addr, "v3-"+strings.ReplaceAll(tc.name, " ", "-"), tc.user, tc.pass, nil)
			if rc != tc.v3Code || (err == nil) != (tc.v3Code == 0) {
				t.Fatalf("CONNACK return code %d (err %v), want %d", rc, err, tc.v3Code)
			}
		})
	}
}

func TestConnectNoProblemInfo(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	cp := v5Login("quiet", "bob", "nope")
	cp.Properties = &paho.ConnectProperties{RequestProblemInfo: false} // [MQTT-3.1.2-29]
	_, ca, err := dialV5(t, b.addr, cp, nil)
	if ca == nil || ca.ReasonCode != 0x86 || err == nil {
		t.Fatalf("CONNACK %+v, err %v; want 0x86", ca, err)
	}
	if ca.Properties != nil && ca.Properties.ReasonString != "" {
		t.Fatalf("reason string %q sent to a client that asked for no problem information", ca.Properties.ReasonString)
	}
}

func TestConnectChain(t *testing.T) {
	t.Parallel()
	first := userTable{"first-user": {password: "first-pw"}, "bob": {password: "other-pw-for-bob-in-first"}}
	tests := []struct {
		name       string
		setup      func(*brokerSetup)
		user, pass string
		want       byte // MQTT 5 CONNACK reason code
	}{
		{name: "first module decides its user", user: "first-user", pass: "first-pw", want: 0,
			setup: func(s *brokerSetup) {
				s.authn = []policy.Step[policy.Authenticator]{{Name: "first", Module: first}, {Name: "users", Module: testUsers()}}
			}},
		{name: "first module's deny ends the chain", user: "bob", pass: "bob-pw", want: 0x86,
			setup: func(s *brokerSetup) {
				s.authn = []policy.Step[policy.Authenticator]{{Name: "first", Module: first}, {Name: "users", Module: testUsers()}}
			}},
		{name: "ignore falls through to the next module", user: "carol", pass: "carol-pw", want: 0,
			setup: func(s *brokerSetup) {
				s.authn = []policy.Step[policy.Authenticator]{{Name: "first", Module: first}, {Name: "users", Module: testUsers()}}
			}},
		{name: "no_match deny", user: "nobody", pass: "x", want: 0x87,
			setup: func(s *brokerSetup) { s.authn = []policy.Step[policy.Authenticator]{{Name: "first", Module: first}} }},
		{name: "no_match allow", user: "nobody", pass: "x", want: 0,
			setup: func(s *brokerSetup) {
				s.authn = []policy.Step[policy.Authenticator]{{Name: "first", Module: first}}
				s.opts.NoMatch = policy.Allow
			}},
		{name: "anonymous allowed", want: 0,
			setup: func(s *brokerSetup) { s.opts.AllowAnonymous = true }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startPolicyBroker(t, tc.setup)
			_, ca, err := dialV5(t, b.addr, v5Login("chain", tc.user, tc.pass), nil)
			if ca == nil || ca.ReasonCode != tc.want {
				t.Fatalf("CONNACK %+v (err %v), want reason 0x%02X", ca, err, tc.want)
			}
		})
	}
}

func TestConnectNeverLogsPassword(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	const secret = "hunter2-do-not-log"
	if _, _, err := dialV3(t, b.addr, "pw-log", "bob", secret, nil); err == nil {
		t.Fatal("wrong password accepted")
	}
	_, ca, _ := dialV5(t, b.addr, v5Login("pw-log-5", "carol", secret), nil)
	if ca == nil || ca.ReasonCode != 0x86 {
		t.Fatalf("CONNACK %+v, want 0x86", ca)
	}
	logs := b.logs.String()
	if !strings.Contains(logs, `"client_id":"pw-log"`) {
		t.Fatalf("refusal not logged with the client id:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Fatalf("password in the log:\n%s", logs)
	}
}

// certAuthn admits a client by its verified certificate and reports what it
// saw.
type certAuthn struct{ seen chan *policy.Cert }

func (a certAuthn) Authenticate(_ context.Context, req *policy.AuthnRequest) (policy.AuthnResult, error) {
	a.seen <- req.Client.Cert
	if req.Client.Cert != nil && req.Client.Cert.SubjectCN == "device-7" {
		return policy.AuthnResult{Verdict: policy.Allow}, nil
	}
	return policy.AuthnResult{Verdict: policy.Ignore}, nil
}

func TestConnectClientCertificate(t *testing.T) {
	t.Parallel()
	pki := newTestPKI(t)
	seen := make(chan *policy.Cert, 4)
	b := startPolicyBroker(t, func(s *brokerSetup) {
		s.authn = []policy.Step[policy.Authenticator]{{Name: "cert", Module: certAuthn{seen: seen}}}
		s.pki = pki
	})
	tests := []struct {
		name   string
		certs  []tls.Certificate
		want   byte
		wantCN string
	}{
		{name: "verified certificate", certs: []tls.Certificate{pki.client}, want: 0, wantCN: "device-7"},
		{name: "no certificate", want: 0x87},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", b.addr, &tls.Config{RootCAs: pki.pool, Certificates: tc.certs, ServerName: "127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			_, ca, err := startV5(t, ppackets.NewThreadSafeConn(conn), v5Login("tls", "", ""), nil)
			if ca == nil || ca.ReasonCode != tc.want {
				t.Fatalf("CONNACK %+v (err %v), want 0x%02X", ca, err, tc.want)
			}
			got := <-seen
			if tc.wantCN == "" {
				if got != nil {
					t.Fatalf("certificate %+v reported for a client without one", got)
				}
				return
			}
			if got == nil {
				t.Fatal("no certificate reached authentication")
			}
			wantSANs := []string{"device-7.example", "device7@example.com", "spiffe://moat/device-7", "10.0.0.7"}
			if got.SubjectCN != tc.wantCN || !slices.Equal(got.SANs, wantSANs) || got.Fingerprint != sha256.Sum256(pki.clientDER) {
				t.Fatalf("certificate %+v, want CN %q, SANs %v and the DER's SHA-256", got, tc.wantCN, wantSANs)
			}
		})
	}
}

type testPKI struct {
	pool                          *x509.CertPool
	client                        tls.Certificate
	clientDER                     []byte
	caFile, serverCert, serverKey string // PEM files for the listener
}

// newTestPKI makes a CA, a server certificate for 127.0.0.1 (written to PEM
// files for the listener) and a client certificate with every kind of SAN.
func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	dir := t.TempDir()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	caKey := key()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "moat test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(tmpl *x509.Certificate) (*ecdsa.PrivateKey, []byte) {
		k := key()
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return k, der
	}
	p := &testPKI{pool: x509.NewCertPool(), caFile: write("ca.pem", "CERTIFICATE", caDER)}
	p.pool.AddCert(ca)

	srvKey, srvDER := issue(&x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	srvKeyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	p.serverCert = write("server.pem", "CERTIFICATE", srvDER)
	p.serverKey = write("server-key.pem", "EC PRIVATE KEY", srvKeyDER)

	spiffe, err := url.Parse("spiffe://moat/device-7")
	if err != nil {
		t.Fatal(err)
	}
	cliKey, cliDER := issue(&x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "device-7"},
		DNSNames: []string{"device-7.example"}, EmailAddresses: []string{"device7@example.com"},
		URIs: []*url.URL{spiffe}, IPAddresses: []net.IP{net.ParseIP("10.0.0.7")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	p.client = tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey}
	p.clientDER = cliDER
	return p
}

func TestCredentialsExpiry(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)
	t.Run("v5", func(t *testing.T) {
		c := mustV5(t, b.addr, "brief-5", "brief", "brief-pw")
		d := c.waitDisconnect(t)
		if d.ReasonCode != packets.ErrMaxConnectTime.Code {
			t.Fatalf("DISCONNECT reason 0x%02X, want 0xA0", d.ReasonCode)
		}
	})
	t.Run("v3", func(t *testing.T) {
		c := mustV3(t, b.addr, "brief-3", "brief", "brief-pw")
		c.waitLost(t)
	})
	t.Run("without expiry stays", func(t *testing.T) {
		// A control for the two above: the hook disconnects only on expiry.
		c := mustV3(t, b.addr, "stays", "bob", "bob-pw")
		brief := mustV3(t, b.addr, "brief-again", "brief", "brief-pw")
		brief.waitLost(t)
		if !c.c.IsConnectionOpen() {
			t.Fatal("client without expiry was disconnected")
		}
	})
	// Each kick is one audit record, without the password.
	logs := b.logs.String()
	if n := strings.Count(logs, `"audit":"expiry_kick"`); n != 3 {
		t.Errorf("%d expiry_kick audit records, want 3:\n%s", n, logs)
	}
	if strings.Contains(logs, "brief-pw") {
		t.Error("the log holds the password")
	}
}
