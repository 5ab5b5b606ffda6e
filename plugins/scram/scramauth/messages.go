package scramauth

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// malformed wraps ErrMalformed with what was wrong, naming the message.
func malformed(msg, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrMalformed, msg, fmt.Sprintf(format, args...))
}

// clientFirst is a parsed client-first-message (RFC 5802 §7).
type clientFirst struct {
	gs2   string // gs2-header, including its trailing comma
	bare  string // client-first-message-bare
	user  string // decoded saslname
	nonce string
}

const cfName = "client-first-message"

func parseClientFirst(msg string) (clientFirst, error) {
	var cf clientFirst
	if len(msg) > MaxMessage {
		return cf, malformed(cfName, "longer than %d bytes", MaxMessage)
	}
	// gs2-header = gs2-cbind-flag "," [ authzid ] ","
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return cf, malformed(cfName, "no gs2 header")
	}
	switch {
	case flag == "n" || flag == "y":
	case strings.HasPrefix(flag, "p="):
		return cf, malformed(cfName, "channel binding (-PLUS) is not supported")
	default:
		return cf, malformed(cfName, "bad channel binding flag")
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, malformed(cfName, "gs2 header not terminated")
	}
	cf.gs2 = msg[:len(msg)-len(bare)]
	cf.bare = bare

	// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
	attrs := strings.Split(bare, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return cf, malformed(cfName, "mandatory extension not supported")
	}
	if len(attrs) < 2 {
		return cf, malformed(cfName, "want n=<username>,r=<nonce>")
	}
	name, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return cf, malformed(cfName, "first attribute must be n=")
	}
	user, err := decodeSaslname(name)
	if err != nil {
		return cf, malformed(cfName, "username: %v", err)
	}
	if err := checkUsername(user); err != nil {
		return cf, malformed(cfName, "username: %v", err)
	}
	cf.user = user
	nonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok {
		return cf, malformed(cfName, "second attribute must be r=")
	}
	if err := checkNonce(nonce); err != nil {
		return cf, malformed(cfName, "nonce: %v", err)
	}
	cf.nonce = nonce
	if err := checkExtensions(attrs[2:]); err != nil {
		return cf, malformed(cfName, "%v", err)
	}
	if authz != "" {
		a, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return cf, malformed(cfName, "bad authzid")
		}
		az, err := decodeSaslname(a)
		if err != nil || az != user {
			// Acting as another user is not supported; naming yourself
			// is harmless.
			return cf, malformed(cfName, "authorization identity other than the username is not supported")
		}
	}
	return cf, nil
}

// serverFirst is a parsed server-first-message.
type serverFirst struct {
	nonce string // client nonce + server nonce
	salt  []byte
	iter  int
}

const sfName = "server-first-message"

func parseServerFirst(msg string) (serverFirst, error) {
	var sf serverFirst
	if len(msg) > MaxMessage {
		return sf, malformed(sfName, "longer than %d bytes", MaxMessage)
	}
	attrs := strings.Split(msg, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return sf, malformed(sfName, "mandatory extension not supported")
	}
	if strings.HasPrefix(attrs[0], "e=") {
		return sf, fmt.Errorf("scram: server refused: %q", strings.TrimPrefix(attrs[0], "e="))
	}
	if len(attrs) < 3 {
		return sf, malformed(sfName, "want r=<nonce>,s=<salt>,i=<iterations>")
	}
	nonce, ok := strings.CutPrefix(attrs[0], "r=")
	if !ok {
		return sf, malformed(sfName, "first attribute must be r=")
	}
	if err := checkNonce(nonce); err != nil {
		return sf, malformed(sfName, "nonce: %v", err)
	}
	s, ok := strings.CutPrefix(attrs[1], "s=")
	if !ok {
		return sf, malformed(sfName, "second attribute must be s=")
	}
	salt, err := decodeB64(s)
	if err != nil || len(salt) == 0 || len(salt) > maxSalt {
		return sf, malformed(sfName, "salt must be 1 to %d bytes of base64", maxSalt)
	}
	i, ok := strings.CutPrefix(attrs[2], "i=")
	if !ok {
		return sf, malformed(sfName, "third attribute must be i=")
	}
	iter, err := parseCount(i)
	if err != nil || iter < 1 || iter > MaxIterations {
		return sf, malformed(sfName, "iteration count must be 1 to %d", MaxIterations)
	}
	if err := checkExtensions(attrs[3:]); err != nil {
		return sf, malformed(sfName, "%v", err)
	}
	return serverFirst{nonce: nonce, salt: salt, iter: iter}, nil
}

// clientFinal is a parsed client-final-message.
type clientFinal struct {
	cbind        string // c=, still base64
	nonce        string
	withoutProof string // client-final-message-without-proof
	proof        []byte
}

const cfinName = "client-final-message"

func parseClientFinal(msg string, size int) (clientFinal, error) {
	var cf clientFinal
	if len(msg) > MaxMessage {
		return cf, malformed(cfinName, "longer than %d bytes", MaxMessage)
	}
	// proof is the last attribute (RFC 5802 §7: client-final-message =
	// client-final-message-without-proof "," proof).
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return cf, malformed(cfinName, "no proof")
	}
	cf.withoutProof = msg[:i]
	proof, err := decodeB64(msg[i+len(",p="):])
	if err != nil || len(proof) != size {
		return cf, malformed(cfinName, "proof must be %d bytes of base64", size)
	}
	cf.proof = proof
	attrs := strings.Split(cf.withoutProof, ",")
	if len(attrs) < 2 {
		return cf, malformed(cfinName, "want c=<binding>,r=<nonce>,p=<proof>")
	}
	c, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return cf, malformed(cfinName, "first attribute must be c=")
	}
	cf.cbind = c
	n, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok {
		return cf, malformed(cfinName, "second attribute must be r=")
	}
	cf.nonce = n
	if err := checkExtensions(attrs[2:]); err != nil {
		return cf, malformed(cfinName, "%v", err)
	}
	return cf, nil
}

// checkNonce enforces RFC 5802's c-nonce/s-nonce: printable ASCII except
// ",", at least one character.
func checkNonce(n string) error {
	if n == "" {
		return fmt.Errorf("empty")
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 0x21 || c > 0x7e || c == ',' {
			return fmt.Errorf("byte %d is not printable ASCII other than ','", i)
		}
	}
	return nil
}

// checkExtensions checks that optional extensions have the attr-val form;
// their values are ignored.
func checkExtensions(attrs []string) error {
	for _, a := range attrs {
		if len(a) < 2 || a[1] != '=' || !isAlpha(a[0]) {
			return fmt.Errorf("bad attribute")
		}
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("NUL in attribute")
		}
	}
	return nil
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// checkUsername refuses what no MQTT username can be: empty, invalid UTF-8,
// control characters.
func checkUsername(u string) error {
	if u == "" {
		return fmt.Errorf("empty")
	}
	if !utf8.ValidString(u) {
		return fmt.Errorf("not UTF-8")
	}
	for _, r := range u {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("control character")
		}
	}
	return nil
}

// decodeSaslname undoes RFC 5802's escaping of "," as "=2C" and "=" as
// "=3D"; any other "=" is an error.
func decodeSaslname(s string) (string, error) {
	if strings.IndexByte(s, '=') < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("bad escape")
		}
		i += 2
	}
	return b.String(), nil
}

func encodeSaslname(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}
