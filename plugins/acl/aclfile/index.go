package aclfile

import "strings"

// actionSet is a set of actions, bit 1<<Action.
type actionSet uint8

const (
	setPublish   actionSet = 1 << Publish
	setSubscribe actionSet = 1 << Subscribe
	setDeliver   actionSet = 1 << Deliver

	// Mosquitto's access words. "read" is delivery; it also grants subscribe,
	// which only counts under "@subscribe check".
	setRead      = setDeliver | setSubscribe
	setWrite     = setPublish
	setReadWrite = setRead | setWrite
)

func (a Action) set() actionSet { return 1 << a }

// rule is one line that grants or refuses something.
type rule struct {
	line int
	text string // the line as written, trimmed, for Explain

	pattern bool // pattern or @pattern: applies to every client
	// The section of a topic or @topic rule: anonymous clients, or user.
	anon    bool
	user    string
	deny    bool
	actions actionSet

	// Options of an allow rule; maxQoS is 2 when not set.
	maxQoS   uint8
	noRetain bool

	filter string
	levels []level
}

type levelKind uint8

const (
	levelLiteral levelKind = iota
	levelPlus
	levelHash
	varClient // %c
	varUser   // %u
	varAttr   // %{name}
)

type level struct {
	kind levelKind
	text string // the literal, or the attribute name of varAttr
}

// node is a trie of filters keyed by topic level. A rule sits in the here
// list of the node its last level leads to, or in the hash list of the node
// before a trailing '#'.
type node struct {
	lit  map[string]*node
	plus *node
	vars []varEdge // pattern tries only
	hash []*rule
	here []*rule
}

type varEdge struct {
	kind levelKind
	attr string
	next *node
}

func (n *node) insert(r *rule) {
	for _, l := range r.levels {
		switch l.kind {
		case levelHash:
			n.hash = append(n.hash, r)
			return
		case levelPlus:
			if n.plus == nil {
				n.plus = &node{}
			}
			n = n.plus
		case levelLiteral:
			c := n.lit[l.text]
			if c == nil {
				if n.lit == nil {
					n.lit = make(map[string]*node)
				}
				c = &node{}
				n.lit[l.text] = c
			}
			n = c
		default:
			n = n.varChild(l)
		}
	}
	n.here = append(n.here, r)
}

func (n *node) varChild(l level) *node {
	for _, e := range n.vars {
		if e.kind == l.kind && e.attr == l.text {
			return e.next
		}
	}
	c := &node{}
	n.vars = append(n.vars, varEdge{kind: l.kind, attr: l.text, next: c})
	return c
}

// Limits of mosquitto_sub_topic_check (lib/util_topic.c) in a broker build.
const (
	maxTopicLen    = 65535
	maxTopicLevels = 200 // TOPIC_HIERARCHY_LIMIT: at most this many '/'
)

// validFilter checks a subscription-style filter like
// mosquitto_sub_topic_check and returns what is wrong, or "".
func validFilter(f string) string {
	if f == "" {
		return "empty topic"
	}
	if len(f) > maxTopicLen {
		return "longer than 65535 bytes"
	}
	if strings.Count(f, "/") > maxTopicLevels {
		return "more than 200 '/' separators"
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '+':
			if (i > 0 && f[i-1] != '/') || (i+1 < len(f) && f[i+1] != '/') {
				return "'+' must be a whole level"
			}
		case '#':
			if i > 0 && f[i-1] != '/' {
				return "'#' must be a whole level"
			}
			if i+1 < len(f) {
				return "'#' must be the last level"
			}
		}
	}
	return ""
}

// validName checks a topic name of a publish or delivery.
func validName(t string) bool {
	return t != "" && len(t) <= maxTopicLen && !hasWildcard(t)
}
