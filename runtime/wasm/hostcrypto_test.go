package wasm

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// The password hashing host functions are plain Go functions of an
// instance and a stack: these tests call them on a real instance of
// testdata/basic.wasm, with arguments in its memory, and compare with
// crypto/pbkdf2 and golang.org/x/crypto. The path from a guest's import to
// them is wazero's, the same for every host function; the passwd plugin's
// end-to-end tests (runtime/internal/e2e) call them from a Go guest.

// hashRig is an instance held for direct host calls, and a bump allocator
// over its memory from 16 KiB up (basic.wasm keeps its data below).
type hashRig struct {
	t    *testing.T
	m    *Module
	s    *slot
	in   *instance
	next uint32
}

func newHashRig(t *testing.T, cfg ModuleConfig) *hashRig {
	t.Helper()
	e := newEngine(t, nil)
	cfg.Instances = 1
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Minute // tests of the deadline set their own
	}
	m := testModule(t, e, "basic", cfg)
	s, err := m.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.pool.release(s) })
	r := &hashRig{t: t, m: m, s: s, in: s.in}
	r.reset(context.Background())
	return r
}

// reset frees the rig's memory and starts a new call's deadline.
func (r *hashRig) reset(ctx context.Context) {
	r.next = 16 << 10
	r.in.setDeadline(ctx)
}

// put copies b into guest memory and returns its pointer and length as
// stack values.
func (r *hashRig) put(b []byte) (uint64, uint64) {
	r.t.Helper()
	p := r.alloc(len(b))
	if !r.in.mem.Write(p, b) {
		r.t.Fatalf("write %d bytes at %#x", len(b), p)
	}
	return uint64(p), uint64(len(b))
}

func (r *hashRig) alloc(n int) uint32 {
	r.t.Helper()
	p := r.next
	r.next += uint32(n+7) &^ 7
	if r.next > r.in.mem.Size() {
		if _, ok := r.in.mem.Grow((r.next - r.in.mem.Size() + pageSize - 1) / pageSize); !ok {
			r.t.Fatalf("cannot grow memory to %d bytes", r.next)
		}
	}
	b, _ := r.in.mem.Read(p, uint32(n))
	clear(b)
	return p
}

func (r *hashRig) read(p uint64, n int) []byte {
	b, _ := r.in.mem.Read(uint32(p), uint32(n))
	return bytes.Clone(b)
}

// call runs a host function and returns its i32 result, or the value it
// panicked with.
func (r *hashRig) call(fn api.GoModuleFunc, stack []uint64) (res int32, panicked any) {
	defer func() { panicked = recover() }()
	fn(r.in.ctx, nil, stack)
	return int32(stack[0]), nil
}

func (r *hashRig) pbkdf2(hashID int32, pw, salt []byte, iter int32, n int) (int32, []byte, any) {
	pp, pl := r.put(pw)
	sp, sl := r.put(salt)
	op := uint64(r.alloc(n))
	st, p := r.call(hostPBKDF2, []uint64{uint64(uint32(hashID)), pp, pl, sp, sl, uint64(uint32(iter)), op, uint64(n)})
	return st, r.read(op, n), p
}

func (r *hashRig) argon2id(pw, salt []byte, t, m, p uint32, n int) (int32, []byte, any) {
	pp, pl := r.put(pw)
	sp, sl := r.put(salt)
	op := uint64(r.alloc(n))
	st, pn := r.call(hostArgon2id, []uint64{pp, pl, sp, sl, uint64(t), uint64(m), uint64(p), op, uint64(n)})
	return st, r.read(op, n), pn
}

func (r *hashRig) bcrypt(h, pw []byte) (int32, any) {
	hp, hl := r.put(h)
	pp, pl := r.put(pw)
	return r.call(hostBcryptCompare, []uint64{hp, hl, pp, pl})
}

