package passwdfile

import (
	"crypto"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/moat-mqtt/moat/plugins/scram/scramauth"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Caps on the parameters of a hash read from a file; see the package doc.
const (
	MaxPBKDF2Iterations  = scramauth.MaxIterations // 2,000,000
	MaxBcryptCost        = 15
	MaxArgon2Memory      = 256 * 1024 // KiB
	MaxArgon2Time        = 64
	MaxArgon2Parallelism = 16
	MaxArgon2Work        = 1024 * 1024 // m·t, KiB

	maxSalt   = 1024
	maxDigest = 1024
	// minGoAuthKey refuses go-auth digests so short that a random password
	// matches by chance (go-auth itself compares only as many bytes as the
	// stored digest has, so an empty digest matches everything).
	minGoAuthKey = 16
)

// Format names accepted by Hash and by `moat passwd -H`.
const (
	FormatArgon2id     = "argon2id"
	FormatSHA512PBKDF2 = "sha512-pbkdf2" // Mosquitto 2.x $7$
	FormatSHA512       = "sha512"        // Mosquitto 1.x $6$
	FormatBcrypt       = "bcrypt"
	FormatPBKDF2SHA256 = "pbkdf2-sha256" // mosquitto-go-auth
	FormatPBKDF2SHA512 = "pbkdf2-sha512" // mosquitto-go-auth
	FormatSCRAMSHA256  = "scram-sha-256"
	FormatSCRAMSHA512  = "scram-sha-512"

	// DefaultFormat is what Hash and `moat passwd` write unless told.
	DefaultFormat = FormatArgon2id
)

// Formats lists the format names Hash accepts, default first.
func Formats() []string {
	return []string{FormatArgon2id, FormatSHA512PBKDF2, FormatSHA512, FormatBcrypt,
		FormatPBKDF2SHA256, FormatPBKDF2SHA512, FormatSCRAMSHA256, FormatSCRAMSHA512}
}

// Defaults of Hash, and why.
const (
	// OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
	// About 35 ms native and 230 ms in the wasm plugin: every CONNECT
	// attempt costs that much CPU, which is the point and the limit.
	argon2Memory = 19 * 1024
	argon2Time   = 2
	argon2Par    = 1
	argon2Salt   = 16
	argon2Key    = 32

	// Mosquitto 2.0 refuses $7$ and $6$ salts of any length but 12, so
	// that is what we write. Iterations: OWASP's 210,000 for
	// PBKDF2-HMAC-SHA512, not mosquitto_passwd's 101 (2.0) or 1000 (2.1),
	// which a GPU tries in microseconds; -I lowers it when a slow
	// embedded broker must share the file.
	mosqSalt       = 12
	mosqIterations = 210_000

	// OWASP minimum for bcrypt, and mosquitto-go-auth's default.
	bcryptCost = 10

	// mosquitto-go-auth: 16-byte salts (its default); OWASP iterations;
	// key as long as the hash.
	goAuthSalt          = 16
	goAuthIterations256 = 600_000
	goAuthIterations512 = 210_000

	scramSalt = 16
	// RFC 7677 §4: at least 4096. The client pays it, not the broker.
	scramMinIterations = 4096
)

// HashOptions tune Hash. The zero value gives the defaults.
type HashOptions struct {
	// Iterations overrides the cost: PBKDF2 and SCRAM iterations, the
	// bcrypt cost, the argon2id time parameter t. sha512 has none.
	Iterations int
	// Rand supplies salts; nil means crypto/rand. bcrypt always uses
	// crypto/rand.
	Rand io.Reader
}

// Hash hashes password in format with the default parameters (see the
// constants' comments): the text to put after "username:".
func Hash(password []byte, format string) (string, error) {
	return HashWith(password, format, HashOptions{})
}

// CheckHashOptions reports whether HashWith would accept format and o,
// without hashing (which costs up to a second at the defaults).
func CheckHashOptions(format string, o HashOptions) error {
	lo, hi, ok := iterationRange(format)
	switch {
	case !ok:
		return fmt.Errorf("passwd: unknown format %q (want one of %s)", format, strings.Join(Formats(), ", "))
	case o.Iterations != 0 && hi == 0:
		return fmt.Errorf("passwd: %s has no iteration count", format)
	case o.Iterations != 0 && (o.Iterations < lo || o.Iterations > hi):
		return fmt.Errorf("passwd: %s: iterations %d out of range %d to %d", format, o.Iterations, lo, hi)
	}
	return nil
}

// iterationRange is the range of HashOptions.Iterations for format; hi is
// 0 for a format without a cost.
func iterationRange(format string) (lo, hi int, ok bool) {
	switch format {
	case FormatArgon2id:
		return 1, min(MaxArgon2Time, MaxArgon2Work/argon2Memory), true
	case FormatSHA512PBKDF2, FormatPBKDF2SHA256, FormatPBKDF2SHA512:
		return 1, MaxPBKDF2Iterations, true
	case FormatSHA512:
		return 0, 0, true
	case FormatBcrypt:
		return bcrypt.MinCost, MaxBcryptCost, true
	case FormatSCRAMSHA256, FormatSCRAMSHA512:
		return scramMinIterations, scramauth.MaxIterations, true
	}
	return 0, 0, false
}

// HashWith is Hash with options.
func HashWith(password []byte, format string, o HashOptions) (string, error) {
	if err := CheckHashOptions(format, o); err != nil {
		return "", err
	}
	rnd := o.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	salt := func(n int) ([]byte, error) {
		b := make([]byte, n)
		if _, err := io.ReadFull(rnd, b); err != nil {
			return nil, fmt.Errorf("passwd: salt: %w", err)
		}
		return b, nil
	}
	iter := func(def int) int {
		if o.Iterations == 0 {
			return def
		}
		return o.Iterations
	}
	std := base64.StdEncoding

	switch format {
	case FormatArgon2id:
		t := iter(argon2Time)
		s, err := salt(argon2Salt)
		if err != nil {
			return "", err
		}
		sum := argon2.IDKey(password, s, uint32(t), argon2Memory, argon2Par, argon2Key)
		raw := base64.RawStdEncoding
		return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argon2Memory, t, argon2Par,
			raw.EncodeToString(s), raw.EncodeToString(sum)), nil

	case FormatSHA512PBKDF2:
		n := iter(mosqIterations)
		s, err := salt(mosqSalt)
		if err != nil {
			return "", err
		}
		sum, err := pbkdf2.Key(sha512.New, string(password), s, n, sha512.Size)
		if err != nil {
			return "", fmt.Errorf("passwd: %s: %w", format, err)
		}
		return "$7$" + strconv.Itoa(n) + "$" + std.EncodeToString(s) + "$" + std.EncodeToString(sum), nil

	case FormatSHA512:
		s, err := salt(mosqSalt)
		if err != nil {
			return "", err
		}
		return "$6$" + std.EncodeToString(s) + "$" + std.EncodeToString(sha512Salted(password, s)), nil

	case FormatBcrypt:
		h, err := bcrypt.GenerateFromPassword(password, iter(bcryptCost))
		if err != nil {
			return "", fmt.Errorf("passwd: %w", err) // "bcrypt: ..."
		}
		return string(h), nil

	case FormatPBKDF2SHA256, FormatPBKDF2SHA512:
		alg, prf, size, def := "sha512", sha512.New, sha512.Size, goAuthIterations512
		if format == FormatPBKDF2SHA256 {
			alg, prf, size, def = "sha256", sha256.New, sha256.Size, goAuthIterations256
		}
		n := iter(def)
		s, err := salt(goAuthSalt)
		if err != nil {
			return "", err
		}
		sum, err := pbkdf2.Key(prf, string(password), s, n, size)
		if err != nil {
			return "", fmt.Errorf("passwd: %s: %w", format, err)
		}
		return "PBKDF2$" + alg + "$" + strconv.Itoa(n) + "$" + std.EncodeToString(s) + "$" + std.EncodeToString(sum), nil

	case FormatSCRAMSHA256, FormatSCRAMSHA512:
		mech := scramauth.SHA256
		if format == FormatSCRAMSHA512 {
			mech = scramauth.SHA512
		}
		n := iter(scramauth.DefaultIterations)
		s, err := salt(scramSalt)
		if err != nil {
			return "", err
		}
		c, err := scramauth.NewCredentials(mech, password, s, n)
		if err != nil {
			return "", fmt.Errorf("passwd: %s: %w", format, err)
		}
		return c.Encode(), nil
	}
	return "", fmt.Errorf("passwd: unknown format %q (want one of %s)", format, strings.Join(Formats(), ", "))
}

