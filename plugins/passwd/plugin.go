// Command passwd is moat's password-file plugin: it authenticates clients
// against a Mosquitto password_file (and the other formats of
// plugins/passwd/passwdfile: Mosquitto $6$ and $7$, argon2id, bcrypt,
// mosquitto-go-auth PBKDF2, SCRAM lines) granted to it as a file. Build it
// with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared; see README.md.
package main

import (
	"bytes"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	moat "github.com/moat-mqtt/moat/sdk/go"
	"github.com/moat-mqtt/moat/sdk/go/hostcrypto"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
)

// config is the [plugin.config] table.
type config struct {
	// File is the [plugin.files] grant name of the password file; default
	// "passwords".
	File string `json:"file"`
	// GoAuthSaltEncoding is mosquitto-go-auth's hasher_salt_encoding for
	// its PBKDF2 lines: "base64" (default) or "utf-8".
	GoAuthSaltEncoding string `json:"goauth_salt_encoding"`
	// Superusers are usernames that skip authorization once their password
	// is right.
	Superusers []string `json:"superusers"`
}

type plugin struct {
	file       *passwdfile.File
	superusers []string
	readFile   func(name string) ([]byte, error)
}

func (p *plugin) configure(raw []byte) error {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("passwd: config: %w", err)
	}
	if c.File == "" {
		c.File = "passwords"
	}
	for i, u := range c.Superusers {
		if u == "" {
			return fmt.Errorf("passwd: config: superusers[%d] is empty", i)
		}
	}
	data, err := p.readFile(c.File)
	if err != nil {
		return fmt.Errorf("passwd: file %q: %w", c.File, err)
	}
	f, err := passwdfile.ParseWith(bytes.NewReader(data), c.File, passwdfile.Options{
		GoAuthSaltEncoding: c.GoAuthSaltEncoding,
		Hasher:             hasher{guest: passwdfile.NativeHasher()},
	})
	if err != nil {
		return err // "passwd: <name>:<line>: ..." already
	}
	p.file = f
	p.superusers = c.Superusers
	return nil
}

// authenticate answers a CONNECT with a username and password.
//
// It ignores what it cannot judge, so that a chain can fall through to
// the next module: enhanced authentication (the scram plugin's business),
// anonymous clients, and users the file does not list. An unknown user
// still costs one hash check (passwdfile.File.Verify checks against a
// dummy), so the time of the answer does not tell who is in the file.
func (p *plugin) authenticate(req *moat.AuthnRequest) moat.AuthnResult {
	if req.AuthMethod != "" || req.Username == "" {
		return moat.AuthnResult{Result: moat.Ignore()}
	}
	if p.file.Verify(req.Username, req.Password) {
		return moat.AuthnResult{Result: moat.Allow(), Superuser: slices.Contains(p.superusers, req.Username)}
	}
	if !p.file.Contains(req.Username) {
		return moat.AuthnResult{Result: moat.Ignore()}
	}
	return moat.AuthnResult{Result: moat.Deny(moat.ReasonBadUsernameOrPassword, "")}
}

// hasher has the broker compute PBKDF2, argon2id and bcrypt (sdk/go/
// hostcrypto): inside wasm they run 3 to 50 times slower, and a Mosquitto
// $7$ line at OWASP's 210,000 iterations would take 1.5 s instead of
// 0.26 s. The broker caps argon2id's work (m·t) at a quarter of what a
// password file may ask for, because it cannot interrupt it; for such
// lines, and only those, it falls back to guest, which computes them
// inside the module under its timeout and memory_limit.
type hasher struct {
	guest passwdfile.Hasher
}

func (hasher) PBKDF2(h crypto.Hash, password, salt []byte, iterations, keyLen int) ([]byte, error) {
	return hostcrypto.PBKDF2(h, password, salt, iterations, keyLen)
}

func (g hasher) Argon2id(password, salt []byte, time, memoryKiB uint32, threads uint8, keyLen uint32) ([]byte, error) {
	out, err := hostcrypto.Argon2id(password, salt, time, memoryKiB, threads, keyLen)
	if errors.Is(err, hostcrypto.ErrInvalid) {
		return g.guest.Argon2id(password, salt, time, memoryKiB, threads, keyLen)
	}
	return out, err
}

func (hasher) BcryptCompare(hashed, password []byte) (bool, error) {
	return hostcrypto.BcryptCompare(hashed, password)
}

func main() {}
