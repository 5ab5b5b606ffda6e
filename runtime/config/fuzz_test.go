package config

import (
	"bytes"
	"errors"
	"net/url"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse checks that Parse never panics and keeps its contract: a
// config and no error, or no config and problems that are all *Error.
func FuzzParse(f *testing.F) {
	for _, file := range fixtureFiles(f) {
		f.Add(readFile(f, file))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c != nil, err)
		}
		if err != nil {
			for _, p := range Problems(err) {
				var ce *Error
				if !errors.As(p, &ce) {
					t.Fatalf("problem %q is a %T, want *Error", p, p)
				}
				if ce.Line < 0 || ce.Line > bytes.Count(data, []byte("\n"))+1 {
					t.Fatalf("problem %q has line %d outside the document", p, ce.Line)
				}
			}
			return
		}
		if len(c.Listeners) == 0 {
			t.Fatal("a valid config without listeners")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate after a successful Parse: %v", err)
		}
	})
}

// FuzzScanLines checks that the key scanner never panics or hangs on any
// input, and that on any document the library accepts it sees the same
// keys the same number of times, with lines inside the document.
func FuzzScanLines(f *testing.F) {
	for _, file := range fixtureFiles(f) {
		f.Add(readFile(f, file))
	}
	f.Add([]byte("a = \"\"\"\n\\\n  x\"\"\"\nb = 1"))
	f.Add([]byte("x = [ { a = 1 }, [ { b = 2 } ] ]\n[[t.u]]\n[t.u.v]\n[[t.u]]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		kl := scanLines(data)
		last := bytes.Count(data, []byte("\n")) + 1
		for path, line := range kl.line {
			if line < 1 || line > last {
				t.Fatalf("%s at line %d, document has %d", path, line, last)
			}
		}
		md, err := toml.Decode(string(data), new(map[string]any))
		if err != nil {
			return
		}
		count := map[string]int{}
		for _, k := range md.Keys() {
			count[k.String()]++
		}
		for k, n := range count {
			if got := len(kl.seen[k]); got != n {
				t.Fatalf("key %s: scanner saw %d, library %d", k, got, n)
			}
		}
	})
}

// FuzzCheckOrigin checks that allowed_origins validation never panics and
// accepts only "*" or an http(s) origin with a host and nothing after it.
func FuzzCheckOrigin(f *testing.F) {
	for _, s := range []string{"*", "https://app.example.com", "http://localhost:8080", "https://x/",
		"app.example.com", "https://a/b", "ftp://x", "https://", "https://u@h", "http://[::1]:80", "https://h?q#f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, o string) {
		if checkOrigin(o) != nil || o == "*" {
			return
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(u.Path) > 1 {
			t.Fatalf("accepted %q", o)
		}
	})
}
