package wasm

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"time"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/blowfish"
)

// Password hashing host functions (sdk/ABI.md §6, "Password hashing").
//
// Why they exist: SHA-2, Argon2 and bcrypt compiled to wasm run 3 to 50
// times slower than natively (no SHA or vector instructions; a
// PBKDF2-HMAC-SHA512 at 210,000 iterations takes 1.5 s in a Go guest and
// 0.26 s in the host), so a password plugin would spend its deadline on
// the sandbox's overhead rather than on the hash's cost. The guest passes
// the password and the salt; the host hashes them and writes the result
// back. No broker key is involved: the host computes what the guest could
// compute itself, only faster.
//
// Why they are safe to offer to every module: each call's cost is bounded.
// They run on the goroutine that called the guest, where the epoch
// deadline cannot reach (the instrumented checks are in guest code), so
// pbkdf2 and bcrypt_compare check the call's deadline themselves every
// millisecond or so of work (hashCheck) and fail the call as a deadline
// error, as a guest loop would; argon2id cannot be stopped once it runs
// (golang.org/x/crypto/argon2 has no hook), so its work is capped at m·t ≤
// MaxArgon2Work (0.3 s for m = 64 MiB, t = 4, to 0.7 s for m = 256 MiB,
// t = 1, mostly touching fresh memory, on the shared 2-core Xeon the
// figures come from), and it does not start unless its estimated time fits
// in what is left of the deadline (see hostArgon2id). Argon2's memory is
// host memory, so m must fit in the plugin's memory_limit beside the
// instance's linear memory: one call cannot make the broker allocate more
// than the operator let the plugin have, and at most instances calls run
// at once. Whatever a host function returns after the deadline is not used
// (instance.call).
// Parameters beyond the caps return StatusTooLarge; a module that must
// honour them computes them itself, under its own deadline and memory
// limit.
//
// The caps on iterations, salts, digests, bcrypt cost and argon2's m, t
// and p are those of plugins/passwd/passwdfile, so that every hash a
// password file may hold can be checked here, save argon2id work above
// MaxArgon2Work.

// PBKDF2 hash ids, the first argument of pbkdf2.
const (
	HashSHA256 = 1
	HashSHA512 = 2
)

// Limits of the password hashing host functions (§6). Arguments beyond
// them make the call return StatusTooLarge and write nothing.
const (
	// MaxHashPassword is an MQTT password's own limit.
	MaxHashPassword = 65535
	// MaxHashSalt bounds a salt; salts are at least 1 byte.
	MaxHashSalt = 1024
	// MaxHashOutput bounds a derived key or tag (argon2id: at least 4).
	MaxHashOutput = 1024
	// MaxPBKDF2Iterations: 2.3 s of PBKDF2-HMAC-SHA512 natively, stopped
	// at the deadline like guest code.
	MaxPBKDF2Iterations = 2_000_000
	MaxArgon2Time       = 64
	MaxArgon2Threads    = 16
	// MaxArgon2Memory is in KiB (256 MiB); it is further bounded by the
	// plugin's memory limit.
	MaxArgon2Memory = 256 * 1024
	// MaxArgon2Work bounds m·t in KiB: 256 MiB-passes, 0.3 to 0.7 s, the
	// longest a host call may run past its deadline.
	MaxArgon2Work = 256 * 1024
	// MaxBcryptCost: 2^15 rounds, about 3 s natively, stopped at the
	// deadline like guest code.
	MaxBcryptCost = 15
)

// Deadline checks inside the loops: every hashCheckPBKDF2 iterations (about
// 0.7 ms of HMAC-SHA512 on the reference machine) and every hashCheckBcrypt
// rounds of bcrypt's key schedule (about 1.2 ms). A check costs a few
// nanoseconds.
const (
	hashCheckPBKDF2 = 1024
	hashCheckBcrypt = 16
)

