//go:build !wasip1

package aclfile

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
)

// interopACL is loaded by both a real mosquitto and this package. The
// admin section lets the test publish every probe message; the other
// sections are what is compared.
const interopACL = `# anonymous clients
topic read public/#
topic write public/anon/+
topic deny public/secret/#
topic readwrite room/with space/x
topic $app/status

user alice
topic readwrite alice/#
topic read shared/+/status
topic deny alice/private
topic write $app/alice/#
topic read $app/#

user bob
topic read #
topic write shared/bob/status

user has space
topic readwrite spaced/#

user admin
topic readwrite #
topic readwrite $app/#

pattern readwrite clients/%c/#
pattern read users/%u/inbox/#
pattern deny clients/%c/locked
pattern write users/%u/outbox
pattern read broadcast
`

type interopIdent struct {
	username, password string // username "" means anonymous
	clientID           string
	fence              string // a topic this identity may read, published last
}

var interopIdents = map[string]interopIdent{
	"anon":  {clientID: "anon1", fence: "public/fence/anon1"},
	"alice": {username: "alice", password: "pw-alice", clientID: "alice-1", fence: "alice/fence"},
	"bob":   {username: "bob", password: "pw-bob", clientID: "bobc", fence: "fence/bob"},
	"space": {username: "has space", password: "pw-space", clientID: "spacec", fence: "spaced/fence"},
	"carol": {username: "carol", password: "pw-carol", clientID: "carolc", fence: "users/carol/inbox/fence"},
	"evil":  {clientID: "a+b", fence: "public/fence/evil"},
	"slash": {clientID: "a/b", fence: "public/fence/slash"},
	"admin": {username: "admin", password: "pw-admin", clientID: "admin"},
}

type interopCase struct {
	who    string
	action Action
	topic  string
	// differs explains a deliberate difference from mosquitto 2.0.11; the
	// test then checks that the difference is exactly the expected one
	// (mosquitto allows, this package refuses).
	differs string
}

var interopCases = []interopCase{
	{who: "anon", action: Publish, topic: "public/news"},
	{who: "anon", action: Publish, topic: "public/anon/x"},
	{who: "anon", action: Publish, topic: "public/anon/x/y"},
	{who: "anon", action: Publish, topic: "public/secret/x"},
	{who: "anon", action: Publish, topic: "room/with space/x"},
	{who: "anon", action: Publish, topic: "$app/status"},
	{who: "anon", action: Publish, topic: "clients/anon1/a"},
	{who: "anon", action: Publish, topic: "clients/anon1/locked"},
	{who: "anon", action: Publish, topic: "clients/other/a"},
	{who: "anon", action: Publish, topic: "users/anon1/outbox"},
	{who: "anon", action: Publish, topic: "alice/x"},
	{who: "anon", action: Publish, topic: "broadcast"},
	{who: "anon", action: Deliver, topic: "public/news"},
	{who: "anon", action: Deliver, topic: "public/secret/x"},
	{who: "anon", action: Deliver, topic: "public/secret"},
	{who: "anon", action: Deliver, topic: "room/with space/x"},
	{who: "anon", action: Deliver, topic: "$app/status"},
	{who: "anon", action: Deliver, topic: "broadcast"},
	{who: "anon", action: Deliver, topic: "private/x"},
	{who: "anon", action: Deliver, topic: "users/anon1/inbox/m"},
	{who: "anon", action: Subscribe, topic: "#"},
	{who: "anon", action: Subscribe, topic: "public/secret/#"},
	{who: "anon", action: Subscribe, topic: "nothing/+/here"},

	{who: "alice", action: Publish, topic: "alice/x"},
	{who: "alice", action: Publish, topic: "alice/private"},
	{who: "alice", action: Publish, topic: "alice/private/x"},
	{who: "alice", action: Publish, topic: "shared/bob/status"},
	{who: "alice", action: Publish, topic: "$app/alice/state"},
	{who: "alice", action: Publish, topic: "users/alice/outbox"},
	{who: "alice", action: Publish, topic: "public/anon/x"},
	{who: "alice", action: Deliver, topic: "alice/private"},
	{who: "alice", action: Deliver, topic: "alice/y"},
	{who: "alice", action: Deliver, topic: "shared/bob/status"},
	{who: "alice", action: Deliver, topic: "shared/bob/x"},
	{who: "alice", action: Deliver, topic: "$app/status"},
	{who: "alice", action: Deliver, topic: "users/alice/inbox/m"},
	{who: "alice", action: Deliver, topic: "users/bob/inbox/m"},
	{who: "alice", action: Deliver, topic: "public/news"},
	{who: "alice", action: Subscribe, topic: "alice/#"},

	{who: "bob", action: Deliver, topic: "anything/x"},
	{who: "bob", action: Deliver, topic: "$app/other"},
	{who: "bob", action: Deliver, topic: "alice/private"},
	{who: "bob", action: Deliver, topic: "clients/bobc/locked"},
	{who: "bob", action: Publish, topic: "clients/bobc/locked"},
	{who: "bob", action: Publish, topic: "clients/bobc/x"},
	{who: "bob", action: Publish, topic: "shared/bob/status"},
	{who: "bob", action: Publish, topic: "anything"},
	{who: "bob", action: Deliver, topic: "users/bob/inbox/x"},
	{who: "bob", action: Publish, topic: "users/bob/outbox"},

	{who: "space", action: Publish, topic: "spaced/x"},
	{who: "space", action: Deliver, topic: "spaced/y"},
	{who: "space", action: Deliver, topic: "public/news"},

	{who: "carol", action: Deliver, topic: "broadcast"},
	{who: "carol", action: Deliver, topic: "public/news"},
	{who: "carol", action: Publish, topic: "clients/carolc/x"},
	{who: "carol", action: Publish, topic: "users/carol/outbox"},
	{who: "carol", action: Publish, topic: "users/bob/outbox"},

	// CVE-2017-7650.
	{who: "evil", action: Deliver, topic: "public/news"},
	{who: "evil", action: Deliver, topic: "broadcast"},
	{who: "evil", action: Publish, topic: "public/anon/x"},
	{who: "slash", action: Deliver, topic: "broadcast"},
	{who: "slash", action: Publish, topic: "clients/a/x"},
	{who: "slash", action: Publish, topic: "clients/a/b/x",
		differs: "mosquitto 2.0 substitutes client id \"a/b\" into clients/%c/# and so lets it into client \"a\"'s tree; '/' is refused here"},
}

