// Package hostcrypto computes password hashes in the moat broker instead of
// in the module: PBKDF2-HMAC-SHA256/512, Argon2id and bcrypt, through the
// host functions of sdk/ABI.md §6 ("Password hashing").
//
// Why: SHA-2, Argon2 and bcrypt compiled to wasm run 3 to 50 times slower
// than natively (wasm has no SHA or vector instructions). A Mosquitto $7$
// password check at 210,000 iterations takes about 1.5 s inside a Go module
// and 0.26 s in the broker; through this package a module pays the hash's
// cost, not the sandbox's. The password and salt go to the host and the
// result comes back; no key of the broker is involved.
//
// Outside wasm (a plugin's unit tests, or code shared with native tools)
// the functions compute the same results with crypto/pbkdf2 and
// golang.org/x/crypto, and refuse the same arguments, so that code tested
// natively behaves the same in a module.
//
// # Limits and deadlines
//
// The host refuses arguments beyond the limits below with ErrInvalid, so
// that no module can make one call hold the broker for long. PBKDF2 and
// bcrypt stop at the module's deadline (the plugin's timeout) like guest
// code does, failing the whole call: a plugin checking costly hashes needs
// a timeout that covers them. Argon2id cannot be stopped once started,
// which is why its work is capped; its memory, allocated by the broker, may
// not exceed the plugin's memory_limit (natively there is no such limit).
// Code that must honour larger Argon2id parameters computes them itself,
// inside the module, with golang.org/x/crypto/argon2.
//
// Importing this package makes a module import the three host functions,
// which every moat broker since ABI v1's password hashing addition
// provides; an older broker refuses the module at load, naming them.
package hostcrypto

import (
	"crypto"
	"errors"
)

// Limits of the host functions, as sdk/ABI.md states them.
const (
	// MaxPassword is an MQTT password's own limit, in bytes.
	MaxPassword = 65535
	// MaxSalt bounds a salt in bytes; salts are at least 1 byte.
	MaxSalt = 1024
	// MaxOutput bounds a derived key or tag in bytes (Argon2id: at least 4).
	MaxOutput = 1024
	// MaxPBKDF2Iterations bounds PBKDF2's iteration count.
	MaxPBKDF2Iterations = 2_000_000
	// MaxArgon2Time, MaxArgon2Threads and MaxArgon2Memory (KiB) bound
	// Argon2id's t, p and m; m is at least 8·p.
	MaxArgon2Time    = 64
	MaxArgon2Threads = 16
	MaxArgon2Memory  = 256 * 1024
	// MaxArgon2Work bounds m·t (KiB): 256 MiB-passes, 0.3 to 0.7 s.
	MaxArgon2Work = 256 * 1024
	// MaxBcryptCost bounds the cost of a bcrypt hash (2^15 rounds).
	MaxBcryptCost = 15
)

// ErrInvalid reports an argument outside the limits, an unsupported hash,
// or a malformed bcrypt hash.
var ErrInvalid = errors.New("hostcrypto: invalid argument or beyond the host's limits")

// Status codes of the host functions.
const (
	statusOK      = 0
	statusInvalid = -2
)

// hashID maps a crypto.Hash to the ABI's PBKDF2 hash id.
func hashID(h crypto.Hash) int32 {
	switch h {
	case crypto.SHA256:
		return 1
	case crypto.SHA512:
		return 2
	}
	return 0
}

// PBKDF2 derives keyLen bytes from password and salt with PBKDF2-HMAC
// (RFC 8018) over h, which must be crypto.SHA256 or crypto.SHA512. It
// returns ErrInvalid for another hash or arguments beyond the limits.
func PBKDF2(h crypto.Hash, password, salt []byte, iterations, keyLen int) ([]byte, error) {
	if hashID(h) == 0 || iterations < 1 || iterations > MaxPBKDF2Iterations || len(password) > MaxPassword ||
		len(salt) < 1 || len(salt) > MaxSalt || keyLen < 1 || keyLen > MaxOutput {
		return nil, ErrInvalid
	}
	return pbkdf2(h, password, salt, iterations, keyLen)
}

// Argon2id computes an Argon2id (version 0x13, RFC 9106) tag of keyLen
// bytes with time passes over memoryKiB KiB in threads lanes, as
// golang.org/x/crypto/argon2.IDKey does. It returns ErrInvalid for
// arguments beyond the limits; in a module also for memoryKiB above the
// plugin's memory_limit.
func Argon2id(password, salt []byte, time, memoryKiB uint32, threads uint8, keyLen uint32) ([]byte, error) {
	if time < 1 || time > MaxArgon2Time || threads < 1 || threads > MaxArgon2Threads ||
		memoryKiB < 8*uint32(threads) || memoryKiB > MaxArgon2Memory || uint64(memoryKiB)*uint64(time) > MaxArgon2Work ||
		len(password) > MaxPassword || len(salt) < 1 || len(salt) > MaxSalt || keyLen < 4 || keyLen > MaxOutput {
		return nil, ErrInvalid
	}
	return argon2id(password, salt, time, memoryKiB, threads, keyLen)
}

// BcryptCompare reports whether password matches the bcrypt hash hashed
// ("$2a$", "$2b$" or "$2y$", 60 bytes), in constant time. Only the first 72
// bytes of the password count, as in every bcrypt. It returns ErrInvalid
// for a malformed hash, a cost above MaxBcryptCost or a password above
// MaxPassword.
func BcryptCompare(hashed, password []byte) (bool, error) {
	if !wellFormedBcrypt(hashed) || len(password) > MaxPassword {
		return false, ErrInvalid
	}
	return bcryptCompare(hashed, password)
}

// wellFormedBcrypt checks what the host checks: version 2a, 2b or 2y, a
// two-digit cost from 04 to MaxBcryptCost, and 53 characters of bcrypt's
// base64.
func wellFormedBcrypt(h []byte) bool {
	if len(h) != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$' {
		return false
	}
	if h[2] != 'a' && h[2] != 'b' && h[2] != 'y' {
		return false
	}
	if h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' {
		return false
	}
	if cost := int(h[4]-'0')*10 + int(h[5]-'0'); cost < 4 || cost > MaxBcryptCost {
		return false
	}
	for _, c := range h[7:] {
		if !(c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// Hasher offers the package's functions as methods, for code that takes
// its hash functions as an interface (plugins/passwd/passwdfile's
// Options.Hasher). The zero value is ready to use.
type Hasher struct{}

// PBKDF2 calls the package's PBKDF2.
func (Hasher) PBKDF2(h crypto.Hash, password, salt []byte, iterations, keyLen int) ([]byte, error) {
	return PBKDF2(h, password, salt, iterations, keyLen)
}

// Argon2id calls the package's Argon2id.
func (Hasher) Argon2id(password, salt []byte, time, memoryKiB uint32, threads uint8, keyLen uint32) ([]byte, error) {
	return Argon2id(password, salt, time, memoryKiB, threads, keyLen)
}

// BcryptCompare calls the package's BcryptCompare.
func (Hasher) BcryptCompare(hashed, password []byte) (bool, error) {
	return BcryptCompare(hashed, password)
}
