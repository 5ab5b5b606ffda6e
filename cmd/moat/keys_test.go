package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	r := moat(t, dir, "keygen", "k1.key")
	if r.code != 0 || !strings.Contains(r.stdout, "k1.key") {
		t.Fatalf("keygen = %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	st, err := os.Stat(filepath.Join(dir, "k1.key"))
	if err != nil || st.Mode().Perm() != 0o600 || st.Size() < 44 {
		t.Fatalf("key file: %v %v", st, err)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "k1.key"))
	if strings.Contains(r.stdout+r.stderr, strings.TrimSpace(string(key))) {
		t.Error("keygen printed the key")
	}
	if r := moat(t, dir, "keygen", "k1.key"); r.code != exitFail || !strings.Contains(r.stderr, "exists") {
		t.Errorf("keygen over an existing file = %d, %q", r.code, r.stderr)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "k1.key")); string(again) != string(key) {
		t.Error("keygen changed an existing key file")
	}
	for _, args := range [][]string{{"keygen"}, {"keygen", "a", "b"}, {"keys"}, {"keys", "spin"}} {
		if r := moat(t, dir, args...); r.code != exitUsage {
			t.Errorf("moat %v = %d, want %d", args, r.code, exitUsage)
		}
	}
}

func TestKeysRewrap(t *testing.T) {
	dir := t.TempDir()
	if r := moat(t, dir, "keygen", "k1.key"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	conf := `
[[listener]]
type = "tcp"
address = "127.0.0.1:0"
[persistence]
type = "bolt"
path = "state.db"
[[key]]
id = "k1"
file = "k1.key"
[keys]
at_rest = "k1"
`
	if err := os.WriteFile(filepath.Join(dir, "moat.toml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	// No store yet: refused, and none is created.
	if r := moat(t, dir, "keys", "rewrap", "-c", "moat.toml"); r.code != exitFail || !strings.Contains(r.stderr, "state.db") {
		t.Errorf("rewrap without a store = %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err == nil {
		t.Error("rewrap created a store")
	}
	// A key file others can read is refused, naming key and file.
	if err := os.Chmod(filepath.Join(dir, "k1.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := moat(t, dir, "keys", "rewrap", "-c", "moat.toml"); r.code != exitFail ||
		!strings.Contains(r.stderr, "key[0].file") || !strings.Contains(r.stderr, "k1.key") {
		t.Errorf("rewrap with a loose key file = %d, %q", r.code, r.stderr)
	}
}
