package mosquittoconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := "# comment\n\n  # indented comment\nlistener 8883 0.0.0.0\t\n" +
		"password_file /etc/mosquitto/pass words\ntopic # both 0\r\nallow_anonymous\n"
	got, err := Parse(strings.NewReader(in), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := []Directive{
		{Name: "listener", Args: []string{"8883", "0.0.0.0"}, Value: "8883 0.0.0.0", File: "m.conf", Line: 4},
		{Name: "password_file", Args: []string{"/etc/mosquitto/pass", "words"}, Value: "/etc/mosquitto/pass words", File: "m.conf", Line: 5},
		// No trailing comments in Mosquitto: the '#' is the topic.
		{Name: "topic", Args: []string{"#", "both", "0"}, Value: "# both 0", File: "m.conf", Line: 6},
		{Name: "allow_anonymous", Args: []string{}, Value: "", File: "m.conf", Line: 7},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if _, err := Parse(strings.NewReader("a\x00b\n"), "n.conf"); err == nil || !strings.Contains(err.Error(), "n.conf:1") {
		t.Errorf("NUL byte: %v", err)
	}
}

func TestLoadIncludeDir(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "conf.d")
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	main := filepath.Join(dir, "mosquitto.conf")
	write(main, "persistence true\ninclude_dir "+inc+"\nlog_dest stdout\n")
	write(filepath.Join(inc, "b.conf"), "listener 2\n")
	write(filepath.Join(inc, "a.conf"), "listener 1\n")
	write(filepath.Join(inc, "c.txt"), "listener 3\n")
	got, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range got {
		names = append(names, d.Name+" "+d.Value+" @"+filepath.Base(d.File))
	}
	want := []string{"persistence true @mosquitto.conf", "listener 1 @a.conf", "listener 2 @b.conf", "log_dest stdout @mosquitto.conf"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("got %q, want %q", names, want)
	}
	if got[1].Pos() != filepath.Join(inc, "a.conf")+":1" {
		t.Errorf("position %q, want the real path", got[1].Pos())
	}

	write(main, "include_dir "+filepath.Join(dir, "missing")+"\n")
	if _, err := Load(main); err == nil || !strings.Contains(err.Error(), main+":1: include_dir") {
		t.Errorf("missing include_dir: %v", err)
	}
	// A directory including itself ends with an error, not a stack overflow.
	write(filepath.Join(inc, "a.conf"), "include_dir "+inc+"\n")
	write(main, "include_dir "+inc+"\n")
	if _, err := Load(main); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("include loop: %v", err)
	}
}

// FuzzParse: any input either fails with a positioned error or yields
// directives with a name free of blanks, whose Args are Value's words.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"listener 1883\n", "# c\nport 1883\r\n", "topic # both 0\n", "\t\t\n", "a\x00", "password_file  /a b  \n",
	} {
		f.Add(s)
	}
	if seeds, err := filepath.Glob("../../../cmd/moat/testdata/mosquitto/*/*.conf"); err == nil {
		for _, p := range seeds {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(string(b))
			}
		}
	}
	f.Fuzz(func(t *testing.T, in string) {
		ds, err := Parse(strings.NewReader(in), "f.conf")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "mosquittoconf: f.conf:") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		for _, d := range ds {
			if d.Name == "" || strings.ContainsAny(d.Name, " \t") || d.Name[0] == '#' || strings.ContainsRune(d.Value, '\n') {
				t.Fatalf("bad name %q", d.Name)
			}
			if !reflect.DeepEqual(d.Args, strings.FieldsFunc(d.Value, isBlank)) && !(len(d.Args) == 0 && d.Value == "") {
				t.Fatalf("args %q do not match value %q", d.Args, d.Value)
			}
		}
	})
}
