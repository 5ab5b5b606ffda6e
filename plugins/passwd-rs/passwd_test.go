// Package passwdrs holds the Go tests of the Rust password-file plugin
// (passwd.rs, built into bin/plugins/passwd.wasm): they drive the module
// through the broker's wasm runtime and check every decision and every
// configure error against plugins/passwd/passwdfile, the reference, with
// files written by passwdfile's own hashing functions.
package passwdrs

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
	"golang.org/x/crypto/argon2"
)

// recipe is RUSTFLAGS_WASM of the Makefile (sdk/rust/README.md).
var recipe = []string{"--edition", "2021", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib",
	"-C", "panic=abort", "-C", "opt-level=s", "-C", "link-arg=-zstack-size=65536", "-C", "strip=symbols"}

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// shipped is the module `make build` writes from passwd.rs.
const shipped = "passwd.wasm"

// rustModule is bin/plugins/passwd.wasm when `make build` made it from
// passwd.rs after its last edit and moat.rs's, else a fresh build, so that
// a stale bin/ cannot hide a change.
func rustModule(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root := repoRoot()
		built = filepath.Join(root, "bin", "plugins", shipped)
		st, err := os.Stat(built)
		fresh := err == nil && st.Size() < 1<<20 // the Go module is megabytes
		for _, src := range []string{"plugins/passwd-rs/passwd.rs", "sdk/rust/moat.rs"} {
			if s, err := os.Stat(filepath.Join(root, src)); err != nil || fresh && s.ModTime().After(st.ModTime()) {
				fresh = false
			}
		}
		if fresh {
			return
		}
		dir, err := os.MkdirTemp("", "moat-passwd-rs-")
		if err != nil {
			buildErr = err
			return
		}
		built = filepath.Join(dir, "passwd.wasm")
		rustc := os.Getenv("RUSTC")
		if rustc == "" {
			rustc = "/usr/bin/rustc"
		}
		cmd := exec.Command(rustc, append(recipe, "plugins/passwd-rs/passwd.rs", "-o", built)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("%s: %v\n%s", rustc, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func repoRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}

func engine(t testing.TB) *wasm.Engine {
	t.Helper()
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	return e
}

// load loads module with text as its "passwords" file grant and the given
// [plugin.config] JSON ("" for none).
func load(t testing.TB, e *wasm.Engine, module, text, config string) (*wasm.Module, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "passwords")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := wasm.ModuleConfig{Name: "passwd", Path: module, Decisions: []string{"authn"}, Instances: 1,
		Files: map[string]string{"passwords": path}, Timeout: 20 * time.Second}
	if config != "" {
		cfg.ConfigJSON = []byte(config)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := e.Load(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { m.Close() })
	}
	return m, err
}

// query is one CONNECT.
type query struct {
	user, method string
	password     []byte
}

// reference is plugins/passwd's authenticate on passwdfile with the native
// hasher.
func reference(f *passwdfile.File, superusers []string, q query) (policy.Verdict, byte, bool) {
	if q.method != "" || q.user == "" {
		return policy.Ignore, 0, false
	}
	if f.Verify(q.user, q.password) {
		return policy.Allow, 0, slices.Contains(superusers, q.user)
	}
	if !f.Contains(q.user) {
		return policy.Ignore, 0, false
	}
	return policy.Deny, 0x86, false
}

// compare checks that the module and passwdfile agree on text: both refuse
// it with the same message (file and line first), or both accept it and
// answer every query alike. It returns the number of queries compared.
func compare(t *testing.T, e *wasm.Engine, module, text, config string, opts passwdfile.Options, superusers []string, qs []query) int {
	t.Helper()
	ref, refErr := passwdfile.ParseWith(strings.NewReader(text), "passwords", opts)
	m, err := load(t, e, module, text, config)
	if refErr != nil {
		if err == nil {
			t.Fatalf("passwdfile refuses the file (%v) but the Rust module loads it:\n%q", refErr, text)
		}
		// The Rust message is cut at 256 bytes.
		want := refErr.Error()
		if len(want) > 200 {
			want = want[:200]
		}
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("Rust error\n %q\ndoes not say\n %q\n%q", err, want, text)
		}
		return 0
	}
	if err != nil {
		t.Fatalf("passwdfile accepts the file but the Rust module refuses it: %v\n%q", err, text)
	}
	ctx := context.Background()
	for _, q := range qs {
		res, err := m.Authenticate(ctx, &policy.AuthnRequest{
			Client:     &policy.Client{ClientID: "c", Username: q.user, ProtocolVersion: 5},
			Password:   q.password,
			AuthMethod: q.method,
		})
		if err != nil {
			t.Fatalf("Authenticate(%q): %v", q.user, err)
		}
		v, reason, super := reference(ref, superusers, q)
		if res.Verdict != v || res.Verdict == policy.Deny && res.Reason != reason || res.Superuser != super {
			t.Fatalf("user %q password %q: Rust %v/%#x/super=%v, passwdfile %v/%#x/super=%v\nfile:\n%s",
				q.user, q.password, res.Verdict, res.Reason, res.Superuser, v, reason, super, text)
		}
	}
	return len(qs)
}

