// Package jwtauth verifies JSON Web Tokens for the jwt plugin: signatures
// (HS256/384/512, RS256/384/512, PS256, ES256/384, EdDSA), registered claims,
// and the EMQX-style "acl" claim. It is pure Go with no third-party JWT
// library, so it builds for wasip1 and its alg-confusion rules are explicit:
// a key is only ever used with the algorithm family of its own type.
package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Key is one verification key.
type Key struct {
	// ID is the JWKS "kid" or, for PEM, the PEM header "kid" if present.
	ID string
	// Alg restricts the key to one algorithm when the JWKS says so.
	Alg string
	// Exactly one of these is set.
	secret []byte
	rsa    *rsa.PublicKey
	ec     *ecdsa.PublicKey
	ed     ed25519.PublicKey
}

// KeySet is the keys a plugin verifies with.
type KeySet struct {
	Keys []Key
}

// ParseKeys reads a JWKS document (JSON with a "keys" array, or a single
// JWK) or a PEM file of public keys and certificates. name is used in
// errors. Private keys are refused: the broker only verifies.
func ParseKeys(data []byte, name string) (*KeySet, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "{") {
		return parseJWKS([]byte(trimmed), name)
	}
	if strings.Contains(trimmed, "-----BEGIN") {
		return parsePEM([]byte(trimmed), name)
	}
	return nil, fmt.Errorf("jwt: %s: neither a JWKS document nor PEM", name)
}

func parsePEM(data []byte, name string) (*KeySet, error) {
	ks := &KeySet{}
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		k := Key{ID: block.Headers["kid"]}
		var pub any
		switch block.Type {
		case "PUBLIC KEY":
			p, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("jwt: %s: PEM block %d: %w", name, n, err)
			}
			pub = p
		case "RSA PUBLIC KEY":
			p, err := x509.ParsePKCS1PublicKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("jwt: %s: PEM block %d: %w", name, n, err)
			}
			pub = p
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("jwt: %s: PEM block %d: %w", name, n, err)
			}
			pub = c.PublicKey
		default:
			return nil, fmt.Errorf("jwt: %s: PEM block %d: type %q not accepted (public keys and certificates only)", name, n, block.Type)
		}
		if err := k.setPublic(pub); err != nil {
			return nil, fmt.Errorf("jwt: %s: PEM block %d: %w", name, n, err)
		}
		ks.Keys = append(ks.Keys, k)
	}
	if len(ks.Keys) == 0 {
		return nil, fmt.Errorf("jwt: %s: no PEM blocks", name)
	}
	return ks, nil
}

func (k *Key) setPublic(pub any) error {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits; at least 2048 required", p.N.BitLen())
		}
		k.rsa = p
	case *ecdsa.PublicKey:
		k.ec = p
	case ed25519.PublicKey:
		k.ed = p
	default:
		return fmt.Errorf("unsupported public key type %T", pub)
	}
	return nil
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	K   string `json:"k"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

func parseJWKS(data []byte, name string) (*KeySet, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwt: %s: %w", name, err)
	}
	if doc.Keys == nil {
		var one jwk
		if err := json.Unmarshal(data, &one); err != nil || one.Kty == "" {
			return nil, fmt.Errorf("jwt: %s: JWKS without \"keys\"", name)
		}
		doc.Keys = []jwk{one}
	}
	ks := &KeySet{}
	for i, j := range doc.Keys {
		if j.Use != "" && j.Use != "sig" {
			continue
		}
		k, err := j.key()
		if err != nil {
			return nil, fmt.Errorf("jwt: %s: keys[%d] (kid %q): %w", name, i, j.Kid, err)
		}
		ks.Keys = append(ks.Keys, k)
	}
	if len(ks.Keys) == 0 {
		return nil, fmt.Errorf("jwt: %s: no signature keys", name)
	}
	return ks, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func (j jwk) key() (Key, error) {
	k := Key{ID: j.Kid, Alg: j.Alg}
	if j.Alg != "" {
		if _, ok := algs[j.Alg]; !ok {
			return k, fmt.Errorf("alg %q not supported", j.Alg)
		}
	}
	switch j.Kty {
	case "oct":
		s, err := b64(j.K)
		if err != nil || len(s) < 32 {
			return k, errors.New("oct key: \"k\" must be base64url of at least 32 bytes")
		}
		k.secret = s
		return k, nil
	case "RSA":
		if j.D != "" {
			return k, errors.New("private key material: publish public keys only")
		}
		n, err1 := b64(j.N)
		e, err2 := b64(j.E)
		if err1 != nil || err2 != nil || len(e) == 0 || len(e) > 4 {
			return k, errors.New("RSA key: bad \"n\" or \"e\"")
		}
		var ev int
		for _, b := range e {
			ev = ev<<8 | int(b)
		}
		return k, k.setPublic(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: ev})
	case "EC":
		if j.D != "" {
			return k, errors.New("private key material: publish public keys only")
		}
		var curve elliptic.Curve
		switch j.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		default:
			return k, fmt.Errorf("EC curve %q not supported", j.Crv)
		}
		x, err1 := b64(j.X)
		y, err2 := b64(j.Y)
		size := (curve.Params().BitSize + 7) / 8
		if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
			return k, errors.New("EC key: bad \"x\" or \"y\"")
		}
		raw := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, raw)
		if err != nil {
			return k, fmt.Errorf("EC key: %w", err)
		}
		k.ec = pub
		return k, nil
	case "OKP":
		if j.D != "" {
			return k, errors.New("private key material: publish public keys only")
		}
		if j.Crv != "Ed25519" {
			return k, fmt.Errorf("OKP curve %q not supported", j.Crv)
		}
		x, err := b64(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return k, errors.New("Ed25519 key: bad \"x\"")
		}
		k.ed = ed25519.PublicKey(x)
		return k, nil
	}
	return k, fmt.Errorf("kty %q not supported", j.Kty)
}

// fits reports whether k may verify a token signed with alg: the key's own
// type decides the algorithm family, never the token's header, which is what
// defeats alg-confusion attacks (an HS256 token "signed" with an RSA public
// key finds no oct key and fails).
func (k *Key) fits(alg string) bool {
	if k.Alg != "" && k.Alg != alg {
		return false
	}
	switch alg {
	case "HS256", "HS384", "HS512":
		return k.secret != nil
	case "RS256", "RS384", "RS512", "PS256":
		return k.rsa != nil
	case "ES256":
		return k.ec != nil && k.ec.Curve == elliptic.P256()
	case "ES384":
		return k.ec != nil && k.ec.Curve == elliptic.P384()
	case "EdDSA":
		return k.ed != nil
	}
	return false
}