// checkDeadline fails the call, as a deadline error, once the epoch has
// reached the call's deadline. wazero recovers the panic and fails the
// call; instance.fault sees the expired deadline and reports it as such.
func (in *instance) checkDeadline() {
	if in.m.e.expired(in) {
		panic(&deadlineError{timeout: in.m.timeout})
	}
}

// hostPBKDF2: pbkdf2(hash, pw_ptr, pw_len, salt_ptr, salt_len, iterations,
// out_ptr, out_len) -> i32.
func hostPBKDF2(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	pw := in.view(HostPBKDF2, stack[1], stack[2])
	salt := in.view(HostPBKDF2, stack[3], stack[4])
	out := in.view(HostPBKDF2, stack[6], stack[7])
	var h func() hash.Hash
	switch int32(stack[0]) {
	case HashSHA256:
		h = sha256.New
	case HashSHA512:
		h = sha512.New
	}
	iter := int32(stack[5])
	if h == nil || iter < 1 || iter > MaxPBKDF2Iterations || len(pw) > MaxHashPassword ||
		len(salt) < 1 || len(salt) > MaxHashSalt || len(out) < 1 || len(out) > MaxHashOutput {
		stack[0] = status(StatusTooLarge)
		return
	}
	in.checkDeadline()
	copy(out, in.pbkdf2(h, pw, salt, int(iter), len(out)))
	stack[0] = 0
}

// pbkdf2 is RFC 8018's PBKDF2 with HMAC, as crypto/pbkdf2 computes it (the
// same HMAC, so the same speed), with a deadline check every
// hashCheckPBKDF2 iterations. The key is built in host memory and copied
// out at the end, so overlapping guest buffers cannot corrupt it.
func (in *instance) pbkdf2(h func() hash.Hash, pw, salt []byte, iter, keyLen int) []byte {
	prf := hmac.New(h, pw)
	size := prf.Size()
	blocks := (keyLen + size - 1) / size
	dk := make([]byte, 0, blocks*size)
	u := make([]byte, 0, size)
	var ctr [4]byte
	for block := 1; block <= blocks; block++ {
		prf.Reset()
		prf.Write(salt)
		binary.BigEndian.PutUint32(ctr[:], uint32(block))
		prf.Write(ctr[:])
		dk = prf.Sum(dk)
		t := dk[len(dk)-size:]
		u = append(u[:0], t...)
		for n := 2; n <= iter; n++ {
			if n%hashCheckPBKDF2 == 0 {
				in.checkDeadline()
			}
			prf.Reset()
			prf.Write(u)
			u = prf.Sum(u[:0])
			subtle.XORBytes(t, t, u)
		}
	}
	return dk[:keyLen]
}

// hostArgon2id: argon2id(pw_ptr, pw_len, salt_ptr, salt_len, time,
// memory_kib, threads, out_ptr, out_len) -> i32.
//
// argon2.IDKey cannot be stopped once it runs, so its work is bounded
// before it starts, twice: its memory (m KiB) must fit in what the plugin's
// memory budget leaves beside the instance's linear memory (memoryRoomKiB),
// or the call returns StatusTooLarge; and its expected time (m·t passes at
// the Engine's measured rate) must fit in what is left of
// the deadline (argon2Fits), or the call fails as a deadline error at
// once rather than after the hash has run. An estimate that proves short
// is caught when the call returns (instance.call): the result is not used.
func hostArgon2id(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	pw := in.view(HostArgon2id, stack[0], stack[1])
	salt := in.view(HostArgon2id, stack[2], stack[3])
	out := in.view(HostArgon2id, stack[7], stack[8])
	t, m, p := uint32(stack[4]), uint32(stack[5]), uint32(stack[6])
	if t < 1 || t > MaxArgon2Time || p < 1 || p > MaxArgon2Threads ||
		m < 8*p || m > MaxArgon2Memory || m > in.memoryRoomKiB() || uint64(m)*uint64(t) > MaxArgon2Work ||
		len(pw) > MaxHashPassword || len(salt) < 1 || len(salt) > MaxHashSalt || len(out) < 4 || len(out) > MaxHashOutput {
		stack[0] = status(StatusTooLarge)
		return
	}
	work := uint64(m) * uint64(t)
	if !in.m.e.argon2Fits(work, in.m.e.remaining(in)) {
		panic(in.deadlineErr())
	}
	start := time.Now()
	key := argon2.IDKey(pw, salt, t, m, uint8(p), uint32(len(out)))
	in.m.e.argon2Observe(work, time.Since(start))
	copy(out, key)
	stack[0] = 0
}