func TestHostPBKDF2(t *testing.T) {
	r := newHashRig(t, ModuleConfig{})
	salt := []byte("NaCl, 16 bytes!!")
	tests := []struct {
		name   string
		hashID int32
		h      func() hash.Hash
		pw     string
		salt   []byte
		iter   int32
		n      int
	}{
		{"sha512 mosquitto $7$", HashSHA512, sha512.New, "correct horse", salt[:12], 101, 64},
		{"sha512 one block cut", HashSHA512, sha512.New, "pw", salt, 1000, 20},
		{"sha256 two blocks", HashSHA256, sha256.New, "pw", salt, 1000, 40},
		{"sha256 1024 bytes", HashSHA256, sha256.New, "pw", salt, 3, 1024},
		{"iterations over a check", HashSHA512, sha512.New, "pw", salt, 2*hashCheckPBKDF2 + 1, 64},
		{"empty password", HashSHA256, sha256.New, "", salt, 7, 32},
		{"long password", HashSHA512, sha512.New, string(bytes.Repeat([]byte("x"), MaxHashPassword)), salt, 2, 64},
		{"one-byte salt", HashSHA256, sha256.New, "pw", []byte{0}, 1, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r.reset(context.Background())
			st, got, p := r.pbkdf2(tc.hashID, []byte(tc.pw), tc.salt, tc.iter, tc.n)
			if p != nil || st != 0 {
				t.Fatalf("status %d, panic %v", st, p)
			}
			want, err := pbkdf2.Key(tc.h, tc.pw, tc.salt, int(tc.iter), tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %x\nwant %x", got, want)
			}
		})
	}

	refused := []struct {
		name   string
		hashID int32
		pw     int
		salt   int
		iter   int32
		n      int
	}{
		{"sha1 (reserved)", 3, 2, 16, 1, 20},
		{"hash 0", 0, 2, 16, 1, 20},
		{"zero iterations", HashSHA256, 2, 16, 0, 32},
		{"negative iterations", HashSHA256, 2, 16, -1, 32},
		{"iterations above the cap", HashSHA512, 2, 16, MaxPBKDF2Iterations + 1, 64},
		{"empty salt", HashSHA256, 2, 0, 1, 32},
		{"salt above the cap", HashSHA256, 2, MaxHashSalt + 1, 1, 32},
		{"empty output", HashSHA256, 2, 16, 1, 0},
		{"output above the cap", HashSHA256, 2, 16, 1, MaxHashOutput + 1},
		{"password above the cap", HashSHA256, MaxHashPassword + 1, 16, 1, 32},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			r.reset(context.Background())
			st, got, p := r.pbkdf2(tc.hashID, make([]byte, tc.pw), make([]byte, tc.salt), tc.iter, tc.n)
			if p != nil || st != StatusTooLarge {
				t.Fatalf("status %d, panic %v; want %d", st, p, StatusTooLarge)
			}
			if !bytes.Equal(got, make([]byte, tc.n)) {
				t.Fatal("wrote output on refusal")
			}
		})
	}
}