func sha512Salted(password, salt []byte) []byte {
	h := sha512.New()
	h.Write(password)
	h.Write(salt)
	return h.Sum(nil)
}

// kind is a parsed hash's format.
type kind uint8

const (
	kindSHA512 kind = iota + 1
	kindMosqPBKDF2
	kindArgon2id
	kindBcrypt
	kindGoAuthPBKDF2
	kindSCRAM
)

// entry is one parsed hash: what Verify needs, precomputed at load.
type entry struct {
	kind  kind
	text  string // as in the file (trimmed), for writing back
	salt  []byte
	sum   []byte
	iter  int         // PBKDF2 iterations, bcrypt cost, argon2 t
	mem   uint32      // argon2 m, KiB
	par   uint8       // argon2 p
	alg   crypto.Hash // PBKDF2's and SCRAM's hash
	scram scramauth.Credentials
}

// verify checks password with h; its cost depends only on the entry's
// parameters. An error from h (a host refusing the parameters) is a
// refusal.
func (e *entry) verify(h Hasher, password []byte) bool {
	var got []byte
	var err error
	switch e.kind {
	case kindSHA512:
		got = sha512Salted(password, e.salt)
	case kindMosqPBKDF2, kindGoAuthPBKDF2:
		got, err = h.PBKDF2(e.alg, password, e.salt, e.iter, len(e.sum))
	case kindArgon2id:
		got, err = h.Argon2id(password, e.salt, uint32(e.iter), e.mem, e.par, uint32(len(e.sum)))
	case kindBcrypt:
		// Constant time inside.
		ok, err := h.BcryptCompare([]byte(e.text), password)
		return ok && err == nil
	case kindSCRAM:
		// scramauth.Credentials.Verify, with the PBKDF2 through h:
		// StoredKey = H(HMAC(SaltedPassword, "Client Key")), RFC 5802 §3.
		var sp []byte
		if sp, err = h.PBKDF2(e.alg, password, e.salt, e.iter, e.alg.Size()); err == nil {
			mac := hmac.New(e.alg.New, sp)
			mac.Write([]byte("Client Key"))
			d := e.alg.New()
			d.Write(mac.Sum(nil))
			got = d.Sum(nil)
		}
	default:
		return false
	}
	return err == nil && subtle.ConstantTimeCompare(got, e.sum) == 1
}

