// Package scramauth implements SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802,
// RFC 7677) for MQTT 5 enhanced authentication: a stateless server, a client,
// and the stored-credential format that `moat passwd -H scram-sha-256` writes.
//
// It is pure Go and builds for GOOS=wasip1 GOARCH=wasm: the scram plugin is a
// thin wrapper around Server, and the end-to-end tests drive it with Client.
//
// # Exchange over MQTT 5
//
//	CONNECT  auth method SCRAM-SHA-256, auth data client-first-message   -> Server.Start
//	AUTH     0x18 (continue), auth data server-first-message             <- Start's serverFirst
//	AUTH     0x18, auth data client-final-message                        -> Server.Finish
//	CONNACK  0x00, auth data server-final-message (v=...)                <- Finish's serverFinal
//
// # Stored credentials
//
// One line of a moat password file, after "username:", holds
//
//	$scram-sha-256$i=<iterations>$<salt>$<StoredKey>$<ServerKey>
//	$scram-sha-512$i=<iterations>$<salt>$<StoredKey>$<ServerKey>
//
// with salt and keys in standard base64 (padding optional when reading,
// written padded, as in SCRAM's own s= attribute). StoredKey and ServerKey are
// RFC 5802's: the server never holds the password or SaltedPassword, and a
// stolen file does not let anyone log in without first cracking the password
// at the cost of the iteration count.
//
// # SASLprep
//
// SASLprep (RFC 4013) is not implemented. It is the identity on printable
// ASCII, so NewCredentials and NewClient accept only passwords of printable
// ASCII (0x20-0x7E), and every implementation agrees on the bytes hashed.
// Usernames are compared byte for byte as sent (UTF-8, no control
// characters); a client that normalises a non-ASCII username differently from
// the file will not be found.
//
// # Channel binding
//
// Only the gs2 flags "n" (client does not support channel binding) and "y"
// (client does, but thinks the server does not, RFC 5802 §6) are accepted;
// "p=" (SCRAM-*-PLUS) is refused, since the broker does not offer the -PLUS
// mechanisms.
package scramauth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// Mechanism names, as SASL and the MQTT 5 authentication method spell them.
const (
	SHA256 = "SCRAM-SHA-256"
	SHA512 = "SCRAM-SHA-512"
)

const (
	// DefaultIterations is the PBKDF2 iteration count NewCredentials callers
	// should use: RFC 7677 §4 asks for at least 4096, and PostgreSQL and Kafka
	// use 4096. The client, not the broker, pays for it on every CONNECT; the
	// broker only computes HMACs.
	DefaultIterations = 4096

	// MaxIterations bounds the iteration count read from a file or sent by a
	// server, so that a hostile file or server cannot make one check take
	// minutes: 2,000,000 is about 2.3 s of PBKDF2-HMAC-SHA-512 natively and
	// 15-25 s in wasm (Go's SHA-2 is 6-50 times slower there), and 3 times
	// OWASP's 600,000 for PBKDF2-HMAC-SHA-256.
	MaxIterations = 2_000_000

	// maxSalt bounds a stored salt (bytes).
	maxSalt = 1024

	// MaxMessage bounds a SCRAM message. Real ones are under 300 bytes; the
	// bound keeps the state blob far below the ABI's 65535-byte limit.
	MaxMessage = 4096
)

var (
	// ErrAuthFailed reports a wrong password, an unknown user, or a user
	// without credentials for the mechanism; the three are not distinguished.
	ErrAuthFailed = errors.New("scram: authentication failed")
	// ErrMalformed reports a message that does not follow RFC 5802.
	ErrMalformed = errors.New("scram: malformed message")
	// ErrState reports a state blob that this server did not produce
	// (tampered, truncated, or produced under other credentials).
	ErrState = errors.New("scram: invalid state")
)

