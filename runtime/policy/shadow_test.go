package policy

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockingModule answers Deny to authz, after gate is closed.
type blockingModule struct {
	gate  chan struct{}
	calls chan string
}

func (m *blockingModule) Authorize(ctx context.Context, req *AuthzRequest) (AuthzResult, error) {
	m.calls <- req.Topic
	select {
	case <-m.gate:
	case <-ctx.Done():
		return AuthzResult{}, ctx.Err()
	}
	return AuthzResult{Verdict: Deny}, nil
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestShadowDisagreements runs a live chain that allows and a shadow that
// denies some topics and ignores others: the live verdicts are unchanged,
// every disagreement is counted, and the log names the request without
// its password.
func TestShadowDisagreements(t *testing.T) {
	live := &ruleModule{authz: map[string]AuthzResult{"a": {Verdict: Allow}, "b": {Verdict: Allow}, "c": {Verdict: Deny}},
		authn: map[string]AuthnResult{"alice": {Verdict: Allow}}}
	trial := &ruleModule{authz: map[string]AuthzResult{"a": {Verdict: Allow}, "b": {Verdict: Deny}},
		authn: map[string]AuthnResult{"alice": {Verdict: Deny}}}
	sh := NewShadow("trial", trial, trial, nil, ShadowOptions{Sample: 1})
	p := New(authnChain(live), authzChain(live), Options{Shadows: []*Shadow{sh}})
	logs := &logBuffer{}
	d := NewDecider(p, CacheOptions{}, slog.New(slog.NewTextHandler(logs, nil)))
	defer d.Close()

	c := &Client{ClientID: "c1", Username: "alice"}
	if res := d.Authenticate(context.Background(), &AuthnRequest{Client: c, Password: []byte("s3cret-pw")}); res.Verdict != Allow {
		t.Fatalf("live authn = %v, want allow", res.Verdict)
	}
	s := d.NewSession(c)
	for _, tc := range []struct {
		topic string
		want  Verdict
	}{{"a", Allow}, {"b", Allow}, {"c", Deny}, {"b", Allow}} { // b twice: the second is cached
		if res := d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionPublish, Topic: tc.topic}); res.Verdict != tc.want {
			t.Errorf("live %s = %v, want %v", tc.topic, res.Verdict, tc.want)
		}
	}
	// a: agree; b: disagree (deny); c: trial ignores -> authz_no_match
	// deny: agree; authn: disagree.
	waitUntil(t, "the shadow decides", func() bool { st := sh.Stats(); return st.Agreed+st.Disagreed == 4 })
	st := sh.Stats()
	if st.Agreed != 2 || st.Disagreed != 2 || st.Sampled != 4 || st.Dropped != 0 {
		t.Errorf("stats = %+v, want 2 agreed, 2 disagreed of 4 sampled", st)
	}
	out := logs.String()
	for _, want := range []string{
		`msg="shadow plugin disagrees" module=trial chain=authz client_id=c1 username=alice action=publish topic=b live=allow live_module=a shadow=deny`,
		`msg="shadow plugin disagrees" module=trial chain=authn client_id=c1 username=alice`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret-pw") {
		t.Errorf("the password reached the log:\n%s", out)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestShadowNeverBlocks fills the queue of a shadow that does not answer:
// live decisions keep coming, the overflow is dropped and counted.
func TestShadowNeverBlocks(t *testing.T) {
	live := &ruleModule{authz: map[string]AuthzResult{}}
	stuck := &blockingModule{gate: make(chan struct{}), calls: make(chan string, 100)}
	sh := NewShadow("stuck", nil, stuck, nil, ShadowOptions{Sample: 1, Queue: 2})
	p := New(nil, authzChain(live), Options{AuthzNoMatch: Allow, Shadows: []*Shadow{sh}})
	d := NewDecider(p, CacheOptions{Disabled: true}, nil)
	defer d.Close()
	s := d.NewSession(&Client{ClientID: "c"})

	ask := func(topic string) {
		if res := d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionPublish, Topic: topic}); res.Verdict != Allow {
			t.Fatalf("live %s = %v, want allow", topic, res.Verdict)
		}
	}
	ask("first")
	<-stuck.calls // the worker holds "first"; the queue is empty
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10 {
			ask(fmt.Sprint("t", i))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("live decisions blocked on a stuck shadow")
	}
	if st := sh.Stats(); st.Sampled != 3 || st.Dropped != 8 {
		t.Errorf("stats = %+v, want 3 sampled (one running, two queued), 8 dropped", st)
	}
	// Close cancels the stuck call and waits for the worker.
	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for a stuck shadow")
	}
}

