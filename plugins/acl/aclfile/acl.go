package aclfile

import (
	"strconv"
	"strings"
)

// Action is what a query asks to do. The values are those of the moat ABI
// (sdk/ABI.md §3, header byte 1), so a plugin converts with Action(n).
type Action uint8

const (
	// Publish: the client sends a PUBLISH (Mosquitto's "write").
	Publish Action = 1
	// Subscribe: the client asks for a subscription to a topic filter.
	Subscribe Action = 2
	// Deliver: a message is about to reach the client (Mosquitto's "read").
	Deliver Action = 3
)

func (a Action) String() string {
	switch a {
	case Publish:
		return "publish"
	case Subscribe:
		return "subscribe"
	case Deliver:
		return "deliver"
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// Result is the answer of [ACL.Check].
type Result uint8

const (
	// NoMatch: no rule decided. Mosquitto denies in that case; the plugin
	// decides whether to deny or to pass to the next module.
	NoMatch Result = iota
	Allow
	Deny
)

func (r Result) String() string {
	switch r {
	case NoMatch:
		return "no-match"
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return "result(" + strconv.Itoa(int(r)) + ")"
}

// Attr is a key/value pair that authentication attached to a client; an
// @pattern rule reads it as %{key}.
type Attr struct {
	Key, Value string
}

// Query is one authorization question. The client fields are those of the
// client the question is about: the publisher for Publish, the subscriber
// for Subscribe and Deliver.
type Query struct {
	Action   Action
	ClientID string
	// Username is ignored when Anonymous is set.
	Username string
	// Anonymous means the CONNECT carried no username; such a client gets the
	// rules before the first user line. A client with an empty username is
	// not anonymous (as in Mosquitto) and gets no section at all.
	Anonymous bool
	// Topic is the topic name of a Publish or Deliver, or the topic filter
	// of a Subscribe (without any "$share/<group>/" prefix).
	Topic  string
	QoS    uint8
	Retain bool
	// Attributes are consulted only by rules that use %{name}; see
	// [ACL.UsesAttributes]. The first pair with a key wins.
	Attributes []Attr
}

// ACL is a parsed ACL file. It is immutable: Check and Explain are safe for
// concurrent use.
type ACL struct {
	name  string
	rules []*rule // in file order; the index below points into it

	anon     *node            // topic rules before the first user line
	users    map[string]*node // topic rules of each user section
	patterns *node            // pattern rules, for every client

	checkSubscribe bool
	usesAttrs      bool
}

// Len is the number of rules in the file.
func (a *ACL) Len() int { return len(a.rules) }

// UsesAttributes reports whether any rule reads %{name}, so that a caller
// can skip collecting attributes when none does.
func (a *ACL) UsesAttributes() bool { return a.usesAttrs }

// ChecksSubscribe reports whether the file has "@subscribe check"; without
// it every valid SUBSCRIBE is allowed, as in Mosquitto.
func (a *ACL) ChecksSubscribe() bool { return a.checkSubscribe }

// why says what decided when no rule did.
type why uint8

const (
	whyRule why = iota
	whyEmpty
	whyBadQuery
	whySubscribeOpen
	whyDangerous
	whyNoMatch
)

// Check answers q. It allocates nothing. Its cost grows with the number of
// topic levels and of wildcard branches on the topic's path, not with the
// number of rules.
func (a *ACL) Check(q Query) Result {
	res, _, _ := a.decide(&q)
	return res
}

// Explain answers q like Check and says why, naming the deciding rule as
// "file:line: text"; it is meant for logs and MQTT 5 reason strings.
func (a *ACL) Explain(q Query) (Result, string) {
	res, r, w := a.decide(&q)
	switch w {
	case whyRule:
		return res, a.name + ":" + strconv.Itoa(r.line) + ": " + r.text
	case whyEmpty:
		return res, a.name + ": the file has no rules, so everything is denied"
	case whyBadQuery:
		return res, "invalid " + q.Action.String() + " request"
	case whySubscribeOpen:
		return res, a.name + ": subscriptions are not restricted (no \"@subscribe check\"); delivery is checked"
	case whyDangerous:
		return res, a.name + ": username or client id contains '+' or '#' and the file has pattern rules"
	}
	return res, a.name + ": no rule matched"
}

func (a *ACL) decide(q *Query) (Result, *rule, why) {
	if len(a.rules) == 0 {
		// CVE-2018-12550: an empty file must not mean "no restrictions".
		return Deny, nil, whyEmpty
	}
	if q.QoS > 2 {
		return Deny, nil, whyBadQuery
	}
	var want actionSet
	switch q.Action {
	case Publish, Deliver:
		if !validName(q.Topic) {
			return Deny, nil, whyBadQuery
		}
		want = q.Action.set()
	case Subscribe:
		if validFilter(q.Topic) != "" {
			return Deny, nil, whyBadQuery
		}
		if !a.checkSubscribe {
			// mosquitto 2.0.11 src/security_default.c,
			// mosquitto_acl_check_default: "if(ed->access ==
			// MOSQ_ACL_SUBSCRIBE || ...) return MOSQ_ERR_SUCCESS; /* FIXME -
			// implement ACL subscription strings. */". Each delivered
			// message is checked instead (see the package doc).
			return Allow, nil, whySubscribeOpen
		}
		want = setSubscribe
	default:
		return Deny, nil, whyBadQuery
	}

	w := walker{q: q, want: want, cover: q.Action == Subscribe}
	section := a.anon
	if !q.Anonymous {
		section = a.users[q.Username] // nil map and missing user alike
	}
	if section != nil {
		if res, r := w.run(section); res != NoMatch {
			return res, r, whyRule
		}
	}
	if a.patterns == nil {
		return NoMatch, nil, whyNoMatch
	}
	// Mosquitto 2.0 (mosquitto_acl_check_default) refuses the whole pattern
	// phase for such clients, whether or not a pattern uses the value
	// (CVE-2017-7650).
	cWild, cSlash := scanValue(q.ClientID)
	uWild, uSlash := false, true
	if !q.Anonymous {
		uWild, uSlash = scanValue(q.Username)
	}
	if cWild || uWild {
		return Deny, nil, whyDangerous
	}
	w.clientOK = q.ClientID != "" && !cSlash
	w.userOK = !q.Anonymous && q.Username != "" && !uSlash
	if res, r := w.run(a.patterns); res != NoMatch {
		return res, r, whyRule
	}
	return NoMatch, nil, whyNoMatch
}

// safeValue reports whether a substituted value can stand for one topic
// level: not empty, no wildcard, no separator.
func safeValue(v string) bool {
	wild, slash := scanValue(v)
	return v != "" && !wild && !slash
}

// scanValue looks for wildcards and separators in one pass.
func scanValue(s string) (wild, slash bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '+', '#':
			wild = true
		case '/':
			slash = true
		}
	}
	return wild, slash
}

// hasWildcard is strings.ContainsAny(s, "+#") without its per-byte rune
// search, which was most of the cost of a check.
func hasWildcard(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '+' || c == '#' {
			return true
		}
	}
	return false
}

