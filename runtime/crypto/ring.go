// Package crypto holds moat's payload keys and does the payload
// cryptography the payload policy asks for. Keys live only here: they never
// reach a wasm module, a log line or an error message (errors name key ids).
//
// It is a leaf package of the host: it imports the envelope format and the
// standard library, nothing of MQTT, mochi or wazero.
package crypto

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/moat-mqtt/moat/sdk/envelope"
)

// KeySpec names one key of the ring and where its material comes from.
type KeySpec struct {
	ID string
	// File holds the key: 32 raw bytes, or their standard base64 encoding
	// (with or without a trailing newline). It must not be readable or
	// writable by group or others.
	File string
	// Algorithm is "aes-256-gcm" (default) or "chacha20-poly1305".
	Algorithm string
}

// Source loads key material by id. The file-backed source is the default;
// a KMS backend implements Source to keep keys off disk. Implementations
// must be safe for concurrent use.
type Source interface {
	Load(ctx context.Context, spec KeySpec) ([]byte, error)
}

// FileSource reads keys from files, refusing files with loose permissions.
type FileSource struct{}

// Load implements Source.
func (FileSource) Load(_ context.Context, spec KeySpec) ([]byte, error) {
	return ReadKeyFile(spec.File)
}

// ReadKeyFile reads a 32-byte key written raw or base64-encoded. The error
// never contains key material.
func ReadKeyFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %#o lets group or others access the key; chmod 600 it", path, perm)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) == envelope.KeySize {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(k) != envelope.KeySize {
		return nil, fmt.Errorf("%s: want 32 raw bytes or their base64 encoding, found %d bytes", path, len(b))
	}
	return k, nil
}

// Ring is an immutable set of keys with one active key per purpose. Rotation
// builds a new Ring and swaps it in a RingHolder; envelopes sealed under a
// key that is still in the ring stay readable.
type Ring struct {
	sealers map[string]*envelope.Sealer
	active  map[string]string // purpose -> key id
	// scratch holds plaintext buffers for Reseal, whose plaintext never
	// leaves the call: a 64 KiB message otherwise costs one more large
	// allocation (zeroed, then collected) per reseal.
	scratch *sync.Pool
}