func TestHostArgon2id(t *testing.T) {
	// Linear memory (1 page, then what the rig grows) and argon2's m share
	// the memory limit: 4 MiB for argon2 leaves room for 1 MiB of memory.
	r := newHashRig(t, ModuleConfig{MemoryLimit: 5 << 20})
	pw, salt := []byte("password"), []byte("somesalt")
	for _, tc := range []struct{ t, m, p uint32 }{{2, 256, 1}, {1, 64, 2}, {3, 4096, 4}, {1, 8, 1}} {
		t.Run(fmt.Sprintf("t=%d,m=%d,p=%d", tc.t, tc.m, tc.p), func(t *testing.T) {
			r.reset(context.Background())
			st, got, p := r.argon2id(pw, salt, tc.t, tc.m, tc.p, 32)
			if p != nil || st != 0 {
				t.Fatalf("status %d, panic %v", st, p)
			}
			if want := argon2.IDKey(pw, salt, tc.t, tc.m, uint8(tc.p), 32); !bytes.Equal(got, want) {
				t.Fatalf("got %x\nwant %x", got, want)
			}
		})
	}
	// The reference vector of the Argon2 team's test.c, as in passwdfile's
	// testdata: $argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOg...
	r.reset(context.Background())
	if st, got, _ := r.argon2id(pw, salt, 2, 256, 1, 32); st != 0 || fmt.Sprintf("%x", got[:4]) != "9dfeb910" {
		t.Errorf("reference vector: status %d, tag %x", st, got)
	}

	refused := []struct {
		name    string
		t, m, p uint32
		pw, n   int
	}{
		{"time 0", 0, 64, 1, 8, 32},
		{"time above the cap", MaxArgon2Time + 1, 64, 1, 8, 32},
		{"threads 0", 1, 64, 0, 8, 32},
		{"threads above the cap", 1, 256, MaxArgon2Threads + 1, 8, 32},
		{"memory below 8 per thread", 1, 15, 2, 8, 32},
		{"memory above the memory limit", 1, 5120 + 64, 1, 8, 32},
		{"memory above what linear memory leaves", 1, 5120 - 16, 1, 8, 32},
		{"memory above the cap", 1, MaxArgon2Memory + 1, 1, 8, 32},
		{"tag of 3 bytes", 1, 64, 1, 8, 3},
		{"tag above the cap", 1, 64, 1, 8, MaxHashOutput + 1},
		{"password above the cap", 1, 64, 1, MaxHashPassword + 1, 32},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			r.reset(context.Background())
			st, _, p := r.argon2id(make([]byte, tc.pw), salt, tc.t, tc.m, tc.p, tc.n)
			if p != nil || st != StatusTooLarge {
				t.Fatalf("status %d, panic %v; want %d", st, p, StatusTooLarge)
			}
		})
	}

	// The work cap: m·t above MaxArgon2Work is refused even when the
	// memory limit would allow m.
	big := newHashRig(t, ModuleConfig{MemoryLimit: 512 << 20})
	if st, _, p := big.argon2id(pw, salt, 2, MaxArgon2Work/2+8, 1, 32); p != nil || st != StatusTooLarge {
		t.Errorf("m·t above the work cap: status %d, panic %v", st, p)
	}
}

func TestHostBcryptCompare(t *testing.T) {
	r := newHashRig(t, ModuleConfig{})
	rng := rand.New(rand.NewPCG(1, 2))
	pws := [][]byte{{}, []byte("a"), []byte("U*U"), []byte("pass\x00word"), []byte("ünïcödé")}
	for _, n := range []int{71, 72, 73, 200} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		pws = append(pws, b)
	}
	for i, pw := range pws {
		cost := 4 + i%2
		h, err := bcrypt.GenerateFromPassword(pw[:min(len(pw), 72)], cost)
		if err != nil {
			t.Fatal(err)
		}
		for _, version := range []byte{'a', 'b', 'y'} {
			h := bytes.Clone(h)
			h[2] = version
			t.Run(fmt.Sprintf("len=%d/$2%c$", len(pw), version), func(t *testing.T) {
				r.reset(context.Background())
				wrong := append(bytes.Clone(pw[:min(len(pw), 72)]), 'x')
				if len(pw) >= 72 {
					wrong = bytes.Clone(pw)
					wrong[71] ^= 1
				}
				for _, c := range []struct {
					pw   []byte
					want int32
				}{{pw, 1}, {wrong, 0}} {
					st, p := r.bcrypt(h, c.pw)
					xerr := bcrypt.CompareHashAndPassword(h, c.pw)
					if p != nil || st != c.want || (st == 1) != (xerr == nil) {
						t.Fatalf("password %q: status %d, panic %v, x/crypto %v; want %d", c.pw, st, p, xerr, c.want)
					}
				}
			})
		}
	}
	// crypt_blowfish's vectors, as in passwdfile's testdata.
	for h, pw := range map[string]string{
		"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW": "U*U",
		"$2b$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK": "U*U*",
	} {
		r.reset(context.Background())
		if st, p := r.bcrypt([]byte(h), []byte(pw)); st != 1 || p != nil {
			t.Errorf("%s: status %d, panic %v", h, st, p)
		}
	}

	good := []byte("$2b$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK")
	edit := func(i int, s string) []byte { b := bytes.Clone(good); copy(b[i:], s); return b }
	for name, h := range map[string][]byte{
		"empty":            {},
		"59 bytes":         good[:59],
		"61 bytes":         append(bytes.Clone(good), 'x'),
		"$2x$":             edit(2, "x"),
		"$2$":              edit(0, "$2$05"),
		"$3a$":             edit(1, "3"),
		"cost 03":          edit(4, "03"),
		"cost 16":          edit(4, "16"),
		"cost 31":          edit(4, "31"),
		"cost not digits":  edit(4, "1a"),
		"no $ after cost":  edit(6, "x"),
		"char outside b64": edit(20, "+"),
		"NUL in the hash":  edit(40, "\x00"),
	} {
		t.Run("malformed/"+name, func(t *testing.T) {
			r.reset(context.Background())
			if st, p := r.bcrypt(h, []byte("U*U")); st != StatusTooLarge || p != nil {
				t.Fatalf("status %d, panic %v; want %d", st, p, StatusTooLarge)
			}
		})
	}
	r.reset(context.Background())
	if st, p := r.bcrypt(good, make([]byte, MaxHashPassword+1)); st != StatusTooLarge || p != nil {
		t.Errorf("password above the cap: status %d, panic %v", st, p)
	}
}

