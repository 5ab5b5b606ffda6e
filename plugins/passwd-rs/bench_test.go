package passwdrs

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/moat-mqtt/moat/runtime/policy"
	"golang.org/x/crypto/argon2"
)

// BenchmarkArgon2Guest times one authn decision on an argon2id line of
// 320 MiB-passes (m=64 MiB, t=5), which the host refuses and each module
// computes inside wasm: the Rust module's Argon2id against the Go
// module's golang.org/x/crypto (bin/plugins/passwd-go.wasm), in the same
// run. A plugin's timeout must cover this.
//
//	go test -run='^$' -bench=Argon2Guest -benchtime=3x ./plugins/passwd-rs/
func BenchmarkArgon2Guest(b *testing.B) {
	goMod := filepath.Join(repoRoot(), "bin", "plugins", "passwd-go.wasm")
	if _, err := os.Stat(goMod); err != nil {
		b.Skipf("no %s: run make build", goMod)
	}
	pw, salt := []byte("correct horse"), []byte("0123456789abcdef")
	raw := base64.RawStdEncoding
	line := fmt.Sprintf("u:$argon2id$v=19$m=65536,t=5,p=1$%s$%s\n", raw.EncodeToString(salt),
		raw.EncodeToString(argon2.IDKey(pw, salt, 5, 65536, 1, 32)))
	// Each check runs on a freshly loaded module: the Go module's second
	// 64 MiB check traps out of memory at the default memory_limit (its
	// garbage is not collected in time), where the Rust module reuses one
	// work area.
	e := engine(b)
	req := &policy.AuthnRequest{Client: &policy.Client{ClientID: "c", Username: "u"}, Password: pw}
	for _, mod := range []struct{ lang, path string }{{"go", goMod}, {"rust", rustModule(b)}} {
		b.Run(mod.lang, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				m, err := load(b, e, mod.path, line, "")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				res, err := m.Authenticate(context.Background(), req)
				b.StopTimer()
				m.Close()
				b.StartTimer()
				if err != nil || res.Verdict != policy.Allow {
					b.Fatal(res, err)
				}
			}
		})
	}
}