// costKey groups entries that cost the same to verify, to pick the dummy.
func (e *entry) costKey() string {
	return fmt.Sprintf("%d/%d/%d/%d/%d/%d", e.kind, e.iter, e.mem, e.par, len(e.sum), e.scram.Iterations())
}

// defaultDummy is verified against for unknown users when the file is
// empty: what Hash writes by default.
var defaultDummy = entry{
	kind: kindArgon2id, salt: make([]byte, argon2Salt), sum: make([]byte, argon2Key),
	iter: argon2Time, mem: argon2Memory, par: argon2Par,
}

// Salt encodings of mosquitto-go-auth PBKDF2 hashes.
const (
	SaltBase64 = "base64"
	SaltUTF8   = "utf-8"
)

// knownForeign are crypt(3)-style identifiers that are safe to quote in an
// error ("unknown hash format "$5$"") because they are formats, not someone's
// plaintext password.
var knownForeign = map[string]bool{
	"1": true, "2": true, "2x": true, "3": true, "5": true, "y": true, "gy": true, "md5": true,
	"sha1": true, "apr1": true, "argon2i": true, "argon2d": true, "scrypt": true,
	"pbkdf2": true, "pbkdf2-sha1": true, "pbkdf2-sha256": true, "pbkdf2-sha512": true,
	"scram-sha-1": true, "bcrypt-sha256": true,
}

// errUnknown is the error for a value in no known format. It never quotes
// the value: a plaintext password in the file would end up in a log.
func errUnknown(s string) error {
	if strings.HasPrefix(s, "$") {
		if id, _, ok := strings.Cut(s[1:], "$"); ok && knownForeign[id] {
			return fmt.Errorf("unknown hash format %q", "$"+id+"$")
		}
	}
	return errors.New("unrecognized hash (value not shown; if it is a plaintext password, hash the file with moat passwd -U)")
}

