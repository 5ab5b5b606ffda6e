package scramauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ServerConfig configures a Server.
type ServerConfig struct {
	// Lookup returns the stored credentials of user, and false when there
	// are none. It is called once per round and must be safe for
	// concurrent use if the Server is.
	Lookup func(user string) (Credentials, bool)

	// Secret keys the MAC over the state blob and the fake salts shown for
	// unknown users. It must be at least 16 bytes, unknown to clients, and
	// the same in every instance that may serve the rounds of one exchange:
	// derive it from the credentials file (passwdfile.File.SCRAMServer
	// does), not from a per-instance random number, since the host pools
	// wasm instances and round 1 may reach another one than round 0.
	Secret []byte

	// UnknownUserIterations is the iteration count shown for users without
	// credentials; 0 means DefaultIterations. Use the count most of the real
	// users have, so that the count does not tell who exists.
	UnknownUserIterations int
}

// Server is the server side of SCRAM-SHA-256 and SCRAM-SHA-512. It keeps no
// state between rounds: Start returns a state blob that the caller keeps for
// the connection (the MQTT host keeps it through the ABI's auth_state) and
// hands to Finish with the client's next message.
//
// # Why the state needs no secrecy, and why it still carries a MAC
//
// The state holds the gs2 header, the client-first-message-bare and the
// server-first-message (which holds the combined nonce, salt and iteration
// count): nothing secret, since the client saw or wrote all of it. The
// security of the exchange rests on the stored keys and on the server nonce
// being fresh: a proof binds the nonce, so a proof recorded from one exchange
// fails in any other. The client never sees the state, so it cannot forge it;
// only the host holds it. The MAC (HMAC-SHA-256 under a key derived from
// Secret) is defence in depth against a host that mixes up the states of two
// connections or corrupts one, and it makes a state from before a password
// file change useless after it (the file is the Secret). Because Secret comes
// from the credentials and not from the instance, any pooled instance can
// check a state that another produced.
//
// # Unknown users
//
// An unknown user, or one whose credentials are for the other mechanism,
// gets a normal server-first-message with a salt derived from Secret and the
// username (stable across attempts, so that it does not tell), and the
// exchange fails in Finish after the same HMAC work as a wrong password.
//
// A Server is safe for concurrent use when Lookup is.
type Server struct {
	lookup   func(string) (Credentials, bool)
	macKey   []byte
	fakeKey  []byte
	fakeIter int
}

// NewServer checks c and returns a Server.
func NewServer(c ServerConfig) (*Server, error) {
	if c.Lookup == nil {
		return nil, errors.New("scram: server config: no Lookup")
	}
	if len(c.Secret) < 16 {
		return nil, fmt.Errorf("scram: server config: secret of %d bytes (want at least 16)", len(c.Secret))
	}
	it := c.UnknownUserIterations
	if it == 0 {
		it = DefaultIterations
	}
	if it < 1 || it > MaxIterations {
		return nil, fmt.Errorf("scram: server config: unknown-user iterations %d (want 1 to %d)", it, MaxIterations)
	}
	return &Server{
		lookup:   c.Lookup,
		macKey:   subkey(c.Secret, "state mac"),
		fakeKey:  subkey(c.Secret, "unknown user"),
		fakeIter: it,
	}, nil
}

func subkey(secret []byte, label string) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("moat scramauth v1\x00" + label))
	return h.Sum(nil)
}

// serverNonceBytes is the entropy of the server's share of the nonce: 192
// bits, base64 without padding (32 characters).
const serverNonceBytes = 24

// Start handles round 0: clientFirst is the auth data of a CONNECT whose
// authentication method is mech. It returns the server-first-message to send
// in an AUTH packet and the state to hand to Finish. random supplies the
// server nonce (crypto/rand.Reader).
//
// An unknown user is not an error here (see Server).
func (s *Server) Start(mech string, clientFirst []byte, random io.Reader) (serverFirst, state []byte, err error) {
	var nonce [serverNonceBytes]byte
	if _, err := io.ReadFull(random, nonce[:]); err != nil {
		return nil, nil, fmt.Errorf("scram: server nonce: %w", err)
	}
	return s.start(mech, clientFirst, base64.RawStdEncoding.EncodeToString(nonce[:]))
}

func (s *Server) start(mech string, clientFirstMsg []byte, serverNonce string) (serverFirst, state []byte, err error) {
	m, err := mechByName(mech)
	if err != nil {
		return nil, nil, err
	}
	cf, err := parseClientFirst(string(clientFirstMsg))
	if err != nil {
		return nil, nil, err
	}
	cred, _ := s.credentials(m, cf.user, false)
	sf := "r=" + cf.nonce + serverNonce + ",s=" + base64.StdEncoding.EncodeToString(cred.salt) + ",i=" + strconv.Itoa(cred.iter)
	return []byte(sf), s.sealState(m, cf.gs2, cf.bare, sf), nil
}

// credentials returns the user's credentials for m and 1, or fake ones and
// 0 (an int for constant-time use). The fake ones are derived either way,
// so that the two cases cost the same; their keys only when keys is set
// (Finish needs them, Start only the salt).
func (s *Server) credentials(m *mechanism, user string, keys bool) (Credentials, int) {
	fake := s.fake(m, user, keys)
	if c, ok := s.lookup(user); ok && c.m == m {
		return c, 1
	}
	return fake, 0
}

