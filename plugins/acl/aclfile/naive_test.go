package aclfile

import "strings"

// naiveCheck is the reference the index is measured and tested against: it
// does what mosquitto_acl_check_default (mosquitto 2.0.11,
// src/security_default.c) does, a linear scan of the client's section and
// then of every pattern, substituting each pattern into a new string and
// matching it with a line-by-line port of Mosquitto's C matcher. It shares
// only the parsed rule list with the indexed Check.
func naiveCheck(a *ACL, q Query) Result {
	if len(a.rules) == 0 {
		return Deny
	}
	if q.QoS > 2 {
		return Deny
	}
	switch q.Action {
	case Publish, Deliver:
		if !validName(q.Topic) {
			return Deny
		}
	case Subscribe:
		if validFilter(q.Topic) != "" {
			return Deny
		}
		if !a.checkSubscribe {
			return Allow
		}
	default:
		return Deny
	}
	want := q.Action.set()
	match := mosqTopicMatchesSub
	if q.Action == Subscribe {
		match = mosqSubMatchesACL
	}

	section := func(r *rule) bool {
		if r.pattern {
			return false
		}
		if q.Anonymous {
			return r.anon
		}
		return !r.anon && r.user == q.Username
	}
	// Phase 1: the client's section, denies first (add__acl puts them at the
	// front of the list), then grants in file order.
	for _, r := range a.rules {
		if section(r) && r.deny && r.actions&want != 0 && match(r.filter, q.Topic) {
			return Deny
		}
	}
	for _, r := range a.rules {
		if section(r) && !r.deny && r.actions&want != 0 && match(r.filter, q.Topic) && r.permits(&q) {
			return Allow
		}
	}

	hasPatterns := false
	for _, r := range a.rules {
		hasPatterns = hasPatterns || r.pattern
	}
	if !hasPatterns {
		return NoMatch
	}
	if strings.ContainsAny(q.ClientID, "+#") || (!q.Anonymous && strings.ContainsAny(q.Username, "+#")) {
		return Deny
	}
	// Phase 2: patterns, substituted per client.
	for _, deny := range []bool{true, false} {
		for _, r := range a.rules {
			if !r.pattern || r.deny != deny || r.actions&want == 0 {
				continue
			}
			filter, ok := substitute(r, &q)
			if !ok || !match(filter, q.Topic) {
				continue
			}
			if deny {
				return Deny
			}
			if r.permits(&q) {
				return Allow
			}
		}
	}
	return NoMatch
}

// substitute builds a pattern's filter for one client, as Mosquitto 2.0
// does with a malloc per pattern and check. It refuses unsafe values.
func substitute(r *rule, q *Query) (string, bool) {
	var b strings.Builder
	for i, l := range r.levels {
		if i > 0 {
			b.WriteByte('/')
		}
		v, isVar := l.text, true
		switch l.kind {
		case varClient:
			v = q.ClientID
		case varUser:
			if q.Anonymous {
				return "", false
			}
			v = q.Username
		case varAttr:
			v = ""
			for _, kv := range q.Attributes {
				if kv.Key == l.text {
					v = kv.Value
					break
				}
			}
		case levelPlus:
			v, isVar = "+", false
		case levelHash:
			v, isVar = "#", false
		default:
			isVar = false
		}
		if isVar {
			if !safeValue(v) {
				return "", false
			}
			// Mosquitto 2.1 compares the unsubstituted '%' against the
			// topic's '$' first, so a substituted first level never
			// matches a '$' topic.
			if i == 0 && strings.HasPrefix(q.Topic, "$") {
				return "", false
			}
		}
		b.WriteString(v)
	}
	return b.String(), true
}

