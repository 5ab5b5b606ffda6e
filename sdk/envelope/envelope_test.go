package envelope

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestRoundTrip(t *testing.T) {
	for _, alg := range []Algorithm{AES256GCM, ChaCha20Poly1305} {
		for _, size := range []int{0, 1, 255, 64 << 10} {
			t.Run(alg.String(), func(t *testing.T) {
				plain := bytes.Repeat([]byte("x"), size)
				env, err := Seal(alg, "k1", testKey(7), "a/b", plain)
				if err != nil {
					t.Fatal(err)
				}
				if len(env) != size+5+2+NonceSize+TagSize {
					t.Fatalf("envelope of %d bytes is %d long", size, len(env))
				}
				if size > 16 && bytes.Contains(env, plain[:16]) {
					t.Fatal("plaintext visible in envelope")
				}
				h, err := Parse(env)
				if err != nil || h.KeyID != "k1" || h.Algorithm != alg {
					t.Fatalf("Parse = %+v, %v", h, err)
				}
				got, err := Open(testKey(7), "a/b", env)
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("Open = %d bytes, %v", len(got), err)
				}
			})
		}
	}
}

func TestRefusals(t *testing.T) {
	env, err := Seal(AES256GCM, "k1", testKey(7), "a/b", []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(env)) }
	tests := []struct {
		name  string
		key   []byte
		topic string
		env   []byte
		want  error
	}{
		{"wrong topic (AAD)", testKey(7), "a/c", env, ErrAuth},
		{"wrong key", testKey(8), "a/b", env, ErrAuth},
		{"flipped ciphertext", testKey(7), "a/b", mut(func(b []byte) []byte { b[len(b)-20] ^= 1; return b }), ErrAuth},
		{"flipped tag", testKey(7), "a/b", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrAuth},
		{"flipped nonce", testKey(7), "a/b", mut(func(b []byte) []byte { b[8] ^= 1; return b }), ErrAuth},
		{"rewritten key id", testKey(7), "a/b", mut(func(b []byte) []byte { b[6] = '2'; return b }), ErrAuth},
		{"algorithm swapped", testKey(7), "a/b", mut(func(b []byte) []byte { b[3] = 2; return b }), ErrAuth},
		{"unknown version", testKey(7), "a/b", mut(func(b []byte) []byte { b[2] = 2; return b }), ErrVersion},
		{"unknown algorithm", testKey(7), "a/b", mut(func(b []byte) []byte { b[3] = 9; return b }), ErrAlgorithm},
		{"truncated header", testKey(7), "a/b", env[:10], ErrTruncated},
		{"truncated tag", testKey(7), "a/b", env[:len(env)-1], ErrAuth},
		{"shorter than a tag", testKey(7), "a/b", env[:len(env)-6], ErrTruncated},
		{"no magic", testKey(7), "a/b", []byte("hello world, this is plain"), ErrNotEnvelope},
		{"empty", testKey(7), "a/b", nil, ErrNotEnvelope},
		{"short key", testKey(7)[:16], "a/b", env, ErrKeySize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.key, tc.topic, tc.env)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
		})
	}
}

// Every single-byte change anywhere in an envelope must be detected.
func TestEveryByteAuthenticated(t *testing.T) {
	env, err := Seal(ChaCha20Poly1305, "key-2026", testKey(3), "t", []byte("payload bytes"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range env {
		b := bytes.Clone(env)
		b[i] ^= 0x40
		if _, err := Open(testKey(3), "t", b); err == nil {
			t.Fatalf("byte %d changed and Open still succeeded", i)
		}
	}
}

func FuzzOpen(f *testing.F) {
	env, _ := Seal(AES256GCM, "k1", testKey(1), "t", []byte("seed"))
	f.Add(env, "t")
	f.Add([]byte{0x6d, 0x45, 1, 1, 1, 'k'}, "t")
	f.Add([]byte{}, "")
	f.Fuzz(func(t *testing.T, b []byte, topic string) {
		h, err := Parse(b)
		if err == nil && (h.Len > len(b) || h.KeyID == "") {
			t.Fatalf("Parse accepted a bad header: %+v", h)
		}
		if got, err := Open(testKey(1), topic, b); err == nil && topic != "t" {
			t.Fatalf("opened %q for another topic", got)
		}
	})
}

func BenchmarkSealer(b *testing.B) {
	for _, alg := range []Algorithm{AES256GCM, ChaCha20Poly1305} {
		for _, size := range []int{256, 64 << 10} {
			s, _ := NewSealer(alg, "k1", testKey(1))
			plain := make([]byte, size)
			buf := make([]byte, 0, size+64)
			b.Run(alg.String()+"/"+sizeName(size), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					env, err := s.Seal(buf[:0], "sensors/1/temp", plain)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := s.Open(plain[:0], "sensors/1/temp", env); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func sizeName(n int) string {
	if n >= 1024 {
		return string(rune('0'+n>>10/10%10)) + string(rune('0'+n>>10%10)) + "KiB"
	}
	return "256B"
}

// TestVectors checks the published test vectors (SPEC.md), which a Python
// implementation written from the spec reproduces.
func TestVectors(t *testing.T) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	nonce := make([]byte, NonceSize)
	for i := range nonce {
		nonce[i] = 0xa0 + byte(i)
	}
	spec, err := os.ReadFile("SPEC.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg  Algorithm
		want string
	}{
		{AES256GCM, "6d450101026b31a0a1a2a3a4a5a6a7a8a9aaabd4295218597d94047ed7c6b53b360299f83a80b4"},
		{ChaCha20Poly1305, "6d450102026b31a0a1a2a3a4a5a6a7a8a9aaab3e9a566a43ea64dee9f72ed3a91e0a431a4bf312"},
	} {
		s, err := NewSealer(tc.alg, "k1", key)
		if err != nil {
			t.Fatal(err)
		}
		env, err := s.SealWithNonce(nil, "sensors/1/temp", []byte("21.5"), bytes.NewReader(nonce))
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(env); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.alg, got, tc.want)
		}
		if !bytes.Contains(spec, []byte(tc.want)) {
			t.Errorf("%s: SPEC.md does not list the vector", tc.alg)
		}
		if got, err := Open(key, "sensors/1/temp", env); err != nil || string(got) != "21.5" {
			t.Errorf("%s: Open = %q, %v", tc.alg, got, err)
		}
	}
}
