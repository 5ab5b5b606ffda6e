// Command reference is the reference policy of examples/reference/POLICY.md
// written against the Go SDK: the same policy every SDK ships, checked by
// the same conformance cases.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bin/examples/reference-go.wasm ./examples/reference/go
package main

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"strings"

	moat "github.com/moat-mqtt/moat/sdk/go"
)

// init registers the handlers: a c-shared wasm module runs package
// initialisers (from _initialize) but never main.
func init() {
	p := &policy{}
	moat.HandleConfig(p.configure)
	moat.HandleAuthn(p.authenticate)
	moat.HandleAuthz(p.authorize)
	moat.HandlePayload(p.payload)
}

func main() {}

// config is the plugin's configuration:
//
//	{"users":[{"name":"alice","password":"alice-pw","tenant":"acme"}]}
type config struct {
	Users []struct {
		Name     *string `json:"name"`
		Password *string `json:"password"`
		Tenant   *string `json:"tenant"`
	} `json:"users"`
}

// user is one configured user. Its password and attributes are built once
// here, not in every decision: an allocation costs a Go wasm module about
// as much as the rest of a decision.
type user struct {
	password []byte
	attrs    moat.Attributes // tenant
}

// policy is the configuration of one instance, replaced by each configure
// call.
type policy struct {
	users map[string]user
}

// configure reads the configuration strictly: unknown keys and users
// lacking a member are refused. When a name is listed twice the first
// entry wins.
func (p *policy) configure(cfg []byte) error {
	var c config
	dec := json.NewDecoder(bytes.NewReader(cfg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("reference: config: %w", err)
	}
	users := make(map[string]user, len(c.Users))
	for i, u := range c.Users {
		if u.Name == nil || u.Password == nil || u.Tenant == nil {
			return fmt.Errorf("reference: config: users[%d]: want the strings name, password and tenant", i)
		}
		if _, dup := users[*u.Name]; !dup {
			users[*u.Name] = user{password: []byte(*u.Password), attrs: moat.Attributes{{Key: "tenant", Value: *u.Tenant}}}
		}
	}
	p.users = users
	return nil
}

// authenticate allows a listed user with the right password, denies a
// listed user with a wrong one, and ignores everyone else.
func (p *policy) authenticate(r *moat.AuthnRequest) moat.AuthnResult {
	u, ok := p.users[r.Username]
	if !ok {
		return moat.AuthnResult{Result: moat.Ignore()}
	}
	if r.Password == nil || subtle.ConstantTimeCompare(r.Password, u.password) != 1 {
		return moat.AuthnResult{Result: moat.Deny(0, "bad user name or password")}
	}
	// The SDK only reads a result's attributes, so every allow may share them.
	return moat.AuthnResult{Result: moat.Allow(), Attributes: u.attrs}
}

// authorize allows every action under devices/<username>/# and
// tenants/<tenant attribute>/#, and denies the rest.
func (p *policy) authorize(r *moat.AuthzRequest) moat.Result {
	if covered("devices", r.Username, r.Topic) {
		return moat.Allow()
	}
	if tenant, ok := r.Attributes.Get("tenant"); ok && covered("tenants", tenant, r.Topic) {
		return moat.Allow()
	}
	return moat.Deny(0, "")
}

// covered reports whether topic (a topic name, or a subscription's filter)
// lies under root/name/#. A name that is empty or holds a wildcard or a '/' matches
// nothing, so that a client cannot widen the rule by choosing its name.
func covered(root, name, topic string) bool {
	// topic must begin with root, "/", name; cut piece by piece rather than
	// against root+"/"+name, which would allocate a string per decision.
	rest, ok := strings.CutPrefix(topic, root)
	if !ok || !strings.HasPrefix(rest, "/") {
		return false
	}
	if rest, ok = strings.CutPrefix(rest[1:], name); !ok || !plainName(name) {
		return false
	}
	// "root/name" itself is covered: "#" includes the parent level. Any
	// filter below it, wildcards included, is covered by "root/name/#".
	return rest == "" || rest[0] == '/'
}

// plainName reports whether name is not empty and holds no '/', '+' or
// '#'. (A loop of its own: strings.ContainsAny takes a few calls deep,
// which in a Go wasm module cost more than this whole check.)
func plainName(name string) bool {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '/' || c == '+' || c == '#' {
			return false
		}
	}
	return name != ""
}

// payload stores messages under secure/# encrypted at rest with key
// "default", and everything else as it came, whatever the action.
func (p *policy) payload(r *moat.PayloadRequest) moat.PayloadResult {
	if r.Topic == "secure" || strings.HasPrefix(r.Topic, "secure/") {
		return moat.PayloadResult{Result: moat.Allow(), Mode: moat.ModeAtRest, KeyID: "default"}
	}
	return moat.PayloadResult{Result: moat.Allow(), Mode: moat.ModePlaintext}
}
