package crypto

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/sdk/envelope"
)

func writeKey(t *testing.T, dir, name string, content []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, content, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	raw := bytes.Repeat([]byte{0xAB}, 32)
	b64 := []byte(base64.StdEncoding.EncodeToString(raw) + "\n")
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		wantErr string
	}{
		{"raw", raw, 0o600, ""},
		{"base64", b64, 0o400, ""},
		{"group readable", raw, 0o640, "lets group or others"},
		{"world readable", b64, 0o644, "lets group or others"},
		{"short", raw[:31], 0o600, "want 32 raw bytes"},
		{"long base64", []byte(base64.StdEncoding.EncodeToString(append(raw, 1))), 0o600, "want 32 raw bytes"},
		{"garbage", []byte("not a key at all"), 0o600, "want 32 raw bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeKey(t, dir, strings.ReplaceAll(tc.name, " ", "_"), tc.content, tc.mode)
			k, err := ReadKeyFile(p)
			if tc.wantErr == "" {
				if err != nil || !bytes.Equal(k, raw) {
					t.Fatalf("ReadKeyFile = %x, %v", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), string(tc.content)) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString(raw)) {
				t.Fatal("error message contains key material")
			}
		})
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestRingRotation(t *testing.T) {
	dir := t.TempDir()
	k1 := filepath.Join(dir, "k1")
	k2 := filepath.Join(dir, "k2")
	for _, p := range []string{k1, k2} {
		if err := GenerateKeyFile(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := GenerateKeyFile(k1); err == nil {
		t.Fatal("GenerateKeyFile overwrote an existing key")
	}
	if st, _ := os.Stat(k1); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", st.Mode())
	}
	ctx := context.Background()
	old, err := NewRing(ctx, nil, []KeySpec{{ID: "k1", File: k1}}, map[string]string{"at-rest": "k1"})
	if err != nil {
		t.Fatal(err)
	}
	env, err := old.Seal(old.Active("at-rest"), "t/1", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := NewRing(ctx, nil, []KeySpec{{ID: "k1", File: k1}, {ID: "k2", File: k2, Algorithm: "chacha20-poly1305"}}, map[string]string{"at-rest": "k2"})
	if err != nil {
		t.Fatal(err)
	}
	var h RingHolder
	h.Store(old)
	h.Store(rotated)
	plain, id, err := h.Load().Open("t/1", env)
	if err != nil || id != "k1" || string(plain) != "secret" {
		t.Fatalf("old envelope after rotation: %q %q %v", plain, id, err)
	}
	env2, _ := rotated.Seal(rotated.Active("at-rest"), "t/1", []byte("new"))
	if _, id, err := rotated.Open("t/1", env2); err != nil || id != "k2" {
		t.Fatalf("new envelope: %q %v", id, err)
	}
	if _, id, err := old.Open("t/1", env2); !errors.Is(err, ErrUnknownKey) || id != "k2" {
		t.Fatalf("ring without k2: %q %v", id, err)
	}
}

func TestNewRingErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	if err := GenerateKeyFile(good); err != nil {
		t.Fatal(err)
	}
	loose := writeKey(t, dir, "loose", bytes.Repeat([]byte{1}, 32), 0o644)
	_, err := NewRing(context.Background(), nil, []KeySpec{
		{ID: "a", File: good},
		{ID: "a", File: good},
		{ID: "b", File: loose},
		{ID: "c", File: good, Algorithm: "rot13"},
	}, map[string]string{"at-rest": "zz"})
	if err == nil {
		t.Fatal("NewRing accepted bad keys")
	}
	for _, want := range []string{`key "a": defined twice`, `key "b"`, "lets group", `algorithm "rot13"`, `no key "zz"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// memKeys serves keys from memory.
type memKeys map[string][]byte

func (m memKeys) Load(_ context.Context, spec KeySpec) ([]byte, error) {
	k, ok := m[spec.ID]
	if !ok {
		return nil, errors.New("no such key")
	}
	return bytes.Clone(k), nil
}

func TestReseal(t *testing.T) {
	keys := memKeys{"a": bytes.Repeat([]byte{1}, 32), "b": bytes.Repeat([]byte{2}, 32)}
	r, err := NewRing(context.Background(), keys, []KeySpec{{ID: "a"}, {ID: "b", Algorithm: "chacha20-poly1305"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	env, err := r.Seal("a", "t/1", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	out, from, err := r.Reseal("b", "t/1", env)
	if err != nil || from != "a" {
		t.Fatalf("Reseal = %q, %v", from, err)
	}
	if plain, id, err := r.Open("t/1", out); err != nil || id != "b" || string(plain) != "secret" {
		t.Fatalf("resealed envelope: %q %q %v", plain, id, err)
	}
	tampered := bytes.Clone(env)
	tampered[len(tampered)-1] ^= 1
	for name, tc := range map[string]struct {
		id, topic string
		env       []byte
		want      error
	}{
		"unknown target": {"c", "t/1", env, ErrUnknownKey},
		"wrong topic":    {"b", "t/2", env, envelope.ErrAuth},
		"tampered":       {"b", "t/1", tampered, envelope.ErrAuth},
		"not envelope":   {"b", "t/1", []byte("plain"), envelope.ErrNotEnvelope},
	} {
		if _, _, err := r.Reseal(tc.id, tc.topic, tc.env); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}

// TestRingHolderHammer swaps rings while goroutines seal under the active
// key and open what they sealed: every envelope opens under whichever ring
// is in force, since both rings hold both keys.
func TestRingHolderHammer(t *testing.T) {
	keys := memKeys{"a": bytes.Repeat([]byte{1}, 32), "b": bytes.Repeat([]byte{2}, 32)}
	specs := []KeySpec{{ID: "a"}, {ID: "b"}}
	ra, _ := NewRing(context.Background(), keys, specs, map[string]string{PurposeAtRest: "a"})
	rb, _ := NewRing(context.Background(), keys, specs, map[string]string{PurposeAtRest: "b"})
	var h RingHolder
	h.Store(ra)
	done := make(chan struct{})
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				r := h.Load()
				env, err := r.Seal(r.Active(PurposeAtRest), "t", []byte("x"))
				if err == nil {
					_, _, err = h.Load().Open("t", env)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := range 2000 {
		if i%2 == 0 {
			h.Store(rb)
		} else {
			h.Store(ra)
		}
	}
	close(done)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
