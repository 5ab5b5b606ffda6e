package main

import "strings"

// match reports whether the rule filter (split in levels) matches topic: a
// topic name for publish and deliver, or, when isFilter, a subscription's
// topic filter, which the rule matches only if every topic the filter can
// match is matched by the rule ("a/#" covers "a/+/b"; "a/+" does not cover
// "a/#").
//
// A rule level "%u" or "%c" matches the level equal to the username or
// client id; it never matches when that name is empty or contains '/', '+'
// or '#', so that a client cannot widen a rule by choosing its name.
// Wildcards at the first level do not match topics that start with '$'
// [MQTT-4.7.2-1]. It does not allocate.
func match(filter []string, topic string, isFilter bool, username, clientID string) bool {
	if len(filter) > 0 && (filter[0] == "#" || filter[0] == "+") && strings.HasPrefix(topic, "$") {
		return false
	}
	rest, done := topic, false
	for i, f := range filter {
		if done {
			// "a/#" matches "a" too: "#" includes the parent level.
			return f == "#" && i == len(filter)-1
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
			if !nameLevel(username) || level != username {
				return false
			}
		case "%c":
			if !nameLevel(clientID) || level != clientID {
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

// nameLevel reports whether name can stand for one topic level.
func nameLevel(name string) bool {
	return name != "" && !strings.ContainsAny(name, "/+#")
}
