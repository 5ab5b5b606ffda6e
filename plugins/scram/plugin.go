// Command scram is moat's SCRAM plugin: MQTT 5 enhanced authentication with
// SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), against the SCRAM
// lines of a password file that `moat passwd -H scram-sha-256` writes. The
// broker never sees a password, and a stolen file does not let anyone log
// in. Build it with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared; see
// README.md.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"

	moat "github.com/moat-mqtt/moat/sdk/go"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/plugins/scram/scramauth"
)

// config is the [plugin.config] table.
type config struct {
	// File is the [plugin.files] grant name of the password file; default
	// "passwords". Lines in other formats are allowed (and ignored here),
	// so the passwd plugin may share the file.
	File string `json:"file"`
	// GoAuthSaltEncoding as in the passwd plugin, for a shared file with
	// mosquitto-go-auth lines: "base64" (default) or "utf-8".
	GoAuthSaltEncoding string `json:"goauth_salt_encoding"`
	// Superusers are usernames that skip authorization once authenticated.
	Superusers []string `json:"superusers"`
}

type plugin struct {
	server     *scramauth.Server
	superusers []string
	readFile   func(name string) ([]byte, error)
	// random supplies server nonces: the broker's random source in wasm.
	random io.Reader
}

func (p *plugin) configure(raw []byte) error {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("scram: config: %w", err)
	}
	if c.File == "" {
		c.File = "passwords"
	}
	for i, u := range c.Superusers {
		if u == "" {
			return fmt.Errorf("scram: config: superusers[%d] is empty", i)
		}
	}
	data, err := p.readFile(c.File)
	if err != nil {
		return fmt.Errorf("scram: file %q: %w", c.File, err)
	}
	f, err := passwdfile.ParseWith(bytes.NewReader(data), c.File, passwdfile.Options{GoAuthSaltEncoding: c.GoAuthSaltEncoding})
	if err != nil {
		return err
	}
	// Every instance derives the same server secret from the same file, so
	// round 1 may reach another instance than round 0.
	s, err := f.SCRAMServer()
	if err != nil {
		return err
	}
	p.server = s
	p.superusers = c.Superusers
	return nil
}

// authenticate runs one round of the exchange (see scramauth):
//
//	round 0, CONNECT with client-first-message  -> continue with server-first-message
//	round 1, AUTH with client-final-message     -> allow with server-final-message
//
// A request without an authentication method is not for this plugin
// (ignore, so a chain with the passwd plugin works); another method is
// refused with 0x8C. Any failure denies with 0x86, whatever went wrong, so
// that the answer does not tell an unknown user from a wrong password.
func (p *plugin) authenticate(req *moat.AuthnRequest) moat.AuthnResult {
	if req.AuthMethod == "" {
		return moat.AuthnResult{Result: moat.Ignore()}
	}
	if !slices.Contains(scramauth.Mechanisms(), req.AuthMethod) {
		return deny(moat.ReasonBadAuthMethod, "scram: unsupported authentication method")
	}
	switch req.Round {
	case 0:
		serverFirst, state, err := p.server.Start(req.AuthMethod, req.AuthData, p.random)
		if err != nil {
			return deny(moat.ReasonBadUsernameOrPassword, err.Error())
		}
		return moat.Continue(serverFirst, state)
	case 1:
		serverFinal, user, err := p.server.Finish(req.AuthMethod, req.AuthState, req.AuthData)
		if err != nil {
			return deny(moat.ReasonBadUsernameOrPassword, err.Error())
		}
		// The broker knows the client by its CONNECT username (ACLs,
		// logs): it must be the identity SCRAM proved, or a client could
		// prove "bob" and act as "admin".
		if user != req.Username {
			return deny(moat.ReasonBadUsernameOrPassword, "scram: the CONNECT username must be the SCRAM username")
		}
		return moat.AuthnResult{Result: moat.Allow(), Superuser: slices.Contains(p.superusers, user), AuthData: serverFinal}
	}
	return deny(moat.ReasonBadUsernameOrPassword, "scram: unexpected authentication round")
}

// deny's messages reach MQTT 5 clients as the reason string: they say what
// kind of failure it was and never quote credentials.
func deny(reason byte, msg string) moat.AuthnResult {
	return moat.AuthnResult{Result: moat.Deny(reason, msg)}
}

// brokerRandom reads the broker's random source (moat.Random).
type brokerRandom struct{}

func (brokerRandom) Read(b []byte) (int, error) {
	moat.Random(b)
	return len(b), nil
}

func main() {}