func randomPassword(r *rand.Rand, max int) []byte {
	return randomBytes(r, max, true)
}

// printable passwords for SCRAM lines (scramauth has no SASLprep).
func printable(r *rand.Rand, max int) []byte {
	return randomBytes(r, max, false)
}

func randomBytes(r *rand.Rand, max int, binary bool) []byte {
	b := make([]byte, r.Intn(max+1))
	for i := range b {
		if binary && r.Intn(4) == 0 {
			b[i] = byte(r.Intn(256))
		} else {
			b[i] = byte(' ' + r.Intn(95))
		}
	}
	return b
}

// cheap are the iteration counts that keep a test fast; each format's
// parameters are otherwise passwdfile's defaults.
var cheap = map[string]int{
	passwdfile.FormatArgon2id: 1, passwdfile.FormatSHA512PBKDF2: 1000, passwdfile.FormatBcrypt: 4,
	passwdfile.FormatPBKDF2SHA256: 1000, passwdfile.FormatPBKDF2SHA512: 1000,
	passwdfile.FormatSCRAMSHA256: 4096, passwdfile.FormatSCRAMSHA512: 4096,
}

// TestEveryFormat writes a file with a user of every format (passwdfile's
// HashWith, random passwords), plus go-auth lines with UTF-8 salts, and
// compares the module's answer to the right password, a wrong one, the
// right one with a byte changed, unknown users, anonymous and enhanced
// authentication, and superusers.
func TestEveryFormat(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	var text strings.Builder
	text.WriteString("# every format\n\n")
	pw := map[string][]byte{}
	var users []string
	for round := 0; round < 2; round++ {
		for _, f := range passwdfile.Formats() {
			u := fmt.Sprintf("%s-%d", f, round)
			p := randomPassword(r, 80)
			if strings.HasPrefix(f, "scram") {
				p = printable(r, 80)
			}
			if f == passwdfile.FormatBcrypt {
				p = p[:min(len(p), 72)] // bcrypt refuses longer ones
			}
			h, err := passwdfile.HashWith(p, f, passwdfile.HashOptions{Iterations: cheap[f]})
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			fmt.Fprintf(&text, "%s:%s\n", u, h)
			pw[u], users = p, append(users, u)
		}
	}
	// mosquitto-go-auth with hasher_salt_encoding utf-8.
	utf8Text := text.String()
	for i, alg := range []string{"sha256", "sha512"} {
		u, p, salt := "goauth-utf8-"+alg, randomPassword(r, 40), fmt.Sprintf("salt%d-%d", i, r.Int())
		h := sha512.New
		size := 64
		if alg == "sha256" {
			h, size = sha256New, 32
		}
		key, err := pbkdf2.Key(h, string(p), []byte(salt), 1000, size)
		if err != nil {
			t.Fatal(err)
		}
		utf8Text += fmt.Sprintf("%s:PBKDF2$%s$1000$%s$%s\n", u, alg, salt, base64.StdEncoding.EncodeToString(key))
		pw[u] = p
	}
	supers := []string{users[0], users[3], "nobody"}
	queries := func(us []string) []query {
		var qs []query
		for _, u := range us {
			p := pw[u]
			flip := bytes.Clone(p)
			if len(flip) > 0 {
				flip[r.Intn(len(flip))] ^= 1 << r.Intn(8)
			} else {
				flip = []byte("x")
			}
			qs = append(qs, query{user: u, password: p}, query{user: u, password: flip},
				query{user: u, password: append(bytes.Clone(p), 'x')}, query{user: u, password: nil},
				query{user: u, password: p, method: "SCRAM-SHA-256"})
		}
		return append(qs, query{user: "unknown", password: []byte("x")}, query{user: "", password: []byte("x")},
			query{user: "nobody", password: nil})
	}
	su := `{"superusers": ["` + strings.Join(supers, `","`) + `"]}`
	n := compare(t, e, mod, text.String(), su, passwdfile.Options{}, supers, queries(users))
	utf8Users := append(slices.Clone(users), "goauth-utf8-sha256", "goauth-utf8-sha512")
	n += compare(t, e, mod, utf8Text, `{"goauth_salt_encoding": "utf-8"}`, passwdfile.Options{GoAuthSaltEncoding: passwdfile.SaltUTF8}, nil, queries(utf8Users))
	// The same utf-8 lines under base64 salts: "salt0-..." is not base64.
	compare(t, e, mod, utf8Text, `{}`, passwdfile.Options{}, nil, nil)
	t.Logf("%d requests: same decisions", n)
}

