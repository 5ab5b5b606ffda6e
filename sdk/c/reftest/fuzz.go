package reftest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// Match is the topic matching every SDK implements (moat_match in C,
// match in AssemblyScript, the Go demo's match): the oracle of the fuzz
// tests. filter is a rule whose levels "%u" and "%c" stand for username
// and clientID; topic is a topic name, or a subscription's filter when
// isFilter.
func Match(filter, topic string, isFilter bool, username, clientID string) bool {
	levels := strings.Split(filter, "/")
	if (levels[0] == "#" || levels[0] == "+") && strings.HasPrefix(topic, "$") {
		return false
	}
	rest, done := topic, false
	for i, f := range levels {
		if done {
			return f == "#" && i == len(levels)-1
		}
		level, after, found := strings.Cut(rest, "/")
		rest, done = after, !found
		switch f {
		case "#":
			return true
		case "+":
			if isFilter && level == "#" {
				return false
			}
		case "%u":
			if !levelName(username) || level != username {
				return false
			}
		case "%c":
			if !levelName(clientID) || level != clientID {
				return false
			}
		default:
			if level != f {
				return false
			}
		}
	}
	return done
}

func levelName(s string) bool { return s != "" && !strings.ContainsAny(s, "/+#") }

// The fuzz tests drive a test module (sdk/c/testdata/trap.c,
// sdk/assemblyscript/testdata/trap.ts) whose authz decision, on the
// listener "json" or "match", answers a question about the request's
// strings with allow or deny.
func ask(tb testing.TB, m *wasm.Module, req *policy.AuthzRequest) bool {
	tb.Helper()
	res, err := m.Authorize(context.Background(), req)
	if err != nil {
		tb.Fatalf("plugin error: %v", err)
	}
	return res.Verdict == policy.Allow
}

