package testutil

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	pahov3 "github.com/eclipse/paho.mqtt.golang"
)

// Wait bounds every wait in these helpers: long enough for a loaded CI
// machine under -race, short enough that a lost message fails quickly.
const Wait = 5 * time.Second

// Msg is a received message, the same for both protocol versions.
type Msg struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
}

// Inbox collects the messages a client receives. Clients never block on
// it: beyond 1024 unread messages further ones are dropped.
type Inbox struct {
	ch chan Msg
}

// NewInbox returns an empty Inbox.
func NewInbox() *Inbox { return &Inbox{ch: make(chan Msg, 1024)} }

func (in *Inbox) put(m Msg) {
	select {
	case in.ch <- m:
	default:
	}
}

// V3 is a paho.mqtt.golang message handler feeding the Inbox.
func (in *Inbox) V3(_ pahov3.Client, m pahov3.Message) {
	in.put(Msg{Topic: m.Topic(), Payload: string(m.Payload()), QoS: m.Qos(), Retain: m.Retained()})
}

// V5 is a paho.golang OnPublishReceived callback feeding the Inbox.
func (in *Inbox) V5(pr paho.PublishReceived) (bool, error) {
	p := pr.Packet
	in.put(Msg{Topic: p.Topic, Payload: string(p.Payload), QoS: p.QoS, Retain: p.Retain})
	return true, nil
}

// Next returns the next message, failing the test after Wait.
func (in *Inbox) Next(t testing.TB) Msg {
	t.Helper()
	select {
	case m := <-in.ch:
		return m
	case <-time.After(Wait):
		t.Fatalf("no message within %v", Wait)
		return Msg{}
	}
}

// Want fails unless the next message has topic and payload.
func (in *Inbox) Want(t testing.TB, topic, payload string) Msg {
	t.Helper()
	m := in.Next(t)
	if m.Topic != topic || m.Payload != payload {
		t.Fatalf("got message %q %q, want %q %q", m.Topic, m.Payload, topic, payload)
	}
	return m
}

// None fails if a message arrives within d.
func (in *Inbox) None(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case m := <-in.ch:
		t.Fatalf("unexpected message %q %q", m.Topic, m.Payload)
	case <-time.After(d):
	}
}

// Will is a CONNECT will message.
type Will struct {
	Topic   string
	Payload string
	QoS     byte
	Retain  bool
}

// V3Options configure a 3.1.1 client. The zero value is an anonymous
// clean-session client with a generated id.
type V3Options struct {
	ClientID           string
	Username, Password string
	// Persistent connects with clean session = false.
	Persistent bool
	TLS        *tls.Config
	Will       *Will
	KeepAlive  time.Duration // default 30s; negative sends 0 (no keepalive)
}

// V3 is a connected paho.mqtt.golang client with its Inbox.
type V3 struct {
	pahov3.Client
	Inbox *Inbox

	mu   sync.Mutex
	conn net.Conn // tcp:// only: the socket, for Kill
}

