package e2e

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/plugins/scram/scramauth"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// scramAuther is the client side of SCRAM for paho.golang: paho sends the
// CONNECT with the client-first-message, calls Authenticate with the
// broker's AUTH (server-first-message) and sends what it returns (the
// client-final-message); the CONNACK brings the server-final-message.
type scramAuther struct {
	method string
	c      *scramauth.Client

	mu     sync.Mutex
	rounds int
	err    error
}

func (a *scramAuther) Authenticate(in *paho.Auth) *paho.Auth {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rounds++
	var data []byte
	if in.Properties != nil {
		data = in.Properties.AuthData
	}
	final, err := a.c.Final(data)
	if err != nil {
		a.err = err
		final = []byte("c=biws,r=invalid,p=invalid") // the broker refuses it
	}
	return &paho.Auth{ReasonCode: packets.AuthContinueAuthentication,
		Properties: &paho.AuthProperties{AuthMethod: a.method, AuthData: final}}
}

func (a *scramAuther) Authenticated() {}

// scramConnect runs a SCRAM exchange over MQTT 5 as connectUser with
// scramUser's credentials, and returns the CONNACK, the client side of the
// exchange and the MQTT client. On success it checks the
// server-final-message: the broker proved it knows the user's keys. The
// connection is closed when the test ends.
func scramConnect(t *testing.T, addr, method, connectUser, scramUser, password string) (*paho.Connack, *scramAuther, *paho.Client) {
	t.Helper()
	c, err := scramauth.NewClient(method, scramUser, password)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", addr, testutil.Wait)
	if err != nil {
		t.Fatal(err)
	}
	auth := &scramAuther{method: method, c: c}
	client := paho.NewClient(paho.ClientConfig{
		Conn:          packets.NewThreadSafeConn(conn),
		AuthHandler:   auth,
		PacketTimeout: testutil.Wait,
		OnClientError: func(error) {},
	})
	cp := &paho.Connect{ClientID: "scram-" + connectUser + "-" + scramUser, KeepAlive: 30, CleanStart: true,
		Username: connectUser, UsernameFlag: connectUser != "",
		Properties: &paho.ConnectProperties{AuthMethod: method, AuthData: c.First(), RequestProblemInfo: true}}
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
	defer cancel()
	ca, err := client.Connect(ctx, cp)
	t.Cleanup(func() {
		if err == nil {
			_ = client.Disconnect(&paho.Disconnect{})
		}
		_ = conn.Close()
	})
	if ca == nil {
		t.Fatalf("connect: no CONNACK: %v", err)
	}
	if ca.ReasonCode == 0 {
		if ca.Properties == nil || ca.Properties.AuthMethod != method {
			t.Fatalf("CONNACK without the authentication method: %+v", ca.Properties)
		}
		if err := c.Verify(ca.Properties.AuthData); err != nil {
			t.Fatalf("server-final-message: %v", err)
		}
	}
	return ca, auth, client
}