// FuzzJSON checks the module's JSON reader against encoding/json, which
// checks the config the host hands over: both must accept the same
// documents, except that the SDKs refuse nesting deeper than 64. With
// utf8Only, inputs that are not UTF-8 are skipped (a config is: TOML is
// UTF-8): AssemblyScript's UTF-8 decoder reads past an invalid byte.
func FuzzJSON(f *testing.F, path string, utf8Only bool) {
	for _, s := range []string{
		`{}`, `[]`, `{"users":[{"name":"alice","password":"alice-pw","tenant":"acme"}]}`,
		`"a\"b\\c\/\b\f\n\r\t\u00e4\ud83d\ude00"`, `"\ud800"`, `"\udc00\ud800x"`, `"\ud800\u0041"`,
		`-0.5e+10`, `0`, `01`, `1.`, `.5`, `-`, `1e`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`,
		`[true,false,null]`, `tru`, `nul`, ` [ 1 , 2 ] `, `[1 2]`, `"\x01"`, "\"\xff\"", `"\u12"`, `"\x"`,
		`{"a":{"b":[{"c":[]}]}}`, `[] []`, ``, ` `, strings.Repeat("[", 64) + strings.Repeat("]", 64),
		strings.Repeat("[", 70) + strings.Repeat("]", 70), `{"a":1,"a":2}`,
	} {
		f.Add(s)
	}
	m, log, err := Load(f, path, &wasm.ModuleConfig{Decisions: []string{"authn", "authz"}, ConfigJSON: []byte{}})
	if err != nil {
		f.Fatal(err)
	}
	client := &policy.Client{ClientID: "c", Username: "u", Listener: "json"}
	f.Fuzz(func(t *testing.T, doc string) {
		if utf8Only && !utf8.ValidString(doc) {
			return
		}
		got := ask(t, m, &policy.AuthzRequest{Client: client, Action: policy.ActionPublish, Topic: doc})
		want := json.Valid([]byte(doc))
		if want && !got && depth(doc) > 60 {
			return // the SDKs' nesting limit
		}
		if got != want {
			t.Errorf("%q: module says valid %v, encoding/json %v\n%s", doc, got, want, log)
		}
	})
}

// depth is the deepest nesting of a valid JSON document.
func depth(doc string) int {
	dec := json.NewDecoder(strings.NewReader(doc))
	d, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) || err != nil {
			return deepest
		}
		if delim, ok := tok.(json.Delim); ok {
			if delim == '[' || delim == '{' {
				d++
				deepest = max(deepest, d)
			} else {
				d--
			}
		}
	}
}

// matchCases are Match's expected answers; they seed FuzzMatch too.
var matchCases = []struct {
	filter, topic string
	isFilter      bool
	user, client  string
	want          bool
}{
	{"a/b", "a/b", false, "", "", true},
	{"a/b", "a/c", false, "", "", false},
	{"a/b", "a/b/c", false, "", "", false},
	{"a/b/c", "a/b", false, "", "", false},
	{"a/+", "a/b", false, "", "", true},
	{"a/+", "a/", false, "", "", true},
	{"a/+", "a", false, "", "", false},
	{"a/#", "a", false, "", "", true},
	{"a/#", "a/b/c", false, "", "", true},
	{"a/#", "ab", false, "", "", false},
	{"#", "a/b", false, "", "", true},
	{"#", "$SYS/x", false, "", "", false},
	{"+/x", "$SYS/x", false, "", "", false},
	{"$SYS/#", "$SYS/x", false, "", "", true},
	{"+/a", "/a", false, "", "", true},
	{"a/#", "a/+/b", true, "", "", true},
	{"a/+", "a/+", true, "", "", true},
	{"a/+", "a/#", true, "", "", false},
	{"a/b", "a/+", true, "", "", false},
	{"u/%u/#", "u/alice/x", false, "alice", "c", true},
	{"u/%u/#", "u/bob/x", false, "alice", "c", false},
	{"u/%u", "u/a/b", false, "a/b", "c", false},
	{"u/%u", "u/+", true, "+", "c", false},
	{"u/%u", "u/", false, "", "c", false},
	{"c/%c", "c/dev-1", false, "u", "dev-1", true},
	{"c/%c", "c/#", true, "u", "#", false},
}

// FuzzMatch checks the module's topic matching against Match. With
// utf8Only, inputs that are not UTF-8 are skipped: an AssemblyScript
// string decodes them to U+FFFD, which makes distinct bytes equal.
func FuzzMatch(f *testing.F, path string, utf8Only bool) {
	seeds := []struct {
		filter, topic string
		sub           bool
		user, client  string
	}{
		{"devices/%u/#", "devices/alice/x", false, "alice", "c"},
		{"devices/%u/#", "devices/alice", false, "alice", "c"},
		{"devices/%u/#", "devices/alice/+", true, "alice", "c"},
		{"devices/%u/#", "devices/+/x", true, "alice", "c"},
		{"devices/%u/#", "devices/+/x", true, "+", "c"},
		{"devices/%c/+", "devices/c1/#", true, "u", "c1"},
		{"devices/%c/+", "devices/c1/x", false, "u", "c1"},
		{"#", "$SYS/x", false, "", ""},
		{"+/x", "$SYS/x", false, "", ""},
		{"a/+/c", "a//c", false, "", ""},
		{"a/#", "a/#", true, "", ""},
		{"a/+", "a/#", true, "", ""},
		{"", "", false, "", ""},
		{"a/", "a", false, "", ""},
		{"/#", "/", false, "", ""},
		{"%u", "", false, "", ""},
		{"secure/#", "secure", false, "", ""},
	}
	for _, s := range seeds {
		f.Add(s.filter, s.topic, s.sub, s.user, s.client)
	}
	for _, c := range matchCases {
		f.Add(c.filter, c.topic, c.isFilter, c.user, c.client)
	}
	m, log, err := Load(f, path, &wasm.ModuleConfig{Decisions: []string{"authn", "authz"}, ConfigJSON: []byte{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, filter, topic string, sub bool, user, client string) {
		if utf8Only && !(utf8.ValidString(filter) && utf8.ValidString(topic) && utf8.ValidString(user) && utf8.ValidString(client)) {
			return
		}
		// The host sends an empty field as absent; the SDKs read absent
		// as empty, so that is the same question.
		action := policy.ActionPublish
		if sub {
			action = policy.ActionSubscribe
		}
		req := &policy.AuthzRequest{
			Client:     &policy.Client{ClientID: client, Username: user, Listener: "match"},
			Action:     action,
			Topic:      topic,
			ShareGroup: filter,
		}
		got, want := ask(t, m, req), Match(filter, topic, sub, user, client)
		if got != want {
			t.Errorf("match(%q, %q, sub=%v, u=%q, c=%q): module %v, want %v\n%s", filter, topic, sub, user, client, got, want, bytes.TrimSpace([]byte(log.String())))
		}
	})
}
