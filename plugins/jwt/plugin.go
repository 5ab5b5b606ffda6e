// Command jwt is moat's JWT plugin: it authenticates clients that present a
// signed token (in the password field, or the username), attaches the
// token's EMQX-style "acl" claim to the client, and enforces it on authz.
// Build it with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared; see README.md.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	moat "github.com/moat-mqtt/moat/sdk/go"

	"github.com/moat-mqtt/moat/plugins/jwt/jwtauth"
)

// config is the [plugin.config] table.
type config struct {
	// TokenField is where the token travels: "password" (default) or
	// "username".
	TokenField string `json:"token_field"`
	// KeysFile is the [plugin.files] grant name of the PEM or JWKS file;
	// default "keys".
	KeysFile   string   `json:"keys_file"`
	Issuer     string   `json:"issuer"`
	Audience   string   `json:"audience"`
	Algorithms []string `json:"algorithms"`
	// Leeway tolerates clock skew, e.g. "30s"; default 0.
	Leeway string `json:"leeway"`
	// RequireExp refuses tokens without an exp claim; default true.
	RequireExp *bool `json:"require_exp"`
	// Match maps claim names to the client field they must equal:
	// "username" or "client_id", e.g. {"sub" = "username"}.
	Match map[string]string `json:"match"`
	// ACLNoMatch is the authz verdict when the token carries an acl claim
	// and no rule matches: "deny" (default) or "ignore".
	ACLNoMatch string `json:"acl_no_match"`
	// SuperuserClaim names a boolean claim that makes the client a
	// superuser; "" (default) never does.
	SuperuserClaim string `json:"superuser_claim"`
}

// aclAttribute carries the token's rules from authn to authz.
const aclAttribute = "jwt.acl"

// keyRefresh bounds how often an unknown kid re-reads the key file.
const keyRefresh = time.Minute

type plugin struct {
	cfg       config
	validator jwtauth.Validator
	readFile  func(name string) ([]byte, error)
	now       func() time.Time

	lastRead time.Time
	// rules caches decoded acl attributes. An instance serves one call at a
	// time, so a plain map is safe.
	rules map[string][]jwtauth.Rule
}

const rulesMax = 1024

func (p *plugin) configure(raw []byte) error {
	var c config
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("jwt: config: %w", err)
	}
	switch c.TokenField {
	case "":
		c.TokenField = "password"
	case "password", "username":
	default:
		return fmt.Errorf("jwt: config: token_field %q: want \"password\" or \"username\"", c.TokenField)
	}
	if c.KeysFile == "" {
		c.KeysFile = "keys"
	}
	switch c.ACLNoMatch {
	case "":
		c.ACLNoMatch = "deny"
	case "deny", "ignore":
	default:
		return fmt.Errorf("jwt: config: acl_no_match %q: want \"deny\" or \"ignore\"", c.ACLNoMatch)
	}
	for claim, field := range c.Match {
		if field != "username" && field != "client_id" {
			return fmt.Errorf("jwt: config: match.%s = %q: want \"username\" or \"client_id\"", claim, field)
		}
	}
	var leeway time.Duration
	if c.Leeway != "" {
		d, err := time.ParseDuration(c.Leeway)
		if err != nil || d < 0 || d > time.Hour {
			return fmt.Errorf("jwt: config: leeway %q: want a duration up to 1h", c.Leeway)
		}
		leeway = d
	}
	for _, a := range c.Algorithms {
		if a == "none" || strings.EqualFold(a, "none") {
			return errors.New("jwt: config: algorithm \"none\" is never accepted")
		}
	}
	p.cfg = c
	p.validator = jwtauth.Validator{
		Algorithms: c.Algorithms,
		Issuer:     c.Issuer,
		Audience:   c.Audience,
		Leeway:     leeway,
		RequireExp: c.RequireExp == nil || *c.RequireExp,
	}
	return p.loadKeys()
}

func (p *plugin) loadKeys() error {
	data, err := p.readFile(p.cfg.KeysFile)
	if err != nil {
		return fmt.Errorf("jwt: keys file %q: %w", p.cfg.KeysFile, err)
	}
	ks, err := jwtauth.ParseKeys(data, p.cfg.KeysFile)
	if err != nil {
		return err
	}
	p.validator.Keys = ks
	p.lastRead = p.now()
	return nil
}