// ConnectV3 connects a 3.1.1 client to url (tcp://, ssl://, ws:// or
// wss://). It returns the CONNACK return code with any error (0 when the
// connection failed before CONNACK). The client is disconnected at the end
// of the test.
func ConnectV3(t testing.TB, brokerURL string, o V3Options) (*V3, byte, error) {
	t.Helper()
	c := &V3{Inbox: NewInbox()}
	opts := pahov3.NewClientOptions().
		AddBroker(brokerURL).
		SetClientID(o.ClientID).
		SetUsername(o.Username).
		SetPassword(o.Password).
		SetCleanSession(!o.Persistent).
		SetProtocolVersion(4).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(Wait).
		SetWriteTimeout(Wait).
		SetOrderMatters(false).
		SetDefaultPublishHandler(c.Inbox.V3)
	switch {
	case o.KeepAlive > 0:
		opts.SetKeepAlive(o.KeepAlive)
	case o.KeepAlive < 0:
		opts.SetKeepAlive(0)
	default:
		opts.SetKeepAlive(30 * time.Second)
	}
	if o.TLS != nil {
		opts.SetTLSConfig(o.TLS)
	}
	if o.Will != nil {
		opts.SetWill(o.Will.Topic, o.Will.Payload, o.Will.QoS, o.Will.Retain)
	}
	if u, err := url.Parse(brokerURL); err == nil && u.Scheme == "tcp" {
		opts.SetCustomOpenConnectionFn(func(u *url.URL, _ pahov3.ClientOptions) (net.Conn, error) {
			conn, err := net.DialTimeout("tcp", u.Host, Wait)
			if err != nil {
				return nil, err
			}
			c.mu.Lock()
			c.conn = conn
			c.mu.Unlock()
			return conn, nil
		})
	}
	c.Client = pahov3.NewClient(opts)
	tok := c.Client.Connect()
	if !tok.WaitTimeout(Wait + time.Second) {
		return nil, 0, errors.New("testutil: connect timed out")
	}
	code := tok.(*pahov3.ConnectToken).ReturnCode()
	if err := tok.Error(); err != nil {
		return nil, code, err
	}
	t.Cleanup(func() { c.Client.Disconnect(250) })
	return c, code, nil
}

// MustConnectV3 is ConnectV3 that fails the test on error.
func MustConnectV3(t testing.TB, brokerURL string, o V3Options) *V3 {
	t.Helper()
	c, code, err := ConnectV3(t, brokerURL, o)
	if err != nil {
		t.Fatalf("connect 3.1.1 to %s: return code %d: %v", brokerURL, code, err)
	}
	return c
}

// Subscribe subscribes to filter at qos; messages go to the Inbox.
func (c *V3) Subscribe(t testing.TB, filter string, qos byte) {
	t.Helper()
	tok := c.Client.Subscribe(filter, qos, nil)
	if !tok.WaitTimeout(Wait) || tok.Error() != nil {
		t.Fatalf("subscribe %q: %v", filter, tok.Error())
	}
}

// SubscribeCode subscribes to filter and returns the SUBACK return code.
func (c *V3) SubscribeCode(t testing.TB, filter string, qos byte) byte {
	t.Helper()
	tok := c.Client.Subscribe(filter, qos, nil)
	if !tok.WaitTimeout(Wait) {
		t.Fatalf("subscribe %q: timed out", filter)
	}
	// paho keys the result by filter, without a "$share/<group>/" prefix.
	for _, code := range tok.(*pahov3.SubscribeToken).Result() {
		return code
	}
	t.Fatalf("subscribe %q: no result", filter)
	return 0
}

// Publish publishes and waits for the QoS flow to complete.
func (c *V3) Publish(t testing.TB, topic string, qos byte, retain bool, payload string) {
	t.Helper()
	tok := c.Client.Publish(topic, qos, retain, payload)
	if !tok.WaitTimeout(Wait) || tok.Error() != nil {
		t.Fatalf("publish %q: %v", topic, tok.Error())
	}
}

// Kill closes the socket without DISCONNECT, as a crashed client would, so
// that the broker publishes the will. tcp:// clients only.
func (c *V3) Kill(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		t.Fatal("testutil: Kill needs a tcp:// client")
	}
	_ = conn.Close()
}

// V5Options configure an MQTT 5 client.
type V5Options struct {
	ClientID           string
	Username, Password string
	// CleanStart defaults to true unless Resume is set.
	Resume bool
	// SessionExpiry in seconds (MQTT 5 session expiry interval).
	SessionExpiry uint32
	TLS           *tls.Config
	Will          *Will
	KeepAlive     uint16 // seconds; default 30
}

// V5 is a connected paho.golang client with its Inbox and CONNACK.
type V5 struct {
	*paho.Client
	Inbox   *Inbox
	Connack *paho.Connack
	conn    net.Conn
}

