package broker

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// client is what the protocol-independent tests need from a 3.1.1 or an
// MQTT 5 client.
type peer interface {
	subscribe(t testing.TB, filter string, qos byte)
	publish(t testing.TB, topic string, qos byte, retain bool, payload string)
	inbox() *testutil.Inbox
}

type v3Peer struct{ *testutil.V3 }

func (c v3Peer) subscribe(t testing.TB, f string, q byte) { c.Subscribe(t, f, q) }
func (c v3Peer) publish(t testing.TB, topic string, q byte, r bool, p string) {
	c.Publish(t, topic, q, r, p)
}
func (c v3Peer) inbox() *testutil.Inbox { return c.Inbox }

type v5Peer struct{ *testutil.V5 }

func (c v5Peer) subscribe(t testing.TB, f string, q byte) { c.Subscribe(t, f, q) }
func (c v5Peer) publish(t testing.TB, topic string, q byte, r bool, p string) {
	t.Helper()
	if code := c.Publish(t, topic, q, r, p); code >= 0x80 {
		t.Fatalf("publish %q: reason code %#x", topic, code)
	}
}
func (c v5Peer) inbox() *testutil.Inbox { return c.Inbox }

// peerDialer connects a client of one protocol version to the "tcp" listener.
type peerDialer struct {
	name string
	dial func(t testing.TB, h *harness, id string) peer
}

var peerDialers = []peerDialer{
	{"v3", func(t testing.TB, h *harness, id string) peer {
		return v3Peer{testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: id})}
	}},
	{"v5", func(t testing.TB, h *harness, id string) peer {
		return v5Peer{testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{ClientID: id})}
	}},
}

func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig, nil)
	for _, sub := range peerDialers {
		for _, pub := range peerDialers {
			for qos := byte(0); qos <= 2; qos++ {
				name := sub.name + "-sub/" + pub.name + "-pub/qos" + string('0'+qos)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					topic := "pubsub/" + name
					s := sub.dial(t, h, "")
					s.subscribe(t, topic, qos)
					p := pub.dial(t, h, "")
					p.publish(t, topic, qos, false, "hello "+name)
					m := s.inbox().Want(t, topic, "hello "+name)
					if m.QoS != qos || m.Retain {
						t.Errorf("got QoS %d retain %v, want QoS %d, not retained", m.QoS, m.Retain, qos)
					}
					s.inbox().None(t, 50*time.Millisecond) // exactly once
				})
			}
		}
	}
}

func TestRetained(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig, nil)
	for _, d := range peerDialers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			topic := "retained/" + d.name
			p := d.dial(t, h, "")
			p.publish(t, topic, 1, true, "kept")
			// mochi acknowledges before it fans a message out, and handles
			// one client's packets in order: once a second publish is
			// acknowledged, the first has reached every subscriber and a
			// new subscriber sees only the retained copy.
			p.publish(t, "barrier/"+d.name, 1, false, "")

			s := d.dial(t, h, "")
			s.subscribe(t, topic, 1)
			if m := s.inbox().Want(t, topic, "kept"); !m.Retain {
				t.Error("retained message delivered without the retain flag")
			}

			// An empty retained payload clears the topic [MQTT-3.3.1-6].
			p.publish(t, topic, 1, true, "")
			s.inbox().Want(t, topic, "") // live delivery of the clearing message
			late := d.dial(t, h, "")
			late.subscribe(t, topic, 1)
			late.inbox().None(t, 100*time.Millisecond)
		})
	}
}

func TestWill(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig, nil)
	tests := []struct {
		name  string
		v5    bool
		clean bool // DISCONNECT rather than a dropped socket
	}{
		{name: "v3 killed"},
		{name: "v3 disconnect", clean: true},
		{name: "v5 killed", v5: true},
		{name: "v5 disconnect", v5: true, clean: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			topic := "will/" + strings.ReplaceAll(tc.name, " ", "-")
			s := testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{})
			s.Subscribe(t, topic, 1)

			will := &testutil.Will{Topic: topic, Payload: "gone", QoS: 1}
			if tc.v5 {
				c := testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{Will: will})
				if tc.clean {
					_ = c.Disconnect(&paho.Disconnect{})
				} else {
					c.Kill()
				}
			} else {
				c := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Will: will})
				if tc.clean {
					c.Client.Disconnect(250)
				} else {
					c.Kill(t)
				}
			}
			if tc.clean {
				// [MQTT-3.14.4-3]: a DISCONNECT discards the will.
				s.Inbox.None(t, 300*time.Millisecond)
				return
			}
			s.Inbox.Want(t, topic, "gone")
		})
	}
}

