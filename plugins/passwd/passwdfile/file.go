package passwdfile

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/moat-mqtt/moat/plugins/scram/scramauth"
)

// Options tune Parse.
type Options struct {
	// GoAuthSaltEncoding says how mosquitto-go-auth PBKDF2 salts are
	// written, as go-auth's hasher_salt_encoding: SaltBase64 (the default,
	// also go-auth's) or SaltUTF8 (the salt text is the salt).
	GoAuthSaltEncoding string
	// Hasher computes the PBKDF2, Argon2id and bcrypt checks of Verify;
	// nil means NativeHasher. The passwd plugin passes the broker's (see
	// sdk/go/hostcrypto), because these hashes run many times slower
	// inside wasm.
	Hasher Hasher
}

func (o Options) check() error {
	switch o.GoAuthSaltEncoding {
	case "", SaltBase64, SaltUTF8:
		return nil
	}
	return fmt.Errorf("passwd: go-auth salt encoding %q: want %q or %q", o.GoAuthSaltEncoding, SaltBase64, SaltUTF8)
}

// File is a parsed password file. Verify and SCRAM may be called from many
// goroutines at once; Set, Delete and Write must not run concurrently with
// anything else.
type File struct {
	name  string
	opts  Options
	lines []line // in file order, for Write
	users map[string]*entry
	dummy *entry
}

// line is a comment or blank line (user == "", raw kept) or an entry.
type line struct {
	raw  string
	user string
}

// maxLine bounds a line; Mosquitto bounds usernames and hashes at 65535
// bytes each.
const maxLine = 256 * 1024

// Parse reads a password file with default Options. name is used in errors
// only ("passwd: users.txt:7: ...").
func Parse(r io.Reader, name string) (*File, error) {
	return ParseWith(r, name, Options{})
}

// ParseWith reads a password file. The error names the file and the first
// bad line; it never quotes a password or hash.
func ParseWith(r io.Reader, name string, opts Options) (*File, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.Hasher == nil {
		opts.Hasher = nativeHasher{}
	}
	f := &File{name: name, opts: opts, users: make(map[string]*entry)}
	err := scan(r, name, func(n int, raw, user, value string) error {
		if user == "" {
			f.lines = append(f.lines, line{raw: raw})
			return nil
		}
		if _, dup := f.users[user]; dup {
			return fmt.Errorf("user %q listed twice", user)
		}
		e, err := parseHash(value, opts.GoAuthSaltEncoding)
		if err != nil {
			return err
		}
		f.users[user] = e
		f.lines = append(f.lines, line{user: user})
		return nil
	})
	if err != nil {
		return nil, err
	}
	f.pickDummy()
	return f, nil
}

