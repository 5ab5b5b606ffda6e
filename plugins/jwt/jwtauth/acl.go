package jwtauth

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Rule is one entry of an "acl" claim, in EMQX's shape:
//
//	{"permission": "allow", "action": "publish", "topic": "t/${username}/#", "qos": [0, 1], "retain": false}
//
// Action is "publish", "subscribe" or "all" (EMQX's "pub"/"sub" too).
// Subscribe rules also govern delivery, as Mosquitto's "read" does. A topic
// written "eq t/#" matches that filter literally. ${username} and
// ${clientid} are substituted as whole levels.
type Rule struct {
	Allow  bool   `json:"allow"`
	Action string `json:"action"` // "publish", "subscribe" or "all"
	Topic  string `json:"topic"`
	Exact  bool   `json:"exact,omitempty"`
	// QoS lists the QoS levels the rule covers; empty covers all.
	QoS []uint8 `json:"qos,omitempty"`
	// Retain, when set, limits the rule to publishes with that retain flag.
	Retain *bool `json:"retain,omitempty"`
}

// ParseACL normalises an "acl" claim: EMQX's list of rules, or its older
// object form {"pub": [...], "sub": [...], "all": [...]} of allowed topics.
func ParseACL(claim any) ([]Rule, error) {
	switch c := claim.(type) {
	case nil:
		return nil, nil
	case []any:
		rules := make([]Rule, 0, len(c))
		for i, x := range c {
			m, ok := x.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("jwt: acl[%d]: not an object", i)
			}
			r, err := parseRule(m)
			if err != nil {
				return nil, fmt.Errorf("jwt: acl[%d]: %w", i, err)
			}
			rules = append(rules, r)
		}
		return rules, nil
	case map[string]any:
		var rules []Rule
		for _, key := range []string{"pub", "sub", "all", "publish", "subscribe"} {
			v, ok := c[key]
			if !ok {
				continue
			}
			list, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("jwt: acl.%s: not a list", key)
			}
			for i, t := range list {
				s, ok := t.(string)
				if !ok || s == "" {
					return nil, fmt.Errorf("jwt: acl.%s[%d]: not a topic", key, i)
				}
				r := Rule{Allow: true, Action: normAction(key), Topic: s}
				r.Topic, r.Exact = splitEq(s)
				rules = append(rules, r)
			}
		}
		return rules, nil
	}
	return nil, fmt.Errorf("jwt: acl: want a list of rules or an object, found %T", claim)
}

func normAction(a string) string {
	switch a {
	case "pub", "publish":
		return "publish"
	case "sub", "subscribe":
		return "subscribe"
	case "all":
		return "all"
	}
	return ""
}

func splitEq(topic string) (string, bool) {
	if rest, ok := strings.CutPrefix(topic, "eq "); ok {
		return rest, true
	}
	return topic, false
}

func parseRule(m map[string]any) (Rule, error) {
	var r Rule
	switch p, _ := m["permission"].(string); p {
	case "allow":
		r.Allow = true
	case "deny":
	default:
		return r, fmt.Errorf("permission %q: want \"allow\" or \"deny\"", p)
	}
	a, _ := m["action"].(string)
	if r.Action = normAction(a); r.Action == "" {
		return r, fmt.Errorf("action %q: want \"publish\", \"subscribe\" or \"all\"", a)
	}
	t, _ := m["topic"].(string)
	if t == "" {
		return r, fmt.Errorf("missing topic")
	}
	r.Topic, r.Exact = splitEq(t)
	if q, ok := m["qos"]; ok {
		list, ok := q.([]any)
		if !ok {
			list = []any{q}
		}
		for _, x := range list {
			n, ok := x.(json.Number)
			if !ok {
				if f, isF := x.(float64); isF {
					n = json.Number(fmt.Sprint(f))
				} else {
					return r, fmt.Errorf("qos: want 0, 1 or 2")
				}
			}
			v, err := n.Int64()
			if err != nil || v < 0 || v > 2 {
				return r, fmt.Errorf("qos %v: want 0, 1 or 2", x)
			}
			r.QoS = append(r.QoS, uint8(v))
		}
	}
	if v, ok := m["retain"]; ok {
		b, ok := v.(bool)
		if !ok {
			return r, fmt.Errorf("retain: want true or false")
		}
		r.Retain = &b
	}
	return r, nil
}

// Decision is the outcome of CheckACL.
type Decision int

const (
	NoMatch Decision = iota
	Allowed
	Denied
)

// Request is what CheckACL decides. Action is "publish", "subscribe" or
// "deliver".
type Request struct {
	Action   string
	Topic    string
	QoS      uint8
	Retain   bool
	Username string
	ClientID string
}

// CheckACL applies rules in order; the first rule that matches decides.
func CheckACL(rules []Rule, q Request) Decision {
	for i := range rules {
		r := &rules[i]
		if !r.covers(q) {
			continue
		}
		filter, ok := substitute(r.Topic, q.Username, q.ClientID)
		if !ok {
			continue
		}
		var match bool
		if r.Exact || q.Action == "subscribe" {
			// A subscription is granted only for a filter the rule's
			// filter contains: exact text, or a narrower filter.
			match = r.Exact && filter == q.Topic || !r.Exact && filterCovers(filter, q.Topic)
		} else {
			match = filterCovers(filter, q.Topic)
		}
		if !match {
			continue
		}
		if r.Allow {
			return Allowed
		}
		return Denied
	}
	return NoMatch
}

func (r *Rule) covers(q Request) bool {
	switch r.Action {
	case "publish":
		if q.Action != "publish" {
			return false
		}
	case "subscribe":
		if q.Action != "subscribe" && q.Action != "deliver" {
			return false
		}
	}
	if len(r.QoS) > 0 && q.Action != "deliver" {
		found := false
		for _, v := range r.QoS {
			found = found || v == q.QoS
		}
		if !found {
			return false
		}
	}
	if r.Retain != nil && q.Action == "publish" && *r.Retain != q.Retain {
		return false
	}
	return true
}

// substitute replaces ${username} and ${clientid} levels. A value holding a
// wildcard or a level separator could widen the rule, so the rule then does
// not apply (the same defence as Mosquitto's CVE-2017-7650 fix).
func substitute(topic, username, clientID string) (string, bool) {
	if !strings.Contains(topic, "${") {
		return topic, true
	}
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		var v string
		switch l {
		case "${username}":
			v = username
		case "${clientid}":
			v = clientID
		default:
			continue
		}
		if v == "" || strings.ContainsAny(v, "+#/") {
			return "", false
		}
		levels[i] = v
	}
	return strings.Join(levels, "/"), true
}

// filterCovers reports whether every topic matched by sub (a topic name or a
// filter) is matched by filter. For a topic name this is ordinary MQTT
// matching; $-topics are not matched by a leading wildcard [MQTT-4.7.2-1].
func filterCovers(filter, sub string) bool {
	if strings.HasPrefix(sub, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	f := strings.Split(filter, "/")
	s := strings.Split(sub, "/")
	for i, fl := range f {
		if fl == "#" {
			return true
		}
		if i >= len(s) {
			return false
		}
		switch {
		case fl == "+":
			if s[i] == "#" {
				return false
			}
		case fl != s[i]:
			return false
		}
	}
	return len(f) == len(s)
}
