package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckWritable: check and serve refuse a store whose directory the
// user cannot write (here: does not exist), before any listener opens.
func TestCheckWritable(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, demoTOML+"\n[persistence]\ntype = \"bolt\"\npath = \"gone/moat.db\"\n")
	for _, cmd := range []string{"check", "serve"} {
		r := moat(t, dir, cmd, "-c", "moat.toml")
		want := "moat.toml: persistence.path: " + filepath.Join(dir, "gone", "moat.db") + " is not writable by "
		if r.code != 1 || !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, "no such file or directory") ||
			strings.Contains(r.stderr, "listening") {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant 1 and %q", cmd, r.code, r.stderr, want)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "gone"), 0o755); err != nil {
		t.Fatal(err)
	}
	if r := moat(t, dir, "check", "-c", "moat.toml"); r.code != 0 {
		t.Errorf("check with the directory made: exit %d\n%s", r.code, r.stderr)
	}
}
