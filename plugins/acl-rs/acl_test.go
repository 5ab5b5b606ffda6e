// Package aclrs holds the Go tests of the Rust ACL plugin (acl.rs, built
// into bin/plugins/acl.wasm): they drive the module through the broker's
// wasm runtime and check every decision and every configure error against
// the Go engine plugins/acl/aclfile, the reference.
package aclrs

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/moat-mqtt/moat/plugins/acl/aclfile"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// recipe is RUSTFLAGS_WASM of the Makefile (sdk/rust/README.md).
var recipe = []string{"--edition", "2021", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib",
	"-C", "panic=abort", "-C", "opt-level=s", "-C", "link-arg=-zstack-size=65536", "-C", "strip=symbols"}

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// rustModule is bin/plugins/acl.wasm when `make build` made it after the
// last edit of acl.rs and moat.rs, else a fresh build of acl.rs, so that a
// stale bin/ cannot hide a change.
func rustModule(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root := repoRoot()
		built = filepath.Join(root, "bin", "plugins", "acl.wasm")
		st, err := os.Stat(built)
		fresh := err == nil
		for _, src := range []string{"plugins/acl-rs/acl.rs", "sdk/rust/moat.rs"} {
			if s, err := os.Stat(filepath.Join(root, src)); err != nil || fresh && s.ModTime().After(st.ModTime()) {
				fresh = false
			}
		}
		if fresh {
			return
		}
		dir, err := os.MkdirTemp("", "moat-acl-rs-")
		if err != nil {
			buildErr = err
			return
		}
		built = filepath.Join(dir, "acl.wasm")
		rustc := os.Getenv("RUSTC")
		if rustc == "" {
			rustc = "/usr/bin/rustc"
		}
		cmd := exec.Command(rustc, append(recipe, "plugins/acl-rs/acl.rs", "-o", built)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%s: %v\n%s", rustc, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

// repoRoot is the directory above this package with go.mod.
func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

// engine is one wasm engine for a test; modules loaded on it close with it.
func engine(t testing.TB) *wasm.Engine {
	t.Helper()
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	return e
}

// loadACL loads module with the ACL text as its "acl" file grant and the
// given [plugin.config] JSON ("" for none).
func loadACL(t testing.TB, e *wasm.Engine, module, text, config string) (*wasm.Module, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acl.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := wasm.ModuleConfig{Name: "acl", Path: module, Decisions: []string{"authz"}, Instances: 1,
		Files: map[string]string{"acl": path}}
	if config != "" {
		cfg.ConfigJSON = []byte(config)
	}
	// A bound, so that a module that loops fails the test with its input.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := e.Load(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { m.Close() })
	}
	return m, err
}

// goVerdict is what plugins/acl answers for q under no_match "ignore".
func goVerdict(a *aclfile.ACL, q aclfile.Query) policy.Verdict {
	switch a.Check(q) {
	case aclfile.Allow:
		return policy.Allow
	case aclfile.Deny:
		return policy.Deny
	}
	return policy.Ignore
}

func request(q aclfile.Query) *policy.AuthzRequest {
	c := &policy.Client{ClientID: q.ClientID, Username: q.Username, ProtocolVersion: 5}
	for _, a := range q.Attributes {
		c.Attributes = append(c.Attributes, policy.Attribute{Key: a.Key, Value: a.Value})
	}
	return &policy.AuthzRequest{Client: c, Action: policy.Action(q.Action), Topic: q.Topic, QoS: q.QoS, Retain: q.Retain}
}

// firstError is the first line of aclfile's error: the lowest-numbered
// syntax error, "acl: file:line: message".
func firstError(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// compare checks that the Rust module and aclfile agree on text: both
// refuse it at the same line, or both accept it and answer every query
// alike. It returns the number of queries compared.
func compare(t *testing.T, e *wasm.Engine, module, text string, queries []aclfile.Query) int {
	t.Helper()
	ref, refErr := aclfile.Parse(strings.NewReader(text), "acl")
	m, err := loadACL(t, e, module, text, `{"no_match":"ignore"}`)
	if refErr != nil {
		if err == nil {
			t.Fatalf("aclfile refuses the file (%v) but the Rust module loads it:\n%s", refErr, text)
		}
		// The Go message names the file and line; the Rust module's
		// configure message starts the same way.
		want := firstError(refErr)
		prefix := want[:strings.Index(want[len("acl: acl:"):], ":")+len("acl: acl:")+1]
		if !strings.Contains(err.Error(), prefix) {
			t.Fatalf("Rust error %q does not name %q (aclfile: %q)\n%s", err, prefix, want, text)
		}
		return 0
	}
	if err != nil {
		t.Fatalf("aclfile accepts the file but the Rust module refuses it: %v\n%s", err, text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, q := range queries {
		if q.Username == "" {
			q.Anonymous = true // as plugins/acl maps an absent username
		}
		res, err := m.Authorize(ctx, request(q))
		if err != nil {
			t.Fatalf("Authorize(%+v): %v", q, err)
		}
		if want := goVerdict(ref, q); res.Verdict != want {
			_, why := ref.Explain(q)
			t.Fatalf("query %+v: Rust %v, aclfile %v (%s)\nfile:\n%s", q, res.Verdict, want, why, text)
		}
	}
	return len(queries)
}

// TestConfig checks the [plugin.config] keys and the no_match verdict.
func TestConfig(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	const text = "topic read a/#\n"
	for _, tc := range []struct {
		config, wantErr string
		noMatch         policy.Verdict
	}{
		{config: ``, noMatch: policy.Deny},
		{config: `{}`, noMatch: policy.Deny},
		{config: `{"no_match":"deny"}`, noMatch: policy.Deny},
		{config: `{"no_match":"ignore","file":"acl"}`, noMatch: policy.Ignore},
		{config: `{"no_match":"maybe"}`, wantErr: `acl: config: no_match "maybe": want "deny" or "ignore"`},
		{config: `{"nomatch":"deny"}`, wantErr: `unknown field "nomatch"`},
		{config: `{"file":3}`, wantErr: `acl: config: file: want a string`},
		{config: `{"file":"other"}`, wantErr: `acl: file "other"`},
		{config: `[`, wantErr: `not valid JSON`}, // the host checks first
	} {
		t.Run(tc.config, func(t *testing.T) {
			m, err := loadACL(t, e, mod, text, tc.config)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("load: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			q := &policy.AuthzRequest{Client: &policy.Client{ClientID: "c"}, Action: policy.ActionDeliver, Topic: "b/c"}
			if res, err := m.Authorize(context.Background(), q); err != nil || res.Verdict != tc.noMatch {
				t.Errorf("no match: %v %v, want %v", res.Verdict, err, tc.noMatch)
			}
			q.Topic = "a/c"
			if res, err := m.Authorize(context.Background(), q); err != nil || res.Verdict != policy.Allow {
				t.Errorf("match: %v %v, want allow", res.Verdict, err)
			}
			q.Action = policy.ActionDecrypt
			if res, err := m.Authorize(context.Background(), q); err != nil || res.Verdict != policy.Ignore {
				t.Errorf("decrypt: %v %v, want ignore", res.Verdict, err)
			}
		})
	}
}

// TestSyntaxErrors checks that a malformed file refuses the module with
// aclfile's message for its first bad line.
func TestSyntaxErrors(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	for _, text := range []string{
		"topic read a\nfrobnicate x\n",
		"user\n",
		"topic\n",
		"topic sometimes a/b\n",
		"topic read a/#/b\n",
		"topic read a+/b\n",
		"pattern read a/x%c\n",
		"@pattern allow publish a/%{bad name}\n",
		"@pattern allow publish a/%x\n",
		"@topic maybe publish a\n",
		"@topic allow\n",
		"@topic allow publish,\n",
		"@topic allow fly a\n",
		"@topic allow publish maxqos=3 a\n",
		"@topic allow deliver maxqos=1 a\n",
		"@topic allow deliver retain=deny a\n",
		"@topic allow publish retain=sometimes a\n",
		"@topic allow publish maxqos=1 maxqos=1 a\n",
		"@topic deny publish maxqos=1 a\n",
		"@topic allow publish colour=red a\n",
		"@topic allow publish maxqos=1\n",
		"@subscribe always\n",
		"topic a\n@topic allow subscribe a\n",
		"topic a\n@topic allow publish a\nbad\n@topic allow subscribe a\n",
		"topic a\x00b\n",
		"topic read a\n" + strings.Repeat("bad\n", 30),
	} {
		ref, refErr := aclfile.Parse(strings.NewReader(text), "acl")
		if refErr == nil {
			t.Fatalf("aclfile accepts %q (%d rules): fix the table", text, ref.Len())
		}
		_, err := loadACL(t, e, mod, text, "")
		if err == nil {
			t.Errorf("%q: the module loads; aclfile says %v", text, refErr)
			continue
		}
		if want := firstError(refErr); !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant %s", text, err, want)
		}
	}
}

// semanticFile is a file with every feature: both sections kinds, user
// sections split and repeated, patterns with %c, %u and attributes,
// per-action rules and options, '$' topics.
const semanticFile = `# anonymous clients
topic read public/#
topic write public/anon/+
topic deny public/secret/#
topic readwrite room/with space/x
topic $app/status
@subscribe check

user alice
topic readwrite alice/#
topic read shared/+/status
topic deny alice/private
topic write $app/alice/#
@topic allow publish maxqos=1 retain=deny limited/#
@topic allow subscribe maxqos=0 feeds/+
@topic deny deliver alice/muted/#

user bob
topic read #
topic write bob/+/x

user a b
topic c

pattern read clients/%c/#
pattern write devices/%u/%c/out
pattern deny devices/%u/admin
@pattern allow publish,subscribe,deliver tenant/%{tenant}/#
@pattern allow readwrite -- role/%{role}/x=y
user alice
topic read again/#
`

// vocabulary of the queries: levels that the files use and some they do not.
var (
	levelWords = []string{"public", "anon", "secret", "room", "with space", "x", "$app", "status", "alice", "bob",
		"shared", "s1", "private", "limited", "feeds", "muted", "c", "clients", "c1", "devices", "out", "admin",
		"tenant", "t1", "role", "r1", "x=y", "again", "$SYS", "", "a", "b", "+", "#", "%c", "%u"}
	usernames = []string{"", "", "alice", "bob", "a b", "carol", "x+", "a/b", "c1"}
	clientIDs = []string{"c1", "", "alice", "c/1", "c#", "$x", "bob"}
	attrSets  = [][]aclfile.Attr{nil, {{Key: "tenant", Value: "t1"}}, {{Key: "tenant", Value: ""}},
		{{Key: "tenant", Value: "t/1"}, {Key: "role", Value: "r1"}}, {{Key: "role", Value: "r1"}, {Key: "role", Value: "x"}},
		{{Key: "tenant", Value: "a+"}}}
)

func randomTopic(r *rand.Rand, words []string, filter bool) string {
	n := 1 + r.Intn(4)
	parts := make([]string, n)
	for i := range parts {
		w := words[r.Intn(len(words))]
		if !filter && (w == "+" || w == "#") {
			w = "x"
		}
		if filter && w == "#" && i != n-1 {
			w = "+"
		}
		parts[i] = w
	}
	return strings.Join(parts, "/")
}

func randomQuery(r *rand.Rand, words []string) aclfile.Query {
	q := aclfile.Query{
		Action:   aclfile.Action(1 + r.Intn(3)),
		Username: usernames[r.Intn(len(usernames))],
		ClientID: clientIDs[r.Intn(len(clientIDs))],
		QoS:      uint8(r.Intn(4)),
		Retain:   r.Intn(3) == 0,
	}
	if q.QoS == 3 && r.Intn(4) != 0 {
		q.QoS = 1
	}
	q.Topic = randomTopic(r, words, q.Action == aclfile.Subscribe)
	q.Attributes = attrSets[r.Intn(len(attrSets))]
	return q
}

// TestSemantic compares the module with aclfile on a file with every
// feature, over every combination of a vocabulary of requests.
func TestSemantic(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	r := rand.New(rand.NewSource(1))
	var queries []aclfile.Query
	for range 3000 {
		queries = append(queries, randomQuery(r, levelWords))
	}
	// And the named corners.
	for _, topic := range []string{"public/secret/x", "$app/status", "$app/alice/1", "room/with space/x", "alice/private",
		"clients/c1/x", "devices/alice/c1/out", "devices/alice/admin", "tenant/t1/a", "role/r1/x=y", "#", "+/+", "$SYS/x"} {
		for _, a := range []aclfile.Action{aclfile.Publish, aclfile.Subscribe, aclfile.Deliver} {
			for _, u := range usernames {
				for _, attrs := range attrSets {
					queries = append(queries, aclfile.Query{Action: a, Username: u, ClientID: "c1", Topic: topic, QoS: 1, Attributes: attrs})
				}
			}
		}
	}
	for _, text := range []string{semanticFile, strings.Replace(semanticFile, "@subscribe check\n", "", 1) + "", ""} {
		if !strings.Contains(text, "@subscribe") {
			// Without "@subscribe check" subscribe rules are an error.
			text = strings.ReplaceAll(text, "@topic allow subscribe maxqos=0 feeds/+\n", "")
			text = strings.ReplaceAll(text, "publish,subscribe,deliver", "publish,deliver")
		}
		compare(t, e, mod, text, queries)
	}
}

// randomFile writes a random ACL file from the vocabulary, mostly valid.
func randomFile(r *rand.Rand) string {
	var b strings.Builder
	words := []string{"a", "b", "c", "$a", "", "+", "#", "%c", "%u", "%{t}", "%{r}", "a b", "a", "b", "%c", "+"}
	filter := func() string {
		n := 1 + r.Intn(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = words[r.Intn(len(words))]
			if parts[i] == "#" && i != n-1 && r.Intn(8) != 0 {
				parts[i] = "+"
			}
		}
		return strings.Join(parts, "/")
	}
	check := r.Intn(3) != 0
	if check {
		b.WriteString("@subscribe check\n")
	}
	lines := r.Intn(12)
	for range lines {
		switch r.Intn(9) {
		case 0:
			b.WriteString("user " + []string{"alice", "bob", "a b", "c1"}[r.Intn(4)] + "\n")
		case 1, 2:
			b.WriteString("topic " + []string{"", "read ", "write ", "readwrite ", "deny "}[r.Intn(5)] + filter() + "\n")
		case 3, 4:
			b.WriteString("pattern " + []string{"", "read ", "write ", "readwrite ", "deny "}[r.Intn(5)] + filter() + "\n")
		case 5, 6, 7:
			kw := []string{"@topic", "@pattern"}[r.Intn(2)]
			perm := []string{"allow", "allow", "deny"}[r.Intn(3)]
			acts := []string{"publish", "subscribe", "deliver", "read", "write", "readwrite", "publish,deliver", "publish,subscribe"}[r.Intn(8)]
			if !check && strings.Contains(acts, "subscribe") && r.Intn(10) != 0 {
				acts = "deliver" // mostly valid files: subscribe rules need the check
			}
			opts := ""
			if perm == "allow" {
				opts = []string{"", "", "maxqos=0 ", "maxqos=1 ", "retain=deny ", "maxqos=1 retain=deny ", "-- "}[r.Intn(7)]
			}
			b.WriteString(kw + " " + perm + " " + acts + " " + opts + filter() + "\n")
		case 8:
			if r.Intn(3) != 0 {
				continue
			}
			b.WriteString([]string{"# comment", "", "   ", "\t topic read b/#", "topic read  spaced/#  ", "pattern x%c/a", "bogus line"}[r.Intn(7)] + "\n")
		}
	}
	return b.String()
}

// soak is how long the random comparison runs: a second in `make test`,
// MOAT_SOAK (a duration) when set.
func soak(t *testing.T) time.Duration {
	if s := os.Getenv("MOAT_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("MOAT_SOAK: %v", err)
		}
		return d
	}
	if testing.Short() {
		return 200 * time.Millisecond
	}
	return 2 * time.Second
}

// TestRandomFiles compares the module with aclfile on random files and
// random requests, for soak(t).
func TestRandomFiles(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	words := []string{"a", "b", "c", "$a", "", "x", "+", "#", "alice", "c1", "t1"}
	deadline := time.Now().Add(soak(t))
	files, queries, refused := 0, 0, 0
	for files < 20 || time.Now().Before(deadline) {
		text := randomFile(r)
		qs := make([]aclfile.Query, 250)
		for i := range qs {
			qs[i] = randomQuery(r, words)
			if i%2 == 0 {
				qs[i].Attributes = []aclfile.Attr{{Key: "t", Value: []string{"a", "b", "", "x/y"}[r.Intn(4)]}, {Key: "r", Value: "c"}}
			}
		}
		n := compare(t, e, mod, text, qs)
		if n == 0 {
			refused++
		}
		files++
		queries += n
	}
	t.Logf("%d files (%d refused by both), %d requests: same decisions", files, refused, queries)
}

// FuzzACL compares the module with aclfile on any file text and request.
// Each run loads a module (~0.1 s), so fuzz with -fuzzminimizetime 1x, or
// the worker spends its time minimizing (README.md).
func FuzzACL(f *testing.F) {
	f.Add(semanticFile, "alice", "c1", "alice/x", uint8(1), uint8(1), false)
	f.Add("pattern read %c/#\n", "", "c1", "c1/x", uint8(3), uint8(0), false)
	f.Add("@pattern allow publish maxqos=1 retain=deny %{t}/#\n", "u", "c", "a/b", uint8(1), uint8(1), true)
	f.Fuzz(func(t *testing.T, text, user, client, topic string, action, qos uint8, retain bool) {
		if len(text) > 4096 || !utf8.ValidString(user+client+topic) {
			return // MQTT strings are UTF-8; the SDK reads them as str
		}
		q := aclfile.Query{Action: aclfile.Action(1 + action%3), Username: user, ClientID: client, Topic: topic, QoS: qos % 4, Retain: retain,
			Attributes: []aclfile.Attr{{Key: "t", Value: client}}}
		compare(t, engine(t), rustModule(t), text, []aclfile.Query{q})
	})
}

// indexFiles are files whose decisions depend on each part of the
// module's rule index (acl.rs, "Rule classes"): keyed first levels shared
// by several sections, %u and %c at the first level with and without a
// literal second level, '+' and '#' around them, and '$'.
var indexFiles = []string{
	`@subscribe check
topic read a/#
topic deny a/secret
user alice
topic readwrite a/+/x
topic deny alice/b
topic write %u/x
pattern readwrite %u/#
pattern deny %u/admin/#
pattern read %c/dev/+
pattern write %c/+/out
pattern deny %c/dev/secret
@pattern allow subscribe,deliver maxqos=1 %u/feeds/+
@pattern allow publish retain=deny %c/dev/x
pattern read +/%u/inbox
pattern read a/%c
pattern read %{t}/%u
`,
	`pattern read %u
pattern write %c
pattern readwrite %u/%c/#
pattern deny %c/%u
pattern read %u/+/%c
`,
	`user alice
topic read alice/#
user bob
topic read alice/#
topic read bob/#
pattern read a/#
pattern read alice/x
pattern deny b/%u
`,
	`pattern read #
pattern deny %u/#
pattern read %c/#
topic read +/#
`,
	// Levels and names of 8 bytes and more that differ in one byte, at
	// the start, the middle or the end of a word.
	`user sensor-user-00001
topic read sensor-00000001/#
topic deny sensor-00000001/abcdefgh/#
pattern read %u/abcdefghijklmnopq
pattern deny %u/abcdefgi
pattern read abcdefgh/%c/+
pattern read sensor-00000002/%u
`,
}

// indexWords are the topic levels of the index queries: the names of
// indexUsers and indexClients, the files' literals, and wildcards.
var (
	indexWords = []string{"a", "b", "x", "alice", "bob", "c1", "dev", "admin", "feeds", "out", "inbox", "secret", "$a", "", "+", "#",
		"sensor-00000001", "sensor-00000002", "sensor-10000001", "abcdefgh", "abcdefgi", "bbcdefgh", "abcdefghijklmnopq", "abcdefghijklmnopr", "xbcdefghijklmnopq"}
	indexUsers   = []string{"", "alice", "bob", "c1", "a", "$a", "x/y", "sensor-user-00001", "sensor-user-00002", "sensor-user-10001"}
	indexClients = []string{"c1", "alice", "a", "", "dev", "$a", "c/1", "abcdefgh", "abcdefgi", "abcdefghijklmnopq"}
)

// indexQuery is a random query whose first level is often the username or
// the client id, so that %u and %c rules are reached.
func indexQuery(r *rand.Rand) aclfile.Query {
	q := aclfile.Query{
		Action:   aclfile.Action(1 + r.Intn(3)),
		Username: indexUsers[r.Intn(len(indexUsers))],
		ClientID: indexClients[r.Intn(len(indexClients))],
		QoS:      uint8(r.Intn(3)),
		Retain:   r.Intn(4) == 0,
	}
	if r.Intn(2) == 0 {
		q.Attributes = []aclfile.Attr{{Key: "t", Value: indexWords[r.Intn(4)]}}
	}
	n := 1 + r.Intn(5)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = indexWords[r.Intn(len(indexWords))]
		if q.Action != aclfile.Subscribe && (parts[i] == "+" || parts[i] == "#") {
			parts[i] = "x"
		}
		if parts[i] == "#" && i != n-1 {
			parts[i] = "+"
		}
	}
	switch r.Intn(5) {
	case 0, 1:
		parts[0] = q.Username
	case 2:
		parts[0] = q.ClientID
	}
	q.Topic = strings.Join(parts, "/")
	return q
}

// indexFile writes a random file of many rules in few sections, with keys
// shared across sections and classes and substitutions at every level.
func indexFile(r *rand.Rand) string {
	words := []string{"a", "b", "x", "alice", "c1", "dev", "admin", "$a", "sensor-00000001", "abcdefgh", "abcdefghijklmnopq"}
	level := func(first bool) string {
		switch x := r.Intn(10); {
		case x < 4:
			return words[r.Intn(len(words))]
		case x < 6 || first && x < 8:
			return []string{"%u", "%c"}[r.Intn(2)]
		case x < 8:
			return "+"
		case x < 9:
			return "#"
		default:
			return "%{t}"
		}
	}
	filter := func() string {
		n := 1 + r.Intn(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = level(i == 0)
			if parts[i] == "#" && i != n-1 {
				parts[i] = "+"
			}
		}
		return strings.Join(parts, "/")
	}
	var b strings.Builder
	b.WriteString("@subscribe check\n")
	for range 20 + r.Intn(100) {
		switch r.Intn(12) {
		case 0:
			b.WriteString("user " + []string{"alice", "bob", "c1", "a", "sensor-user-00001"}[r.Intn(5)] + "\n")
		case 1, 2:
			b.WriteString("topic " + []string{"", "read ", "write ", "deny "}[r.Intn(4)] + strings.ReplaceAll(filter(), "%{t}", "t") + "\n")
		case 3, 4, 5, 6:
			b.WriteString("pattern " + []string{"", "read ", "write ", "readwrite ", "deny "}[r.Intn(5)] + strings.ReplaceAll(filter(), "%{t}", "%u") + "\n")
		default:
			kw := []string{"@topic", "@pattern", "@pattern"}[r.Intn(3)]
			perm := []string{"allow", "allow", "deny"}[r.Intn(3)]
			acts := []string{"publish", "subscribe", "deliver", "read", "readwrite", "publish,deliver"}[r.Intn(6)]
			opts := ""
			if perm == "allow" {
				opts = []string{"", "", "maxqos=0 ", "maxqos=1 ", "retain=deny "}[r.Intn(5)]
				if acts == "deliver" || !strings.Contains(acts, "write") && !strings.Contains(acts, "publish") && strings.HasPrefix(opts, "retain") {
					opts = "" // options the rule's actions do not take
				}
			}
			f := filter()
			if kw == "@topic" {
				f = strings.ReplaceAll(f, "%{t}", "t")
			}
			b.WriteString(kw + " " + perm + " " + acts + " " + opts + f + "\n")
		}
	}
	return b.String()
}

// TestIndex compares the module with aclfile where the rule index decides
// which rules a request reaches: the indexFiles on every combination of a
// vocabulary, then random files of many rules, for half of soak(t).
func TestIndex(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	r := rand.New(rand.NewSource(2))
	var fixed []aclfile.Query
	for range 4000 {
		fixed = append(fixed, indexQuery(r))
	}
	// Topics of more levels than the module records (acl.rs, CAP).
	for _, n := range []int{255, 256, 257, 300} {
		for _, user := range []string{"alice", "a"} {
			topic := user + strings.Repeat("/a", n-1)
			for _, a := range []aclfile.Action{aclfile.Publish, aclfile.Subscribe} {
				fixed = append(fixed, aclfile.Query{Action: a, Username: user, ClientID: "c1", Topic: topic})
				fixed = append(fixed, aclfile.Query{Action: a, Username: user, ClientID: "c1", Topic: topic + "/#"})
			}
		}
	}
	for _, text := range indexFiles {
		if ref, err := aclfile.Parse(strings.NewReader(text), "acl"); err != nil {
			t.Fatalf("aclfile refuses an index file: %v", err)
		} else if ref.Len() == 0 {
			t.Fatal("an index file has no rules")
		}
		compare(t, e, mod, text, fixed)
	}
	r = rand.New(rand.NewSource(time.Now().UnixNano()))
	deadline := time.Now().Add(soak(t) / 2)
	files, queries := 0, 0
	for files < 10 || time.Now().Before(deadline) {
		text := indexFile(r)
		qs := make([]aclfile.Query, 400)
		for i := range qs {
			qs[i] = indexQuery(r)
		}
		n := compare(t, e, mod, text, qs)
		if n == 0 {
			_, err := aclfile.Parse(strings.NewReader(text), "acl")
			t.Fatalf("aclfile refuses a generated index file: %v\n%s", err, text)
		}
		files++
		queries += n
	}
	t.Logf("%d files, %d requests: same decisions", files, queries)
}
