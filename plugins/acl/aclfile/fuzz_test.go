package aclfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that it fails only with
// *SyntaxError, and that a parsed ACL answers without panicking and as the
// naive Mosquitto-order reference does, for queries built from the file's
// own topics. Seeds: testdata/*.acl; crashers go to testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.acl")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add(mosquittoFile)
	f.Fuzz(func(t *testing.T, text string) {
		a, err := Parse(strings.NewReader(text), "fuzz.acl")
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.File != "fuzz.acl" || se.Line < 1 {
				t.Fatalf("error is not a located *SyntaxError: %v", err)
			}
			return
		}
		topics := []string{"a", "$SYS/x", "a/b/c", ""}
		for i, r := range a.rules {
			if i == 16 {
				break
			}
			topics = append(topics, r.filter, asName(r.filter))
		}
		idents := []Query{
			anon("c1"),
			user("u1", "c1"),
			user("", "c+"),
			{ClientID: "a/b", Username: "x", Attributes: pairs("tenant", "t1")},
		}
		for _, r := range a.rules {
			if !r.anon && r.user != "" {
				idents = append(idents, user(r.user, "c1"))
				break
			}
		}
		for _, id := range idents {
			for _, topic := range topics {
				for _, act := range []Action{Publish, Subscribe, Deliver} {
					q := id
					q.Action, q.Topic, q.QoS, q.Retain = act, topic, uint8(len(topic)%3), len(topic)%2 == 0
					got, why := a.Explain(q)
					if why == "" {
						t.Fatalf("Explain(%+v): empty reason", q)
					}
					if want := naiveCheck(a, q); got != want || a.Check(q) != got {
						t.Fatalf("Check(%+v) = %v, reference %v (%s)", q, got, want, why)
					}
				}
			}
		}
	})
}

// asName turns a filter into a topic name it matches (for literal levels).
func asName(f string) string {
	r := strings.NewReplacer("+", "x", "#", "y", "%c", "c1", "%u", "u1", "%{tenant}", "t1")
	return r.Replace(f)
}
