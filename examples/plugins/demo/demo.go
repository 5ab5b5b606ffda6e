package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	moat "github.com/moat-mqtt/moat/sdk/go"
)

// config is the plugin's [plugin.config] table:
//
//	[plugin.config]
//	users = [{ username = "demo", password = "demo", attributes = { tenant = "acme" } }]
//	rules = [{ username = "demo", action = "all", topic = "demo/#" }]
type config struct {
	Users []struct {
		Username   string            `json:"username"`
		Password   string            `json:"password"`
		Superuser  bool              `json:"superuser"`
		Attributes map[string]string `json:"attributes"`
	} `json:"users"`
	Rules []struct {
		// Username is the user the rule applies to; "" (or absent) and "*"
		// mean every client.
		Username string `json:"username"`
		// Action is "publish", "subscribe", "deliver", "decrypt" or "all"
		// (publish, subscribe and deliver).
		Action string `json:"action"`
		// Topic is an MQTT topic filter; a level that is exactly "%u" or
		// "%c" stands for the client's username or client id.
		Topic string `json:"topic"`
	} `json:"rules"`
}

// demo is the policy of one instance, replaced by each configure call.
type demo struct {
	users map[string]user
	rules []rule
}

type user struct {
	// passwordHash is the SHA-256 of the password: comparing hashes takes
	// the same time whatever the length of the password tried.
	passwordHash [sha256.Size]byte
	superuser    bool
	attributes   moat.Attributes
}

type rule struct {
	anyUser  bool
	username string
	actions  uint8 // bit 1<<Action
	filter   []string
}

const allActions = 1<<moat.ActionPublish | 1<<moat.ActionSubscribe | 1<<moat.ActionDeliver

// configure parses and checks cfg, reporting every problem at once with
// the path of the key at fault.
func (d *demo) configure(cfg []byte) error {
	var c config
	dec := json.NewDecoder(bytes.NewReader(cfg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("demo: config: %w", err)
	}
	var errs []error
	users := make(map[string]user, len(c.Users))
	for i, u := range c.Users {
		switch _, dup := users[u.Username]; {
		case u.Username == "":
			errs = append(errs, fmt.Errorf("demo: config: users[%d].username: empty", i))
			continue
		case dup:
			errs = append(errs, fmt.Errorf("demo: config: users[%d].username: %q listed twice", i, u.Username))
			continue
		}
		nu := user{passwordHash: sha256.Sum256([]byte(u.Password)), superuser: u.Superuser}
		for k, v := range u.Attributes {
			nu.attributes = append(nu.attributes, moat.Attribute{Key: k, Value: v})
		}
		// Sorted so that every instance attaches attributes in one order.
		sort.Slice(nu.attributes, func(i, j int) bool { return nu.attributes[i].Key < nu.attributes[j].Key })
		users[u.Username] = nu
	}
	rules := make([]rule, 0, len(c.Rules))
	for i, r := range c.Rules {
		nr := rule{anyUser: r.Username == "" || r.Username == "*", username: r.Username}
		switch r.Action {
		case "publish":
			nr.actions = 1 << moat.ActionPublish
		case "subscribe":
			nr.actions = 1 << moat.ActionSubscribe
		case "deliver":
			nr.actions = 1 << moat.ActionDeliver
		case "decrypt":
			nr.actions = 1 << moat.ActionDecrypt
		case "all":
			nr.actions = allActions
		default:
			errs = append(errs, fmt.Errorf("demo: config: rules[%d].action: %q: want publish, subscribe, deliver, decrypt or all", i, r.Action))
		}
		filter, err := parseFilter(r.Topic)
		if err != nil {
			errs = append(errs, fmt.Errorf("demo: config: rules[%d].topic: %w", i, err))
		}
		nr.filter = filter
		rules = append(rules, nr)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.users, d.rules = users, rules
	return nil
}

// unknownUser is compared against when the username is unknown, so that
// an unknown user costs as much as a wrong password.
var unknownUser = sha256.Sum256([]byte("moat demo: unknown user"))

// authenticate logs in the users of the configuration. A username the
// configuration does not know is ignored, so that a later module of the
// chain (or [auth] no_match) decides; a wrong or missing password is
// denied.
func (d *demo) authenticate(r *moat.AuthnRequest) moat.AuthnResult {
	given := sha256.Sum256(r.Password)
	u, ok := d.users[r.Username]
	if !ok {
		subtle.ConstantTimeCompare(given[:], unknownUser[:])
		return moat.AuthnResult{Result: moat.Ignore()}
	}
	if subtle.ConstantTimeCompare(given[:], u.passwordHash[:]) != 1 || r.Password == nil {
		return moat.AuthnResult{Result: moat.Deny(moat.ReasonBadUsernameOrPassword, "bad username or password")}
	}
	return moat.AuthnResult{Result: moat.Allow(), Superuser: u.superuser, Attributes: u.attributes}
}

// authorize allows the request if a rule matches it, first match first,
// and ignores it otherwise.
func (d *demo) authorize(r *moat.AuthzRequest) moat.Result {
	if r.Action > 7 {
		return moat.Ignore()
	}
	for i := range d.rules {
		rl := &d.rules[i]
		if rl.actions&(1<<r.Action) == 0 || (!rl.anyUser && rl.username != r.Username) {
			continue
		}
		if match(rl.filter, r.Topic, r.Action == moat.ActionSubscribe, r.Username, r.ClientID) {
			return moat.Allow()
		}
	}
	return moat.Ignore()
}

// parseFilter splits a rule's topic filter into levels and checks it: "#"
// only as the last level, "+" and "#" only as whole levels, and "%u" and
// "%c" only as whole levels.
func parseFilter(f string) ([]string, error) {
	if f == "" {
		return nil, errors.New("empty topic filter")
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		switch {
		case l == "#" && i != len(levels)-1:
			return nil, fmt.Errorf("%q: '#' must be the last level", f)
		case l != "#" && l != "+" && strings.ContainsAny(l, "+#"):
			return nil, fmt.Errorf("%q: '+' and '#' must be whole levels", f)
		case l != "%u" && l != "%c" && (strings.Contains(l, "%u") || strings.Contains(l, "%c")):
			return nil, fmt.Errorf("%q: %%u and %%c must be whole levels", f)
		}
	}
	return levels, nil
}
