//go:build !wasip1

package hostcrypto

import (
	"crypto"
	stdpbkdf2 "crypto/pbkdf2"
	_ "crypto/sha256" // crypto.SHA256.New
	_ "crypto/sha512" // crypto.SHA512.New
	"errors"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Outside wasm the same functions run in the process: crypto/pbkdf2 and
// golang.org/x/crypto, which is what the broker's host functions compute.

func pbkdf2(h crypto.Hash, password, salt []byte, iterations, keyLen int) ([]byte, error) {
	return stdpbkdf2.Key(h.New, string(password), salt, iterations, keyLen)
}

func argon2id(password, salt []byte, time, memoryKiB uint32, threads uint8, keyLen uint32) ([]byte, error) {
	return argon2.IDKey(password, salt, time, memoryKiB, threads, keyLen), nil
}

func bcryptCompare(hashed, password []byte) (bool, error) {
	switch err := bcrypt.CompareHashAndPassword(hashed, password); {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	default:
		return false, ErrInvalid
	}
}
