package passwdfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func parseFile(t testing.TB, path string, opts Options) *File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseWith(bytes.NewReader(b), filepath.Base(path), opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestKnownVectors checks each format against vectors computed elsewhere:
// mosquitto_passwd 2.0.11, the Argon2 reference tests, crypt_blowfish,
// mosquitto-go-auth's own test files, Python's hashlib, RFC 7677.
func TestKnownVectors(t *testing.T) {
	f := parseFile(t, "testdata/mixed.txt", Options{})
	tests := []struct {
		user, password string
	}{
		{"mosq7", "secret"},
		{"mosq7long", "mosquitto 2.1"},
		{"mosq6", "secret2"},
		{"mosq6b", "old mosquitto"},
		{"argon", "password"},
		{"bcrypt2a", "U*U"},
		{"bcrypt2b", "U*U*"},
		{"bcrypt2y", "U*U"},
		{"test1", "test1"},
		{"goauth256", "go-auth 256"},
		{"user", "pencil"},
		{"user512", "pencil"},
		{"name with whitespace@and/other.chars", "secret2"},
	}
	if f.Len() != len(tests) {
		t.Fatalf("Len = %d, want %d", f.Len(), len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			if !f.Verify(tc.user, []byte(tc.password)) {
				t.Error("right password refused")
			}
			for _, wrong := range []string{"", tc.password + "x", strings.ToUpper(tc.password) + "!", tc.password[:len(tc.password)-1]} {
				if f.Verify(tc.user, []byte(wrong)) {
					t.Errorf("wrong password %q accepted", wrong)
				}
			}
			if f.Verify(tc.user+"x", []byte(tc.password)) {
				t.Error("right password accepted for another username")
			}
		})
	}
}

func TestArgon2ReferenceLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB argon2id")
	}
	f, err := Parse(strings.NewReader("a:$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verify("a", []byte("password")) || f.Verify("a", []byte("passwore")) {
		t.Fatal("argon2id reference vector m=65536")
	}
}