// walker matches one query against one trie. It lives on the caller's stack.
type walker struct {
	q     *Query
	want  actionSet
	cover bool // Subscribe: a rule must cover the filter, not match a name

	clientOK, userOK bool // %c and %u may be substituted

	deny, grant *rule
}

// run walks the trie rooted at n. A deny anywhere wins, so the walk stops
// at the first one; otherwise the first grant found allows.
func (w *walker) run(n *node) (Result, *rule) {
	w.deny, w.grant = nil, nil
	w.walk(n, w.q.Topic, false, true)
	if w.deny != nil {
		return Deny, w.deny
	}
	if w.grant != nil {
		return Allow, w.grant
	}
	return NoMatch, nil
}

// walk visits every rule whose filter matches (or, for Subscribe, covers)
// the levels of rest, having reached n; done means no level is left. It
// returns true when a deny was found.
func (w *walker) walk(n *node, rest string, done, root bool) bool {
	// [MQTT-4.7.2-1] a filter starting with a wildcard does not match a
	// topic starting with '$'; nor does a substituted level, which Mosquitto
	// 2.1 checks before substituting (2.0 would match "%c/#" against
	// "$x/y" for client "$x"; no sane client id starts with '$').
	dollar := root && !done && rest != "" && rest[0] == '$'
	// "a/#" matches "a" and everything below it.
	if n.hash != nil && !dollar && w.visit(n.hash) {
		return true
	}
	if done {
		return n.here != nil && w.visit(n.here)
	}
	level, next, last := rest, "", true
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		level, next, last = rest[:i], rest[i+1:], false
	}
	if w.cover {
		switch level {
		case "#":
			return false // only a '#' covers '#', and it was visited above
		case "+":
			// '+' covers '+'; a literal or a substituted value does not.
			return n.plus != nil && w.walk(n.plus, next, last, false)
		}
	}
	if n.lit != nil {
		if c := n.lit[level]; c != nil && w.walk(c, next, last, false) {
			return true
		}
	}
	if n.plus != nil && !dollar && w.walk(n.plus, next, last, false) {
		return true
	}
	if dollar {
		return false
	}
	for i := range n.vars {
		e := &n.vars[i]
		if v, ok := w.value(e); ok && v == level && w.walk(e.next, next, last, false) {
			return true
		}
	}
	return false
}

// value is what a substitution edge stands for in this query, if anything.
func (w *walker) value(e *varEdge) (string, bool) {
	switch e.kind {
	case varClient:
		return w.q.ClientID, w.clientOK
	case varUser:
		return w.q.Username, w.userOK
	}
	for _, kv := range w.q.Attributes {
		if kv.Key == e.attr {
			return kv.Value, safeValue(kv.Value)
		}
	}
	return "", false
}

// visit looks at rules whose filter matched. It returns true on a deny.
func (w *walker) visit(rs []*rule) bool {
	for _, r := range rs {
		if r.actions&w.want == 0 {
			continue
		}
		if r.deny {
			w.deny = r
			return true
		}
		if w.grant == nil && r.permits(w.q) {
			w.grant = r
		}
	}
	return false
}

// permits applies an allow rule's options.
func (r *rule) permits(q *Query) bool {
	if q.Action != Deliver && q.QoS > r.maxQoS {
		return false
	}
	return !(q.Retain && r.noRetain && q.Action == Publish)
}