func findBinary(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	t.Skipf("%s not installed", name)
	return ""
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// TestMosquittoInterop runs Debian's mosquitto with interopACL and checks,
// over real connections, that every publish, delivery and subscription
// mosquitto allows is allowed here, and every one it refuses is refused.
func TestMosquittoInterop(t *testing.T) {
	broker := findBinary(t, "mosquitto")
	passwd := findBinary(t, "mosquitto_passwd")

	acl, err := Parse(strings.NewReader(interopACL), "interop.acl")
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	aclPath := filepath.Join(dir, "acl")
	pwPath := filepath.Join(dir, "passwd")
	if err := os.WriteFile(aclPath, []byte(interopACL), 0o600); err != nil {
		t.Fatal(err)
	}
	first := true
	for _, id := range interopIdents {
		if id.username == "" {
			continue
		}
		args := []string{"-b", pwPath, id.username, id.password}
		if first {
			args = append([]string{"-c"}, args...)
			first = false
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd %v: %v\n%s", args, err, out)
		}
	}

	addr := startMosquitto(t, broker, dir, aclPath, pwPath)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	clients := map[string]*probeClient{}
	for name, id := range interopIdents {
		clients[name] = dialProbe(ctx, t, addr, id)
	}

	allowedByMosquitto := make([]bool, len(interopCases))

	// Subscriptions: SUBACK reason codes; and the subscriptions that the
	// delivery probes need.
	for i, c := range interopCases {
		if c.action == Deliver || c.action == Subscribe {
			allowedByMosquitto[i] = clients[c.who].subscribe(ctx, t, c.topic)
		}
	}
	for name, id := range interopIdents {
		if id.fence != "" && !clients[name].subscribe(ctx, t, id.fence) {
			t.Fatalf("%s: mosquitto refused the subscription to its fence %q", name, id.fence)
		}
	}

	// Publications: MQTT 5 PUBACK reason code 0x87 when refused.
	for i, c := range interopCases {
		if c.action == Publish {
			allowedByMosquitto[i] = clients[c.who].publish(ctx, t, c.topic, fmt.Sprintf("pub-%d", i))
		}
	}

	// Deliveries: admin publishes every probe message, then each identity's
	// fence. Mosquitto handles one client's PUBLISHes in order and queues
	// them to a subscriber in order, so once an identity has its fence, it
	// has every probe message it was going to get.
	admin := clients["admin"]
	for i, c := range interopCases {
		if c.action == Deliver {
			if !admin.publish(ctx, t, c.topic, fmt.Sprintf("del-%d", i)) {
				t.Fatalf("admin may not publish %q; fix interopACL", c.topic)
			}
		}
	}
	for name, id := range interopIdents {
		if id.fence == "" {
			continue
		}
		q := Query{Action: Deliver, Topic: id.fence, ClientID: id.clientID, Username: id.username, Anonymous: id.username == ""}
		if acl.Check(q) != Allow {
			t.Fatalf("%s: fence %q is not deliverable per the ACL; fix interopIdents", name, id.fence)
		}
		if !admin.publish(ctx, t, id.fence, "fence-"+name) {
			t.Fatalf("admin may not publish fence %q", id.fence)
		}
	}
	for name, id := range interopIdents {
		if id.fence != "" {
			clients[name].waitFor(ctx, t, "fence-"+name)
		}
	}
	for i, c := range interopCases {
		if c.action == Deliver {
			allowedByMosquitto[i] = clients[c.who].got(fmt.Sprintf("del-%d", i))
		}
	}

	for i, c := range interopCases {
		id := interopIdents[c.who]
		q := Query{
			Action: c.action, Topic: c.topic, QoS: 1,
			ClientID: id.clientID, Username: id.username, Anonymous: id.username == "",
		}
		res, why := acl.Explain(q)
		mine := res == Allow
		t.Run(fmt.Sprintf("%s/%v/%s", c.who, c.action, c.topic), func(t *testing.T) {
			switch {
			case c.differs != "":
				if !allowedByMosquitto[i] || mine {
					t.Errorf("expected difference (%s) not seen: mosquitto allows=%v, aclfile %v (%s)", c.differs, allowedByMosquitto[i], res, why)
				}
			case mine != allowedByMosquitto[i]:
				t.Errorf("mosquitto allows=%v, aclfile %v (%s)", allowedByMosquitto[i], res, why)
			}
		})
	}
}

// startMosquitto runs mosquitto on a free loopback port until the test
// ends and returns its address.
func startMosquitto(t *testing.T, broker, dir, aclPath, pwPath string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
password_file %s
acl_file %s
persistence false
log_dest stderr
log_type error
log_type warning
`, port, pwPath, aclPath)
	if os.Geteuid() == 0 {
		// As root, mosquitto drops to user "mosquitto", which cannot read
		// the test's private temporary directory.
		text += "user root\n"
	}
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(broker, "-c", conf)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", logs.String())
		}
	})

	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-exited:
			t.Fatalf("mosquitto exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probeClient is an MQTT 5 connection that records the payloads it gets.
type probeClient struct {
	name string
	c    *paho.Client

	mu       sync.Mutex
	payloads map[string]bool
	arrived  chan struct{} // signalled on every message
}

func dialProbe(ctx context.Context, t *testing.T, addr string, id interopIdent) *probeClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &probeClient{name: id.clientID, payloads: map[string]bool{}, arrived: make(chan struct{}, 1)}
	p.c = paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){
			func(r paho.PublishReceived) (bool, error) {
				p.mu.Lock()
				p.payloads[string(r.Packet.Payload)] = true
				p.mu.Unlock()
				select {
				case p.arrived <- struct{}{}:
				default:
				}
				return true, nil
			},
		},
	})
	cp := &paho.Connect{ClientID: id.clientID, CleanStart: true, KeepAlive: 30}
	if id.username != "" {
		cp.Username, cp.UsernameFlag = id.username, true
		cp.Password, cp.PasswordFlag = []byte(id.password), true
	}
	ack, err := p.c.Connect(ctx, cp)
	if err != nil {
		t.Fatalf("connect %q: %v (connack %+v)", id.clientID, err, ack)
	}
	t.Cleanup(func() { _ = p.c.Disconnect(&paho.Disconnect{ReasonCode: 0}) })
	return p
}

func (p *probeClient) subscribe(ctx context.Context, t *testing.T, filter string) bool {
	t.Helper()
	sa, err := p.c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: filter, QoS: 1}}})
	if sa == nil {
		t.Fatalf("%s: subscribe %q: %v", p.name, filter, err)
	}
	return len(sa.Reasons) == 1 && sa.Reasons[0] < 0x80
}

func (p *probeClient) publish(ctx context.Context, t *testing.T, topic, payload string) bool {
	t.Helper()
	pr, err := p.c.Publish(ctx, &paho.Publish{Topic: topic, QoS: 1, Payload: []byte(payload)})
	if pr == nil {
		t.Fatalf("%s: publish %q: %v", p.name, topic, err)
	}
	if pr.ReasonCode >= 0x80 && pr.ReasonCode != 0x87 {
		t.Fatalf("%s: publish %q: unexpected reason 0x%02x", p.name, topic, pr.ReasonCode)
	}
	return pr.ReasonCode < 0x80
}

func (p *probeClient) got(payload string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.payloads[payload]
}

func (p *probeClient) waitFor(ctx context.Context, t *testing.T, payload string) {
	t.Helper()
	for !p.got(payload) {
		select {
		case <-p.arrived:
		case <-ctx.Done():
			t.Fatalf("%s: no %q message: %v", p.name, payload, ctx.Err())
		}
	}
}
