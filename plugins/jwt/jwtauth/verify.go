package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
	"time"
)

type algInfo struct {
	hash crypto.Hash
	new  func() hash.Hash
}

var algs = map[string]algInfo{
	"HS256": {crypto.SHA256, sha256.New},
	"HS384": {crypto.SHA384, sha512.New384},
	"HS512": {crypto.SHA512, sha512.New},
	"RS256": {crypto.SHA256, sha256.New},
	"RS384": {crypto.SHA384, sha512.New384},
	"RS512": {crypto.SHA512, sha512.New},
	"PS256": {crypto.SHA256, sha256.New},
	"ES256": {crypto.SHA256, sha256.New},
	"ES384": {crypto.SHA384, sha512.New384},
	"EdDSA": {},
}

// Errors a Verify returns; match with errors.Is. Messages name the failed
// check but never echo the token.
var (
	ErrMalformed = errors.New("jwt: malformed token")
	ErrAlgorithm = errors.New("jwt: algorithm not accepted")
	ErrNoKey     = errors.New("jwt: no key for this token")
	ErrSignature = errors.New("jwt: bad signature")
	ErrExpired   = errors.New("jwt: token expired")
	ErrNotYet    = errors.New("jwt: token not valid yet")
	ErrIssuer    = errors.New("jwt: wrong issuer")
	ErrAudience  = errors.New("jwt: wrong audience")
	ErrClaim     = errors.New("jwt: claim mismatch")
)

// MaxTokenSize bounds what Verify parses; MQTT passwords are at most 64 KiB.
const MaxTokenSize = 16 << 10

// Validator checks tokens against a key set and the configured claims.
type Validator struct {
	Keys *KeySet
	// Algorithms restricts the accepted algorithms; empty accepts every
	// supported one. "none" is never accepted.
	Algorithms []string
	Issuer     string
	// Audience, when set, must appear in the token's "aud".
	Audience string
	// Leeway tolerates clock skew for exp and nbf.
	Leeway time.Duration
	// RequireExp refuses tokens without "exp".
	RequireExp bool
}

// Claims is a verified token's payload.
type Claims struct {
	Subject   string
	Issuer    string
	ExpiresAt time.Time // zero when absent
	NotBefore time.Time
	// All holds every claim as decoded JSON.
	All map[string]any
}

// String returns claim name as a string ("" when absent or not a string).
func (c *Claims) String(name string) string {
	s, _ := c.All[name].(string)
	return s
}

type header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
}

// Verify checks token's signature and registered claims at time now.
func (v *Validator) Verify(token string, now time.Time) (*Claims, error) {
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenSize)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: want 3 parts, found %d", ErrMalformed, len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if len(h.Crit) > 0 {
		return nil, fmt.Errorf("%w: unsupported critical header %q", ErrMalformed, h.Crit)
	}
	info, ok := algs[h.Alg]
	if !ok || !v.algAllowed(h.Alg) {
		return nil, fmt.Errorf("%w: %q", ErrAlgorithm, h.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrMalformed, err)
	}
	signed := token[:len(parts[0])+1+len(parts[1])]

	verified, tried := false, false
	if v.Keys != nil {
		for i := range v.Keys.Keys {
			k := &v.Keys.Keys[i]
			if (h.Kid != "" && k.ID != "" && k.ID != h.Kid) || !k.fits(h.Alg) {
				continue
			}
			tried = true
			if verifySig(k, h.Alg, info, []byte(signed), sig) {
				verified = true
				break
			}
		}
	}
	if !tried {
		return nil, fmt.Errorf("%w (alg %s, kid %q)", ErrNoKey, h.Alg, h.Kid)
	}
	if !verified {
		return nil, ErrSignature
	}

	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	c := &Claims{}
	dec := json.NewDecoder(strings.NewReader(string(pb)))
	dec.UseNumber()
	if err := dec.Decode(&c.All); err != nil || c.All == nil {
		return nil, fmt.Errorf("%w: payload is not a JSON object", ErrMalformed)
	}
	c.Subject, c.Issuer = c.String("sub"), c.String("iss")
	if c.ExpiresAt, err = numericDate(c.All, "exp"); err != nil {
		return nil, err
	}
	if c.NotBefore, err = numericDate(c.All, "nbf"); err != nil {
		return nil, err
	}
	switch {
	case c.ExpiresAt.IsZero() && v.RequireExp:
		return nil, fmt.Errorf("%w: no exp claim", ErrExpired)
	case !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt.Add(v.Leeway)):
		return nil, ErrExpired
	case !c.NotBefore.IsZero() && now.Add(v.Leeway).Before(c.NotBefore):
		return nil, ErrNotYet
	}
	if v.Issuer != "" && c.Issuer != v.Issuer {
		return nil, ErrIssuer
	}
	if v.Audience != "" && !hasAudience(c.All["aud"], v.Audience) {
		return nil, ErrAudience
	}
	return c, nil
}

func (v *Validator) algAllowed(alg string) bool {
	if len(v.Algorithms) == 0 {
		return true
	}
	for _, a := range v.Algorithms {
		if a == alg {
			return true
		}
	}
	return false
}

func verifySig(k *Key, alg string, info algInfo, signed, sig []byte) bool {
	switch alg {
	case "HS256", "HS384", "HS512":
		m := hmac.New(info.new, k.secret)
		m.Write(signed)
		return subtle.ConstantTimeCompare(m.Sum(nil), sig) == 1
	case "EdDSA":
		return ed25519.Verify(k.ed, signed, sig)
	}
	h := info.new()
	h.Write(signed)
	digest := h.Sum(nil)
	switch alg {
	case "RS256", "RS384", "RS512":
		return rsa.VerifyPKCS1v15(k.rsa, info.hash, digest, sig) == nil
	case "PS256":
		return rsa.VerifyPSS(k.rsa, info.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	case "ES256", "ES384":
		size := (k.ec.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*size {
			return false
		}
		r := new(big.Int).SetBytes(sig[:size])
		s := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k.ec, digest, r, s)
	}
	return false
}

func numericDate(all map[string]any, name string) (time.Time, error) {
	v, ok := all[name]
	if !ok {
		return time.Time{}, nil
	}
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, fmt.Errorf("%w: %s is not a number", ErrMalformed, name)
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, fmt.Errorf("%w: %s out of range", ErrMalformed, name)
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
}

func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if s, ok := x.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}
