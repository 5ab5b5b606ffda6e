package config

import (
	"reflect"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestScanLines(t *testing.T) {
	doc := `# comment [not a table]
top = "a # not a comment"   # comment
s = """
[not.a.table]
x = 1
"""
lit = '''
'''''
dotted.key = 1
"quoted key" = 'x'
"esc\u0061ped" = 1

[[plugin]]
name = "a"
[plugin.config]
users = [
  { username = "demo", password = "demo" },
  {
    username = "two" },
]
[[plugin.config.rule]]
topic = "a"

[[plugin]]
name = "b"
files = { passwd = "x", "acl file" = "y" }
when = 1979-05-27 07:32:00
after = true
[ mqtt . "sub" ]
k = [1, # comment ]
  2]
j = 3
`
	if _, err := toml.Decode(doc, new(map[string]any)); err != nil {
		t.Fatalf("test document is not TOML: %v", err)
	}
	kl := scanLines([]byte(doc))
	want := map[string]int{
		"top":                                2,
		"s":                                  3,
		"lit":                                7,
		"dotted.key":                         9,
		"dotted":                             9,
		`"quoted key"`:                       10,
		"escaped":                            11,
		"plugin[0]":                          13,
		"plugin[0].name":                     14,
		"plugin[0].config":                   15,
		"plugin[0].config.users":             16,
		"plugin[0].config.users[0]":          17,
		"plugin[0].config.users[0].username": 17,
		"plugin[0].config.users[1]":          18,
		"plugin[0].config.users[1].username": 19,
		"plugin[0].config.rule[0]":           21,
		"plugin[0].config.rule[0].topic":     22,
		"plugin[1]":                          24,
		"plugin[1].name":                     25,
		"plugin[1].files.passwd":             26,
		`plugin[1].files."acl file"`:         26,
		"plugin[1].when":                     27,
		"plugin[1].after":                    28,
		"mqtt.sub":                           29, // quoted only when needed
		"mqtt":                               29,
	}
	for path, line := range want {
		if got := kl.line[path]; got != line {
			t.Errorf("line of %s = %d, want %d", path, got, line)
		}
	}
	// "sub" needs no quotes: it is recorded bare.
	if got := kl.line["mqtt.sub.j"]; got != 32 {
		t.Errorf("line of mqtt.sub.j = %d, want 32", got)
	}
	if got := kl.line["mqtt.sub.k"]; got != 30 {
		t.Errorf("line of mqtt.sub.k = %d, want 30", got)
	}

	// Keys as the library names them map to indexed paths in order.
	if got, want := kl.seen["plugin.name"], []string{"plugin[0].name", "plugin[1].name"}; !reflect.DeepEqual(got, want) {
		t.Errorf("seen[plugin.name] = %v, want %v", got, want)
	}
	if got := kl.indexed(toml.Key{"plugin", "name"}, 1); got != "plugin[1].name" {
		t.Errorf("indexed(plugin.name, 1) = %q", got)
	}
	if got := kl.indexed(toml.Key{"plugin", "name"}, 2); got != "" {
		t.Errorf("indexed(plugin.name, 2) = %q, want \"\"", got)
	}
	if got := kl.under("plugin[1]", "plugin.name"); got != "plugin[1].name" {
		t.Errorf("under(plugin[1], plugin.name) = %q", got)
	}
	// lineOf falls back to the nearest ancestor.
	if got := kl.lineOf("plugin[1].timeout"); got != 24 {
		t.Errorf("lineOf(plugin[1].timeout) = %d, want 24", got)
	}
	if got := kl.lineOf("log.level"); got != 0 {
		t.Errorf("lineOf(log.level) = %d, want 0", got)
	}
	var nilLines *keyLines
	if nilLines.lineOf("x") != 0 || nilLines.indexed(toml.Key{"x"}, 0) != "" || nilLines.under("", "x") != "" {
		t.Error("a nil keyLines must know nothing")
	}
}

// TestScanLinesMatchesLibrary checks, on every fixture, that the scanner
// sees the same keys in the same order as the library.
func TestScanLinesMatchesLibrary(t *testing.T) {
	for _, f := range fixtureFiles(t) {
		data := readFile(t, f)
		md, err := toml.Decode(string(data), new(map[string]any))
		if err != nil {
			continue
		}
		kl := scanLines(data)
		count := map[string]int{}
		for _, k := range md.Keys() {
			if kl.indexed(k, count[k.String()]) == "" {
				t.Errorf("%s: scanner missed occurrence %d of %s", f, count[k.String()], k)
			}
			count[k.String()]++
		}
		for k, paths := range kl.seen {
			if len(paths) != count[k] {
				t.Errorf("%s: scanner saw %s %d times, library %d", f, k, len(paths), count[k])
			}
		}
	}
}

func TestParentPath(t *testing.T) {
	tests := map[string]string{
		"a":               "",
		"a.b":             "a",
		"a[1]":            "a",
		"a[1].b":          "a[1]",
		`a."x.y"`:         "a",
		`a."x[1]".b`:      `a."x[1]"`,
		`a."q\"uote.d".b`: `a."q\"uote.d"`,
		"":                "",
	}
	for in, want := range tests {
		if got := parentPath(in); got != want {
			t.Errorf("parentPath(%s) = %q, want %q", in, got, want)
		}
	}
}
