//go:build wasip1

package hostcrypto

import (
	"crypto"
	"errors"
	"strconv"
	"unsafe"
)

//go:wasmimport moat pbkdf2
func hostPBKDF2(hash int32, pw unsafe.Pointer, pwLen int32, salt unsafe.Pointer, saltLen int32, iterations int32, out unsafe.Pointer, outLen int32) int32

//go:wasmimport moat argon2id
func hostArgon2id(pw unsafe.Pointer, pwLen int32, salt unsafe.Pointer, saltLen int32, time, memoryKiB, threads int32, out unsafe.Pointer, outLen int32) int32

//go:wasmimport moat bcrypt_compare
func hostBcryptCompare(hash unsafe.Pointer, hashLen int32, pw unsafe.Pointer, pwLen int32) int32

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

// The lengths below were checked against the limits by the exported
// functions, so the int32 conversions do not overflow.

func pbkdf2(h crypto.Hash, password, salt []byte, iterations, keyLen int) ([]byte, error) {
	out := make([]byte, keyLen)
	st := hostPBKDF2(hashID(h), ptr(password), int32(len(password)), ptr(salt), int32(len(salt)),
		int32(iterations), ptr(out), int32(len(out)))
	return out, statusErr(st)
}

func argon2id(password, salt []byte, time, memoryKiB uint32, threads uint8, keyLen uint32) ([]byte, error) {
	out := make([]byte, keyLen)
	st := hostArgon2id(ptr(password), int32(len(password)), ptr(salt), int32(len(salt)),
		int32(time), int32(memoryKiB), int32(threads), ptr(out), int32(len(out)))
	return out, statusErr(st)
}

func bcryptCompare(hashed, password []byte) (bool, error) {
	st := hostBcryptCompare(ptr(hashed), int32(len(hashed)), ptr(password), int32(len(password)))
	if st == 0 || st == 1 {
		return st == 1, nil
	}
	return false, statusErr(st)
}

func statusErr(st int32) error {
	switch st {
	case statusOK:
		return nil
	case statusInvalid:
		return ErrInvalid
	}
	return errors.New("hostcrypto: host status " + strconv.Itoa(int(st)))
}