// TestSHA512 checks the module's SHA-512 (Mosquitto $6$) and SHA-256 and
// HMAC (SCRAM lines) against crypto/sha512 and passwdfile: passwords and
// salts of random lengths across every block boundary.
func TestSHA512(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	var text strings.Builder
	pw := map[string][]byte{}
	var qs []query
	for i := 0; i < 400; i++ {
		u := fmt.Sprintf("u%d", i)
		p := randomPassword(r, 300)
		if i < 260 {
			p = randomPassword(r, 0)
			p = make([]byte, i) // every length around 64 and 128 and the padding boundaries
			r.Read(p)
		}
		salt := make([]byte, 1+r.Intn(200))
		r.Read(salt)
		h := sha512.New()
		h.Write(p)
		h.Write(salt)
		fmt.Fprintf(&text, "%s:$6$%s$%s\n", u, base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(h.Sum(nil)))
		pw[u] = p
		bad := append(bytes.Clone(p), 0)
		qs = append(qs, query{user: u, password: p}, query{user: u, password: bad[1:]})
	}
	for i := 0; i < 40; i++ {
		u := fmt.Sprintf("s%d", i)
		p := printable(r, 200)
		f := passwdfile.FormatSCRAMSHA256
		if i%2 == 1 {
			f = passwdfile.FormatSCRAMSHA512
		}
		h, err := passwdfile.HashWith(p, f, passwdfile.HashOptions{Iterations: 4096})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&text, "%s:%s\n", u, h)
		// Right passwords only: each check costs seconds, and the second
		// line checks that the reused work memory is overwritten.
		qs = append(qs, query{user: u, password: p})
	}
	n := compare(t, e, mod, text.String(), "", passwdfile.Options{}, nil, qs)
	allowed := 0
	for _, q := range qs {
		if ok := func() bool {
			f, _ := passwdfile.Parse(strings.NewReader(text.String()), "p")
			return f.Verify(q.user, q.password)
		}(); ok {
			allowed++
		}
		break // one parse is enough to know the file is sane; decisions were compared above
	}
	if allowed != 1 {
		t.Fatalf("the first right password does not verify in passwdfile")
	}
	t.Logf("%d requests: same decisions", n)
}

