package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/runtime/config"
)

// TestPasswordCostWarnings: a granted password file whose costliest line
// takes longer to check than the plugin's timeout is warned about, naming
// the real path, the user and the line's cost; within the timeout it is not.
func TestPasswordCostWarnings(t *testing.T) {
	dir := t.TempDir()
	cheap, err := passwdfile.HashWith([]byte("a"), passwdfile.FormatSHA512PBKDF2, passwdfile.HashOptions{Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	dear, err := passwdfile.HashWith([]byte("b"), passwdfile.FormatSHA512PBKDF2, passwdfile.HashOptions{Iterations: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pw, []byte("cheap:"+cheap+"\ndear:"+dear+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd.wasm"), []byte("\x00asm\x01\x00\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := func(timeout string) string {
		return listenerTOML + `
[[plugin]]
name = "passwd"
module = "passwd.wasm"
decisions = ["authn"]
timeout = "` + timeout + `"
[plugin.files]
passwords = "` + pw + `"
`
	}
	for _, tc := range []struct {
		timeout string
		warn    bool
	}{{"1ms", true}, {"60s", false}} {
		cfg, err := config.Parse([]byte(doc(tc.timeout)), filepath.Join(dir, "moat.toml"))
		if err != nil {
			t.Fatal(err)
		}
		got := passwordCostWarnings(cfg)
		if !tc.warn {
			if len(got) != 0 {
				t.Errorf("timeout %s: unexpected warnings %q", tc.timeout, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Fatalf("timeout %s: warnings %q, want one", tc.timeout, got)
		}
		for _, want := range []string{"moat.toml:", "plugin[0].files.passwords", pw, `"dear"`, "100000 iterations", "timeout 1ms"} {
			if !strings.Contains(got[0], want) {
				t.Errorf("warning %q lacks %q", got[0], want)
			}
		}
	}
}
