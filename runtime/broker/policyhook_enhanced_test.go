package broker

import (
	"slices"
	"testing"

	ppackets "github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/mochi-mqtt/server/v2/packets"
)

// challengeClient answers the server challenge of "TEST-2ROUND" in paho's
// enhanced-authentication flow.
type challengeClient struct {
	challenges []string
	done       chan struct{}
}

func (c *challengeClient) Authenticate(a *paho.Auth) *paho.Auth {
	var method string
	if a.Properties != nil {
		method = a.Properties.AuthMethod
		c.challenges = append(c.challenges, string(a.Properties.AuthData))
	}
	return &paho.Auth{
		ReasonCode: packets.CodeContinueAuthentication.Code,
		Properties: &paho.AuthProperties{AuthMethod: method, AuthData: []byte("client-proof")},
	}
}

func (c *challengeClient) Authenticated() { close(c.done) }

func TestEnhancedAuthentication(t *testing.T) {
	t.Parallel()
	b := startPolicyBroker(t)

	t.Run("two rounds with paho", func(t *testing.T) {
		auth := &challengeClient{done: make(chan struct{})}
		cp := &paho.Connect{ClientID: "scram-ish", KeepAlive: 30, CleanStart: true,
			Properties: &paho.ConnectProperties{AuthMethod: "TEST-2ROUND", AuthData: []byte("client-first"), RequestProblemInfo: true}}
		c, ca, err := dialV5(t, b.addr, cp, auth)
		if err != nil {
			t.Fatalf("connect: %+v %v", ca, err)
		}
		if !slices.Equal(auth.challenges, []string{"server-challenge"}) {
			t.Fatalf("challenges %q, want one, server-challenge", auth.challenges)
		}
		if ca.Properties == nil || ca.Properties.AuthMethod != "TEST-2ROUND" || string(ca.Properties.AuthData) != "server-final" {
			t.Fatalf("CONNACK properties %+v, want the method and server-final", ca.Properties)
		}
		<-auth.done
		// The attributes of the final round reach authorization.
		if got := c.publish(t, "acme/x", 1, false); got != 0 {
			t.Errorf("publish acme/x: 0x%02X, want 0", got)
		}
		if got := c.publish(t, "public/x", 1, false); got != 0x87 {
			t.Errorf("publish public/x: 0x%02X, want 0x87", got)
		}
	})

	// Each case sends CONNECT with method and data, then answers every AUTH
	// with reply (when set), and expects the CONNACK code after rounds AUTH
	// packets; code 0 with closed means no CONNACK at all.
	tests := []struct {
		name    string
		method  string
		data    string
		reply   func(round int) *ppackets.ControlPacket
		rounds  int
		code    byte
		message string
		closed  bool
	}{
		{name: "right answer", method: "TEST-2ROUND", data: "client-first", rounds: 1, code: 0,
			reply: func(int) *ppackets.ControlPacket { return rawAuth("TEST-2ROUND", []byte("client-proof"), 0x18) }},
		{name: "wrong answer", method: "TEST-2ROUND", data: "client-first", rounds: 1, code: 0x87, message: "challenge failed",
			reply: func(int) *ppackets.ControlPacket { return rawAuth("TEST-2ROUND", []byte("guess"), 0x18) }},
		{name: "method changed", method: "TEST-2ROUND", data: "client-first", rounds: 1, code: 0x8C,
			reply: func(int) *ppackets.ControlPacket { return rawAuth("OTHER", []byte("client-proof"), 0x18) }},
		{name: "AUTH that does not continue", method: "TEST-2ROUND", data: "client-first", rounds: 1, code: 0x82,
			reply: func(int) *ppackets.ControlPacket { return rawAuth("TEST-2ROUND", []byte("client-proof"), 0x00) }},
		{name: "another packet instead of AUTH", method: "TEST-2ROUND", data: "client-first", rounds: 1, code: 0x82,
			reply: func(int) *ppackets.ControlPacket { return ppackets.NewControlPacket(ppackets.PINGREQ) }},
		{name: "endless exchange", method: "TEST-LOOP", rounds: maxAuthRounds, code: 0x87, message: "too many authentication rounds",
			reply: func(int) *ppackets.ControlPacket { return rawAuth("TEST-LOOP", []byte("more"), 0x18) }},
		{name: "unknown method", method: "NOPE", rounds: 0, code: 0x8C, message: "unknown method"},
		{name: "client gives up", method: "TEST-2ROUND", data: "client-first", rounds: 1, closed: true,
			reply: func(int) *ppackets.ControlPacket { return ppackets.NewControlPacket(ppackets.DISCONNECT) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, b.addr)
			cp := rawConnect("", "", "")
			cp.Content.(*ppackets.Connect).Properties.AuthMethod = tc.method
			cp.Content.(*ppackets.Connect).Properties.AuthData = []byte(tc.data)
			r.send(cp)
			rounds := 0
			for {
				p := r.recv()
				if p == nil {
					if !tc.closed {
						t.Fatalf("closed after %d rounds without CONNACK", rounds)
					}
					return
				}
				if p.Type == ppackets.AUTH {
					a := p.Content.(*ppackets.Auth)
					if a.ReasonCode != 0x18 || a.Properties.AuthMethod != tc.method {
						t.Fatalf("AUTH reason 0x%02X method %q", a.ReasonCode, a.Properties.AuthMethod)
					}
					rounds++
					r.send(tc.reply(rounds))
					continue
				}
				ca, ok := p.Content.(*ppackets.Connack)
				if !ok || tc.closed {
					t.Fatalf("got %s after %d rounds", p.PacketType(), rounds)
				}
				if rounds != tc.rounds || ca.ReasonCode != tc.code {
					t.Fatalf("CONNACK 0x%02X after %d rounds, want 0x%02X after %d", ca.ReasonCode, rounds, tc.code, tc.rounds)
				}
				if tc.message != "" && ca.Properties.ReasonString != tc.message {
					t.Fatalf("reason string %q, want %q", ca.Properties.ReasonString, tc.message)
				}
				return
			}
		})
	}

	t.Run("re-authentication is refused", func(t *testing.T) {
		r := dialRaw(t, b.addr)
		cp := rawConnect("", "", "")
		cp.Content.(*ppackets.Connect).Properties.AuthMethod = "TEST-2ROUND"
		cp.Content.(*ppackets.Connect).Properties.AuthData = []byte("client-first")
		r.send(cp)
		if p := r.recv(); p == nil || p.Type != ppackets.AUTH {
			t.Fatalf("got %v, want AUTH", p)
		}
		r.send(rawAuth("TEST-2ROUND", []byte("client-proof"), 0x18))
		if p := r.recv(); p == nil || p.Type != ppackets.CONNACK || p.Content.(*ppackets.Connack).ReasonCode != 0 {
			t.Fatalf("got %v, want CONNACK 0", p)
		}
		r.send(rawAuth("TEST-2ROUND", []byte("client-first"), 0x19)) // re-authenticate
		p := r.recv()
		if p == nil || p.Type != ppackets.DISCONNECT || p.Content.(*ppackets.Disconnect).ReasonCode != 0x87 {
			t.Fatalf("got %v, want DISCONNECT 0x87", p)
		}
	})
}