// fake derives credentials that no password matches (the keys are HMAC
// outputs, not derived from any password, and Finish refuses them anyway)
// but that look like real ones: a 16-byte salt, as passwdfile writes, and
// the usual iteration count.
func (s *Server) fake(m *mechanism, user string, keys bool) Credentials {
	c := Credentials{
		m:    m,
		salt: m.hmac(s.fakeKey, "salt\x00", m.name, "\x00", user)[:16],
		iter: s.fakeIter,
	}
	if keys {
		c.storedKey = m.hmac(s.fakeKey, "stored key\x00", m.name, "\x00", user)
		c.serverKey = m.hmac(s.fakeKey, "server key\x00", m.name, "\x00", user)
	}
	return c
}

// Finish handles round 1: clientFinal is the auth data of the client's AUTH
// packet, state what Start returned for this connection. On success it
// returns the server-final-message for the CONNACK and the authenticated
// username. Errors: ErrAuthFailed (wrong password or unknown user), errors
// wrapping ErrMalformed or ErrState. Any error means deny.
func (s *Server) Finish(mech string, state, clientFinalMsg []byte) (serverFinal []byte, user string, err error) {
	m, err := mechByName(mech)
	if err != nil {
		return nil, "", err
	}
	st, err := s.openState(m, state)
	if err != nil {
		return nil, "", err
	}
	// The state was written by Start from messages it parsed: parsing
	// again cannot fail unless the MAC key leaked.
	cf, err := parseClientFirst(st.gs2 + st.bare)
	if err != nil {
		return nil, "", ErrState
	}
	sf, err := parseServerFirst(st.serverFirst)
	if err != nil {
		return nil, "", ErrState
	}
	fin, err := parseClientFinal(string(clientFinalMsg), m.size)
	if err != nil {
		return nil, "", err
	}
	cb, err := decodeB64(fin.cbind)
	if err != nil || string(cb) != st.gs2 {
		return nil, "", malformed(cfinName, "channel binding does not match the gs2 header")
	}
	if fin.nonce != sf.nonce {
		return nil, "", malformed(cfinName, "nonce does not match")
	}

	// An unknown user goes through the same HMACs with fake keys, and
	// fails (real == 0). So do credentials that changed between rounds
	// under the same Secret (a Lookup not backed by one file): the proof
	// was computed over the old salt.
	cred, real := s.credentials(m, cf.user, true)
	same := subtle.ConstantTimeCompare(cred.salt, sf.salt) & subtle.ConstantTimeEq(int32(cred.iter), int32(sf.iter))

	authMessage := st.bare + "," + st.serverFirst + "," + fin.withoutProof
	clientSig := m.hmac(cred.storedKey, authMessage)
	clientKey := make([]byte, m.size)
	subtle.XORBytes(clientKey, fin.proof, clientSig)
	ok := subtle.ConstantTimeCompare(m.digest(clientKey), cred.storedKey) & same & real
	if ok != 1 {
		return nil, "", ErrAuthFailed
	}
	serverSig := m.hmac(cred.serverKey, authMessage)
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), cf.user, nil
}

// state is the decoded state blob.
type state struct {
	gs2, bare, serverFirst string
}

const (
	stateVersion = 1
	stateMACSize = sha256.Size
)

// sealState encodes: version, mechanism id, three u16-length-prefixed
// strings, HMAC-SHA-256 over all of that.
func (s *Server) sealState(m *mechanism, gs2, bare, sf string) []byte {
	b := make([]byte, 0, 2+6+len(gs2)+len(bare)+len(sf)+stateMACSize)
	b = append(b, stateVersion, m.id)
	for _, f := range []string{gs2, bare, sf} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	mac := hmac.New(sha256.New, s.macKey)
	mac.Write(b)
	return mac.Sum(b)
}

func (s *Server) openState(m *mechanism, b []byte) (state, error) {
	if len(b) < 2+stateMACSize {
		return state{}, fmt.Errorf("%w: too short", ErrState)
	}
	body, sum := b[:len(b)-stateMACSize], b[len(b)-stateMACSize:]
	mac := hmac.New(sha256.New, s.macKey)
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), sum) {
		return state{}, fmt.Errorf("%w: bad MAC", ErrState)
	}
	if body[0] != stateVersion {
		return state{}, fmt.Errorf("%w: version %d", ErrState, body[0])
	}
	if body[1] != m.id {
		return state{}, fmt.Errorf("%w: started with another mechanism", ErrState)
	}
	body = body[2:]
	var f [3]string
	for i := range f {
		if len(body) < 2 {
			return state{}, fmt.Errorf("%w: truncated", ErrState)
		}
		n := int(binary.BigEndian.Uint16(body))
		body = body[2:]
		if len(body) < n {
			return state{}, fmt.Errorf("%w: truncated", ErrState)
		}
		f[i], body = string(body[:n]), body[n:]
	}
	if len(body) != 0 {
		return state{}, fmt.Errorf("%w: trailing bytes", ErrState)
	}
	return state{gs2: f[0], bare: f[1], serverFirst: f[2]}, nil
}
