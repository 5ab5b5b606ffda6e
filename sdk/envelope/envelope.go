// Package envelope implements the moat envelope: a small, versioned binary
// wrapper for an encrypted MQTT payload. Devices use it for end-to-end
// encryption; the broker uses it for payloads it encrypts at rest and for
// re-encryption. It depends on nothing but the Go standard library and
// golang.org/x/crypto, so it builds for any GOOS, wasip1 included.
//
// # Format (version 1)
//
//	offset  size  field
//	0       2     magic "mE" (0x6d 0x45)
//	2       1     version, 1
//	3       1     algorithm: 1 AES-256-GCM, 2 ChaCha20-Poly1305
//	4       1     key id length K, 1..255
//	5       K     key id (UTF-8)
//	5+K     12    nonce (random per message)
//	17+K    n+16  ciphertext of the n-byte plaintext, followed by the 16-byte tag
//
// The associated data is the header (bytes 0 to 17+K, magic through nonce)
// followed by the MQTT topic name, so a ciphertext replayed onto another
// topic, or with a rewritten key id or algorithm, fails to open. Keys are 32
// bytes. An MQTT 5 message carrying an envelope has the user property
// "moat-envelope" = "1" (see Property); the bytes themselves are
// self-describing, so MQTT 3.1.1 clients need no marker.
//
// A C or Python client implements the format with any AEAD library: build the
// header, draw 12 random bytes, seal with AAD = header || topic, append.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// Algorithm identifies the AEAD of an envelope.
type Algorithm uint8

const (
	AES256GCM        Algorithm = 1
	ChaCha20Poly1305 Algorithm = 2
)

func (a Algorithm) String() string {
	switch a {
	case AES256GCM:
		return "AES-256-GCM"
	case ChaCha20Poly1305:
		return "ChaCha20-Poly1305"
	}
	return fmt.Sprintf("algorithm(%d)", uint8(a))
}

const (
	// Version is the envelope version this package writes and reads.
	Version = 1
	// KeySize is the size of every key.
	KeySize = 32
	// NonceSize and TagSize are the AEAD's.
	NonceSize = 12
	TagSize   = 16
	// MaxKeyIDLen bounds a key id.
	MaxKeyIDLen = 255
	// Property is the MQTT 5 user property key that marks an envelope.
	Property = "moat-envelope"
	// ContentType is the MQTT 5 content type moat sets on envelopes it makes
	// when the message had none.
	ContentType = "application/vnd.moat.envelope"
)

var magic = [2]byte{0x6d, 0x45}

// Errors that Parse and Open return; match them with errors.Is.
var (
	ErrNotEnvelope = errors.New("envelope: not a moat envelope")
	ErrVersion     = errors.New("envelope: unknown version")
	ErrAlgorithm   = errors.New("envelope: unknown algorithm")
	ErrTruncated   = errors.New("envelope: truncated")
	ErrAuth        = errors.New("envelope: message authentication failed")
	ErrKeySize     = errors.New("envelope: key must be 32 bytes")
)

// Header is the parsed clear-text part of an envelope. KeyID and Nonce alias
// the envelope bytes they were parsed from.
type Header struct {
	Algorithm Algorithm
	KeyID     string
	Nonce     []byte
	// Len is the header length; the sealed data starts there.
	Len int
}

// IsEnvelope reports whether b starts with the envelope magic. It is a cheap
// first test; Parse validates the rest.
func IsEnvelope(b []byte) bool {
	return len(b) >= 2 && b[0] == magic[0] && b[1] == magic[1]
}

// Parse validates the header of b without decrypting it.
func Parse(b []byte) (Header, error) {
	if !IsEnvelope(b) {
		return Header{}, ErrNotEnvelope
	}
	if len(b) < 5 {
		return Header{}, ErrTruncated
	}
	if b[2] != Version {
		return Header{}, fmt.Errorf("%w %d", ErrVersion, b[2])
	}
	alg := Algorithm(b[3])
	if alg != AES256GCM && alg != ChaCha20Poly1305 {
		return Header{}, fmt.Errorf("%w %d", ErrAlgorithm, b[3])
	}
	k := int(b[4])
	if k == 0 {
		return Header{}, fmt.Errorf("envelope: empty key id: %w", ErrNotEnvelope)
	}
	n := 5 + k + NonceSize
	if len(b) < n+TagSize {
		return Header{}, ErrTruncated
	}
	return Header{Algorithm: alg, KeyID: string(b[5 : 5+k]), Nonce: b[5+k : n], Len: n}, nil
}

