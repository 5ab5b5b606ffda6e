package aclfile

import (
	"errors"
	"strings"
	"testing"
)

func mustParse(t testing.TB, text string) *ACL {
	t.Helper()
	a, err := Parse(strings.NewReader(text), "acl.conf")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return a
}

// Identities used by the tables.
func anon(id string) Query { return Query{ClientID: id, Anonymous: true} }
func user(name, id string) Query {
	return Query{Username: name, ClientID: id}
}

func pub(c Query, topic string) Query   { c.Action, c.Topic = Publish, topic; return c }
func del(c Query, topic string) Query   { c.Action, c.Topic = Deliver, topic; return c }
func sub(c Query, filter string) Query  { c.Action, c.Topic = Subscribe, filter; return c }
func qos(q Query, n uint8) Query        { q.QoS = n; return q }
func retain(q Query) Query              { q.Retain = true; return q }
func attrs(q Query, kv ...string) Query { q.Attributes = pairs(kv...); return q }

func pairs(kv ...string) []Attr {
	var out []Attr
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, Attr{kv[i], kv[i+1]})
	}
	return out
}

type checkCase struct {
	name string
	q    Query
	want Result
}

// runChecks checks every case with Check, with Explain, and with the naive
// Mosquitto-order reference, which must all agree.
func runChecks(t *testing.T, a *ACL, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := a.Check(tc.q); got != tc.want {
				_, why := a.Explain(tc.q)
				t.Errorf("Check(%+v) = %v, want %v (%s)", tc.q, got, tc.want, why)
			}
			if got, _ := a.Explain(tc.q); got != tc.want {
				t.Errorf("Explain(%+v) = %v, want %v", tc.q, got, tc.want)
			}
			if got := naiveCheck(a, tc.q); got != tc.want {
				t.Errorf("naiveCheck(%+v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}

// mosquittoFile exercises Mosquitto's acl_file syntax only.
const mosquittoFile = `# Mosquitto acl_file: anonymous clients first
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

user bob
topic read #
topic write shared/bob/status

user has space
topic readwrite spaced/#

pattern readwrite clients/%c/#
pattern read users/%u/inbox/#
pattern deny clients/%c/locked
pattern write users/%u/outbox
pattern read broadcast
`

func TestMosquittoSemantics(t *testing.T) {
	a := mustParse(t, mosquittoFile)
	var (
		an    = anon("c1")
		alice = user("alice", "alice-1")
		bob   = user("bob", "bobc")
		carol = user("carol", "carolc") // no section: patterns only
		empty = user("", "e1")          // empty username: not anonymous
	)
	runChecks(t, a, []checkCase{
		// Anonymous section: the lines before the first user line.
		{"anon read grant", del(an, "public/news"), Allow},
		{"anon read grant deep", del(an, "public/a/b/c"), Allow},
		{"anon # matches parent", del(an, "public"), Allow},
		{"anon deny wins", del(an, "public/secret/x"), Deny},
		{"anon deny parent", del(an, "public/secret"), Deny},
		{"anon deny publish too", pub(an, "public/secret/x"), Deny},
		{"anon read is not write", pub(an, "public/news"), NoMatch},
		{"anon write +", pub(an, "public/anon/x"), Allow},
		{"anon write + one level", pub(an, "public/anon/x/y"), NoMatch},
		{"anon write is not read", del(an, "public/anon/x"), Allow}, // via public/#
		{"anon topic with spaces", pub(an, "room/with space/x"), Allow},
		{"anon lone token is readwrite topic", pub(an, "$app/status"), Allow},
		{"anon lone token read", del(an, "$app/status"), Allow},
		{"anon other", del(an, "private/x"), NoMatch},
		{"anon no user rules", pub(an, "alice/x"), NoMatch},
		{"anon pattern %c", pub(an, "clients/c1/a"), Allow},
		{"anon pattern %c other client", pub(an, "clients/c2/a"), NoMatch},
		{"anon pattern %c deny", pub(an, "clients/c1/locked"), Deny},
		{"anon pattern %u skipped", del(an, "users/c1/inbox/m"), NoMatch},
		{"anon pattern no var", del(an, "broadcast"), Allow},
		{"anon pattern no var write", pub(an, "broadcast"), NoMatch},

		// A user section.
		{"alice own tree", pub(alice, "alice/x"), Allow},
		{"alice own tree read", del(alice, "alice/x/y"), Allow},
		{"alice deny", pub(alice, "alice/private"), Deny},
		{"alice deny read", del(alice, "alice/private"), Deny},
		{"alice deny exact only", pub(alice, "alice/private/x"), Allow},
		{"alice read +", del(alice, "shared/bob/status"), Allow},
		{"alice read + not write", pub(alice, "shared/bob/status"), NoMatch},
		{"alice read + level count", del(alice, "shared/bob/x/status"), NoMatch},
		{"alice $ grant", pub(alice, "$app/alice/state"), Allow},
		{"alice not anon rules", del(alice, "public/news"), NoMatch},
		{"alice pattern %u write", pub(alice, "users/alice/outbox"), Allow},
		{"alice pattern %u read", del(alice, "users/alice/inbox/m"), Allow},
		{"alice pattern other user", del(alice, "users/bob/inbox/m"), NoMatch},
		{"alice pattern %c", pub(alice, "clients/alice-1/x"), Allow},

		// # does not match $ topics [MQTT-4.7.2-1].
		{"bob read #", del(bob, "anything/at/all"), Allow},
		{"bob # not $SYS", del(bob, "$SYS/broker/uptime"), NoMatch},
		{"bob # not $app", del(bob, "$app/status"), NoMatch},
		{"bob write", pub(bob, "shared/bob/status"), Allow},
		{"bob other users' deny does not apply", del(bob, "alice/private"), Allow},
		// Section grants are decided before pattern denies (Mosquitto order).
		{"bob section grant beats pattern deny", del(bob, "clients/bobc/locked"), Allow},
		{"bob pattern deny", pub(bob, "clients/bobc/locked"), Deny},

		{"username with space", pub(user("has space", "hs"), "spaced/x"), Allow},
		{"carol patterns only", del(carol, "broadcast"), Allow},
		{"carol pattern %c", pub(carol, "clients/carolc/x"), Allow},
		{"carol no anon rules", del(carol, "public/news"), NoMatch},
		{"empty username no section", del(empty, "public/news"), NoMatch},
		{"empty username no %u", del(empty, "users//inbox/x"), NoMatch},
		{"empty username %c", pub(empty, "clients/e1/x"), Allow},

		// CVE-2017-7650: '+' or '#' in username or client id refuses the
		// pattern phase (Mosquitto 2.0), '/' refuses the substitution.
		{"client id + denied", del(anon("a+b"), "broadcast"), Deny},
		{"client id # denied", pub(anon("#"), "clients/#/x"), Deny},
		{"client id + section first", del(user("alice", "x#"), "alice/x"), Allow},
		{"client id + after section", del(user("alice", "x#"), "broadcast"), Deny},
		{"username + denied", del(user("ev+l", "ev"), "broadcast"), Deny},
		{"client id / no match", pub(anon("a/b"), "clients/a/b/x"), NoMatch},
		{"client id a owns its tree", pub(anon("a"), "clients/a/b/x"), Allow},
		{"username / no match", pub(user("a/b", "ab"), "users/a/b/outbox"), NoMatch},
		{"empty client id no match", pub(anon(""), "clients//x"), NoMatch},

		// Subscribe is not restricted by a Mosquitto file: delivery is
		// checked per message (mosquitto_acl_check_default).
		{"subscribe open anon", sub(an, "#"), Allow},
		{"subscribe open denied topic", sub(an, "public/secret/#"), Allow},
		{"subscribe open user", sub(carol, "anything/+"), Allow},
		{"subscribe invalid filter", sub(an, "a/#/b"), Deny},
		{"subscribe invalid +", sub(an, "a+"), Deny},
		{"subscribe qos 3", qos(sub(an, "a"), 3), Deny},

		// Malformed requests fail closed.
		{"publish wildcard", pub(an, "public/+"), Deny},
		{"deliver wildcard", del(bob, "a/#"), Deny},
		{"publish empty", pub(an, ""), Deny},
		{"qos 3", qos(del(an, "public/x"), 3), Deny},
		{"unknown action", Query{Action: 4, Topic: "public/x", Anonymous: true}, Deny},
		{"qos and retain ignored", retain(qos(pub(an, "public/anon/x"), 2)), Allow},
	})
}

func TestDollarTopics(t *testing.T) {
	a := mustParse(t, `topic read +/status
topic read #
topic read $SYS/broker/+
topic write $share/x
topic write %c/%u
pattern read %c/#
`)
	c := anon("$dev")
	runChecks(t, a, []checkCase{
		{"+ not $", del(c, "$app/status"), NoMatch},
		{"+ plain", del(c, "app/status"), Allow},
		{"# not $", del(c, "$x"), NoMatch},
		{"$SYS literal", del(c, "$SYS/broker/uptime"), Allow},
		{"$SYS level count", del(c, "$SYS/broker/load/x"), NoMatch},
		{"$ in later level is plain", del(c, "a/$b"), Allow},
		{"$share literal", pub(c, "$share/x"), Allow},
		{"%c literal in topic line", pub(c, "%c/%u"), Allow},
		{"%c literal in topic line only", pub(c, "$dev/%u"), NoMatch},
		// A substituted first level never matches a '$' topic (2.1 order).
		{"%c first level not $", del(c, "$dev/x"), NoMatch},
	})
}

func TestEmptyFile(t *testing.T) {
	for _, text := range []string{
		"",
		"\n\n",
		"# only comments\n   # indented\n",
		"user alice\nuser bob\n",
		"@subscribe check\n",
	} {
		a := mustParse(t, text)
		if a.Len() != 0 {
			t.Fatalf("%q: Len = %d", text, a.Len())
		}
		// CVE-2018-12550: no rules means no access, not no restrictions.
		runChecks(t, a, []checkCase{
			{"anon deliver", del(anon("c"), "a"), Deny},
			{"user publish", pub(user("alice", "c"), "a"), Deny},
			{"subscribe", sub(anon("c"), "#"), Deny},
		})
	}
}

func TestWhitespaceAndComments(t *testing.T) {
	// Windows line endings, trailing blanks, indented comments, leading
	// tabs, runs of spaces, a last line without newline.
	text := "# comment\r\n" +
		"\r\n" +
		"   # indented comment\n" +
		"\ttopic read tabbed/#  \t\r\n" +
		"topic    write    with  inner  space   \n" +
		"topic read\tx\n" + // no space after read: the topic is "read\tx"
		"topic read\n" + // a lone token is the topic, readwrite
		"user   bob smith  \n" +
		"topic deny #\n" +
		"user bob\n" +
		"topic readwrite bob/#"
	a := mustParse(t, text)
	bs := user("bob smith", "c")
	runChecks(t, a, []checkCase{
		{"tab-indented line", del(anon("c"), "tabbed/x"), Allow},
		{"inner spaces kept", pub(anon("c"), "with  inner  space"), Allow},
		{"inner spaces exact", pub(anon("c"), "with inner space"), NoMatch},
		{"tab not a separator", pub(anon("c"), "read\tx"), Allow},
		{"tab not a separator read", del(anon("c"), "x"), NoMatch},
		{"lone token", pub(anon("c"), "read"), Allow},
		{"username with space trimmed", del(bs, "a"), Deny},
		{"no newline at end", pub(user("bob", "c"), "bob/x"), Allow},
	})
}

func TestParseErrors(t *testing.T) {
	long := strings.Repeat("a", 65536)
	deep := strings.Repeat("a/", 201) + "a"
	tests := []struct {
		name string
		text string
		line int
		msg  string
	}{
		{"unknown access", "topic rw a/b", 1, `unknown access "rw"`},
		{"space in topic needs access", "topic a b", 1, `unknown access "a"`},
		{"case matters", "topic READ a", 1, `unknown access "READ"`},
		{"unknown keyword", "# c\ntopics read a", 2, `unknown keyword "topics"`},
		{"tab after keyword", "topic\tread a", 1, `unknown keyword "topic\tread"`},
		{"keyword case", "Topic read a", 1, `unknown keyword "Topic"`},
		{"missing topic", "topic", 1, "missing topic"},
		{"missing topic spaces", "pattern    ", 1, "missing topic"},
		{"missing username", "user", 1, "missing username"},
		{"missing username spaces", "user   \t", 1, "missing username"},
		{"# not last", "topic read a/#/b", 1, `invalid topic filter "a/#/b": '#' must be the last level`},
		{"# in level", "topic read a/b#", 1, `invalid topic filter "a/b#": '#' must be a whole level`},
		{"+ in level", "topic read a+/b", 1, `'+' must be a whole level`},
		{"+ suffix", "pattern read a/+b", 1, `'+' must be a whole level`},
		{"comment after topic", "topic read a # note", 1, `'#' must be a whole level`},
		{"topic too long", "topic read " + long, 1, "longer than 65535 bytes"},
		{"too many levels", "topic read " + deep, 1, "more than 200 '/' separators"},
		{"%c inside level", "pattern read devices/%c-x", 1, `%c and %u must be a whole level ("%c-x")`},
		{"%u inside level", "pattern read a/x%u", 1, `must be a whole level`},
		{"NUL byte", "topic read a\x00b", 1, "NUL byte"},
		{"line too long", "topic read a\n" + strings.Repeat("x", maxLine+1), 2, "line longer than"},

		{"@ missing permission", "@topic", 1, "missing permission"},
		{"@ bad permission", "@topic maybe publish a", 1, `unknown permission "maybe"`},
		{"@ missing actions", "@pattern allow", 1, "missing actions"},
		{"@ bad action", "@topic allow publish,shout a", 1, `unknown action "shout"`},
		{"@ empty action", "@topic allow publish, a", 1, `unknown action ""`},
		{"@ missing topic", "@topic allow publish", 1, "missing topic"},
		{"@ missing topic after option", "@topic allow publish maxqos=1", 1, "missing topic"},
		{"@ missing topic after --", "@topic allow publish --", 1, "missing topic"},
		{"@ bad maxqos", "@topic allow publish maxqos=3 a", 1, `option maxqos="3"`},
		{"@ bad retain", "@topic allow publish retain=no a", 1, `option retain="no"`},
		{"@ unknown option", "@topic allow publish colour=red a", 1, `unknown option "colour"`},
		{"@ option twice", "@topic allow publish maxqos=1 maxqos=2 a", 1, `option "maxqos" given twice`},
		{"@ deny options", "@topic deny publish maxqos=1 a", 1, "options belong to allow rules"},
		{"@ maxqos on deliver", "@topic allow deliver maxqos=1 a", 1, "applies to publish and subscribe"},
		{"@ retain on deliver", "@topic allow deliver retain=deny a", 1, "applies to publish"},
		{"@ bad %", "@pattern allow publish a/%x", 1, `'%' must be a whole level %c, %u or %{name} ("%x")`},
		{"@ % in level", "@pattern allow publish a/b%c", 1, "must be a whole level"},
		{"@ bad attr name", "@pattern allow publish a/%{bad name}", 1, "must be a whole level"},
		{"@ empty attr name", "@pattern allow publish a/%{}", 1, "must be a whole level"},
		{"@ bad filter", "@topic allow publish a/#/b", 1, "'#' must be the last level"},
		{"@ subscribe without check", "topic read a\n@topic allow subscribe a", 2, `rule names subscribe, but the file has no "@subscribe check"`},
		{"@subscribe arg", "@subscribe everything", 1, `want "@subscribe check"`},
		{"@ unknown", "@user bob", 1, `unknown keyword "@user"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.text), "acl.conf")
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if se.File != "acl.conf" || se.Line != tc.line {
				t.Errorf("error at %s:%d, want acl.conf:%d (%v)", se.File, se.Line, tc.line, err)
			}
			if !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("message %q does not contain %q", se.Msg, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "acl: acl.conf:") {
				t.Errorf("error %q lacks the acl: file:line: prefix", err)
			}
		})
	}
}

func TestParseErrorFormat(t *testing.T) {
	text := strings.Repeat("# comment\n", 11) + "topic rw a\n"
	_, err := Parse(strings.NewReader(text), "acl.conf")
	if err == nil || err.Error() != `acl: acl.conf:12: unknown access "rw" (want read, write, readwrite or deny)` {
		t.Fatalf("err = %v", err)
	}
}

func TestParseReportsEveryError(t *testing.T) {
	text := "topic rw a\n@topic allow subscribe x\ntopic read ok\nfoo\nuser\n"
	_, err := Parse(strings.NewReader(text), "f.acl")
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	var lines []int
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *SyntaxError
		if !errors.As(e, &se) {
			t.Fatalf("%v is not a *SyntaxError", e)
		}
		lines = append(lines, se.Line)
	}
	if got, want := lines, []int{1, 2, 4, 5}; !equalInts(got, want) {
		t.Fatalf("error lines %v, want %v\n%v", got, want, err)
	}

	_, err = Parse(strings.NewReader(strings.Repeat("bad\n", 100)), "f.acl")
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n > maxErrors+1 {
		t.Fatalf("%d errors reported, want at most %d", n, maxErrors+1)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	_, err := Parse(failingReader{}, "acl.conf")
	if err == nil || !strings.Contains(err.Error(), "acl: read acl.conf: disk on fire") {
		t.Fatalf("err = %v", err)
	}
}

func TestExplain(t *testing.T) {
	a := mustParse(t, "topic read a/#\ntopic deny a/secret\npattern read p/%c\n")
	tests := []struct {
		q    Query
		want Result
		why  string
	}{
		{del(anon("c"), "a/x"), Allow, "acl.conf:1: topic read a/#"},
		{del(anon("c"), "a/secret"), Deny, "acl.conf:2: topic deny a/secret"},
		{del(anon("c"), "p/c"), Allow, "acl.conf:3: pattern read p/%c"},
		{del(anon("c"), "b"), NoMatch, "acl.conf: no rule matched"},
		{del(anon("c+"), "b"), Deny, "contains '+' or '#'"},
		{sub(anon("c"), "b"), Allow, "subscriptions are not restricted"},
		{pub(anon("c"), "b/+"), Deny, "invalid publish request"},
	}
	for _, tc := range tests {
		res, why := a.Explain(tc.q)
		if res != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("Explain(%+v) = %v, %q; want %v, %q", tc.q, res, why, tc.want, tc.why)
		}
	}
	_, why := mustParse(t, "").Explain(del(anon("c"), "a"))
	if !strings.Contains(why, "no rules") {
		t.Errorf("empty file: %q", why)
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	a := mustParse(t, mosquittoFile+"@subscribe check\n@pattern allow publish t/%{tenant}/#\n")
	qs := []Query{
		pub(user("alice", "alice-1"), "alice/x"),
		del(user("bob", "bobc"), "$SYS/x"),
		pub(anon("c1"), "clients/c1/a/b/c"),
		sub(user("alice", "a"), "shared/+/status"),
		attrs(pub(user("u", "c"), "t/acme/x"), "tenant", "acme"),
	}
	for _, q := range qs {
		if n := testing.AllocsPerRun(100, func() { a.Check(q) }); n != 0 {
			t.Errorf("Check(%+v) allocates %v times", q, n)
		}
	}
}

// TestConcurrentCheck: a parsed ACL is shared by every request; run with
// -race.
func TestConcurrentCheck(t *testing.T) {
	a := mustParse(t, mosquittoFile)
	qs := []Query{
		pub(user("alice", "alice-1"), "alice/x"),
		del(user("bob", "bobc"), "clients/bobc/locked"),
		pub(anon("c1"), "clients/c1/locked"),
	}
	want := []Result{Allow, Allow, Deny}
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < 2000; i++ {
				if got := a.Check(qs[i%3]); got != want[i%3] {
					t.Errorf("Check(%+v) = %v, want %v", qs[i%3], got, want[i%3])
					return
				}
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}