// TestParseErrors compares the configure error of malformed files: the
// message (file, line, reason) must be passwdfile's.
func TestParseErrors(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	good := "alice:$6$w5Kob+n3MmA291wj$P+fErBmqCcoryUfFnxYvCNpU2X8Hs54crndXwRTXwehZuVfGqCfNwgc16OHmWxemA2Jm9mEtZvSDy4YAsyv3jg==\n"
	for _, text := range []string{
		"alice\n",
		":$6$x$y\n",
		"alice:\n",
		"al\x01ice:$6$x$y\n",
		"al\xffice:$6$x$y\n",
		"bob:hunter2\n",
		"bob:$5$abc$def\n",
		"bob:$6$x\n",
		"bob:$6$rounds=5000$abc$def\n",
		"bob:$6$" + strings.Repeat("A", 16) + "$" + strings.Repeat("a.", 43) + "\n",
		"bob:$6$!!$AAAA\n",
		"bob:$7$abc$def$ghi\n",
		"bob:$7$0$c2FsdA==$AAAA\n",
		"bob:$7$99999999999999999999999$c2FsdA==$AAAA\n",
		"bob:$7$1000$c2FsdA==$AAAA\n",
		"bob:$7$1000$c2FsdA$" + strings.Repeat("A", 87) + "=\n",
		"bob:$argon2id$m=65536,t=2,p=1$c2FsdA$AAAAAAAA\n",
		"bob:$argon2id$v=16$m=65536,t=2,p=1$c2FsdA$AAAAAAAA\n",
		"bob:$argon2id$v=19$m=65536,t=2$c2FsdA$AAAAAAAA\n",
		"bob:$argon2id$v=19$m=7,t=2,p=1$c2FsdA$AAAAAAAA\n",
		"bob:$argon2id$v=19$m=262144,t=5,p=1$c2FsdA$AAAAAAAA\n",
		"bob:$argon2id$v=19$m=65536,t=2,p=17$c2FsdA$AAAAAAAA\n",
		"bob:$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$AAA\n",
		"bob:$argon2id\n",
		"bob:$2b$04$short\n",
		"bob:$2b$16$" + strings.Repeat("a", 53) + "\n",
		"bob:$2b$03$" + strings.Repeat("a", 53) + "\n",
		"bob:$2b$10$" + strings.Repeat("a", 52) + "!\n",
		"bob:PBKDF2$sha1$1000$c2FsdA==$" + strings.Repeat("A", 24) + "\n",
		"bob:PBKDF2$sha256$1000$c2FsdA==$AAAA\n",
		"bob:PBKDF2$sha256$x$c2FsdA==$AAAA\n",
		"bob:$scram-sha-256$i=4096$c2FsdA==$AAAA$AAAA\n",
		"bob:$scram-sha-256$4096$c2FsdA==$AAAA$AAAA\n",
		"bob:$scram-sha-512$i=0$c2FsdA==$AAAA$AAAA\n",
		"bob:$scram-sha-256$i=4096$c2FsdB==$" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "$" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n",
		"bob:$scram-sha-256$i=4096$c2FsdA==$" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n",
		good + good,
		good + "bob:hunter2\n" + good,
		good + "bob:" + good[6:] + "alice:hunter2\n",
		good + "# c\n\n  \t\n" + "bob:$6$x\n",
		"\uFEFF" + good + "x\n",
		strings.Repeat("a", 300*1024) + "\n",
		// bufio.Scanner's limit, with and without a final newline.
		strings.Repeat("a", 256*1024),
		strings.Repeat("a", 256*1024-1),
		strings.Repeat("a", 256*1024-1) + "\n",
		strings.Repeat("a", 256*1024) + "\n",
		good + strings.Repeat("a", 256*1024),
	} {
		ref, refErr := passwdfile.Parse(strings.NewReader(text), "passwords")
		if refErr == nil {
			t.Fatalf("passwdfile accepts %q (%d users): fix the table", text, ref.Len())
		}
		compare(t, e, mod, text, "", passwdfile.Options{}, nil, nil)
	}
}

// TestConfig checks [plugin.config] like plugins/passwd's TestConfigure.
func TestConfig(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	good := "alice:$6$w5Kob+n3MmA291wj$P+fErBmqCcoryUfFnxYvCNpU2X8Hs54crndXwRTXwehZuVfGqCfNwgc16OHmWxemA2Jm9mEtZvSDy4YAsyv3jg==\n"
	for _, tc := range []struct{ cfg, err string }{
		{`{}`, ""},
		{`{"file": "passwords", "goauth_salt_encoding": "utf-8", "superusers": ["alice"]}`, ""},
		{`{"FILE": "passwords", "goauth_salt_encoding": "base64", "superusers": null}`, ""},
		{`{"password_file": "x"}`, `unknown field "password_file"`},
		{`{"goauth_salt_encoding": "hex"}`, `passwd: go-auth salt encoding "hex": want "base64" or "utf-8"`},
		{`{"superusers": ["alice", ""]}`, "passwd: config: superusers[1] is empty"},
		{`{"file": "nope"}`, `passwd: file "nope"`},
		{`{"file": 3}`, `passwd: config`},
	} {
		_, err := load(t, e, mod, good, tc.cfg)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.cfg, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: got %v, want %q", tc.cfg, err, tc.err)
		}
	}
	// An empty file denies everyone: every user is unknown, and ignored.
	m, err := load(t, e, mod, "# nobody\n", "")
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Authenticate(context.Background(), &policy.AuthnRequest{Client: &policy.Client{Username: "alice"}, Password: []byte("x")})
	if err != nil || res.Verdict != policy.Ignore {
		t.Fatalf("empty file: %v %v, want ignore", res.Verdict, err)
	}
}

