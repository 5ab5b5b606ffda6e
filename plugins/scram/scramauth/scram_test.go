package scramauth

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// vectors: RFC 7677 §3 for SCRAM-SHA-256; for SCRAM-SHA-512 the same inputs,
// with the expected messages computed independently with Python's hashlib
// and hmac (which reproduce the RFC 7677 vector exactly).
var vectors = []struct {
	mech, user, password, cnonce, snonce, salt string
	iter                                       int
	clientFirst, serverFirst                   string
	clientFinal, serverFinal                   string
	stored                                     string
}{
	{
		mech: SHA256, user: "user", password: "pencil",
		cnonce: "rOprNGfwEbeRWgbNEkqO", snonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
		salt: "W22ZaJ0SNY7soEsUEjb6gQ==", iter: 4096,
		clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		stored:      "$scram-sha-256$i=4096$W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	},
	{
		mech: SHA512, user: "user", password: "pencil",
		cnonce: "rOprNGfwEbeRWgbNEkqO", snonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
		salt: "W22ZaJ0SNY7soEsUEjb6gQ==", iter: 4096,
		clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
		serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
		clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==",
		serverFinal: "v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==",
		stored:      "$scram-sha-512$i=4096$W22ZaJ0SNY7soEsUEjb6gQ==$6AAub3065EYRmyFpM2RNwqK+eGnrkYuEWbXn19LsEmBqzu8QaCXNc1FwpnX9NhH2hK/60dzj9DoO5DvVkOHbvg==$jZHbYjC1aHh0/hKbxyBuGFjDrgjgKTT1esA7awWiKcRZ0o/0b1yWEebBeSVkkCFewf91nLDfKF24mvD5nmE6rA==",
	},
}

var testSecret = []byte("0123456789abcdef-test-secret")

// users is a Lookup over a fixed map.
func users(t testing.TB, creds map[string]Credentials) *Server {
	t.Helper()
	s, err := NewServer(ServerConfig{
		Lookup: func(u string) (Credentials, bool) { c, ok := creds[u]; return c, ok },
		Secret: testSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCreds(t testing.TB, mech, password string, iter int) Credentials {
	t.Helper()
	salt := make([]byte, 16)
	rand.Read(salt)
	c, err := NewCredentials(mech, []byte(password), salt, iter)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.mech, func(t *testing.T) {
			salt, _ := base64.StdEncoding.DecodeString(v.salt)
			cred, err := NewCredentials(v.mech, []byte(v.password), salt, v.iter)
			if err != nil {
				t.Fatal(err)
			}
			if got := cred.Encode(); got != v.stored {
				t.Errorf("Encode = %s\nwant     %s", got, v.stored)
			}
			parsed, err := ParseCredentials(v.stored)
			if err != nil {
				t.Fatal(err)
			}
			if parsed.Encode() != v.stored || parsed.Mechanism() != v.mech || parsed.Iterations() != v.iter {
				t.Errorf("ParseCredentials round trip: %s", parsed.Encode())
			}
			if !parsed.Verify([]byte(v.password)) || parsed.Verify([]byte("pencil2")) {
				t.Error("Credentials.Verify: right password refused or wrong one accepted")
			}

			// Client side.
			c, err := newClient(v.mech, v.user, v.password, v.cnonce)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(c.First()); got != v.clientFirst {
				t.Errorf("client First = %q, want %q", got, v.clientFirst)
			}
			final, err := c.Final([]byte(v.serverFirst))
			if err != nil {
				t.Fatal(err)
			}
			if string(final) != v.clientFinal {
				t.Errorf("client Final = %q\nwant %q", final, v.clientFinal)
			}
			if err := c.Verify([]byte(v.serverFinal)); err != nil {
				t.Errorf("client Verify: %v", err)
			}

			// Server side, with the RFC's server nonce.
			s := users(t, map[string]Credentials{v.user: parsed})
			sf, st, err := s.start(v.mech, []byte(v.clientFirst), v.snonce)
			if err != nil {
				t.Fatal(err)
			}
			if string(sf) != v.serverFirst {
				t.Errorf("server-first = %q\nwant %q", sf, v.serverFirst)
			}
			sfin, user, err := s.Finish(v.mech, st, []byte(v.clientFinal))
			if err != nil {
				t.Fatal(err)
			}
			if string(sfin) != v.serverFinal || user != v.user {
				t.Errorf("server-final = %q for %q, want %q for %q", sfin, user, v.serverFinal, v.user)
			}
		})
	}
}

// exchange runs a full exchange, returning the client's and the server's
// errors.
func exchange(t testing.TB, s *Server, mech, user, password string) (clientErr, serverErr error) {
	t.Helper()
	c, err := NewClient(mech, user, password)
	if err != nil {
		t.Fatal(err)
	}
	sf, st, err := s.Start(mech, c.First(), rand.Reader)
	if err != nil {
		return nil, err
	}
	fin, err := c.Final(sf)
	if err != nil {
		return err, nil
	}
	sfin, gotUser, err := s.Finish(mech, st, fin)
	if err != nil {
		return nil, err
	}
	if gotUser != user {
		t.Errorf("Finish user = %q, want %q", gotUser, user)
	}
	return c.Verify(sfin), nil
}

func TestExchange(t *testing.T) {
	creds := map[string]Credentials{
		"alice":        mustCreds(t, SHA256, "correct horse", 4096),
		"bob":          mustCreds(t, SHA512, "battery staple", 4096),
		"a,b=c":        mustCreds(t, SHA256, "commas, equals=", 4096),
		"müller 名前":    mustCreds(t, SHA512, "ascii only", 4096),
		"empty-secret": mustCreds(t, SHA256, "", 4096),
	}
	s := users(t, creds)
	tests := []struct {
		name, mech, user, password string
		ok                         bool
	}{
		{"sha256 right", SHA256, "alice", "correct horse", true},
		{"sha512 right", SHA512, "bob", "battery staple", true},
		{"escaped username", SHA256, "a,b=c", "commas, equals=", true},
		{"utf-8 username", SHA512, "müller 名前", "ascii only", true},
		{"empty password", SHA256, "empty-secret", "", true},
		{"sha256 wrong password", SHA256, "alice", "correct horse ", false},
		{"sha512 wrong password", SHA512, "bob", "battery", false},
		{"unknown user", SHA256, "mallory", "correct horse", false},
		{"other mechanism", SHA512, "alice", "correct horse", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cerr, serr := exchange(t, s, tc.mech, tc.user, tc.password)
			if tc.ok {
				if cerr != nil || serr != nil {
					t.Fatalf("client %v, server %v", cerr, serr)
				}
				return
			}
			if cerr != nil {
				t.Fatalf("client failed before the server: %v", cerr)
			}
			if !errors.Is(serr, ErrAuthFailed) {
				t.Fatalf("server: %v, want ErrAuthFailed", serr)
			}
		})
	}
}

func TestUnknownUserLooksReal(t *testing.T) {
	s := users(t, map[string]Credentials{"alice": mustCreds(t, SHA256, "pw", 4096)})
	first := func(user string) serverFirst {
		c, _ := NewClient(SHA256, user, "x")
		sf, _, err := s.Start(SHA256, c.First(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parseServerFirst(string(sf))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b, other := first("mallory"), first("mallory"), first("trudy")
	if !bytes.Equal(a.salt, b.salt) {
		t.Error("an unknown user's salt changes between attempts, which tells they are unknown")
	}
	if bytes.Equal(a.salt, other.salt) {
		t.Error("two unknown users share a salt")
	}
	if len(a.salt) != 16 || a.iter != DefaultIterations {
		t.Errorf("unknown user: salt %d bytes, i=%d; want 16 and %d", len(a.salt), a.iter, DefaultIterations)
	}
	real := first("alice")
	if len(real.salt) != len(a.salt) || real.iter != a.iter {
		t.Error("real and unknown users differ in salt length or iterations")
	}
	// Another secret gives other fake salts: they depend on it.
	s2, _ := NewServer(ServerConfig{Lookup: s.lookup, Secret: []byte("another secret of 16+ bytes")})
	c, _ := NewClient(SHA256, "mallory", "x")
	sf, _, _ := s2.Start(SHA256, c.First(), rand.Reader)
	p, _ := parseServerFirst(string(sf))
	if bytes.Equal(p.salt, a.salt) {
		t.Error("fake salt does not depend on the secret")
	}
}

func TestStateTampering(t *testing.T) {
	s := users(t, map[string]Credentials{"alice": mustCreds(t, SHA256, "pw", 4096)})
	c, _ := NewClient(SHA256, "alice", "pw")
	sf, st, err := s.Start(SHA256, c.First(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fin, err := c.Final(sf)
	if err != nil {
		t.Fatal(err)
	}
	for i := range st {
		bad := bytes.Clone(st)
		bad[i] ^= 0x01
		if _, _, err := s.Finish(SHA256, bad, fin); !errors.Is(err, ErrState) {
			t.Fatalf("state with byte %d flipped: %v, want ErrState", i, err)
		}
	}
	for _, n := range []int{0, 1, 10, len(st) - 1} {
		if _, _, err := s.Finish(SHA256, st[:n], fin); !errors.Is(err, ErrState) {
			t.Fatalf("state truncated to %d: %v, want ErrState", n, err)
		}
	}
	if _, _, err := s.Finish(SHA256, append(bytes.Clone(st), 0), fin); !errors.Is(err, ErrState) {
		t.Fatalf("state with a trailing byte: %v, want ErrState", err)
	}
	other, _ := NewServer(ServerConfig{Lookup: s.lookup, Secret: []byte("a different secret, same users")})
	if _, _, err := other.Finish(SHA256, st, fin); !errors.Is(err, ErrState) {
		t.Fatalf("state from a server with another secret: %v, want ErrState", err)
	}
	if _, _, err := s.Finish(SHA512, st, fin); err == nil {
		t.Fatal("state of a SCRAM-SHA-256 exchange accepted for SCRAM-SHA-512")
	}
	// The untouched state still works: the failures above were the
	// tampering, not the test.
	if _, _, err := s.Finish(SHA256, st, fin); err != nil {
		t.Fatalf("untampered: %v", err)
	}
}

func TestTamperedFinal(t *testing.T) {
	s := users(t, map[string]Credentials{"alice": mustCreds(t, SHA256, "pw", 4096)})
	c, _ := NewClient(SHA256, "alice", "pw")
	sf, st, _ := s.Start(SHA256, c.First(), rand.Reader)
	fin, _ := c.Final(sf)
	msg := string(fin)
	nonce := string(sf[2:strings.IndexByte(string(sf), ',')])
	proofAt := strings.LastIndex(msg, ",p=") + 3
	proof, _ := base64.StdEncoding.DecodeString(msg[proofAt:])
	proof[0] ^= 0x80
	other := "x" // a last nonce character that differs from the real one
	if nonce[len(nonce)-1] == 'x' {
		other = "y"
	}
	tests := []struct {
		name string
		msg  string
		want error
	}{
		{"nonce changed", strings.Replace(msg, nonce, nonce[:len(nonce)-1]+other, 1), ErrMalformed},
		{"nonce of the client only", strings.Replace(msg, nonce, nonce[:len(nonce)-32], 1), ErrMalformed},
		{"proof flipped", msg[:proofAt] + base64.StdEncoding.EncodeToString(proof), ErrAuthFailed},
		{"channel binding y", strings.Replace(msg, "c=biws", "c=eSws", 1), ErrMalformed},
		{"extension added", strings.Replace(msg, ",p=", ",x=ext,p=", 1), ErrAuthFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.Finish(SHA256, st, []byte(tc.msg)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, _, err := s.Finish(SHA256, st, fin); err != nil {
		t.Fatalf("untampered: %v", err)
	}
}

// TestReplayedFinal: a client-final-message recorded from one exchange does
// not log in on another, because each exchange has a fresh server nonce.
func TestReplayedFinal(t *testing.T) {
	s := users(t, map[string]Credentials{"alice": mustCreds(t, SHA512, "pw", 4096)})
	c, _ := NewClient(SHA512, "alice", "pw")
	first := c.First()
	sf, st, _ := s.Start(SHA512, first, rand.Reader)
	fin, _ := c.Final(sf)
	if _, _, err := s.Finish(SHA512, st, fin); err != nil {
		t.Fatalf("original exchange: %v", err)
	}
	// The attacker replays the same client-first-message (same client
	// nonce) and the recorded final on a new connection.
	_, st2, err := s.Start(SHA512, first, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Finish(SHA512, st2, fin); err == nil {
		t.Fatal("replayed client-final-message accepted")
	}
}

func TestMalformedClientFirst(t *testing.T) {
	s := users(t, map[string]Credentials{"alice": mustCreds(t, SHA256, "pw", 4096)})
	tests := []struct{ name, msg, contains string }{
		{"empty", "", "gs2"},
		{"no gs2", "n=alice,r=abc", "channel binding flag"},
		{"channel binding p", "p=tls-unique,,n=alice,r=abc", "not supported"},
		{"bad flag", "x,,n=alice,r=abc", "flag"},
		{"gs2 unterminated", "n,a=alice", "gs2"},
		{"mandatory extension", "n,,m=ext,n=alice,r=abc", "mandatory"},
		{"no nonce", "n,,n=alice", "r="},
		{"nonce first", "n,,r=abc,n=alice", "n="},
		{"empty username", "n,,n=,r=abc", "username"},
		{"bad escape", "n,,n=al=2Dce,r=abc", "username"},
		{"control char", "n,,n=al\x01ce,r=abc", "username"},
		{"invalid utf-8", "n,,n=al\xffce,r=abc", "username"},
		{"empty nonce", "n,,n=alice,r=", "nonce"},
		{"nonce with space", "n,,n=alice,r=a b", "nonce"},
		{"bad extension", "n,,n=alice,r=abc,junk", "attribute"},
		{"authzid other user", "n,a=bob,n=alice,r=abc", "authorization"},
		{"authzid garbage", "n,zz,n=alice,r=abc", "authzid"},
		{"too long", "n,,n=alice,r=" + strings.Repeat("a", MaxMessage), "longer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.Start(SHA256, []byte(tc.msg), rand.Reader)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.contains) {
				t.Fatalf("got %v, want ErrMalformed mentioning %q", err, tc.contains)
			}
		})
	}
	// Accepted variants.
	for _, msg := range []string{"y,,n=alice,r=abc", "n,a=alice,n=alice,r=abc", "n,,n=alice,r=abc,x=ext"} {
		if _, _, err := s.Start(SHA256, []byte(msg), rand.Reader); err != nil {
			t.Errorf("%q: %v", msg, err)
		}
	}
	if _, _, err := s.Start("SCRAM-SHA-1", []byte("n,,n=alice,r=abc"), rand.Reader); err == nil {
		t.Error("SCRAM-SHA-1 accepted")
	}
}

func TestMalformedClientFinal(t *testing.T) {
	s := users(t, map[string]Credentials{"alice": mustCreds(t, SHA256, "pw", 4096)})
	c, _ := NewClient(SHA256, "alice", "pw")
	sf, st, _ := s.Start(SHA256, c.First(), rand.Reader)
	nonce := string(sf[2:strings.IndexByte(string(sf), ',')])
	proof := base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct{ name, msg string }{
		{"empty", ""},
		{"no proof", "c=biws,r=" + nonce},
		{"proof not last", "c=biws,r=" + nonce + ",p=" + proof + ",x=y"},
		{"short proof", "c=biws,r=" + nonce + ",p=AAAA"},
		{"proof not base64", "c=biws,r=" + nonce + ",p=!!!!"},
		{"no c", "r=" + nonce + ",p=" + proof},
		{"c second", "r=" + nonce + ",c=biws,p=" + proof},
		{"channel binding data", "c=cD10bHMtdW5pcXVlLCw=,r=" + nonce + ",p=" + proof},
		{"c not base64", "c=b!ws,r=" + nonce + ",p=" + proof},
		{"bad extension", "c=biws,r=" + nonce + ",junk,p=" + proof},
		{"too long", "c=biws,r=" + nonce + strings.Repeat("a", MaxMessage) + ",p=" + proof},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := s.Finish(SHA256, st, []byte(tc.msg)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestClientChecksServer(t *testing.T) {
	const salt = "W22ZaJ0SNY7soEsUEjb6gQ=="
	tests := []struct{ name, serverFirst string }{
		{"nonce not extended", "r=cnonce,s=" + salt + ",i=4096"},
		{"nonce of another client", "r=other-nonce-xyz,s=" + salt + ",i=4096"},
		{"no salt", "r=cnonceSRV,i=4096"},
		{"empty salt", "r=cnonceSRV,s=,i=4096"},
		{"zero iterations", "r=cnonceSRV,s=" + salt + ",i=0"},
		{"too many iterations", "r=cnonceSRV,s=" + salt + ",i=999999999"},
		{"negative iterations", "r=cnonceSRV,s=" + salt + ",i=-1"},
		{"mandatory extension", "m=x,r=cnonceSRV,s=" + salt + ",i=4096"},
		{"server error", "e=other-error"},
		{"empty", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newClient(SHA256, "user", "pencil", "cnonce")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Final([]byte(tc.serverFirst)); err == nil {
				t.Fatal("accepted")
			}
		})
	}

	v := vectors[0]
	for _, bad := range []string{"", "e=invalid-proof", "v=", "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=", "x=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="} {
		c, _ := newClient(v.mech, v.user, v.password, v.cnonce)
		if err := c.Verify([]byte(v.serverFinal)); err == nil {
			t.Fatal("Verify before Final accepted")
		}
		if _, err := c.Final([]byte(v.serverFirst)); err != nil {
			t.Fatal(err)
		}
		if err := c.Verify([]byte(bad)); err == nil {
			t.Errorf("server-final %q accepted", bad)
		}
	}
}

func TestCredentialErrors(t *testing.T) {
	salt := []byte("0123456789abcdef")
	if _, err := NewCredentials(SHA256, []byte("pässword"), salt, 4096); err == nil {
		t.Error("non-ASCII password accepted")
	}
	if _, err := NewCredentials(SHA256, []byte("tab\there"), salt, 4096); err == nil {
		t.Error("control character accepted")
	}
	if _, err := NewCredentials(SHA256, []byte("pw"), nil, 4096); err == nil {
		t.Error("empty salt accepted")
	}
	if _, err := NewCredentials(SHA256, []byte("pw"), salt, 0); err == nil {
		t.Error("0 iterations accepted")
	}
	if _, err := NewCredentials(SHA256, []byte("pw"), salt, MaxIterations+1); err == nil {
		t.Error("iterations above the cap accepted")
	}
	if _, err := NewCredentials("SCRAM-SHA-1", []byte("pw"), salt, 4096); err == nil {
		t.Error("SCRAM-SHA-1 accepted")
	}
	if _, err := NewClient(SHA256, "user", "pässword"); err == nil {
		t.Error("client: non-ASCII password accepted")
	}
	if _, err := NewClient(SHA256, "", "pw"); err == nil {
		t.Error("client: empty username accepted")
	}

	good := vectors[0].stored
	bad := []string{
		"",
		"$scram-sha-1$i=4096$c2FsdA==$AAAA$AAAA",
		strings.Replace(good, "i=4096", "4096", 1),
		strings.Replace(good, "i=4096", "i=0", 1),
		strings.Replace(good, "i=4096", "i=+4096", 1),
		strings.Replace(good, "i=4096", "i=99999999999", 1),
		strings.Replace(good, "i=4096", "i=2000001", 1),
		strings.Replace(good, "W22ZaJ0SNY7soEsUEjb6gQ==", "", 1),
		strings.Replace(good, "W22ZaJ0SNY7soEsUEjb6gQ==", "W22Z!!", 1),
		good[:len(good)-4],
		good + "$extra",
		strings.Replace(good, "$scram-sha-256$", "$scram-sha-512$", 1),
	}
	for _, s := range bad {
		if _, err := ParseCredentials(s); err == nil {
			t.Errorf("ParseCredentials(%q) accepted", s)
		}
	}
	// Unpadded base64 is accepted.
	unpadded := "$scram-sha-256$i=4096$" + strings.ReplaceAll(strings.TrimPrefix(good, "$scram-sha-256$i=4096$"), "=", "")
	if c, err := ParseCredentials(unpadded); err != nil || c.Encode() != good {
		t.Errorf("unpadded %q: %v", unpadded, err)
	}
	var zero Credentials
	if zero.Verify([]byte("")) || zero.Encode() != "" || zero.Mechanism() != "" {
		t.Error("zero Credentials is not inert")
	}
}

func TestNewServerConfig(t *testing.T) {
	lookup := func(string) (Credentials, bool) { return Credentials{}, false }
	bad := []ServerConfig{
		{Secret: testSecret},
		{Lookup: lookup, Secret: []byte("short")},
		{Lookup: lookup, Secret: testSecret, UnknownUserIterations: -1},
		{Lookup: lookup, Secret: testSecret, UnknownUserIterations: MaxIterations + 1},
	}
	for i, c := range bad {
		if _, err := NewServer(c); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	s, err := NewServer(ServerConfig{Lookup: lookup, Secret: testSecret, UnknownUserIterations: 10000})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := NewClient(SHA256, "x", "y")
	sf, _, _ := s.Start(SHA256, c.First(), rand.Reader)
	if !strings.HasSuffix(string(sf), ",i=10000") {
		t.Errorf("server-first %q does not use UnknownUserIterations", sf)
	}
	if _, _, err := s.Start(SHA256, c.First(), bytes.NewReader(nil)); err == nil {
		t.Error("Start with a failing random source succeeded")
	}
}