// looksHashed reports whether s starts like one of the formats this package
// reads: such a value is parsed strictly, anything else is plaintext to
// `moat passwd -U`.
func looksHashed(s string) bool {
	for _, p := range []string{"$6$", "$7$", "$argon2id$", "$2a$", "$2b$", "$2y$", "PBKDF2$"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return scramauth.IsCredentials(s)
}

// parseHash parses one hash. Errors name the format and what is wrong, and
// never quote the salt or digest.
func parseHash(s string, goAuthSalt string) (*entry, error) {
	switch {
	case strings.HasPrefix(s, "$6$"):
		return parseMosqSHA512(s)
	case strings.HasPrefix(s, "$7$"):
		return parseMosqPBKDF2(s)
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "PBKDF2$"):
		return parseGoAuth(s, goAuthSalt)
	case scramauth.IsCredentials(s):
		return parseSCRAM(s)
	case strings.HasPrefix(s, "$argon2id"):
		return nil, errors.New("$argon2id hash without v=19: Argon2 version 1.0 is not supported")
	}
	return nil, errUnknown(s)
}

// parseSCRAM keeps, besides the credentials the scram plugin serves, the
// salt, iterations and StoredKey that a plain password is checked against
// (scramauth does not export them, and Verify must hash through the
// Hasher).
func parseSCRAM(s string) (*entry, error) {
	c, err := scramauth.ParseCredentials(s)
	if err != nil {
		return nil, err
	}
	e := &entry{kind: kindSCRAM, text: s, scram: c, iter: c.Iterations(), alg: crypto.SHA256}
	if c.Mechanism() == scramauth.SHA512 {
		e.alg = crypto.SHA512
	}
	// "", "scram-sha-256", "i=<n>", salt, StoredKey, ServerKey: valid, since
	// ParseCredentials accepted it.
	parts := strings.Split(s, "$")
	if e.salt, err = decodeB64(parts[3]); err != nil {
		return nil, err
	}
	if e.sum, err = decodeB64(parts[4]); err != nil {
		return nil, err
	}
	return e, nil
}

func parseMosqSHA512(s string) (*entry, error) {
	const glibc = "$6$ hash looks like glibc's SHA-crypt, not Mosquitto's $6$ (one SHA-512 pass): not supported"
	parts := strings.Split(s[len("$6$"):], "$")
	if strings.HasPrefix(parts[0], "rounds=") {
		return nil, errors.New(glibc)
	}
	if len(parts) != 2 {
		return nil, errors.New("$6$ hash: want $6$<salt>$<hash>")
	}
	salt, err := decodeSalt("$6$", parts[0])
	if err != nil {
		return nil, err
	}
	sum, err := decodeDigest("$6$", parts[1], sha512.Size, sha512.Size)
	if err != nil {
		if len(parts[1]) == 86 { // SHA-crypt's digest, in its own base64
			return nil, errors.New(glibc)
		}
		return nil, err
	}
	return &entry{kind: kindSHA512, text: s, salt: salt, sum: sum}, nil
}

func parseMosqPBKDF2(s string) (*entry, error) {
	parts := strings.Split(s[len("$7$"):], "$")
	if len(parts) != 3 {
		return nil, errors.New("$7$ hash: want $7$<iterations>$<salt>$<hash>")
	}
	n, err := parseCount("$7$ hash: iteration count", parts[0], 1, MaxPBKDF2Iterations)
	if err != nil {
		return nil, err
	}
	salt, err := decodeSalt("$7$", parts[1])
	if err != nil {
		return nil, err
	}
	sum, err := decodeDigest("$7$", parts[2], sha512.Size, sha512.Size)
	if err != nil {
		return nil, err
	}
	return &entry{kind: kindMosqPBKDF2, text: s, salt: salt, sum: sum, iter: n, alg: crypto.SHA512}, nil
}

func parseArgon2id(s string) (*entry, error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	parts := strings.Split(s, "$")
	if len(parts) == 5 && strings.HasPrefix(parts[2], "m=") {
		return nil, errors.New("$argon2id hash without v=19: Argon2 version 1.0 is not supported")
	}
	if len(parts) != 6 {
		return nil, errors.New("argon2id hash: want $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>")
	}
	if parts[2] != "v=19" {
		if strings.HasPrefix(parts[2], "m=") {
			return nil, errors.New("$argon2id hash without v=19: Argon2 version 1.0 is not supported")
		}
		return nil, errors.New("argon2id hash: version must be v=19")
	}
	ps := strings.Split(parts[3], ",")
	if len(ps) != 3 || !strings.HasPrefix(ps[0], "m=") || !strings.HasPrefix(ps[1], "t=") || !strings.HasPrefix(ps[2], "p=") {
		return nil, errors.New("argon2id hash: parameters must be m=<KiB>,t=<passes>,p=<lanes>")
	}
	p, err := parseCount("argon2id hash: p", ps[2][2:], 1, MaxArgon2Parallelism)
	if err != nil {
		return nil, err
	}
	m, err := parseCount("argon2id hash: m", ps[0][2:], 8*p, MaxArgon2Memory)
	if err != nil {
		return nil, err
	}
	t, err := parseCount("argon2id hash: t", ps[1][2:], 1, MaxArgon2Time)
	if err != nil {
		return nil, err
	}
	if m*t > MaxArgon2Work {
		return nil, fmt.Errorf("argon2id hash: m·t = %d KiB above the cap of %d", m*t, MaxArgon2Work)
	}
	salt, err := decodeSalt("argon2id", parts[4])
	if err != nil {
		return nil, err
	}
	sum, err := decodeDigest("argon2id", parts[5], 4, maxDigest)
	if err != nil {
		return nil, err
	}
	return &entry{kind: kindArgon2id, text: s, salt: salt, sum: sum, iter: t, mem: uint32(m), par: uint8(p)}, nil
}

