package scramauth

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Client is the client side of one SCRAM exchange, for tests and for anyone
// who wants to talk to moat's scram plugin: put First() in the CONNECT's
// authentication data, answer the server's AUTH with Final(data), and check
// the CONNACK's authentication data with Verify. It does not support channel
// binding (gs2 flag "n"). A Client is used once, by one goroutine.
type Client struct {
	m        *mechanism
	user     string
	password []byte
	nonce    string

	bare      string // client-first-message-bare
	serverSig []byte // expected ServerSignature, after Final
}

// NewClient starts an exchange for user with password, which must be
// printable ASCII (see the package doc on SASLprep).
func NewClient(mech, user, password string) (*Client, error) {
	return newClient(mech, user, password, rand.Text())
}

// newClient takes the client nonce, for the RFC test vectors.
func newClient(mech, user, password, nonce string) (*Client, error) {
	m, err := mechByName(mech)
	if err != nil {
		return nil, err
	}
	if err := checkUsername(user); err != nil {
		return nil, fmt.Errorf("scram: username: %w", err)
	}
	if err := checkPassword([]byte(password)); err != nil {
		return nil, err
	}
	if err := checkNonce(nonce); err != nil {
		return nil, fmt.Errorf("scram: client nonce: %w", err)
	}
	c := &Client{m: m, user: user, password: []byte(password), nonce: nonce}
	c.bare = "n=" + encodeSaslname(user) + ",r=" + nonce
	return c, nil
}

// gs2Header is "n,,": no channel binding, no authorization identity.
const gs2Header = "n,,"

// First returns the client-first-message.
func (c *Client) First() []byte { return []byte(gs2Header + c.bare) }

// Final checks the server-first-message and returns the
// client-final-message. It costs one PBKDF2 at the server's iteration count
// (at most MaxIterations).
func (c *Client) Final(serverFirstMsg []byte) ([]byte, error) {
	sfMsg := string(serverFirstMsg)
	sf, err := parseServerFirst(sfMsg)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(sf.nonce, c.nonce) || len(sf.nonce) == len(c.nonce) {
		return nil, malformed(sfName, "nonce does not extend the client's")
	}
	sp, err := c.m.saltedPassword(c.password, sf.salt, sf.iter)
	if err != nil {
		return nil, err
	}
	clientKey, storedKey, serverKey := c.m.keys(sp)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(gs2Header)) + ",r=" + sf.nonce
	authMessage := c.bare + "," + sfMsg + "," + withoutProof
	clientSig := c.m.hmac(storedKey, authMessage)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ clientSig[i]
	}
	c.serverSig = c.m.hmac(serverKey, authMessage)
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// Verify checks the server-final-message: a nil error means the server
// knows the user's credentials, not just that it let the client in.
func (c *Client) Verify(serverFinalMsg []byte) error {
	if c.serverSig == nil {
		return errors.New("scram: Verify before Final")
	}
	msg := string(serverFinalMsg)
	if e, ok := strings.CutPrefix(msg, "e="); ok {
		return fmt.Errorf("scram: server refused: %q", e)
	}
	v, ok := strings.CutPrefix(msg, "v=")
	if !ok {
		return malformed("server-final-message", "want v=<signature>")
	}
	v, _, _ = strings.Cut(v, ",") // extensions follow
	sig, err := decodeB64(v)
	if err != nil {
		return malformed("server-final-message", "signature is not base64")
	}
	if !hmac.Equal(sig, c.serverSig) {
		return errors.New("scram: server signature does not match: the server does not know the credentials")
	}
	return nil
}
