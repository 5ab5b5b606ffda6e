package passwdfile

import (
	"crypto"
	"crypto/pbkdf2"
	"errors"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Hasher computes the costly part of Verify: PBKDF2 ($7$, go-auth and SCRAM
// lines), Argon2id and bcrypt. Parse uses NativeHasher unless
// Options.Hasher says otherwise.
//
// It exists for the passwd plugin: inside wasm these hashes run 3 to 50
// times slower than natively, so the plugin passes sdk/go/hostcrypto's
// Hasher, which has the broker compute them. Native code (`moat passwd`,
// tests) keeps NativeHasher. Implementations outside this module may
// satisfy it; the method set mirrors hostcrypto's functions, whose
// contracts apply: PBKDF2's hash is crypto.SHA256 or crypto.SHA512, and an
// error (such as arguments beyond a host's limits) makes Verify refuse.
type Hasher interface {
	PBKDF2(h crypto.Hash, password, salt []byte, iterations, keyLen int) ([]byte, error)
	Argon2id(password, salt []byte, time, memoryKiB uint32, threads uint8, keyLen uint32) ([]byte, error)
	// BcryptCompare reports whether password matches hashed, in constant
	// time.
	BcryptCompare(hashed, password []byte) (bool, error)
}

// NativeHasher returns the Hasher Parse uses by default: crypto/pbkdf2 and
// golang.org/x/crypto, in the calling goroutine.
func NativeHasher() Hasher { return nativeHasher{} }

type nativeHasher struct{}

func (nativeHasher) PBKDF2(h crypto.Hash, password, salt []byte, iterations, keyLen int) ([]byte, error) {
	return pbkdf2.Key(h.New, string(password), salt, iterations, keyLen)
}

func (nativeHasher) Argon2id(password, salt []byte, time, memoryKiB uint32, threads uint8, keyLen uint32) ([]byte, error) {
	return argon2.IDKey(password, salt, time, memoryKiB, threads, keyLen), nil
}

func (nativeHasher) BcryptCompare(hashed, password []byte) (bool, error) {
	switch err := bcrypt.CompareHashAndPassword(hashed, password); {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, err
	}
}