// TestSCRAM: MQTT 5 enhanced authentication with SCRAM-SHA-256 and -512
// through the scram plugin, over a real connection with paho.golang, from
// a password file in the format `moat passwd -H scram-sha-256` writes
// (passwdfile.HashWith, which `moat passwd` calls). The passwd plugin
// shares the file and answers plain-password CONNECTs.
func TestSCRAM(t *testing.T) {
	skipShort(t)
	dir := t.TempDir()
	line := func(user, pw, format string) string {
		h, err := passwdfile.HashWith([]byte(pw), format, passwdfile.HashOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return user + ":" + h + "\n"
	}
	aclfile := writeFile(t, filepath.Join(dir, "acl"), "user alice\ntopic readwrite alice/#\n")
	pwfile := writeFile(t, filepath.Join(dir, "passwd"),
		line("alice", "alice-pw", passwdfile.FormatSCRAMSHA256)+
			line("bob", "bob-pw", passwdfile.FormatSCRAMSHA512)+
			line("root", "root-pw", passwdfile.FormatSCRAMSHA256))
	grant := map[string]string{"passwords": pwfile}
	m := startMoat(t, dir, header("deny")+
		plugin(t, "passwd", `["authn"]`, grant, "")+
		plugin(t, "scram", `["authn"]`, grant, `superusers = ["root"]`)+
		plugin(t, "acl", `["authz"]`, map[string]string{"acl": aclfile}, ""))

	tests := []struct {
		name, method, connectUser, scramUser, password string
		code                                           byte
	}{
		{"SCRAM-SHA-256", scramauth.SHA256, "alice", "alice", "alice-pw", 0},
		{"SCRAM-SHA-512", scramauth.SHA512, "bob", "bob", "bob-pw", 0},
		{"superuser", scramauth.SHA256, "root", "root", "root-pw", 0},
		{"wrong password", scramauth.SHA256, "alice", "alice", "bob-pw", 0x86},
		{"wrong password, SHA-512", scramauth.SHA512, "bob", "bob", "alice-pw", 0x86},
		{"credentials for the other mechanism", scramauth.SHA512, "alice", "alice", "alice-pw", 0x86},
		{"unknown user", scramauth.SHA256, "mallory", "mallory", "alice-pw", 0x86},
		{"CONNECT username is not the SCRAM user", scramauth.SHA256, "root", "alice", "alice-pw", 0x86},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ca, auth, _ := scramConnect(t, m.addr, tc.method, tc.connectUser, tc.scramUser, tc.password)
			if ca.ReasonCode != tc.code {
				t.Fatalf("CONNACK 0x%02x (%s), want 0x%02x", ca.ReasonCode, reasonString(ca), tc.code)
			}
			if auth.rounds != 1 {
				t.Errorf("%d AUTH rounds, want 1", auth.rounds)
			}
			if auth.err != nil {
				t.Errorf("client: %v", auth.err)
			}
		})
	}

	t.Run("unsupported method", func(t *testing.T) {
		// SCRAM-SHA-1 messages look the same; the plugin refuses the
		// method itself, before any round.
		c, _ := scramauth.NewClient(scramauth.SHA256, "alice", "alice-pw")
		conn, err := net.DialTimeout("tcp", m.addr, testutil.Wait)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		auth := &scramAuther{method: "SCRAM-SHA-1", c: c}
		client := paho.NewClient(paho.ClientConfig{Conn: conn, AuthHandler: auth, OnClientError: func(error) {}})
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
		defer cancel()
		ca, err := client.Connect(ctx, &paho.Connect{ClientID: "sha1", KeepAlive: 30, CleanStart: true,
			Username: "alice", UsernameFlag: true,
			Properties: &paho.ConnectProperties{AuthMethod: "SCRAM-SHA-1", AuthData: c.First()}})
		if ca == nil || ca.ReasonCode != 0x8C || auth.rounds != 0 {
			t.Fatalf("CONNACK %+v after %d rounds (%v), want 0x8C after 0", ca, auth.rounds, err)
		}
	})

	t.Run("authz after SCRAM", func(t *testing.T) {
		// The ACL gives alice alice/# and root nothing; root is a superuser.
		for _, c := range []struct {
			user, pw, topic string
			code            byte
		}{
			{"alice", "alice-pw", "alice/x", 0},
			{"alice", "alice-pw", "root/x", 0x87},
			{"root", "root-pw", "root/x", 0},
			{"root", "root-pw", "anything", 0},
		} {
			ca, _, client := scramConnect(t, m.addr, scramauth.SHA256, c.user, c.user, c.pw)
			if ca.ReasonCode != 0 {
				t.Fatalf("%s: CONNACK 0x%02x", c.user, ca.ReasonCode)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
			pr, err := client.Publish(ctx, &paho.Publish{Topic: c.topic, QoS: 1, Payload: []byte("x")})
			cancel()
			if pr == nil {
				t.Fatalf("%s publishes %s: %v", c.user, c.topic, err)
			}
			if pr.ReasonCode != c.code {
				t.Errorf("%s publishes %s: 0x%02x, want 0x%02x", c.user, c.topic, pr.ReasonCode, c.code)
			}
		}
	})

	t.Run("plain password on a SCRAM line goes to passwd", func(t *testing.T) {
		if code := connectV3(t, m.url(), "plain", "alice", "alice-pw"); code != 0 {
			t.Errorf("3.1.1 return code %d, want 0", code)
		}
		if code := connectV5(t, m.addr, "plain-wrong", "alice", "bob-pw"); code != 0x86 {
			t.Errorf("MQTT 5 reason 0x%02x, want 0x86", code)
		}
	})
}

func reasonString(ca *paho.Connack) string {
	if ca.Properties == nil {
		return ""
	}
	return ca.Properties.ReasonString
}