// ConnectV5 dials addr (host:port; TLS when o.TLS is set) and connects. On
// refusal it returns the CONNACK (with its reason code) and an error. The
// client is disconnected at the end of the test.
func ConnectV5(t testing.TB, addr string, o V5Options) (*V5, *paho.Connack, error) {
	t.Helper()
	var conn net.Conn
	var err error
	d := &net.Dialer{Timeout: Wait}
	if o.TLS != nil {
		conn, err = tls.DialWithDialer(d, "tcp", addr, o.TLS)
	} else {
		conn, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("testutil: dial %s: %w", addr, err)
	}
	c := &V5{Inbox: NewInbox(), conn: conn}
	c.Client = paho.NewClient(paho.ClientConfig{
		ClientID:          o.ClientID,
		Conn:              packets.NewThreadSafeConn(conn),
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){c.Inbox.V5},
		PacketTimeout:     Wait,
	})
	cp := &paho.Connect{
		ClientID:   o.ClientID,
		KeepAlive:  30,
		CleanStart: !o.Resume,
		Properties: &paho.ConnectProperties{},
	}
	if o.KeepAlive > 0 {
		cp.KeepAlive = o.KeepAlive
	}
	if o.SessionExpiry > 0 {
		se := o.SessionExpiry
		cp.Properties.SessionExpiryInterval = &se
	}
	if o.Username != "" {
		cp.Username, cp.UsernameFlag = o.Username, true
	}
	if o.Password != "" {
		cp.Password, cp.PasswordFlag = []byte(o.Password), true
	}
	if o.Will != nil {
		cp.WillMessage = &paho.WillMessage{Topic: o.Will.Topic, Payload: []byte(o.Will.Payload), QoS: o.Will.QoS, Retain: o.Will.Retain}
		cp.WillProperties = &paho.WillProperties{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	ca, err := c.Client.Connect(ctx, cp)
	if err != nil {
		_ = conn.Close()
		return nil, ca, err
	}
	c.Connack = ca
	t.Cleanup(func() {
		_ = c.Client.Disconnect(&paho.Disconnect{ReasonCode: 0})
		_ = conn.Close()
	})
	return c, ca, nil
}

// MustConnectV5 is ConnectV5 that fails the test on error.
func MustConnectV5(t testing.TB, addr string, o V5Options) *V5 {
	t.Helper()
	c, ca, err := ConnectV5(t, addr, o)
	if err != nil {
		code := byte(0)
		if ca != nil {
			code = ca.ReasonCode
		}
		t.Fatalf("connect MQTT 5 to %s: reason code %#x: %v", addr, code, err)
	}
	return c
}

// Subscribe subscribes to filter and fails unless it is granted.
func (c *V5) Subscribe(t testing.TB, filter string, qos byte) {
	t.Helper()
	codes := c.SubscribeCodes(t, paho.SubscribeOptions{Topic: filter, QoS: qos})
	if codes[0] >= 0x80 {
		t.Fatalf("subscribe %q: reason code %#x", filter, codes[0])
	}
}

// SubscribeCodes subscribes and returns the SUBACK reason codes.
func (c *V5) SubscribeCodes(t testing.TB, subs ...paho.SubscribeOptions) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	sa, err := c.Client.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
	if sa != nil {
		return sa.Reasons
	}
	t.Fatalf("subscribe: %v", err)
	return nil
}

// Publish publishes and waits for the QoS flow; it returns the reason code
// of the PUBACK or PUBREC (0 for QoS 0).
func (c *V5) Publish(t testing.TB, topic string, qos byte, retain bool, payload string) byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	pr, err := c.Client.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: []byte(payload)})
	if pr != nil && pr.ReasonCode >= 0x80 {
		return pr.ReasonCode
	}
	if err != nil {
		t.Fatalf("publish %q: %v", topic, err)
	}
	return pr.ReasonCode
}

// Kill closes the socket without DISCONNECT, as a crashed client would.
func (c *V5) Kill() { _ = c.conn.Close() }
