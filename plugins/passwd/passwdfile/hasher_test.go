package passwdfile

import (
	"crypto"
	"errors"
	"sync/atomic"
	"testing"
)

// countingHasher counts the calls that reach it and can refuse them all,
// as a host beyond its limits would.
type countingHasher struct {
	Hasher
	calls  atomic.Int32
	refuse bool
}

var errRefused = errors.New("refused")

func (h *countingHasher) PBKDF2(alg crypto.Hash, password, salt []byte, iter, n int) ([]byte, error) {
	h.calls.Add(1)
	if h.refuse {
		return nil, errRefused
	}
	return h.Hasher.PBKDF2(alg, password, salt, iter, n)
}

func (h *countingHasher) Argon2id(password, salt []byte, t, m uint32, p uint8, n uint32) ([]byte, error) {
	h.calls.Add(1)
	if h.refuse {
		return nil, errRefused
	}
	return h.Hasher.Argon2id(password, salt, t, m, p, n)
}

func (h *countingHasher) BcryptCompare(hashed, password []byte) (bool, error) {
	h.calls.Add(1)
	if h.refuse {
		return false, errRefused
	}
	return h.Hasher.BcryptCompare(hashed, password)
}

// TestHasher: every costly check goes through Options.Hasher (the passwd
// plugin's route to the broker's native hashing), and a Hasher that fails
// makes Verify refuse, never allow.
func TestHasher(t *testing.T) {
	users := []struct {
		user, password string
		hashed         bool // checked through the Hasher ($6$ is one SHA-512: not)
	}{
		{"mosq7", "secret", true},
		{"mosq7long", "mosquitto 2.1", true},
		{"mosq6", "secret2", false},
		{"argon", "password", true},
		{"bcrypt2b", "U*U*", true},
		{"test1", "test1", true},
		{"goauth256", "go-auth 256", true},
		{"user", "pencil", true},
		{"user512", "pencil", true},
	}
	for _, refuse := range []bool{false, true} {
		h := &countingHasher{Hasher: NativeHasher(), refuse: refuse}
		f := parseFile(t, "testdata/mixed.txt", Options{Hasher: h})
		for _, u := range users {
			before := h.calls.Load()
			got := f.Verify(u.user, []byte(u.password))
			called := h.calls.Load() > before
			if called != u.hashed {
				t.Errorf("refuse=%v %s: hasher called = %v, want %v", refuse, u.user, called, u.hashed)
			}
			if want := !refuse || !u.hashed; got != want {
				t.Errorf("refuse=%v %s: Verify = %v, want %v", refuse, u.user, got, want)
			}
		}
	}
}