func TestSessionResume(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig, nil)

	t.Run("v3 clean=false", func(t *testing.T) {
		t.Parallel()
		opts := testutil.V3Options{ClientID: "resume-v3", Persistent: true}
		c := testutil.MustConnectV3(t, h.url("tcp", "tcp"), opts)
		c.Subscribe(t, "resume/v3", 1)
		c.Client.Disconnect(250)
		waitSessionOffline(t, h.Broker, opts.ClientID)

		p := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
		p.Publish(t, "resume/v3", 1, false, "while away")

		c = testutil.MustConnectV3(t, h.url("tcp", "tcp"), opts)
		c.Inbox.Want(t, "resume/v3", "while away")
	})

	t.Run("v3 clean=true discards", func(t *testing.T) {
		t.Parallel()
		opts := testutil.V3Options{ClientID: "clean-v3"}
		c := testutil.MustConnectV3(t, h.url("tcp", "tcp"), opts)
		c.Subscribe(t, "resume/clean-v3", 1)
		c.Client.Disconnect(250)
		waitGone(t, h.Broker, opts.ClientID)

		p := testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{})
		p.Publish(t, "resume/clean-v3", 1, false, "lost")

		c = testutil.MustConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{ClientID: "clean-v3", Persistent: true})
		c.Inbox.None(t, 200*time.Millisecond)
	})

	t.Run("v5 session expiry", func(t *testing.T) {
		t.Parallel()
		opts := testutil.V5Options{ClientID: "resume-v5", Resume: true, SessionExpiry: 60}
		c := testutil.MustConnectV5(t, h.addr("tcp"), opts)
		c.Subscribe(t, "resume/v5", 1)
		if err := c.Disconnect(&paho.Disconnect{}); err != nil {
			t.Fatal(err)
		}
		waitSessionOffline(t, h.Broker, opts.ClientID)

		p := testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{})
		p.Publish(t, "resume/v5", 1, false, "while away")

		c = testutil.MustConnectV5(t, h.addr("tcp"), opts)
		if !c.Connack.SessionPresent {
			t.Error("CONNACK: session present = false, want true")
		}
		c.Inbox.Want(t, "resume/v5", "while away")
	})

	t.Run("v5 no session expiry discards", func(t *testing.T) {
		t.Parallel()
		opts := testutil.V5Options{ClientID: "noexpiry-v5", Resume: true}
		c := testutil.MustConnectV5(t, h.addr("tcp"), opts)
		c.Subscribe(t, "resume/noexpiry-v5", 1)
		if err := c.Disconnect(&paho.Disconnect{}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, h.Broker, opts.ClientID)
		p := testutil.MustConnectV5(t, h.addr("tcp"), testutil.V5Options{})
		p.Publish(t, "resume/noexpiry-v5", 1, false, "lost")

		c = testutil.MustConnectV5(t, h.addr("tcp"), opts)
		if c.Connack.SessionPresent {
			t.Error("CONNACK: session present = true, want false")
		}
		c.Inbox.None(t, 200*time.Millisecond)
	})
}

// TestAnonymousRefused: with allow_anonymous = false and no module, every
// CONNECT is refused, with or without credentials.
func TestAnonymousRefused(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig, policy.New(nil, nil, policy.Options{AllowAnonymous: false}))
	tests := []struct {
		name     string
		user     string
		password string
	}{
		{name: "anonymous"},
		{name: "credentials", user: "alice", password: "secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/v3", func(t *testing.T) {
			t.Parallel()
			_, code, err := testutil.ConnectV3(t, h.url("tcp", "tcp"), testutil.V3Options{Username: tc.user, Password: tc.password})
			if err == nil {
				t.Fatal("connected, want refusal")
			}
			if code != 5 { // 3.1.1 CONNACK return code 5: not authorized
				t.Errorf("return code %d, want 5 (not authorized): %v", code, err)
			}
		})
		t.Run(tc.name+"/v5", func(t *testing.T) {
			t.Parallel()
			_, ca, err := testutil.ConnectV5(t, h.addr("tcp"), testutil.V5Options{Username: tc.user, Password: tc.password})
			if err == nil {
				t.Fatal("connected, want refusal")
			}
			if ca == nil {
				t.Fatalf("no CONNACK: %v", err)
			}
			if ca.ReasonCode != 0x87 && ca.ReasonCode != 0x86 {
				t.Errorf("reason code %#x, want 0x87 (not authorized) or 0x86 (bad user name or password)", ca.ReasonCode)
			}
		})
	}
	if h.logs.contains("secret") {
		t.Error("the password reached the log")
	}
}