func TestBcryptLongPassword(t *testing.T) {
	// crypt_blowfish: bytes past the 72nd are ignored.
	const pw = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789chars after 72 are ignored"
	f, err := Parse(strings.NewReader("u:$2a$05$abcdefghijklmnopqrstuu5s2v8.iXieOjg/.AySBTTZIIVFJeBui\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if !f.Verify("u", []byte(pw)) || !f.Verify("u", []byte(pw[:72])) || f.Verify("u", []byte(pw[:71])) {
		t.Fatal("bcrypt 72-byte rule")
	}
}

func TestGoAuthSaltEncoding(t *testing.T) {
	// go-auth's mongo test vector, written with hasher_salt_encoding utf-8.
	utf8 := parseFile(t, "testdata/goauth-utf8.txt", Options{GoAuthSaltEncoding: SaltUTF8})
	if !utf8.Verify("goauth", []byte("testpw")) || utf8.Verify("goauth", []byte("testpx")) {
		t.Error("utf-8 salt vector")
	}
	b64 := parseFile(t, "testdata/goauth-utf8.txt", Options{})
	if b64.Verify("goauth", []byte("testpw")) {
		t.Error("a utf-8 salt vector verified as base64: the option is not used")
	}
	if _, err := ParseWith(strings.NewReader(""), "t", Options{GoAuthSaltEncoding: "hex"}); err == nil {
		t.Error("unknown salt encoding accepted")
	}
}

func TestFileSyntax(t *testing.T) {
	crlf := parseFile(t, "testdata/crlf.txt", Options{})
	if !crlf.Verify("crlf", []byte("secret2")) {
		t.Error("CRLF file")
	}
	bom, err := Parse(strings.NewReader("\uFEFFbom:$6$w5Kob+n3MmA291wj$P+fErBmqCcoryUfFnxYvCNpU2X8Hs54crndXwRTXwehZuVfGqCfNwgc16OHmWxemA2Jm9mEtZvSDy4YAsyv3jg==\n"), "t")
	if err != nil || !bom.Verify("bom", []byte("secret2")) {
		t.Errorf("BOM: %v", err)
	}
	empty := parseFile(t, "testdata/empty.txt", Options{})
	if empty.Len() != 0 || empty.Verify("", nil) || empty.Verify("anyone", []byte("")) {
		t.Error("an empty file must deny everyone")
	}
	onlyComments, err := Parse(strings.NewReader("# nothing\n\n   \n\t# indented comment\n"), "t")
	if err != nil || onlyComments.Len() != 0 {
		t.Errorf("comments only: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	const good6 = "$6$w5Kob+n3MmA291wj$P+fErBmqCcoryUfFnxYvCNpU2X8Hs54crndXwRTXwehZuVfGqCfNwgc16OHmWxemA2Jm9mEtZvSDy4YAsyv3jg=="
	const good7 = "$7$101$Rgx9kiBq0B0Zc54K$R/mKGv5uA2TJM3upp/5U6+Wn6Kxxw00t29hTnYSg5y+Awryvt4GiLgRNgx5Id36jiksiznvDsymgATBQjpKs9w=="
	const goodArgon = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
	const goodBcrypt = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
	const goodGoAuth = "PBKDF2$sha256$1000$c2l4dGVlbiBieXRlIHNsdA==$2TCciMppRYP4ZP5Ni4blU69SRSHHP0LjUFRpqnuVWWo="
	tests := []struct {
		name, line, want string
	}{
		{"sha-256 crypt", "u:$5$rounds=5000$abc$def", `users.txt:2: unknown hash format "$5$"`},
		{"md5 crypt", "u:$1$abc$def", `unknown hash format "$1$"`},
		{"plaintext", "u:hunter2", "unrecognized hash (value not shown"},
		{"plaintext with dollars", "u:$ecret$pass", "unrecognized hash (value not shown"},
		{"no colon", "just a line", "no ':'"},
		{"empty user", ":" + good6, "empty username"},
		{"empty hash", "u:", "no hash"},
		{"duplicate", "a:" + good6, `user "a" listed twice`},
		{"control char", "a\x01b:" + good6, "control character"},
		{"bad utf-8", "a\xffb:" + good6, "not UTF-8"},
		{"glibc $6$", "u:$6$rounds=5000$saltsalt$abc", "glibc"},
		{"glibc $6$ no rounds", "u:$6$saltsalt$" + strings.Repeat("a", 43) + "." + strings.Repeat("b", 42), "glibc"},
		{"$6$ short digest", "u:$6$c2FsdA==$AAAA", "digest must be 64 bytes"},
		{"$6$ fields", "u:$6$abc", "want $6$<salt>$<hash>"},
		{"$6$ empty salt", "u:$6$$" + strings.Split(good6, "$")[3], "salt"},
		{"$7$ zero iterations", "u:" + strings.Replace(good7, "$101$", "$0$", 1), "iteration count must be 1 to 2000000"},
		{"$7$ too many iterations", "u:" + strings.Replace(good7, "$101$", "$2000001$", 1), "iteration count must be 1 to 2000000"},
		{"$7$ huge iterations", "u:" + strings.Replace(good7, "$101$", "$99999999999999999999$", 1), "iteration count"},
		{"$7$ signed iterations", "u:" + strings.Replace(good7, "$101$", "$+101$", 1), "not a number"},
		{"$7$ bad base64", "u:" + strings.Replace(good7, "Rgx9", "R!x9", 1), "salt must be"},
		{"$7$ fields", "u:$7$101$abc", "want $7$"},
		{"argon2i", "u:$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR", `unknown hash format "$argon2i$"`},
		{"argon2id v1.0", "u:$argon2id$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "version 1.0"},
		{"argon2id v=16", "u:" + strings.Replace(goodArgon, "v=19", "v=16", 1), "v=19"},
		{"argon2id memory cap", "u:" + strings.Replace(goodArgon, "m=256", "m=1048576", 1), "m must be 8 to 262144"},
		{"argon2id work cap", "u:" + strings.Replace(goodArgon, "m=256,t=2", "m=262144,t=5", 1), "above the cap"},
		{"argon2id time cap", "u:" + strings.Replace(goodArgon, "t=2", "t=65", 1), "t must be 1 to 64"},
		{"argon2id lanes cap", "u:" + strings.Replace(goodArgon, "p=1", "p=17", 1), "p must be 1 to 16"},
		{"argon2id m below 8p", "u:" + strings.Replace(goodArgon, "m=256,t=2,p=1", "m=8,t=2,p=2", 1), "m must be 16 to"},
		{"argon2id param order", "u:" + strings.Replace(goodArgon, "m=256,t=2,p=1", "t=2,m=256,p=1", 1), "parameters must be"},
		{"argon2id short digest", "u:$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$AAA", "digest must be 4 to"},
		{"bcrypt 2x", "u:" + strings.Replace(goodBcrypt, "$2a$", "$2x$", 1), `unknown hash format "$2x$"`},
		{"bcrypt cost cap", "u:" + strings.Replace(goodBcrypt, "$05$", "$16$", 1), "cost 16 above the cap of 15"},
		{"bcrypt cost low", "u:" + strings.Replace(goodBcrypt, "$05$", "$03$", 1), "cost must be 4 to 31"},
		{"bcrypt length", "u:" + goodBcrypt + "x", "want $2b$"},
		{"bcrypt alphabet", "u:" + strings.Replace(goodBcrypt, "E5Y", "E+Y", 1), "bcrypt base64"},
		{"go-auth algorithm", "u:" + strings.Replace(goodGoAuth, "sha256", "md5", 1), "sha256 or sha512"},
		{"go-auth short key", "u:PBKDF2$sha256$1000$c2FsdA==$AAAAAAAAAAAAAAAAAAAA", "digest must be 16 to"},
		{"go-auth fields", "u:PBKDF2$sha256$1000$c2FsdA==", "want PBKDF2$"},
		{"go-auth iterations", "u:" + strings.Replace(goodGoAuth, "$1000$", "$0$", 1), "iteration count"},
		{"scram iterations", "u:$scram-sha-256$i=0$c2FsdA==$AAAA$AAAA", "scram"},
		{"scram-sha-1", "u:$scram-sha-1$i=4096$c2FsdA==$AAAA$AAAA", `unknown hash format "$scram-sha-1$"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := "# first line\n" + tc.line + "\n"
			if tc.name == "duplicate" {
				in = "a:" + good6 + "\n" + tc.line + "\n"
			}
			_, err := Parse(strings.NewReader(in), "users.txt")
			if err == nil {
				t.Fatal("parsed")
			}
			if !strings.HasPrefix(err.Error(), "passwd: users.txt:2: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to start with %q and contain %q", err, "passwd: users.txt:2: ", tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "ecret") {
				t.Fatalf("error %q quotes the plaintext password", err)
			}
		})
	}
}

func TestLongLine(t *testing.T) {
	in := "a:" + strings.Repeat("x", maxLine) + "\n"
	_, err := Parse(strings.NewReader(in), "big.txt")
	if err == nil || !strings.Contains(err.Error(), "big.txt:1: line longer than") {
		t.Fatalf("got %v", err)
	}
	_, err = Parse(iotest.ErrReader(errors.New("disk on fire")), "x.txt")
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("read error: %v", err)
	}
}

func TestHashRoundTrip(t *testing.T) {
	pw := []byte("correct horse battery staple")
	for _, format := range Formats() {
		t.Run(format, func(t *testing.T) {
			opts := HashOptions{}
			switch format {
			case FormatSHA512PBKDF2, FormatPBKDF2SHA256, FormatPBKDF2SHA512:
				opts.Iterations = 1000 // the defaults cost 100+ ms each
			case FormatBcrypt:
				opts.Iterations = 4
			}
			h, err := HashWith(pw, format, opts)
			if err != nil {
				t.Fatal(err)
			}
			h2, _ := HashWith(pw, format, opts)
			if h == h2 {
				t.Error("two hashes of one password are equal: no salt")
			}
			f, err := Parse(strings.NewReader("u:"+h+"\n"), "t")
			if err != nil {
				t.Fatalf("Hash wrote what Parse refuses: %v", err)
			}
			if !f.Verify("u", pw) || f.Verify("u", pw[1:]) {
				t.Fatal("round trip")
			}
			var out bytes.Buffer
			f.Write(&out)
			if out.String() != "u:"+h+"\n" {
				t.Errorf("Write = %q", out.String())
			}
		})
	}
}

// TestHashDefaults pins the parameters Hash writes by default; the cheap
// ones are run, the costly ones only inspected.
func TestHashDefaults(t *testing.T) {
	tests := []struct{ format, prefix string }{
		{FormatArgon2id, "$argon2id$v=19$m=19456,t=2,p=1$"},
		{FormatSHA512, "$6$"},
		{FormatSCRAMSHA256, "$scram-sha-256$i=4096$"},
		{FormatSCRAMSHA512, "$scram-sha-512$i=4096$"},
	}
	if !testing.Short() {
		tests = append(tests, []struct{ format, prefix string }{
			{FormatSHA512PBKDF2, "$7$210000$"},
			{FormatBcrypt, "$2a$10$"},
			{FormatPBKDF2SHA256, "PBKDF2$sha256$600000$"},
			{FormatPBKDF2SHA512, "PBKDF2$sha512$210000$"},
		}...)
	}
	for _, tc := range tests {
		h, err := Hash([]byte("pw"), tc.format)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, tc.prefix) {
			t.Errorf("%s: %s, want prefix %s", tc.format, h, tc.prefix)
		}
		switch tc.format {
		case FormatSHA512, FormatSHA512PBKDF2:
			// Mosquitto 2.0 accepts only 12-byte salts: 16 base64 chars.
			if salt := strings.Split(h, "$")[len(strings.Split(h, "$"))-2]; len(salt) != 16 {
				t.Errorf("%s: salt %q is not 12 bytes", tc.format, salt)
			}
		}
	}
}

func TestHashErrors(t *testing.T) {
	tests := []struct {
		name   string
		pw     string
		format string
		opts   HashOptions
	}{
		{"unknown format", "pw", "md5", HashOptions{}},
		{"sha512 iterations", "pw", FormatSHA512, HashOptions{Iterations: 5}},
		{"pbkdf2 above cap", "pw", FormatSHA512PBKDF2, HashOptions{Iterations: MaxPBKDF2Iterations + 1}},
		{"bcrypt cost", "pw", FormatBcrypt, HashOptions{Iterations: 16}},
		{"bcrypt long", strings.Repeat("x", 73), FormatBcrypt, HashOptions{Iterations: 4}},
		{"argon2id t", "pw", FormatArgon2id, HashOptions{Iterations: 65}},
		{"scram below 4096", "pw", FormatSCRAMSHA256, HashOptions{Iterations: 4095}},
		{"scram non-ascii", "pässword", FormatSCRAMSHA512, HashOptions{}},
		{"no randomness", "pw", FormatArgon2id, HashOptions{Rand: bytes.NewReader(nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if h, err := HashWith([]byte(tc.pw), tc.format, tc.opts); err == nil {
				t.Fatalf("hashed: %s", h)
			}
		})
	}
}

func TestSetDeleteWrite(t *testing.T) {
	in := "# header\nalice:$6$w5Kob+n3MmA291wj$P+fErBmqCcoryUfFnxYvCNpU2X8Hs54crndXwRTXwehZuVfGqCfNwgc16OHmWxemA2Jm9mEtZvSDy4YAsyv3jg==\n\n  # keep me\nbob:$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW\n"
	f, err := Parse(strings.NewReader(in), "t")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	f.Write(&out)
	if out.String() != in {
		t.Fatalf("unchanged file written as\n%s", out.String())
	}
	h, _ := HashWith([]byte("new"), FormatBcrypt, HashOptions{Iterations: 4})
	if err := f.Set("alice", h); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("carol", h); err != nil {
		t.Fatal(err)
	}
	if !f.Delete("bob") || f.Delete("bob") {
		t.Fatal("Delete")
	}
	out.Reset()
	f.Write(&out)
	want := "# header\nalice:" + h + "\n\n  # keep me\ncarol:" + h + "\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
	g, err := Parse(&out, "t")
	if err != nil {
		t.Fatal(err)
	}
	if !g.Verify("alice", []byte("new")) || !g.Verify("carol", []byte("new")) || g.Verify("bob", []byte("U*U")) {
		t.Fatal("re-read file")
	}
	for _, bad := range []struct{ user, hash string }{
		{"", h}, {" alice", h}, {"a:b", h}, {"a\nb", h}, {"ok", "plaintext"}, {"ok", "$7$0$AA$AA"},
	} {
		if err := f.Set(bad.user, bad.hash); err == nil {
			t.Errorf("Set(%q, %q) accepted", bad.user, bad.hash)
		}
	}
	if !f.Contains("alice") || f.Contains("bob") {
		t.Error("Contains")
	}
}

func TestUpgrade(t *testing.T) {
	const mosq6 = "$6$w5Kob+n3MmA291wj$P+fErBmqCcoryUfFnxYvCNpU2X8Hs54crndXwRTXwehZuVfGqCfNwgc16OHmWxemA2Jm9mEtZvSDy4YAsyv3jg=="
	in := "# plaintext users\nalice:wonderland\nbob:" + mosq6 + "\n\ncarol:pa$$w:rd\n"
	hash := func(p []byte) (string, error) { return HashWith(p, FormatBcrypt, HashOptions{Iterations: 4}) }
	f, n, err := Upgrade(strings.NewReader(in), "plain.txt", Options{}, hash)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("hashed %d, want 2", n)
	}
	if !f.Verify("alice", []byte("wonderland")) || !f.Verify("bob", []byte("secret2")) || !f.Verify("carol", []byte("pa$$w:rd")) {
		t.Fatal("upgraded file")
	}
	var out bytes.Buffer
	f.Write(&out)
	if strings.Contains(out.String(), "wonderland") || !strings.Contains(out.String(), "# plaintext users\n") || !strings.Contains(out.String(), "bob:"+mosq6+"\n") {
		t.Fatalf("upgraded file:\n%s", out.String())
	}
	// Twice: nothing left to hash.
	_, n, err = Upgrade(bytes.NewReader(out.Bytes()), "plain.txt", Options{}, hash)
	if err != nil || n != 0 {
		t.Fatalf("second upgrade: %d, %v", n, err)
	}
	// A value that looks like a hash but is broken is an error, not a
	// password.
	if _, _, err := Upgrade(strings.NewReader("a:$7$1$AA$AA\n"), "p", Options{}, hash); err == nil {
		t.Error("broken hash upgraded as a password")
	}
	if _, _, err := Upgrade(strings.NewReader("a:\n"), "p", Options{}, hash); err == nil {
		t.Error("empty password upgraded")
	}
}

// TestUnknownUserCostsTheSame checks that the dummy an unknown user is
// checked against is the most common kind of hash in the file.
func TestUnknownUserCostsTheSame(t *testing.T) {
	f := parseFile(t, "testdata/mixed.txt", Options{})
	// mixed.txt has three $6$ lines, more than any other cost class.
	if f.dummy.kind != kindSHA512 {
		t.Errorf("dummy kind %d, want $6$", f.dummy.kind)
	}
	h, _ := HashWith([]byte("x"), FormatBcrypt, HashOptions{Iterations: 4})
	for _, u := range []string{"b1", "b2", "b3", "b4"} {
		f.Set(u, h)
	}
	if f.dummy.kind != kindBcrypt || f.dummy.iter != 4 {
		t.Errorf("after adding bcrypt users: dummy kind %d cost %d", f.dummy.kind, f.dummy.iter)
	}
	// The dummy never lets anyone in, even with the dummy's own password.
	if f.Verify("nobody", []byte("x")) {
		t.Fatal("unknown user accepted with the dummy's password")
	}
	empty, _ := Parse(strings.NewReader(""), "t")
	if empty.dummy.kind != kindArgon2id {
		t.Error("empty file: dummy is not the default argon2id")
	}
}

func TestSCRAMFromFile(t *testing.T) {
	f := parseFile(t, "testdata/mixed.txt", Options{})
	if c, ok := f.SCRAM("user"); !ok || c.Mechanism() != "SCRAM-SHA-256" {
		t.Error("SCRAM(user)")
	}
	if _, ok := f.SCRAM("mosq7"); ok {
		t.Error("SCRAM of a $7$ user")
	}
	if _, ok := f.SCRAM("nobody"); ok {
		t.Error("SCRAM of an unknown user")
	}
	if _, err := f.SCRAMServer(); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentUse runs Verify and SCRAM exchanges on one File from many
// goroutines (run with -race): the plugin's instances are single-threaded,
// but a native host may share one File.
func TestConcurrentUse(t *testing.T) {
	f := parseFile(t, "testdata/mixed.txt", Options{})
	srv, err := f.SCRAMServer()
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	for i := range 16 {
		go func() {
			var err error
			switch i % 3 {
			case 0:
				if !f.Verify("mosq6", []byte("secret2")) || f.Verify("nobody", []byte("x")) {
					err = errors.New("Verify")
				}
			case 1:
				err = scramLogin(srv, "SCRAM-SHA-256", "user", "pencil")
			case 2:
				if scramLogin(srv, "SCRAM-SHA-512", "user512", "wrong") == nil {
					err = errors.New("SCRAM with a wrong password succeeded")
				}
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