// at is C's s[i] on a NUL-terminated string.
func at(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// mosqTopicMatchesSub is mosquitto_topic_matches_sub2 of mosquitto 2.0.11
// (lib/util_topic.c), ported statement by statement: s and t stand for the
// advancing sub and topic pointers, so sub[-1] is sub[s-1].
func mosqTopicMatchesSub(sub, topic string) bool {
	if sub == "" || topic == "" {
		return false
	}
	if (sub[0] == '$' && topic[0] != '$') || (topic[0] == '$' && sub[0] != '$') {
		return false
	}
	s, t := 0, 0
	for at(sub, s) != 0 {
		if at(topic, t) == '+' || at(topic, t) == '#' {
			return false
		}
		if at(sub, s) != at(topic, t) || at(topic, t) == 0 {
			switch at(sub, s) {
			case '+':
				if s > 0 && sub[s-1] != '/' {
					return false
				}
				if at(sub, s+1) != 0 && at(sub, s+1) != '/' {
					return false
				}
				s++
				for at(topic, t) != 0 && at(topic, t) != '/' {
					if at(topic, t) == '+' || at(topic, t) == '#' {
						return false
					}
					t++
				}
				if at(topic, t) == 0 && at(sub, s) == 0 {
					return true
				}
			case '#':
				if s > 0 && sub[s-1] != '/' {
					return false
				}
				if at(sub, s+1) != 0 {
					return false
				}
				for at(topic, t) != 0 {
					if at(topic, t) == '+' || at(topic, t) == '#' {
						return false
					}
					t++
				}
				return true
			default:
				// foo/bar matching foo/+/#
				return at(topic, t) == 0 && s > 0 && sub[s-1] == '+' && at(sub, s) == '/' && at(sub, s+1) == '#'
			}
		} else {
			if at(topic, t+1) == 0 {
				// foo matching foo/#
				if at(sub, s+1) == '/' && at(sub, s+2) == '#' && at(sub, s+3) == 0 {
					return true
				}
			}
			s++
			t++
			if at(sub, s) == 0 && at(topic, t) == 0 {
				return true
			} else if at(topic, t) == 0 && at(sub, s) == '+' && at(sub, s+1) == 0 {
				return !(s > 0 && sub[s-1] != '/')
			}
		}
	}
	return false
}

// mosqSubMatchesACL is sub_matches_acl (without patterns) of the mosquitto
// 2.1 development branch (libcommon/topic_common.c), which the
// dynamic-security plugin uses to check a SUBSCRIBE filter against an ACL
// filter: true when acl covers every topic that sub can match.
func mosqSubMatchesACL(acl, sub string) bool {
	if acl == "" || sub == "" {
		return false
	}
	if (acl[0] == '$' && sub[0] != '$') || (sub[0] == '$' && acl[0] != '$') {
		return false
	}
	a, s := 0, 0
	for at(acl, a) != 0 {
		if at(acl, a) != at(sub, s) || at(sub, s) == 0 {
			switch at(acl, a) {
			case '+':
				if at(sub, s) == '#' {
					return false
				}
				if a > 0 && acl[a-1] != '/' {
					return false
				}
				if at(acl, a+1) != 0 && at(acl, a+1) != '/' {
					return false
				}
				a++
				for at(sub, s) != 0 && at(sub, s) != '/' {
					s++
				}
				if at(sub, s) == 0 && at(acl, a) == 0 {
					return true
				}
			case '#':
				if a > 0 && acl[a-1] != '/' {
					return false
				}
				return at(acl, a+1) == 0
			default:
				return at(sub, s) == 0 && a > 0 && acl[a-1] == '+' && at(acl, a) == '/' && at(acl, a+1) == '#'
			}
		} else {
			if at(sub, s+1) == 0 {
				if at(acl, a+1) == '/' && at(acl, a+2) == '#' && at(acl, a+3) == 0 {
					return true
				}
			}
			a++
			s++
			if at(acl, a) == 0 && at(sub, s) == 0 {
				return true
			} else if at(sub, s) == 0 && at(acl, a) == '+' && at(acl, a+1) == 0 {
				return !(a > 0 && acl[a-1] != '/')
			}
		}
	}
	if at(sub, s) != 0 || at(acl, a) != 0 {
		return false
	}
	return !strings.ContainsAny(sub[s:], "+#")
}
