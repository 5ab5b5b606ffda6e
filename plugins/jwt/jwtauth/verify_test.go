package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"

	"math/big"
	"strings"
	"testing"
	"time"
)

// signer holds a private key and the public JWKS/PEM a test verifies with.
type signer struct {
	alg  string
	kid  string
	sign func(data []byte) []byte
	jwk  map[string]any
	pem  []byte
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func newSigner(t testing.TB, alg string) *signer {
	t.Helper()
	s := &signer{alg: alg, kid: "kid-" + alg}
	info := algs[alg]
	digest := func(data []byte) []byte { h := info.new(); h.Write(data); return h.Sum(nil) }
	switch alg {
	case "HS256", "HS384", "HS512":
		secret := make([]byte, 48)
		rand.Read(secret)
		s.sign = func(d []byte) []byte { m := hmac.New(info.new, secret); m.Write(d); return m.Sum(nil) }
		s.jwk = map[string]any{"kty": "oct", "kid": s.kid, "k": b64u(secret)}
	case "RS256", "RS384", "RS512", "PS256":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if alg == "PS256" {
			s.sign = func(d []byte) []byte { sig, _ := rsa.SignPSS(rand.Reader, k, info.hash, digest(d), nil); return sig }
		} else {
			s.sign = func(d []byte) []byte { sig, _ := rsa.SignPKCS1v15(rand.Reader, k, info.hash, digest(d)); return sig }
		}
		s.jwk = map[string]any{"kty": "RSA", "kid": s.kid, "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		s.pem = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	case "ES256", "ES384":
		curve, crv := elliptic.P256(), "P-256"
		if alg == "ES384" {
			curve, crv = elliptic.P384(), "P-384"
		}
		k, err := ecdsa.GenerateKey(curve, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		size := (curve.Params().BitSize + 7) / 8
		s.sign = func(d []byte) []byte {
			r, ss, _ := ecdsa.Sign(rand.Reader, k, digest(d))
			out := make([]byte, 2*size)
			r.FillBytes(out[:size])
			ss.FillBytes(out[size:])
			return out
		}
		raw, _ := k.PublicKey.Bytes()
		s.jwk = map[string]any{"kty": "EC", "kid": s.kid, "crv": crv, "x": b64u(raw[1 : 1+size]), "y": b64u(raw[1+size:])}
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		s.pem = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	case "EdDSA":
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		s.sign = func(d []byte) []byte { return ed25519.Sign(priv, d) }
		s.jwk = map[string]any{"kty": "OKP", "kid": s.kid, "crv": "Ed25519", "x": b64u(pub)}
		der, _ := x509.MarshalPKIXPublicKey(pub)
		s.pem = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	default:
		t.Fatalf("no signer for %s", alg)
	}
	return s
}

func (s *signer) token(t testing.TB, hdr map[string]any, claims map[string]any) string {
	t.Helper()
	if hdr == nil {
		hdr = map[string]any{"alg": s.alg, "typ": "JWT", "kid": s.kid}
	}
	hb, _ := json.Marshal(hdr)
	cb, _ := json.Marshal(claims)
	signed := b64u(hb) + "." + b64u(cb)
	return signed + "." + b64u(s.sign([]byte(signed)))
}

func (s *signer) jwks(t testing.TB) *KeySet {
	t.Helper()
	doc, _ := json.Marshal(map[string]any{"keys": []any{s.jwk}})
	ks, err := ParseKeys(doc, "jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

var allAlgs = []string{"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

func TestEveryAlgorithm(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, alg := range allAlgs {
		t.Run(alg, func(t *testing.T) {
			s := newSigner(t, alg)
			v := &Validator{Keys: s.jwks(t), Issuer: "moat-test", Audience: "mqtt"}
			tok := s.token(t, nil, map[string]any{"sub": "dev1", "iss": "moat-test", "aud": []string{"x", "mqtt"}, "exp": now.Unix() + 60})
			c, err := v.Verify(tok, now)
			if err != nil {
				t.Fatalf("valid token refused: %v", err)
			}
			if c.Subject != "dev1" || !c.ExpiresAt.Equal(now.Add(60*time.Second)) {
				t.Fatalf("claims = %+v", c)
			}
			if s.pem != nil {
				ks, err := ParseKeys(s.pem, "key.pem")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := (&Validator{Keys: ks}).Verify(tok, now); err != nil {
					t.Fatalf("PEM key: %v", err)
				}
			}
			// Flip one bit of the signature.
			bad := []byte(tok)
			bad[len(bad)-3] ^= 0x01
			if bad[len(bad)-3] == '.' {
				bad[len(bad)-3] = 'A'
			}
			if _, err := v.Verify(string(bad), now); err == nil {
				t.Fatal("tampered signature accepted")
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	hs := newSigner(t, "HS256")
	rs := newSigner(t, "RS256")
	valid := map[string]any{"sub": "dev1", "iss": "moat-test", "aud": "mqtt", "exp": now.Unix() + 60}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for a, b := range valid {
			m[a] = b
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	v := &Validator{Keys: hs.jwks(t), Issuer: "moat-test", Audience: "mqtt", Leeway: 5 * time.Second, RequireExp: true}

	// alg confusion: an HS256 token whose HMAC key is the RSA public key PEM.
	rsaKeys, _ := ParseKeys(rs.pem, "rsa.pem")
	confused := func() string {
		hb, _ := json.Marshal(map[string]any{"alg": "HS256", "typ": "JWT"})
		cb, _ := json.Marshal(valid)
		signed := b64u(hb) + "." + b64u(cb)
		m := hmac.New(algs["HS256"].new, rs.pem)
		m.Write([]byte(signed))
		return signed + "." + b64u(m.Sum(nil))
	}()
	none := func() string {
		hb, _ := json.Marshal(map[string]any{"alg": "none"})
		cb, _ := json.Marshal(valid)
		return b64u(hb) + "." + b64u(cb) + "."
	}()

	tests := []struct {
		name  string
		v     *Validator
		token string
		want  error
	}{
		{"expired", v, hs.token(t, nil, with("exp", now.Unix()-6)), ErrExpired},
		{"expired within leeway is fine", v, hs.token(t, nil, with("exp", now.Unix()-4)), nil},
		{"no exp when required", v, hs.token(t, nil, with("exp", nil)), ErrExpired},
		{"not yet valid", v, hs.token(t, nil, with("nbf", now.Unix()+6)), ErrNotYet},
		{"nbf within leeway", v, hs.token(t, nil, with("nbf", now.Unix()+4)), nil},
		{"wrong issuer", v, hs.token(t, nil, with("iss", "evil")), ErrIssuer},
		{"wrong audience", v, hs.token(t, nil, with("aud", "other")), ErrAudience},
		{"audience list without ours", v, hs.token(t, nil, with("aud", []string{"a", "b"})), ErrAudience},
		{"alg none", v, none, ErrAlgorithm},
		{"alg confusion HS256 with RSA public key", &Validator{Keys: rsaKeys}, confused, ErrNoKey},
		{"signed by another key", v, newSigner(t, "HS256").token(t, map[string]any{"alg": "HS256"}, valid), ErrSignature},
		{"unknown kid", v, hs.token(t, map[string]any{"alg": "HS256", "kid": "other"}, valid), ErrNoKey},
		{"algorithm not in allow list", &Validator{Keys: hs.jwks(t), Algorithms: []string{"RS256"}}, hs.token(t, nil, valid), ErrAlgorithm},
		{"two parts", v, "a.b", ErrMalformed},
		{"garbage header", v, "!!!.e30.sig", ErrMalformed},
		{"crit header", v, hs.token(t, map[string]any{"alg": "HS256", "crit": []string{"exp"}}, valid), ErrMalformed},
		{"exp not a number", v, hs.token(t, nil, with("exp", "tomorrow")), ErrMalformed},
		{"huge", v, strings.Repeat("a", MaxTokenSize+1), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.v.Verify(tc.token, now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), tc.token) && len(tc.token) > 10 {
				t.Fatal("error message echoes the token")
			}
		})
	}
}

func TestParseKeysErrors(t *testing.T) {
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	tests := []struct{ name, data, want string }{
		{"empty", "", "neither a JWKS"},
		{"private PEM", string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(priv)})), "not accepted"},
		{"small RSA", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "at least 2048"},
		{"private JWK", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}]}`, "private key material"},
		{"short secret", `{"keys":[{"kty":"oct","k":"c2hvcnQ"}]}`, "at least 32 bytes"},
		{"bad curve", `{"kty":"EC","crv":"P-521","x":"AA","y":"AA"}`, "P-521"},
		{"bad json", `{"keys":[`, "jwks.json"},
		{"unknown alg", `{"keys":[{"kty":"oct","alg":"HS999","k":"` + b64u(make([]byte, 32)) + `"}]}`, "HS999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseKeys([]byte(tc.data), "jwks.json")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	s := newSigner(f, "HS256")
	ks := s.jwks(f)
	f.Add(s.token(f, nil, map[string]any{"sub": "x", "exp": 2e9}))
	f.Add("e30.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		v := &Validator{Keys: ks}
		c, err := v.Verify(tok, time.Unix(1_800_000_000, 0))
		if err == nil && c == nil {
			t.Fatal("nil claims without error")
		}
	})
}

func FuzzParseKeys(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"` + b64u(make([]byte, 32)) + `"}]}`))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := ParseKeys(b, "fuzz")
		if err == nil && len(ks.Keys) == 0 {
			t.Fatal("empty key set without error")
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	for _, alg := range []string{"HS256", "RS256", "ES256", "EdDSA"} {
		s := newSigner(b, alg)
		v := &Validator{Keys: s.jwks(b)}
		tok := s.token(b, nil, map[string]any{"sub": "dev1", "exp": now.Unix() + 60})
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(tok, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
