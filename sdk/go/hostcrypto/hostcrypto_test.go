package hostcrypto

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"testing"
)

// These tests run natively (the fallback); the same calls go through the
// broker's host functions in runtime/internal/e2e, where the passwd
// plugin's module uses this package.

func TestPBKDF2(t *testing.T) {
	tests := []struct {
		name       string
		h          crypto.Hash
		pw, salt   string
		iter, n    int
		wantPrefix string
	}{
		// RFC 7914 §11.
		{"rfc7914 sha256", crypto.SHA256, "passwd", "salt", 1, 64, "55ac046e56e3089fec1691c22544b605"},
		{"sha512", crypto.SHA512, "password", "salt", 2, 64, "e1d9c16aa681708a45f5c7c4e215ceb6"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PBKDF2(tc.h, []byte(tc.pw), []byte(tc.salt), tc.iter, tc.n)
			if err != nil || len(got) != tc.n || hex.EncodeToString(got[:16]) != tc.wantPrefix {
				t.Fatalf("got %x, %v; want %s...", got, err, tc.wantPrefix)
			}
		})
	}
	invalid := []struct {
		name     string
		h        crypto.Hash
		pw, salt int
		iter, n  int
	}{
		{"sha1", crypto.SHA1, 1, 16, 1, 20},
		{"zero iterations", crypto.SHA256, 1, 16, 0, 32},
		{"iterations above the cap", crypto.SHA256, 1, 16, MaxPBKDF2Iterations + 1, 32},
		{"empty salt", crypto.SHA256, 1, 0, 1, 32},
		{"salt above the cap", crypto.SHA256, 1, MaxSalt + 1, 1, 32},
		{"no output", crypto.SHA256, 1, 16, 1, 0},
		{"output above the cap", crypto.SHA256, 1, 16, 1, MaxOutput + 1},
		{"password above the cap", crypto.SHA256, MaxPassword + 1, 16, 1, 32},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := PBKDF2(tc.h, make([]byte, tc.pw), make([]byte, tc.salt), tc.iter, tc.n); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
		})
	}
}

func TestArgon2id(t *testing.T) {
	// The Argon2 team's reference vector (phc-winner-argon2 src/test.c).
	got, err := Argon2id([]byte("password"), []byte("somesalt"), 2, 256, 1, 32)
	if want := "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe"; err != nil || hex.EncodeToString(got) != want {
		t.Fatalf("got %x, %v; want %s", got, err, want)
	}
	invalid := []struct {
		name    string
		t, m    uint32
		p       uint8
		salt, n int
	}{
		{"time 0", 0, 64, 1, 8, 32},
		{"time above the cap", MaxArgon2Time + 1, 64, 1, 8, 32},
		{"threads 0", 1, 64, 0, 8, 32},
		{"threads above the cap", 1, 256, MaxArgon2Threads + 1, 8, 32},
		{"memory below 8 per lane", 1, 31, 4, 8, 32},
		{"memory above the cap", 1, MaxArgon2Memory + 8, 1, 8, 32},
		{"work above the cap", 2, MaxArgon2Work/2 + 8, 1, 8, 32},
		{"empty salt", 1, 64, 1, 0, 32},
		{"tag of 3 bytes", 1, 64, 1, 8, 3},
		{"tag above the cap", 1, 64, 1, 8, MaxOutput + 1},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Argon2id([]byte("pw"), make([]byte, tc.salt), tc.t, tc.m, tc.p, uint32(tc.n)); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
		})
	}
}

func TestBcryptCompare(t *testing.T) {
	const h = "$2b$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK" // crypt_blowfish: "U*U*"
	for _, tc := range []struct {
		name, hash, pw string
		want           bool
		err            error
	}{
		{"match", h, "U*U*", true, nil},
		{"mismatch", h, "U*U", false, nil},
		{"$2y$", "$2y$" + h[4:], "U*U*", true, nil},
		{"$2x$", "$2x$" + h[4:], "U*U*", false, ErrInvalid},
		{"cost 16", "$2b$16" + h[6:], "U*U*", false, ErrInvalid},
		{"short", h[:59], "U*U*", false, ErrInvalid},
		{"bad character", h[:30] + "+" + h[31:], "U*U*", false, ErrInvalid},
		{"password above the cap", h, string(bytes.Repeat([]byte("x"), MaxPassword+1)), false, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := BcryptCompare([]byte(tc.hash), []byte(tc.pw))
			if ok != tc.want || !errors.Is(err, tc.err) {
				t.Fatalf("got %v, %v; want %v, %v", ok, err, tc.want, tc.err)
			}
		})
	}
}

// Hasher satisfies an interface of the three functions, such as
// passwdfile.Hasher, whose method set it mirrors.
var _ interface {
	PBKDF2(crypto.Hash, []byte, []byte, int, int) ([]byte, error)
	Argon2id([]byte, []byte, uint32, uint32, uint8, uint32) ([]byte, error)
	BcryptCompare([]byte, []byte) (bool, error)
} = Hasher{}