func TestAddr(t *testing.T) {
	t.Parallel()
	h := startHarness(t, tcpConfig+`
[[listener]]
name = "ws"
type = "ws"
address = "127.0.0.1:0"
`, nil)
	for _, name := range []string{"tcp", "ws"} {
		a, ok := h.Addr(name).(*net.TCPAddr)
		if !ok || a.Port == 0 {
			t.Errorf("Addr(%q) = %v, want a bound TCP address", name, h.Addr(name))
		}
	}
	if a := h.Addr("nope"); a != nil {
		t.Errorf("Addr(unknown) = %v, want nil", a)
	}
}

// TestStartAllOrNothing: when one listener cannot bind, Start fails and
// releases the sockets it had opened.
func TestStartAllOrNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()

	h := newHarness(t, t.TempDir(), `
[[listener]]
name = "first"
type = "tcp"
address = "`+freeAddr+`"

[[listener]]
name = "second"
type = "ws"
address = "`+busy.Addr().String()+`"
`, nil)
	err = h.Start(context.Background())
	if err == nil {
		h.close()
		t.Fatal("Start succeeded with a busy address")
	}
	if !strings.Contains(err.Error(), `listener "second"`) {
		t.Errorf("error %q does not name the listener", err)
	}
	ln, err := net.Listen("tcp", freeAddr)
	if err != nil {
		t.Fatalf("the first listener's address is still taken: %v", err)
	}
	ln.Close()
	if err := h.Start(context.Background()); err == nil {
		t.Error("a failed broker started on the second try")
	}
	if err := h.Close(context.Background()); err != nil {
		t.Errorf("Close after failed Start: %v", err)
	}
}

func TestLifecycleMisuse(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), tcpConfig, nil)
	if err := h.Close(context.Background()); err != nil {
		t.Errorf("Close before Start: %v", err)
	}
	if err := h.Start(context.Background()); err == nil {
		t.Error("Start after Close succeeded")
	}

	h = startHarness(t, tcpConfig, nil)
	if err := h.Start(context.Background()); err == nil {
		t.Error("second Start succeeded")
	}
	h.close()
	if err := h.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if a := h.Addr("tcp"); a == nil {
		t.Error("Addr after Close is nil; it should still report the address")
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	d := newDecider(t, allowAll(), nil)
	cfg := parseConfig(t, t.TempDir(), tcpConfig)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no config", Options{Decider: d}, "no config"},
		{"no decider", Options{Config: cfg}, "no policy decider"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want error containing %q", err, tc.want)
			}
		})
	}
}