// bcryptAlphabet is bcrypt's base64 alphabet.
const bcryptAlphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func parseBcrypt(s string) (*entry, error) {
	// $2b$NN$ + 22 chars of salt + 31 chars of hash.
	if len(s) != 60 || s[6] != '$' {
		return nil, errors.New("bcrypt hash: want $2b$<two-digit cost>$<53 characters>")
	}
	cost, err := parseCount("bcrypt hash: cost", s[4:6], bcrypt.MinCost, 31)
	if err != nil {
		return nil, err
	}
	if cost > MaxBcryptCost {
		return nil, fmt.Errorf("bcrypt hash: cost %d above the cap of %d", cost, MaxBcryptCost)
	}
	for i := 7; i < len(s); i++ {
		if strings.IndexByte(bcryptAlphabet, s[i]) < 0 {
			return nil, errors.New("bcrypt hash: salt and hash must be bcrypt base64")
		}
	}
	return &entry{kind: kindBcrypt, text: s, iter: cost}, nil
}

func parseGoAuth(s, saltEncoding string) (*entry, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 5 {
		return nil, errors.New("PBKDF2 hash: want PBKDF2$sha256|sha512$<iterations>$<salt>$<hash>")
	}
	var alg crypto.Hash
	switch parts[1] {
	case "sha256":
		alg = crypto.SHA256
	case "sha512":
		alg = crypto.SHA512
	default:
		return nil, errors.New("PBKDF2 hash: algorithm must be sha256 or sha512")
	}
	n, err := parseCount("PBKDF2 hash: iteration count", parts[2], 1, MaxPBKDF2Iterations)
	if err != nil {
		return nil, err
	}
	var salt []byte
	switch saltEncoding {
	case SaltUTF8:
		if parts[3] == "" || len(parts[3]) > maxSalt {
			return nil, fmt.Errorf("PBKDF2 hash: salt must be 1 to %d bytes", maxSalt)
		}
		salt = []byte(parts[3])
	default:
		if salt, err = decodeSalt("PBKDF2", parts[3]); err != nil {
			return nil, err
		}
	}
	sum, err := decodeDigest("PBKDF2", parts[4], minGoAuthKey, maxDigest)
	if err != nil {
		return nil, err
	}
	return &entry{kind: kindGoAuthPBKDF2, text: s, salt: salt, sum: sum, iter: n, alg: alg}, nil
}

// parseCount parses an unsigned decimal in [lo, hi].
func parseCount(what, s string, lo, hi int) (int, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%s is not a number", what)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s must be %d to %d", what, lo, hi)
	}
	return n, nil
}

// decodeB64 accepts standard base64 with or without padding.
func decodeB64(s string) ([]byte, error) {
	if strings.HasSuffix(s, "=") {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func decodeSalt(format, s string) ([]byte, error) {
	b, err := decodeB64(s)
	if err != nil || len(b) == 0 || len(b) > maxSalt {
		return nil, fmt.Errorf("%s hash: salt must be 1 to %d bytes of base64", format, maxSalt)
	}
	return b, nil
}

func decodeDigest(format, s string, lo, hi int) ([]byte, error) {
	b, err := decodeB64(s)
	if err != nil || len(b) < lo || len(b) > hi {
		if lo == hi {
			return nil, fmt.Errorf("%s hash: digest must be %d bytes of base64", format, lo)
		}
		return nil, fmt.Errorf("%s hash: digest must be %d to %d bytes of base64", format, lo, hi)
	}
	return b, nil
}