// argon2Fits tells whether argon2id of work KiB-passes (m·t) should end
// within left, at the rate measured lately. A rate no call has confirmed
// for argon2Forget is forgotten, so that one slow spell (a loaded machine,
// a GC) cannot refuse every argon2id for good: refused calls measure
// nothing. Estimates are rough (cache effects make large m slower per
// KiB); one that proves short is caught when the call returns.
func (e *Engine) argon2Fits(work uint64, left time.Duration) bool {
	est := time.Duration(work * uint64(e.argon2Rate.Load()) / argon2RateUnit)
	if est <= left {
		return true
	}
	if time.Since(e.start)-time.Duration(e.argon2Seen.Load()) < argon2Forget {
		return false
	}
	e.argon2Rate.Store(argon2InitialRate)
	e.argon2Seen.Store(int64(time.Since(e.start)))
	return work*argon2InitialRate/argon2RateUnit <= uint64(left)
}

// argon2Observe folds one measured argon2id run into the Engine's rate:
// a slower run raises it at once (the machine is loaded, or the race
// detector is on), a faster one lowers it by an eighth of the difference,
// so that the estimate stays on the slow side.
func (e *Engine) argon2Observe(work uint64, took time.Duration) {
	if work < argon2MinSample {
		return // too short to measure the rate
	}
	r := uint64(took) * argon2RateUnit / work
	old := uint64(e.argon2Rate.Load())
	if r < old {
		r = old - (old-r)/8
	}
	e.argon2Rate.Store(int64(max(r, 1)))
	e.argon2Seen.Store(int64(time.Since(e.start)))
}

// The argon2id rate is kept in nanoseconds per argon2RateUnit KiB-passes.
// It starts at argon2InitialRate, 1.5 µs per KiB-pass, what m = 1-4 MiB
// takes on the reference machine (64 MiB takes 1.1 to 3 µs, 256 MiB 2.7 to
// 12 µs, depending on load), and a measured rate older than argon2Forget
// falls back to it.
const (
	argon2RateUnit    = 1024
	argon2InitialRate = 1500 * argon2RateUnit
	argon2MinSample   = 1024 // 1 MiB-pass
	argon2Forget      = 10 * time.Second
)

// memoryRoomKiB is what the instance's memory budget leaves for a host
// buffer, in KiB: the plugin's memory_limit less the linear memory the
// instance has now and the engine stacks it keeps (sdk/ABI.md §7, "Memory
// budget and deadlines"). Neither can grow while a host function runs, so
// all three together stay within the limit.
func (in *instance) memoryRoomKiB() uint32 {
	limit := uint64(in.m.memoryLimit)
	used := uint64(in.mem.Size()) + in.stacksKept()
	if used >= limit {
		return 0
	}
	return uint32(min((limit-used)/1024, 1<<32-1))
}

// stacksKept is the engine stack the instance's functions hold between
// calls, at most StackRetain each.
func (in *instance) stacksKept() uint64 {
	var n uint64
	for _, fn := range in.decide {
		if fn != nil {
			n += uint64(max(in.stackSize(fn), 0))
		}
	}
	return n + uint64(max(in.stackSize(in.buffer), 0))
}

// bcrypt's hash string: "$2b$" (or $2a$, $2y$), two cost digits, "$", 22
// characters of salt and 31 of hash in bcrypt's base64 alphabet.
const (
	bcryptLen      = 60
	bcryptSaltEnd  = 7 + 22
	bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	bcryptMaxKey   = 72 // bcrypt's key schedule reads 18 words of the key
)

