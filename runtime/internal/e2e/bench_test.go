package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// BenchmarkPasswdAuthn measures one authn decision of the passwd plugin's
// wasm module (runtime/wasm Module.Authenticate, no decision cache: every
// call checks the password) against passwdfile.File.Verify of the same
// line in native Go, per hash format at the parameters files hold:
// Mosquitto's $7$ default (101 iterations) and moat's (210,000), moat
// passwd's argon2id (m=19 MiB, t=2) and bcrypt (cost 10). The two run
// alternately, so that a machine whose load changes during the run
// affects both alike; ns/op and allocs are the wasm decision's, and the
// metrics native-ns/op and wasm/native give the native check and the
// ratio. The module hashes through the broker's host functions
// (sdk/go/hostcrypto), so the ratio is the sandbox's overhead next to the
// hash: the issue asks that a $7$ check stay "at the cost of its hash".
func BenchmarkPasswdAuthn(b *testing.B) {
	ctx := context.Background()
	path := testutil.Plugin(b, "passwd")
	bin, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(ctx)

	pw := []byte("correct horse battery staple")
	for _, c := range []struct {
		name, format string
		iter         int
	}{
		{"sha512-pbkdf2-101", passwdfile.FormatSHA512PBKDF2, 101},
		{"sha512-pbkdf2-210000", passwdfile.FormatSHA512PBKDF2, 0},
		{"argon2id", passwdfile.FormatArgon2id, 0},
		{"bcrypt", passwdfile.FormatBcrypt, 0},
	} {
		h, err := passwdfile.HashWith(pw, c.format, passwdfile.HashOptions{Iterations: c.iter})
		if err != nil {
			b.Fatal(err)
		}
		line := "user:" + h + "\n"
		f, err := passwdfile.Parse(strings.NewReader(line), "bench")
		if err != nil {
			b.Fatal(err)
		}
		file := filepath.Join(b.TempDir(), "passwd")
		if err := os.WriteFile(file, []byte(line), 0o600); err != nil {
			b.Fatal(err)
		}
		m, err := e.Load(ctx, wasm.ModuleConfig{
			Name: "passwd", Path: path, Binary: bin, Decisions: []string{"authn"},
			Timeout: time.Minute, Instances: 1, Files: map[string]string{"passwords": file},
		})
		if err != nil {
			b.Fatal(err)
		}
		req := &policy.AuthnRequest{
			Client:   &policy.Client{ClientID: "bench", Username: "user", ProtocolVersion: 4},
			Password: pw,
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var native time.Duration
			n := 0
			for b.Loop() {
				res, err := m.Authenticate(ctx, req)
				if err != nil || res.Verdict != policy.Allow {
					b.Fatalf("wasm: %+v, %v", res, err)
				}
				b.StopTimer()
				t0 := time.Now()
				ok := f.Verify("user", pw)
				native += time.Since(t0)
				if !ok {
					b.Fatal("native: refused")
				}
				n++
				b.StartTimer()
			}
			wasmNs := float64(b.Elapsed().Nanoseconds()) / float64(n)
			nativeNs := float64(native.Nanoseconds()) / float64(n)
			b.ReportMetric(nativeNs, "native-ns/op")
			b.ReportMetric(wasmNs/nativeNs, "wasm/native")
		})
		if err := m.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