// Upgrade reads a file in which some or all values are plaintext passwords
// (`moat passwd -U`) and replaces each plaintext value with hash(password).
// A value that starts like a supported hash format is kept, and must parse;
// so running Upgrade twice hashes nothing twice (mosquitto_passwd -U would
// hash the hashes). Values are trimmed of blanks, as Mosquitto trims them.
// It returns the file and how many passwords it hashed.
func Upgrade(r io.Reader, name string, opts Options, hash func(password []byte) (string, error)) (*File, int, error) {
	if err := opts.check(); err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	hashed := 0
	err := scan(r, name, func(n int, raw, user, value string) error {
		if user == "" {
			buf.WriteString(raw)
		} else if looksHashed(value) {
			buf.WriteString(user + ":" + value)
		} else {
			if value == "" {
				return fmt.Errorf("user %q has an empty password", user)
			}
			h, err := hash([]byte(value))
			if err != nil {
				return err
			}
			hashed++
			buf.WriteString(user + ":" + h)
		}
		buf.WriteByte('\n')
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	f, err := ParseWith(&buf, name, opts)
	if err != nil {
		return nil, 0, err
	}
	return f, hashed, nil
}

// scan splits r into lines and each entry line into user and value, with
// Mosquitto's trimming, and calls fn; blank and comment lines come with
// user == "". An error from fn or from the syntax is wrapped with the file
// name and line number.
func scan(r io.Reader, name string, fn func(n int, raw, user, value string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimRight(sc.Text(), "\r") // CRLF, and stray CRs a rewrite would not keep
		if n == 1 {
			raw = strings.TrimPrefix(raw, "\uFEFF")
		}
		t := strings.TrimSpace(raw)
		var err error
		if t == "" || t[0] == '#' {
			err = fn(n, raw, "", "")
		} else {
			u, v, ok := strings.Cut(t, ":")
			u, v = strings.TrimSpace(u), strings.TrimSpace(v)
			switch {
			case !ok:
				err = errors.New("no ':' between username and hash")
			case u == "":
				err = errors.New("empty username")
			case v == "":
				err = fmt.Errorf("user %q has no hash", u)
			default:
				if err = checkUsername(u); err == nil {
					err = fn(n, raw, u, v)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("passwd: %s:%d: %w", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("passwd: %s:%d: line longer than %d bytes", name, n+1, maxLine)
		}
		return fmt.Errorf("passwd: %s: %w", name, err)
	}
	return nil
}

// CheckUsername says why username cannot be written to a password file
// and read back as the same name, or returns nil.
func CheckUsername(username string) error {
	if username == "" || strings.TrimSpace(username) != username {
		return fmt.Errorf("passwd: username %q: empty or with leading or trailing blanks", username)
	}
	if err := checkUsername(username); err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	return nil
}

// checkUsername refuses usernames no MQTT client can send or that would not
// survive a write and a read: control characters, invalid UTF-8, ':'.
func checkUsername(u string) error {
	if !utf8.ValidString(u) {
		return errors.New("username is not UTF-8")
	}
	for _, r := range u {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("username %q contains a control character", u)
		}
	}
	if strings.ContainsRune(u, ':') {
		return fmt.Errorf("username %q contains ':'", u)
	}
	if len(u) > 65535 {
		return errors.New("username longer than 65535 bytes")
	}
	return nil
}

// pickDummy chooses the entry an unknown user's password is checked
// against: the first in the file of the most common cost class.
func (f *File) pickDummy() {
	count := make(map[string]int)
	for _, e := range f.users {
		count[e.costKey()]++
	}
	best, bestN := &defaultDummy, 0
	for _, l := range f.lines {
		if l.user == "" {
			continue
		}
		e := f.users[l.user]
		if n := count[e.costKey()]; n > bestN {
			best, bestN = e, n
		}
	}
	f.dummy = best
}

// Verify reports whether password is username's. It costs one hash
// verification at the user's parameters, or, for an unknown user, at the
// parameters most users in the file have; the comparison is constant-time.
// An empty file denies everyone.
func (f *File) Verify(username string, password []byte) bool {
	e, ok := f.users[username]
	if !ok {
		f.dummy.verify(f.opts.Hasher, password)
		return false
	}
	return e.verify(f.opts.Hasher, password)
}

// Len returns the number of users.
func (f *File) Len() int { return len(f.users) }

// Contains reports whether username has an entry. Unlike Verify it is fast
// and so tells who exists: for tools, not for authentication.
func (f *File) Contains(username string) bool {
	_, ok := f.users[username]
	return ok
}

// Set adds username with hash (as Hash returns it), or replaces its hash
// in place. The hash is parsed as Parse would.
func (f *File) Set(username, hash string) error {
	if err := CheckUsername(username); err != nil {
		return err
	}
	e, err := parseHash(hash, f.opts.GoAuthSaltEncoding)
	if err != nil {
		return fmt.Errorf("passwd: user %q: %w", username, err)
	}
	if _, ok := f.users[username]; !ok {
		f.lines = append(f.lines, line{user: username})
	}
	f.users[username] = e
	f.pickDummy()
	return nil
}

// Delete removes username, reporting whether it was there.
func (f *File) Delete(username string) bool {
	if _, ok := f.users[username]; !ok {
		return false
	}
	delete(f.users, username)
	for i, l := range f.lines {
		if l.user == username {
			f.lines = append(f.lines[:i], f.lines[i+1:]...)
			break
		}
	}
	f.pickDummy()
	return true
}

// Write writes the file: comments and blank lines as they were, entries as
// "username:hash", in the original order with new users at the end, "\n"
// line endings.
func (f *File) Write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	for _, l := range f.lines {
		if l.user == "" {
			bw.WriteString(l.raw)
		} else {
			bw.WriteString(l.user)
			bw.WriteByte(':')
			bw.WriteString(f.users[l.user].text)
		}
		bw.WriteByte('\n')
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("passwd: write %s: %w", f.name, err)
	}
	return nil
}

// SCRAM returns username's SCRAM credentials, if its line holds some. It
// has the signature of scramauth.ServerConfig.Lookup.
func (f *File) SCRAM(username string) (scramauth.Credentials, bool) {
	e, ok := f.users[username]
	if !ok || e.kind != kindSCRAM {
		return scramauth.Credentials{}, false
	}
	return e.scram, true
}

// SCRAMServer returns a SCRAM server over the file's SCRAM lines. Its
// secret (state MAC, fake salts for unknown users) is a hash of every line
// of the file, so every instance that parsed the same file agrees on it and
// no client can compute it (for a file without users it is a constant, and
// there is nothing to protect); its unknown-user iteration count is the most
// common one among the SCRAM lines. The File must not change while the
// server is in use.
func (f *File) SCRAMServer() (*scramauth.Server, error) {
	h := sha256.New()
	h.Write([]byte("moat passwdfile scram secret v1\x00"))
	counts := make(map[int]int)
	iter, best := 0, 0
	for _, l := range f.lines {
		if l.user == "" {
			continue
		}
		e := f.users[l.user]
		h.Write([]byte(l.user + "\x00" + e.text + "\n"))
		if e.kind == kindSCRAM {
			n := e.scram.Iterations()
			counts[n]++
			if counts[n] > best {
				iter, best = n, counts[n]
			}
		}
	}
	return scramauth.NewServer(scramauth.ServerConfig{
		Lookup:                f.SCRAM,
		Secret:                h.Sum(nil),
		UnknownUserIterations: iter,
	})
}