// TestHostHashBounds: a pointer or length outside memory traps (a
// hostFault) before any limit is looked at.
func TestHostHashBounds(t *testing.T) {
	r := newHashRig(t, ModuleConfig{})
	wild := uint64(r.in.mem.Size() - 4)
	for name, c := range map[string]struct {
		fn    api.GoModuleFunc
		stack []uint64
	}{
		"pbkdf2 password":       {hostPBKDF2, []uint64{HashSHA256, wild, 16, 0, 1, 1, 0, 32}},
		"pbkdf2 output":         {hostPBKDF2, []uint64{HashSHA256, 0, 1, 0, 1, 1, wild, 32}},
		"pbkdf2 invalid too":    {hostPBKDF2, []uint64{99, 0, 1, 0, 1, 0, wild, 1 << 31}},
		"argon2id salt":         {hostArgon2id, []uint64{0, 1, wild, 8, 1, 64, 1, 0, 32}},
		"argon2id output":       {hostArgon2id, []uint64{0, 1, 0, 8, 1, 64, 1, wild, 32}},
		"bcrypt_compare hash":   {hostBcryptCompare, []uint64{wild, 60, 0, 1}},
		"bcrypt_compare passwd": {hostBcryptCompare, []uint64{0, 60, wild, 1 << 20}},
	} {
		t.Run(name, func(t *testing.T) {
			r.reset(context.Background())
			_, p := r.call(c.fn, c.stack)
			if _, ok := p.(*hostFault); !ok {
				t.Fatalf("panic %v (%T), want a hostFault", p, p)
			}
		})
	}
}

// TestHostHashDeadline: pbkdf2 and bcrypt_compare stop at the call's
// deadline with a deadline error (which instance.fault reports as such),
// and no hash function starts once the deadline has passed. Without the
// checks, 2,000,000 iterations would simply run to the end (seconds) and
// return 0.
func TestHostHashDeadline(t *testing.T) {
	r := newHashRig(t, ModuleConfig{Timeout: 5 * time.Millisecond})
	salt := []byte("0123456789abcdef")
	slowBcrypt := []byte("$2b$15$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK")
	calls := map[string]func() any{
		"pbkdf2": func() any {
			_, _, p := r.pbkdf2(HashSHA512, []byte("pw"), salt, MaxPBKDF2Iterations, 64)
			return p
		},
		"bcrypt_compare": func() any {
			_, p := r.bcrypt(slowBcrypt, []byte("pw"))
			return p
		},
	}
	for name, call := range calls {
		t.Run(name+"/stops at the deadline", func(t *testing.T) {
			r.reset(context.Background())
			p := call()
			var de *deadlineError
			if err, ok := p.(error); !ok || !errors.As(err, &de) {
				t.Fatalf("panic %v (%T), want a deadline error", p, p)
			}
			if !r.m.e.expired(r.in) {
				t.Fatal("stopped, but the deadline has not passed")
			}
		})
	}
	calls["argon2id"] = func() any {
		_, _, p := r.argon2id([]byte("pw"), salt, 1, 64, 1, 32)
		return p
	}
	for name, call := range calls {
		t.Run(name+"/does not start past the deadline", func(t *testing.T) {
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
			defer cancel()
			r.reset(ctx)
			if p := call(); p == nil {
				t.Fatal("ran past the deadline")
			}
		})
	}
}