// TestRandomFiles mutates valid lines of every format at random and
// compares the module with passwdfile on each file: same refusal, or same
// decisions.
func TestRandomFiles(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	var lines []string
	pw := map[string][]byte{}
	for i, f := range passwdfile.Formats() {
		p := printable(r, 30)
		h, err := passwdfile.HashWith(p, f, passwdfile.HashOptions{Iterations: cheap[f]})
		if err != nil {
			t.Fatal(err)
		}
		u := fmt.Sprintf("u%d", i)
		lines = append(lines, u+":"+h)
		pw[u] = p
	}
	alphabet := "$=:/+.,#AZaz09 \t\r\n" + "mtpiv"
	deadline := time.Now().Add(soak(t))
	files, refused, queries := 0, 0, 0
	for files < 30 || time.Now().Before(deadline) {
		var b strings.Builder
		n := 1 + r.Intn(4)
		var qs []query
		for i := 0; i < n; i++ {
			k := r.Intn(len(lines))
			l := []byte(lines[k])
			for j := r.Intn(5) - 2; j > 0; j-- {
				pos := r.Intn(len(l))
				switch r.Intn(3) {
				case 0:
					l[pos] = alphabet[r.Intn(len(alphabet))]
				case 1:
					l = append(l[:pos], l[pos+1:]...)
				default:
					l = append(l[:pos], append([]byte{alphabet[r.Intn(len(alphabet))]}, l[pos:]...)...)
				}
			}
			b.Write(l)
			b.WriteByte('\n')
			u := fmt.Sprintf("u%d", k)
			qs = append(qs, query{user: u, password: pw[u]}, query{user: u, password: []byte("wrong")})
		}
		if !utf8.ValidString(b.String()) {
			continue
		}
		c := compare(t, e, mod, b.String(), "", passwdfile.Options{}, nil, qs)
		if c == 0 {
			refused++
		}
		files++
		queries += c
	}
	t.Logf("%d files (%d refused by both), %d requests: same decisions", files, refused, queries)
}

func soak(t *testing.T) time.Duration {
	if s := os.Getenv("MOAT_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("MOAT_SOAK: %v", err)
		}
		return d
	}
	if testing.Short() {
		return 200 * time.Millisecond
	}
	return 2 * time.Second
}

var sha256New = sha256.New

// TestArgon2Guest checks the module's own Argon2id against
// golang.org/x/crypto/argon2 on lines whose work (m·t above 256
// MiB-passes) the host refuses, which the module, like plugins/passwd,
// then computes inside wasm: one lane and several.
func TestArgon2Guest(t *testing.T) {
	e := engine(t)
	mod := rustModule(t)
	r := rand.New(rand.NewSource(time.Now().UnixNano()))
	var text strings.Builder
	var qs []query
	for i, c := range []struct {
		m, t uint32
		p    uint8
		key  uint32
	}{{65536, 5, 1, 32}, {32772, 9, 3, 100}} { // 320 and 288 MiB-passes
		if testing.Short() && i > 0 {
			break
		}
		u, p := fmt.Sprintf("a%d", i), randomPassword(r, 40)
		salt := make([]byte, 8+r.Intn(20))
		r.Read(salt)
		sum := argon2.IDKey(p, salt, c.t, c.m, c.p, c.key)
		raw := base64.RawStdEncoding
		fmt.Fprintf(&text, "%s:$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s\n", u, c.m, c.t, c.p, raw.EncodeToString(salt), raw.EncodeToString(sum))
		// Right passwords only: each check costs seconds, and the second
		// line checks that the reused work memory is overwritten.
		qs = append(qs, query{user: u, password: p})
	}
	n := compare(t, e, mod, text.String(), "", passwdfile.Options{}, nil, qs)
	t.Logf("%d requests: same decisions", n)
}

// FuzzPasswd compares the module with passwdfile on any file text, user
// and password. Each run loads a module (~0.1 s): fuzz with
// -fuzzminimizetime 1x.
func FuzzPasswd(f *testing.F) {
	f.Add("alice:$6$w5Kob+n3MmA291wj$P+fErBmqCcoryUfFnxYvCNpU2X8Hs54crndXwRTXwehZuVfGqCfNwgc16OHmWxemA2Jm9mEtZvSDy4YAsyv3jg==\n", "alice", []byte("x"))
	f.Add("bob:$7$101$c2FsdHNhbHRzYWx0$"+strings.Repeat("A", 86)+"==\n", "bob", []byte(""))
	f.Add("carol:PBKDF2$sha256$1000$c2FsdA==$AAAAAAAAAAAAAAAAAAAAAA==\n# c\n", "carol", []byte("pw"))
	f.Fuzz(func(t *testing.T, text, user string, password []byte) {
		if len(text) > 4096 || !utf8.ValidString(user) || strings.Contains(text, "$argon2id$") {
			return // MQTT usernames are UTF-8; argon2id lines may cost seconds
		}
		compare(t, engine(t), rustModule(t), text, "", passwdfile.Options{}, nil, []query{{user: user, password: password}})
	})
}
