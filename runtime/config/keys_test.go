package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPayloadKeys decodes [[key]], [keys] and [payload] and reports each
// problem with its key path.
func TestPayloadKeys(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, "keys", name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("raw.key", bytes.Repeat([]byte{7}, 32), 0o600)
	write("b64.key", []byte("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n"), 0o400)
	write("loose.key", bytes.Repeat([]byte{7}, 32), 0o644)
	write("short.key", bytes.Repeat([]byte{7}, 16), 0o600)
	const listener = "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:0\"\n"

	t.Run("good", func(t *testing.T) {
		c, err := Parse([]byte(listener+`
[[key]]
id = "raw"
file = "keys/raw.key"
[[key]]
id = "b64"
file = "keys/b64.key"
algorithm = "chacha20-poly1305"
[keys]
at_rest = "raw"
reencrypt = "b64"
[payload]
require_e2e_disconnect = true
`), filepath.Join(dir, "moat.toml"))
		if err != nil {
			t.Fatal(err)
		}
		p := c.Payload
		if len(p.Keys) != 2 || p.Keys[0].Algorithm != AlgorithmAES256GCM || p.Keys[1].Algorithm != AlgorithmChaCha20Poly1305 ||
			p.Keys[0].File != filepath.Join(dir, "keys", "raw.key") || p.Active.AtRest != "raw" || p.Active.Reencrypt != "b64" ||
			!p.RequireE2EDisconnect {
			t.Errorf("Payload = %+v", p)
		}
	})
	t.Run("none", func(t *testing.T) {
		c, err := Parse([]byte(listener), filepath.Join(dir, "moat.toml"))
		if err != nil || len(c.Payload.Keys) != 0 || c.Payload.RequireE2EDisconnect {
			t.Errorf("Payload = %+v, %v", c.Payload, err)
		}
	})

	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"file problems", `
[[key]]
id = "a"
file = "keys/loose.key"
[[key]]
id = "b"
file = "keys/short.key"
[[key]]
id = "c"
file = "keys/missing.key"
[[key]]
id = "d"
`, []string{
			"moat.toml:7: key[0].file: keys/loose.key: mode 0644 lets group or others access the key",
			"moat.toml:10: key[1].file: keys/short.key: 16 bytes",
			"moat.toml:13: key[2].file: stat keys/missing.key: no such file or directory",
			"moat.toml:14: key[3].file: required",
		}},
		{"entries", `
[[key]]
file = "keys/raw.key"
[[key]]
id = "x"
file = "keys/raw.key"
algorithm = "rot13"
[[key]]
id = "x"
file = "keys/raw.key"
[keys]
at_rest = "nope"
`, []string{
			"moat.toml:5: key[0].id: required",
			`moat.toml:10: key[1].algorithm: "rot13" is not one of "aes-256-gcm", "chacha20-poly1305"`,
			`moat.toml:12: key[2].id: "x" is already the id of key[1]`,
			`moat.toml:15: keys.at_rest: "nope": no [[key]] has this id`,
		}},
		{"unknown keys and types", `
[[key]]
id = "a"
file = "keys/raw.key"
colour = "blue"
[keys]
at-rest = "a"
[payload]
require_e2e_disconnect = "yes"
`, []string{
			// a decoding error stops before unknown keys are looked for
			"moat.toml:12: payload.require_e2e_disconnect: incompatible types",
		}},
		{"unknown keys", `
[[key]]
id = "a"
file = "keys/raw.key"
colour = "blue"
[keys]
at-rest = "a"
`, []string{
			"moat.toml:8: key[0].colour: unknown key",
			"moat.toml:10: keys.at-rest: unknown key",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(listener+tc.doc), filepath.Join(dir, "moat.toml"))
			got := Problems(err)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(got), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(strings.TrimPrefix(got[i].Error(), dir+string(filepath.Separator)), w) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], w)
				}
			}
			if strings.Contains(err.Error(), "\x07\x07") || strings.Contains(err.Error(), "BwcHBwcH") {
				t.Error("a problem shows key material")
			}
		})
	}
}