// looksLikeJWT tells a token from an ordinary password, so that a chain
// "jwt, then passwd" passes ordinary passwords on.
func looksLikeJWT(s string) bool {
	return strings.Count(s, ".") == 2 && strings.HasPrefix(s, "eyJ")
}

func (p *plugin) authenticate(req *moat.AuthnRequest) moat.AuthnResult {
	token := string(req.Password)
	if p.cfg.TokenField == "username" {
		token = req.Username
	}
	if !looksLikeJWT(token) {
		return moat.AuthnResult{Result: moat.Ignore()}
	}
	now := p.now()
	claims, err := p.validator.Verify(token, now)
	if errors.Is(err, jwtauth.ErrNoKey) && now.Sub(p.lastRead) >= keyRefresh {
		// The issuer may have rotated its keys: re-read once a minute at most.
		if rerr := p.loadKeys(); rerr != nil {
			moat.Warnf("jwt: re-reading keys: %v", rerr)
		}
		claims, err = p.validator.Verify(token, now)
	}
	if err != nil {
		return moat.AuthnResult{Result: moat.Deny(moat.ReasonBadUsernameOrPassword, err.Error())}
	}
	for claim, field := range p.cfg.Match {
		want := req.Username
		if field == "client_id" {
			want = req.ClientID
		}
		if got := claims.String(claim); got == "" || got != want {
			return moat.AuthnResult{Result: moat.Deny(moat.ReasonNotAuthorized, fmt.Sprintf("jwt: claim %q does not match the %s", claim, field))}
		}
	}
	res := moat.AuthnResult{Result: moat.Allow(), Expiry: claims.ExpiresAt}
	if p.cfg.SuperuserClaim != "" {
		res.Superuser, _ = claims.All[p.cfg.SuperuserClaim].(bool)
	}
	if acl, ok := claims.All["acl"]; ok {
		rules, err := jwtauth.ParseACL(acl)
		if err != nil {
			return moat.AuthnResult{Result: moat.Deny(moat.ReasonNotAuthorized, err.Error())}
		}
		enc, _ := json.Marshal(rules)
		res.Attributes = append(res.Attributes, moat.Attribute{Key: aclAttribute, Value: string(enc)})
	}
	return res
}

func (p *plugin) authorize(req *moat.AuthzRequest) moat.Result {
	var encoded string
	found := false
	for _, a := range req.Attributes {
		if a.Key == aclAttribute {
			encoded, found = a.Value, true
			break
		}
	}
	if !found {
		return moat.Ignore()
	}
	rules, err := p.rulesOf(encoded)
	if err != nil {
		return moat.Deny(moat.ReasonNotAuthorized, err.Error())
	}
	action := ""
	switch req.Action {
	case moat.ActionPublish:
		action = "publish"
	case moat.ActionSubscribe:
		action = "subscribe"
	case moat.ActionDeliver:
		action = "deliver"
	default:
		return moat.Ignore()
	}
	switch jwtauth.CheckACL(rules, jwtauth.Request{Action: action, Topic: req.Topic, QoS: req.QoS,
		Retain: req.Retain, Username: req.Username, ClientID: req.ClientID}) {
	case jwtauth.Allowed:
		return moat.Allow()
	case jwtauth.Denied:
		return moat.Deny(moat.ReasonNotAuthorized, "jwt: acl claim denies")
	}
	if p.cfg.ACLNoMatch == "ignore" {
		return moat.Ignore()
	}
	return moat.Deny(moat.ReasonNotAuthorized, "jwt: no acl rule matches")
}

// rulesOf decodes an acl attribute, caching the result: the same token's
// rules come back for every authz request of the client.
func (p *plugin) rulesOf(encoded string) ([]jwtauth.Rule, error) {
	if r, ok := p.rules[encoded]; ok {
		return r, nil
	}
	var rules []jwtauth.Rule
	if err := json.Unmarshal([]byte(encoded), &rules); err != nil {
		return nil, fmt.Errorf("jwt: acl attribute: %w", err)
	}
	if p.rules == nil || len(p.rules) >= rulesMax {
		p.rules = make(map[string][]jwtauth.Rule)
	}
	p.rules[encoded] = rules
	return rules, nil
}

func main() {}