var bcryptB64 = base64.NewEncoding(bcryptAlphabet).WithPadding(base64.NoPadding)

// bcryptMagic is "OrpheanBeholderScryDoubt", the text bcrypt encrypts.
var bcryptMagic = [24]byte{'O', 'r', 'p', 'h', 'e', 'a', 'n', 'B', 'e', 'h', 'o', 'l', 'd', 'e', 'r', 'S', 'c', 'r', 'y', 'D', 'o', 'u', 'b', 't'}

// hostBcryptCompare: bcrypt_compare(hash_ptr, hash_len, pw_ptr, pw_len) ->
// i32: 1 match, 0 mismatch, StatusTooLarge for a malformed hash or a cost
// above MaxBcryptCost.
func hostBcryptCompare(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	hashed := in.view(HostBcryptCompare, stack[0], stack[1])
	pw := in.view(HostBcryptCompare, stack[2], stack[3])
	cost, salt, ok := parseBcrypt(hashed)
	if !ok || len(pw) > MaxHashPassword {
		stack[0] = status(StatusTooLarge)
		return
	}
	in.checkDeadline()
	sum := in.bcrypt(pw, salt, cost)
	var enc [31]byte
	bcryptB64.Encode(enc[:], sum[:23])
	stack[0] = status(int32(subtle.ConstantTimeCompare(enc[:], hashed[bcryptSaltEnd:])))
}

// parseBcrypt checks a bcrypt hash string and returns its cost and decoded
// salt. Only the versions password files hold are accepted: 2a, 2b and 2y
// (which differ only in how their creators handled non-ASCII passwords;
// the check is the same), not the buggy 2x.
func parseBcrypt(h []byte) (cost int, salt []byte, ok bool) {
	if len(h) != bcryptLen || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$' {
		return 0, nil, false
	}
	switch h[2] {
	case 'a', 'b', 'y':
	default:
		return 0, nil, false
	}
	if h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' {
		return 0, nil, false
	}
	cost = int(h[4]-'0')*10 + int(h[5]-'0')
	if cost < 4 || cost > MaxBcryptCost {
		return 0, nil, false
	}
	for _, c := range h[7:] {
		if !isBcryptChar(c) {
			return 0, nil, false
		}
	}
	// 22 characters carry 132 bits: 16 bytes and 4 bits that every bcrypt
	// ignores, as the non-strict decoder does.
	salt = make([]byte, 16)
	if n, err := bcryptB64.Decode(salt, h[7:bcryptSaltEnd]); err != nil || n != 16 {
		return 0, nil, false
	}
	return cost, salt, true
}

func isBcryptChar(c byte) bool {
	return c == '.' || c == '/' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}

// bcrypt computes the 24 bytes bcrypt encrypts, as golang.org/x/crypto/bcrypt
// does (with the same blowfish key schedule, so at the same speed), with a
// deadline check every hashCheckBcrypt rounds of the key schedule.
func (in *instance) bcrypt(pw, salt []byte, cost int) [24]byte {
	// The key is the password and its NUL terminator (bug compatibility
	// with C), of which the key schedule reads the first 72 bytes; cutting
	// it there changes nothing and bounds the copy.
	key := make([]byte, 0, bcryptMaxKey+1)
	key = append(key, pw[:min(len(pw), bcryptMaxKey)]...)
	if len(key) < bcryptMaxKey {
		key = append(key, 0)
	}
	c, err := blowfish.NewSaltedCipher(key, salt)
	if err != nil { // only for an empty key or salt, which cannot happen here
		panic(err)
	}
	rounds := 1 << cost
	for i := range rounds {
		if i%hashCheckBcrypt == 0 {
			in.checkDeadline()
		}
		blowfish.ExpandKey(key, c)
		blowfish.ExpandKey(salt, c)
	}
	out := bcryptMagic
	for i := 0; i < len(out); i += 8 {
		for range 64 {
			c.Encrypt(out[i:i+8], out[i:i+8])
		}
	}
	return out
}
