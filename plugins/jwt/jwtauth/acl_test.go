package jwtauth

import (
	"encoding/json"
	"strings"
	"testing"
)

func decodeClaim(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestCheckACL(t *testing.T) {
	rules, err := ParseACL(decodeClaim(t, `[
		{"permission": "deny",  "action": "all",       "topic": "devices/${username}/secret"},
		{"permission": "allow", "action": "publish",   "topic": "devices/${username}/#", "qos": [0, 1], "retain": false},
		{"permission": "allow", "action": "subscribe", "topic": "cmd/${clientid}/+"},
		{"permission": "allow", "action": "sub",       "topic": "eq broadcast/#"},
		{"permission": "deny",  "action": "all",       "topic": "#"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  Request
		want Decision
	}{
		{"publish own tree", Request{Action: "publish", Topic: "devices/u1/temp", QoS: 1}, Allowed},
		{"publish qos 2 over ceiling", Request{Action: "publish", Topic: "devices/u1/temp", QoS: 2}, Denied},
		{"publish retained refused", Request{Action: "publish", Topic: "devices/u1/temp", Retain: true}, Denied},
		{"publish other user", Request{Action: "publish", Topic: "devices/u2/temp"}, Denied},
		{"deny first", Request{Action: "publish", Topic: "devices/u1/secret"}, Denied},
		{"subscribe own commands", Request{Action: "subscribe", Topic: "cmd/c1/+"}, Allowed},
		{"subscribe narrower", Request{Action: "subscribe", Topic: "cmd/c1/reboot"}, Allowed},
		{"subscribe wider refused", Request{Action: "subscribe", Topic: "cmd/#"}, Denied},
		{"deliver own commands", Request{Action: "deliver", Topic: "cmd/c1/reboot"}, Allowed},
		{"eq exact filter", Request{Action: "subscribe", Topic: "broadcast/#"}, Allowed},
		{"eq does not match topics under it", Request{Action: "subscribe", Topic: "broadcast/x"}, Denied},
		{"publish not covered by subscribe rules", Request{Action: "publish", Topic: "cmd/c1/x"}, Denied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Username, tc.req.ClientID = "u1", "c1"
			if got := CheckACL(rules, tc.req); got != tc.want {
				t.Fatalf("CheckACL = %v, want %v", got, tc.want)
			}
		})
	}
	// A username carrying a wildcard must not widen a ${username} rule.
	if got := CheckACL(rules, Request{Action: "publish", Topic: "devices/x/y", Username: "+", ClientID: "c"}); got != Denied {
		t.Fatalf("wildcard username: %v", got)
	}
}

func TestParseACLForms(t *testing.T) {
	old, err := ParseACL(decodeClaim(t, `{"pub": ["a/#"], "sub": ["b/+"], "all": ["c"]}`))
	if err != nil || len(old) != 3 {
		t.Fatalf("old form: %v %v", old, err)
	}
	if CheckACL(old, Request{Action: "publish", Topic: "a/1"}) != Allowed || CheckACL(old, Request{Action: "publish", Topic: "b/1"}) != NoMatch {
		t.Fatal("old form semantics")
	}
	for _, bad := range []string{`[{"permission":"maybe","action":"all","topic":"x"}]`, `[{"permission":"allow","action":"read","topic":"x"}]`,
		`[{"permission":"allow","action":"all"}]`, `[{"permission":"allow","action":"all","topic":"x","qos":[3]}]`, `"string"`, `{"pub":"x"}`} {
		if _, err := ParseACL(decodeClaim(t, bad)); err == nil {
			t.Errorf("ParseACL(%s) accepted", bad)
		}
	}
}

func TestFilterCovers(t *testing.T) {
	tests := []struct {
		filter, sub string
		want        bool
	}{
		{"a/#", "a", true}, {"a/#", "a/b/c", true}, {"a/+", "a/b", true}, {"a/+", "a/b/c", false},
		{"#", "$SYS/x", false}, {"+/x", "$SYS/x", false}, {"$SYS/#", "$SYS/x", true},
		{"a/+", "a/#", false}, {"a/#", "a/+", true}, {"a/b", "a/b", true}, {"a/b", "a/c", false},
	}
	for _, tc := range tests {
		if got := filterCovers(tc.filter, tc.sub); got != tc.want {
			t.Errorf("filterCovers(%q, %q) = %v", tc.filter, tc.sub, got)
		}
	}
}
