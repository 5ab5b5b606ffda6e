package main

import (
	"strings"
	"testing"

	moat "github.com/moat-mqtt/moat/sdk/go"
)

// The wasm build of this plugin is tested end to end in
// sdk/go/internal/sdktest; these tests call the handlers natively.

func TestMatch(t *testing.T) {
	tests := []struct {
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
		{"a/+", "a/", false, "", "", true}, // an empty level is a level
		{"a/+", "a", false, "", "", false},
		{"a/+", "a/b/c", false, "", "", false},
		{"a/#", "a", false, "", "", true},
		{"a/#", "a/b/c", false, "", "", true},
		{"a/#", "ab", false, "", "", false},
		{"#", "a/b", false, "", "", true},
		{"#", "$SYS/x", false, "", "", false},
		{"+/x", "$SYS/x", false, "", "", false},
		{"$SYS/#", "$SYS/x", false, "", "", true},
		{"/a", "/a", false, "", "", true},
		{"+/a", "/a", false, "", "", true},
		// Subscription filters must be covered by the rule.
		{"a/#", "a/+/b", true, "", "", true},
		{"a/#", "a/#", true, "", "", true},
		{"#", "#", true, "", "", true},
		{"a/+", "a/+", true, "", "", true},
		{"a/+", "a/#", true, "", "", false},
		{"a/b", "a/+", true, "", "", false},
		{"a/+/c", "a/+/#", true, "", "", false},
		// Substitution.
		{"u/%u/#", "u/alice/x", false, "alice", "c", true},
		{"u/%u/#", "u/bob/x", false, "alice", "c", false},
		{"u/%u", "u/a/b", false, "a/b", "c", false},
		{"u/%u", "u/+", true, "+", "c", false},
		{"u/%u", "u/", false, "", "c", false},
		{"c/%c", "c/dev-1", false, "u", "dev-1", true},
		{"c/%c", "c/#", true, "u", "#", false},
	}
	for _, tc := range tests {
		filter, err := parseFilter(tc.filter)
		if err != nil {
			t.Fatalf("parseFilter(%q): %v", tc.filter, err)
		}
		if got := match(filter, tc.topic, tc.isFilter, tc.user, tc.client); got != tc.want {
			t.Errorf("match(%q, %q, filter=%v, user %q, client %q) = %v, want %v",
				tc.filter, tc.topic, tc.isFilter, tc.user, tc.client, got, tc.want)
		}
	}
}

func TestParseFilter(t *testing.T) {
	for _, f := range []string{"", "a/#/b", "a#", "a/b+", "x/%ux", "pre%c/y"} {
		if _, err := parseFilter(f); err == nil {
			t.Errorf("parseFilter(%q) succeeded", f)
		}
	}
}

const exampleConfig = `{
	"users": [{"username": "demo", "password": "demo", "attributes": {"tenant": "acme", "b": "2"}}],
	"rules": [{"username": "demo", "action": "all", "topic": "demo/#"}, {"action": "subscribe", "topic": "public/+"}]
}`

func TestConfigure(t *testing.T) {
	tests := []struct {
		name, cfg string
		wantErr   []string
	}{
		{"example", exampleConfig, nil},
		{"empty", `{}`, nil},
		{"unknown key", `{"rule": []}`, []string{`unknown field "rule"`}},
		{"not json", `users = 1`, []string{"demo: config:"}},
		{"every problem at once", `{"users":[{"username":""},{"username":"a"},{"username":"a"}],
			"rules":[{"action":"write","topic":"a"},{"action":"all","topic":"#/a"}]}`, []string{
			"users[0].username: empty",
			`users[2].username: "a" listed twice`,
			`rules[0].action: "write"`,
			`rules[1].topic: "#/a": '#' must be the last level`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := (&demo{}).configure([]byte(tc.cfg))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("configure: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("configure succeeded")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestHandlers(t *testing.T) {
	d := &demo{}
	if err := d.configure([]byte(exampleConfig)); err != nil {
		t.Fatal(err)
	}
	res := d.authenticate(&moat.AuthnRequest{Client: moat.Client{Username: "demo"}, Password: []byte("demo")})
	if res.Verdict() != moat.VerdictAllow || len(res.Attributes) != 2 || res.Attributes[0].Key != "b" {
		t.Errorf("authenticate = %+v; want allow with sorted attributes", res)
	}
	res = d.authenticate(&moat.AuthnRequest{Client: moat.Client{Username: "demo"}, Password: []byte("wrong")})
	if res.Verdict() != moat.VerdictDeny || res.Reason() != moat.ReasonBadUsernameOrPassword {
		t.Errorf("wrong password: %+v", res)
	}
	az := d.authorize(&moat.AuthzRequest{Client: moat.Client{Username: "demo"}, Action: moat.ActionPublish, Topic: "demo/x"})
	if az.Verdict() != moat.VerdictAllow {
		t.Errorf("authorize demo/x: %v", az.Verdict())
	}
	az = d.authorize(&moat.AuthzRequest{Client: moat.Client{Username: "demo"}, Action: 9, Topic: "demo/x"})
	if az.Verdict() != moat.VerdictIgnore {
		t.Errorf("authorize with an unknown action: %v", az.Verdict())
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("a/+/#", "a/b/c", false, "u", "c")
	f.Add("%u/%c", "u/c", true, "u", "c")
	f.Add("#", "$SYS", false, "", "")
	f.Fuzz(func(t *testing.T, rule, topic string, isFilter bool, user, client string) {
		filter, err := parseFilter(rule)
		if err != nil {
			return
		}
		got := match(filter, topic, isFilter, user, client)
		// A rule without wildcards or substitutions matches only itself.
		if !strings.ContainsAny(rule, "+#%") && got != (rule == topic) {
			t.Fatalf("match(%q, %q) = %v", rule, topic, got)
		}
		// "#" matches every topic but those starting with '$'.
		if rule == "#" && got == strings.HasPrefix(topic, "$") {
			t.Fatalf("match(#, %q) = %v", topic, got)
		}
	})
}

func BenchmarkAuthorizeNative(b *testing.B) {
	d := &demo{}
	if err := d.configure([]byte(exampleConfig)); err != nil {
		b.Fatal(err)
	}
	req := &moat.AuthzRequest{Client: moat.Client{Username: "demo"}, Action: moat.ActionPublish, Topic: "demo/sensors/0042/temperature"}
	b.ReportAllocs()
	for b.Loop() {
		d.authorize(req)
	}
}