func newAEAD(alg Algorithm, key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, ErrKeySize
	}
	switch alg {
	case AES256GCM:
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(block)
	case ChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("%w %d", ErrAlgorithm, uint8(alg))
}

// Sealer encrypts and decrypts envelopes with one key. It caches the AEAD,
// which makes it cheaper than Seal/Open for many messages. It is safe for
// concurrent use.
type Sealer struct {
	alg   Algorithm
	keyID string
	aead  cipher.AEAD
}

// NewSealer returns a Sealer for key, named keyID in the envelopes it makes.
func NewSealer(alg Algorithm, keyID string, key []byte) (*Sealer, error) {
	if len(keyID) == 0 || len(keyID) > MaxKeyIDLen {
		return nil, fmt.Errorf("envelope: key id must be 1 to %d bytes", MaxKeyIDLen)
	}
	aead, err := newAEAD(alg, key)
	if err != nil {
		return nil, err
	}
	return &Sealer{alg: alg, keyID: keyID, aead: aead}, nil
}

// KeyID returns the key id the Sealer writes.
func (s *Sealer) KeyID() string { return s.keyID }

// Overhead is how many bytes an envelope adds to a plaintext.
func (s *Sealer) Overhead() int { return 5 + len(s.keyID) + NonceSize + TagSize }

// Seal appends the envelope of plaintext, bound to topic, to dst.
func (s *Sealer) Seal(dst []byte, topic string, plaintext []byte) ([]byte, error) {
	return s.SealWithNonce(dst, topic, plaintext, rand.Reader)
}

// SealWithNonce is Seal with the nonce read from r; tests use it for
// reproducible envelopes. Never reuse a nonce with the same key.
func (s *Sealer) SealWithNonce(dst []byte, topic string, plaintext []byte, r io.Reader) ([]byte, error) {
	start := len(dst)
	hlen := 5 + len(s.keyID) + NonceSize
	dst = growTo(dst, start+hlen+len(plaintext)+TagSize)[:start+hlen]
	h := dst[start:]
	h[0], h[1], h[2], h[3], h[4] = magic[0], magic[1], Version, byte(s.alg), byte(len(s.keyID))
	copy(h[5:], s.keyID)
	if _, err := io.ReadFull(r, h[5+len(s.keyID):hlen]); err != nil {
		return nil, fmt.Errorf("envelope: nonce: %w", err)
	}
	aad := make([]byte, 0, hlen+len(topic))
	aad = append(append(aad, h...), topic...)
	return s.aead.Seal(dst, h[5+len(s.keyID):hlen], plaintext, aad), nil
}

// Open decrypts env, which must have been sealed for topic under this
// Sealer's key id, and appends the plaintext to dst.
func (s *Sealer) Open(dst []byte, topic string, env []byte) ([]byte, error) {
	h, err := Parse(env)
	if err != nil {
		return nil, err
	}
	if h.KeyID != s.keyID || h.Algorithm != s.alg {
		return nil, fmt.Errorf("envelope: sealed with key %q (%s), not %q (%s): %w", h.KeyID, h.Algorithm, s.keyID, s.alg, ErrAuth)
	}
	aad := make([]byte, 0, h.Len+len(topic))
	aad = append(append(aad, env[:h.Len]...), topic...)
	out, err := s.aead.Open(dst, h.Nonce, env[h.Len:], aad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// Seal is a one-shot Sealer.Seal.
func Seal(alg Algorithm, keyID string, key []byte, topic string, plaintext []byte) ([]byte, error) {
	s, err := NewSealer(alg, keyID, key)
	if err != nil {
		return nil, err
	}
	return s.Seal(nil, topic, plaintext)
}

// Open is a one-shot Sealer.Open: key must be the key named in the envelope.
func Open(key []byte, topic string, env []byte) ([]byte, error) {
	h, err := Parse(env)
	if err != nil {
		return nil, err
	}
	s, err := NewSealer(h.Algorithm, h.KeyID, key)
	if err != nil {
		return nil, err
	}
	return s.Open(nil, topic, env)
}

func growTo(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:len(b)]
	}
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
}