// TestGracefulClose: Close stops accepting at once, waits for in-flight
// QoS 1 deliveries, then disconnects clients with "server shutting down".
func TestGracefulClose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ack      bool // the subscriber acknowledges during the grace period
		grace    time.Duration
		wantErr  error
		minDelay time.Duration
	}{
		{name: "in-flight completes", ack: true, grace: 10 * time.Second},
		{name: "grace period ends", ack: false, grace: 300 * time.Millisecond, wantErr: context.DeadlineExceeded, minDelay: 300 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, t.TempDir(), tcpConfig, nil)
			if err := h.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			addr := h.addr("tcp")

			// A subscriber that acknowledges by hand holds a QoS 1
			// delivery in flight.
			sub := newManualAckV5(t, addr)
			p := testutil.MustConnectV5(t, addr, testutil.V5Options{})
			p.Publish(t, "drain/x", 1, false, "in flight")
			pub := sub.next(t)

			closed := make(chan error, 1)
			start := time.Now()
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), tc.grace)
				defer cancel()
				closed <- h.Close(ctx)
			}()

			// New connections are refused while Close waits.
			deadline := time.Now().Add(testutil.Wait)
			for {
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					break
				}
				c.Close()
				if time.Now().After(deadline) {
					t.Fatal("still accepting connections during Close")
				}
				time.Sleep(5 * time.Millisecond)
			}
			select {
			case err := <-closed:
				if tc.ack {
					t.Fatalf("Close returned (%v) with a delivery in flight", err)
				}
				closed <- err
			case <-time.After(50 * time.Millisecond):
			}
			if tc.ack {
				if err := sub.c.Ack(pub); err != nil {
					t.Fatal(err)
				}
			}

			var err error
			select {
			case err = <-closed:
			case <-time.After(tc.grace + testutil.Wait):
				t.Fatal("Close did not return")
			}
			if took := time.Since(start); took < tc.minDelay {
				t.Errorf("Close took %v, want at least %v", took, tc.minDelay)
			}
			if tc.wantErr == nil && err != nil {
				t.Errorf("Close: %v", err)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("Close: %v, want %v", err, tc.wantErr)
			}
			select {
			case d := <-sub.disconnect:
				if d.ReasonCode != 0x8B {
					t.Errorf("DISCONNECT reason %#x, want 0x8B (server shutting down)", d.ReasonCode)
				}
			case <-time.After(testutil.Wait):
				t.Error("the subscriber got no DISCONNECT")
			}
		})
	}
}

// TestCloseCutsSilentConnections: a socket that never sends CONNECT does not
// hold up Close.
func TestCloseCutsSilentConnections(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), tcpConfig, nil)
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", h.addr("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(20 * time.Millisecond) // let the broker accept it
	done := make(chan error, 1)
	go func() { done <- h.Close(context.Background()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(testutil.Wait):
		t.Fatal("Close blocked on a silent connection")
	}
	_ = conn.SetReadDeadline(time.Now().Add(testutil.Wait))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the silent connection is still open")
	}
}

// manualAckV5 is an MQTT 5 subscriber to "drain/#" that acknowledges
// deliveries only when told to.
type manualAckV5 struct {
	c          *paho.Client
	pubs       chan *paho.Publish
	disconnect chan *paho.Disconnect
}

func newManualAckV5(t *testing.T, addr string) *manualAckV5 {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m := &manualAckV5{pubs: make(chan *paho.Publish, 16), disconnect: make(chan *paho.Disconnect, 1)}
	m.c = paho.NewClient(paho.ClientConfig{
		Conn:                       conn,
		EnableManualAcknowledgment: true,
		PacketTimeout:              testutil.Wait,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			m.pubs <- pr.Packet
			return true, nil
		}},
		OnServerDisconnect: func(d *paho.Disconnect) {
			select {
			case m.disconnect <- d:
			default:
			}
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	if _, err := m.c.Connect(ctx, &paho.Connect{KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.c.Disconnect(&paho.Disconnect{}); conn.Close() })
	if _, err := m.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "drain/#", QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *manualAckV5) next(t *testing.T) *paho.Publish {
	t.Helper()
	select {
	case p := <-m.pubs:
		return p
	case <-time.After(testutil.Wait):
		t.Fatal("no delivery")
		return nil
	}
}

// waitSessionOffline and waitGone wait until b holds the session of client id
// offline, or none. A client returns once its DISCONNECT is written; the
// broker may read it after the test's next packet, which would then meet
// a live session (a takeover, or a live delivery).
func waitSessionOffline(t *testing.T, b *Broker, id string) {
	t.Helper()
	waitSession(t, b, id, "offline", func(ci *ClientInfo) bool { return ci != nil && !ci.Connected })
}

func waitGone(t *testing.T, b *Broker, id string) {
	t.Helper()
	waitSession(t, b, id, "gone", func(ci *ClientInfo) bool { return ci == nil })
}

func waitSession(t *testing.T, b *Broker, id, want string, ok func(*ClientInfo) bool) {
	t.Helper()
	for deadline := time.Now().Add(testutil.Wait); ; time.Sleep(5 * time.Millisecond) {
		var found *ClientInfo
		for _, ci := range b.Sessions() {
			if ci.ID == id {
				found = &ci
			}
		}
		if ok(found) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session of %q is not %s after its DISCONNECT: %+v", id, want, found)
		}
	}
}