// mechanism is one SCRAM hash family.
type mechanism struct {
	name   string
	id     byte   // in the state blob
	prefix string // of the stored-credential format
	hash   func() hash.Hash
	size   int
}

var (
	mechSHA256 = &mechanism{name: SHA256, id: 1, prefix: "$scram-sha-256$", hash: sha256.New, size: sha256.Size}
	mechSHA512 = &mechanism{name: SHA512, id: 2, prefix: "$scram-sha-512$", hash: sha512.New, size: sha512.Size}
)

func mechByName(name string) (*mechanism, error) {
	switch name {
	case SHA256:
		return mechSHA256, nil
	case SHA512:
		return mechSHA512, nil
	}
	return nil, fmt.Errorf("scram: unsupported mechanism %q (want %q or %q)", name, SHA256, SHA512)
}

// Mechanisms lists the supported mechanism names.
func Mechanisms() []string { return []string{SHA256, SHA512} }

func (m *mechanism) hmac(key []byte, parts ...string) []byte {
	h := hmac.New(m.hash, key)
	for _, p := range parts {
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

func (m *mechanism) digest(b []byte) []byte {
	h := m.hash()
	h.Write(b)
	return h.Sum(nil)
}

// saltedPassword is Hi(password, salt, i) of RFC 5802 §2.2. It fails only
// in FIPS 140-only mode with a salt under 16 bytes.
func (m *mechanism) saltedPassword(password []byte, salt []byte, iter int) ([]byte, error) {
	sp, err := pbkdf2.Key(m.hash, string(password), salt, iter, m.size)
	if err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	return sp, nil
}

// keys derives ClientKey, StoredKey and ServerKey from SaltedPassword.
func (m *mechanism) keys(sp []byte) (clientKey, storedKey, serverKey []byte) {
	clientKey = m.hmac(sp, "Client Key")
	return clientKey, m.digest(clientKey), m.hmac(sp, "Server Key")
}

// Credentials are what the server stores for one user: the mechanism, salt,
// iteration count, StoredKey and ServerKey. The zero value is invalid (no
// user). Credentials are immutable and safe to share between goroutines.
type Credentials struct {
	m         *mechanism
	salt      []byte
	iter      int
	storedKey []byte
	serverKey []byte
}

// NewCredentials derives the credentials for password. password must be
// printable ASCII (see the package doc on SASLprep); salt must be 1 to 1024
// bytes, fresh and random (16 is plenty); iterations 1 to MaxIterations.
func NewCredentials(mech string, password, salt []byte, iterations int) (Credentials, error) {
	m, err := mechByName(mech)
	if err != nil {
		return Credentials{}, err
	}
	if err := checkPassword(password); err != nil {
		return Credentials{}, err
	}
	if len(salt) == 0 || len(salt) > maxSalt {
		return Credentials{}, fmt.Errorf("scram: salt of %d bytes (want 1 to %d)", len(salt), maxSalt)
	}
	if iterations < 1 || iterations > MaxIterations {
		return Credentials{}, fmt.Errorf("scram: %d iterations (want 1 to %d)", iterations, MaxIterations)
	}
	sp, err := m.saltedPassword(password, salt, iterations)
	if err != nil {
		return Credentials{}, err
	}
	_, stored, server := m.keys(sp)
	return Credentials{m: m, salt: append([]byte(nil), salt...), iter: iterations, storedKey: stored, serverKey: server}, nil
}

// checkPassword refuses what SASLprep would change or prohibit, which for
// ASCII is control characters, and all non-ASCII.
func checkPassword(p []byte) error {
	for _, c := range p {
		if c < 0x20 || c > 0x7e {
			return errors.New("scram: password must be printable ASCII (SASLprep is not implemented)")
		}
	}
	return nil
}

// IsCredentials reports whether s has the prefix of a stored SCRAM
// credential, so that a caller can tell "malformed SCRAM line" from "some
// other format".
func IsCredentials(s string) bool {
	return strings.HasPrefix(s, mechSHA256.prefix) || strings.HasPrefix(s, mechSHA512.prefix)
}

// ParseCredentials parses the stored form described in the package doc.
// Errors do not quote s beyond its prefix.
func ParseCredentials(s string) (Credentials, error) {
	var m *mechanism
	switch {
	case strings.HasPrefix(s, mechSHA256.prefix):
		m = mechSHA256
	case strings.HasPrefix(s, mechSHA512.prefix):
		m = mechSHA512
	default:
		return Credentials{}, errors.New("scram: credentials do not start with $scram-sha-256$ or $scram-sha-512$")
	}
	parts := strings.Split(s[len(m.prefix):], "$")
	if len(parts) != 4 {
		return Credentials{}, fmt.Errorf("scram: %s credentials: want %si=<iterations>$<salt>$<StoredKey>$<ServerKey>", m.name, m.prefix)
	}
	it, ok := strings.CutPrefix(parts[0], "i=")
	if !ok {
		return Credentials{}, fmt.Errorf("scram: %s credentials: iteration field must start with \"i=\"", m.name)
	}
	iter, err := parseCount(it)
	if err != nil || iter < 1 || iter > MaxIterations {
		return Credentials{}, fmt.Errorf("scram: %s credentials: iteration count must be 1 to %d", m.name, MaxIterations)
	}
	salt, err := decodeB64(parts[1])
	if err != nil || len(salt) == 0 || len(salt) > maxSalt {
		return Credentials{}, fmt.Errorf("scram: %s credentials: salt must be 1 to %d bytes of base64", m.name, maxSalt)
	}
	stored, err := decodeB64(parts[2])
	if err != nil || len(stored) != m.size {
		return Credentials{}, fmt.Errorf("scram: %s credentials: StoredKey must be %d bytes of base64", m.name, m.size)
	}
	server, err := decodeB64(parts[3])
	if err != nil || len(server) != m.size {
		return Credentials{}, fmt.Errorf("scram: %s credentials: ServerKey must be %d bytes of base64", m.name, m.size)
	}
	return Credentials{m: m, salt: salt, iter: iter, storedKey: stored, serverKey: server}, nil
}

// Encode returns the stored form. It is secret-equivalent to a password
// hash: keep it out of logs.
func (c Credentials) Encode() string {
	if c.m == nil {
		return ""
	}
	e := base64.StdEncoding
	return c.m.prefix + "i=" + strconv.Itoa(c.iter) + "$" + e.EncodeToString(c.salt) + "$" +
		e.EncodeToString(c.storedKey) + "$" + e.EncodeToString(c.serverKey)
}

// Mechanism returns SHA256 or SHA512, or "" for the zero value.
func (c Credentials) Mechanism() string {
	if c.m == nil {
		return ""
	}
	return c.m.name
}

// Iterations returns the PBKDF2 iteration count.
func (c Credentials) Iterations() int { return c.iter }

// Verify checks a plain password against the credentials, so that a SCRAM
// line also serves MQTT's ordinary username/password CONNECT. It costs one
// PBKDF2 at the stored iteration count and compares in constant time.
func (c Credentials) Verify(password []byte) bool {
	if c.m == nil {
		return false
	}
	sp, err := c.m.saltedPassword(password, c.salt, c.iter)
	if err != nil {
		return false
	}
	_, stored, _ := c.m.keys(sp)
	return subtle.ConstantTimeCompare(stored, c.storedKey) == 1
}

// parseCount parses a positive decimal without sign, at most 9 digits, so it
// cannot overflow an int on any platform.
func parseCount(s string) (int, error) {
	if s == "" || len(s) > 9 {
		return 0, errors.New("bad count")
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errors.New("bad count")
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// decodeB64 accepts standard base64 with or without padding.
func decodeB64(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.Strict().DecodeString(s)
	}
	return base64.RawStdEncoding.Strict().DecodeString(s)
}