// TestShadowSampleAndRateLimit checks sample = 0 asks nothing, and that a
// flood of disagreements is logged at most shadowLogBurst times a second
// but counted in full.
func TestShadowSampleAndRateLimit(t *testing.T) {
	live := &ruleModule{}
	deny := &ruleModule{err: nil, authz: map[string]AuthzResult{}}
	never := NewShadow("never", nil, deny, nil, ShadowOptions{Sample: 0})
	always := NewShadow("always", nil, deny, nil, ShadowOptions{Sample: 1, Queue: 1000})
	p := New(nil, authzChain(live), Options{AuthzNoMatch: Allow, Shadows: []*Shadow{never, always}})
	logs := &logBuffer{}
	d := NewDecider(p, CacheOptions{Disabled: true}, slog.New(slog.NewTextHandler(logs, nil)))
	defer d.Close()
	s := d.NewSession(&Client{ClientID: "c"})
	// The shadow ignores, and its no_match is the version's: allow. Make
	// it disagree by an explicit deny on every topic.
	for i := range 100 {
		deny.authz[fmt.Sprint("t", i)] = AuthzResult{Verdict: Deny}
	}
	for i := range 100 {
		d.Authorize(context.Background(), s, &AuthzRequest{Action: ActionPublish, Topic: fmt.Sprint("t", i)})
	}
	waitUntil(t, "the shadow decides", func() bool { return always.Stats().Disagreed+always.Stats().Dropped == 100 })
	if st := never.Stats(); st.Sampled != 0 {
		t.Errorf("sample 0: %+v, want nothing asked", st)
	}
	if n := strings.Count(logs.String(), "shadow plugin disagrees"); n < 1 || n > 2*shadowLogBurst {
		t.Errorf("%d records for 100 disagreements within about a second, want 1 to %d", n, 2*shadowLogBurst)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestHistory checks the ring: bounded, oldest first, resized keeping the
// newest, and no secret kept.
func TestHistory(t *testing.T) {
	live := &ruleModule{authz: map[string]AuthzResult{}, authn: map[string]AuthnResult{"bob": {Verdict: Allow}}}
	p := New(authnChain(live), authzChain(live), Options{AuthzNoMatch: Allow, AllowAnonymous: true})
	d := NewDecider(p, CacheOptions{}, nil)
	defer d.Close()
	d.SetHistory(4)
	ctx := context.Background()
	d.Authenticate(ctx, &AuthnRequest{Client: &Client{ClientID: "b", Username: "bob"}, Password: []byte("pw"), AuthData: []byte("tok")})
	d.Authenticate(ctx, &AuthnRequest{Client: &Client{ClientID: "anon"}})
	s := d.NewSession(&Client{ClientID: "b", Username: "bob"})
	for _, topic := range []string{"t1", "t2", "t1", "t3"} { // t1 again: cached, not recorded
		d.Authorize(ctx, s, &AuthzRequest{Action: ActionSubscribe, Topic: topic})
	}
	h := d.History()
	var got []string
	for _, r := range h {
		got = append(got, r.Kind+":"+r.Client.ClientID+":"+r.Topic)
	}
	if want := "authn:anon:,authz:b:t1,authz:b:t2,authz:b:t3"; strings.Join(got, ",") != want {
		t.Errorf("history = %v, want %s", got, want)
	}
	d.SetHistory(2)
	if h := d.History(); len(h) != 2 || h[1].Topic != "t3" {
		t.Errorf("after resize: %+v, want the newest two", h)
	}
	d.SetHistory(8)
	d.Authenticate(ctx, &AuthnRequest{Client: &Client{ClientID: "b", Username: "bob"}, Password: []byte("pw")})
	h = d.History()
	last := h[len(h)-1]
	if !last.HadPassword || last.Replayable() {
		t.Errorf("authn with a password: %+v, want HadPassword and not replayable", last)
	}
	if s := fmt.Sprintf("%+v", h); strings.Contains(s, "pw") || strings.Contains(s, "tok") {
		t.Errorf("a secret is in the history: %s", s)
	}
	d.SetHistory(0)
	if h := d.History(); h != nil {
		t.Errorf("history 0 keeps %d records", len(h))
	}
}

// TestReplay decides recorded requests on a stricter version, which is
// never put in force.
func TestReplay(t *testing.T) {
	old := &ruleModule{authz: map[string]AuthzResult{"a": {Verdict: Allow}, "b": {Verdict: Allow}}}
	strict := &ruleModule{authz: map[string]AuthzResult{"a": {Verdict: Allow}}}
	p := New(nil, authzChain(old), Options{AllowAnonymous: true})
	d := NewDecider(p, CacheOptions{}, nil)
	defer d.Close()
	d.SetHistory(16)
	ctx := context.Background()
	d.Authenticate(ctx, &AuthnRequest{Client: &Client{ClientID: "anon"}})
	s := d.NewSession(&Client{ClientID: "anon"})
	d.Authorize(ctx, s, &AuthzRequest{Action: ActionSubscribe, Topic: "a"})
	d.Authorize(ctx, s, &AuthzRequest{Action: ActionSubscribe, Topic: "b"})

	next := New(nil, authzChain(strict), Options{AllowAnonymous: false})
	var got []string
	for _, r := range d.History() {
		v, _, _, ok := next.Replay(ctx, nil, r)
		got = append(got, fmt.Sprintf("%s %s %v->%v %v", r.Kind, r.Topic, r.Verdict, v, ok))
	}
	want := "authn  allow->deny true,authz a allow->allow true,authz b allow->deny true"
	if strings.Join(got, ",") != want {
		t.Errorf("replay:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	// The running version is untouched.
	if res := d.Authorize(ctx, d.NewSession(&Client{ClientID: "x"}), &AuthzRequest{Action: ActionSubscribe, Topic: "b"}); res.Verdict != Allow {
		t.Errorf("after replay, live b = %v, want allow", res.Verdict)
	}
}