// NewRing loads every key. active maps a purpose (such as "at-rest") to the
// id of the key new envelopes use; each must name a loaded key.
func NewRing(ctx context.Context, src Source, keys []KeySpec, active map[string]string) (*Ring, error) {
	if src == nil {
		src = FileSource{}
	}
	r := &Ring{sealers: make(map[string]*envelope.Sealer, len(keys)), active: make(map[string]string, len(active)),
		scratch: &sync.Pool{New: func() any { return new([]byte) }}}
	var errs []error
	for _, k := range keys {
		if _, dup := r.sealers[k.ID]; dup {
			errs = append(errs, fmt.Errorf("crypto: key %q: defined twice", k.ID))
			continue
		}
		alg, err := parseAlgorithm(k.Algorithm)
		if err != nil {
			errs = append(errs, fmt.Errorf("crypto: key %q: %w", k.ID, err))
			continue
		}
		material, err := src.Load(ctx, k)
		if err != nil {
			errs = append(errs, fmt.Errorf("crypto: key %q: %w", k.ID, err))
			continue
		}
		s, err := envelope.NewSealer(alg, k.ID, material)
		clear(material)
		if err != nil {
			errs = append(errs, fmt.Errorf("crypto: key %q: %w", k.ID, err))
			continue
		}
		r.sealers[k.ID] = s
	}
	purposes := make([]string, 0, len(active))
	for p := range active {
		purposes = append(purposes, p)
	}
	sort.Strings(purposes)
	for _, p := range purposes {
		id := active[p]
		if _, ok := r.sealers[id]; !ok {
			errs = append(errs, fmt.Errorf("crypto: active key for %q: no key %q in the ring", p, id))
			continue
		}
		r.active[p] = id
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

func parseAlgorithm(s string) (envelope.Algorithm, error) {
	switch strings.ToLower(s) {
	case "", "aes-256-gcm":
		return envelope.AES256GCM, nil
	case "chacha20-poly1305":
		return envelope.ChaCha20Poly1305, nil
	}
	return 0, fmt.Errorf("algorithm %q: want \"aes-256-gcm\" or \"chacha20-poly1305\"", s)
}

// ErrUnknownKey is returned when an envelope or a policy names a key id the
// ring does not hold.
var ErrUnknownKey = errors.New("crypto: unknown key id")

// Active returns the id of the active key for purpose, or "".
func (r *Ring) Active(purpose string) string { return r.active[purpose] }

// Has reports whether the ring holds key id.
func (r *Ring) Has(id string) bool { _, ok := r.sealers[id]; return ok }

// IDs returns the key ids, sorted.
func (r *Ring) IDs() []string {
	ids := make([]string, 0, len(r.sealers))
	for id := range r.sealers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Seal encrypts plaintext for topic under key id.
func (r *Ring) Seal(id, topic string, plaintext []byte) ([]byte, error) {
	s, ok := r.sealers[id]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, id)
	}
	return s.Seal(make([]byte, 0, len(plaintext)+s.Overhead()), topic, plaintext)
}

// Open decrypts an envelope sealed for topic under any key of the ring. It
// returns the key id the envelope named.
func (r *Ring) Open(topic string, env []byte) ([]byte, string, error) {
	h, err := envelope.Parse(env)
	if err != nil {
		return nil, "", err
	}
	s, ok := r.sealers[h.KeyID]
	if !ok {
		return nil, h.KeyID, fmt.Errorf("%w %q", ErrUnknownKey, h.KeyID)
	}
	out, err := s.Open(make([]byte, 0, len(env)-h.Len), topic, env)
	return out, h.KeyID, err
}

// RingHolder holds the ring in force; rotation swaps it without locking the
// hot path.
type RingHolder struct{ p atomic.Pointer[Ring] }

// Load returns the ring in force (nil if none was stored).
func (h *RingHolder) Load() *Ring { return h.p.Load() }

// Store puts r in force.
func (h *RingHolder) Store(r *Ring) { h.p.Store(r) }

// Purposes of the ring's active keys: which key new envelopes are sealed
// under when the policy names none.
const (
	// PurposeAtRest seals payloads the broker stores (at-rest mode, and the
	// stored form of re-encrypted messages).
	PurposeAtRest = "at-rest"
	// PurposeReencrypt seals a re-encrypted message for a subscriber when
	// the policy's deliver decision names no key.
	PurposeReencrypt = "reencrypt"
)

// Reseal opens env, sealed for topic under any key of the ring, and seals
// its plaintext for the same topic under key id. It returns the id env was
// sealed under. The plaintext exists only inside the call: rewrapping and
// re-encryption never hand it out.
func (r *Ring) Reseal(id, topic string, env []byte) ([]byte, string, error) {
	s, ok := r.sealers[id]
	if !ok {
		return nil, "", fmt.Errorf("%w %q", ErrUnknownKey, id)
	}
	h, err := envelope.Parse(env)
	if err != nil {
		return nil, "", err
	}
	from, ok := r.sealers[h.KeyID]
	if !ok {
		return nil, h.KeyID, fmt.Errorf("%w %q", ErrUnknownKey, h.KeyID)
	}
	buf := r.scratch.Get().(*[]byte)
	defer r.scratch.Put(buf)
	plain, err := from.Open((*buf)[:0], topic, env)
	if err != nil {
		return nil, h.KeyID, err
	}
	*buf = plain[:0] // keep a grown buffer
	out, err := s.Seal(make([]byte, 0, len(plain)+s.Overhead()), topic, plain)
	clear(plain)
	return out, h.KeyID, err
}
