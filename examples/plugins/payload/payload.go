package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	moat "github.com/moat-mqtt/moat/sdk/go"
)

// config is the plugin's [plugin.config] table:
//
//	[plugin.config]
//	deliver_key_attribute = "payload_key"
//	rules = [
//	  { topic = "plain/#",   mode = "plaintext" },
//	  { topic = "devices/#", mode = "require-e2e", keys = ["device-1"] },
//	  { topic = "secure/#",  mode = "at-rest", deny_if_contains = ["password"] },
//	  { topic = "tenants/#", mode = "reencrypt" },
//	  { topic = "blocked/#", mode = "deny" },
//	]
type config struct {
	// DeliverKeyAttribute names the authentication attribute whose value
	// is a subscriber's key id for re-encrypted messages; a subscriber
	// without it gets the stored envelope, which it cannot open.
	DeliverKeyAttribute string `json:"deliver_key_attribute"`
	Rules               []struct {
		// Topic is an MQTT topic filter; the first rule that matches a
		// message's topic decides, and a message no rule matches is left
		// to the next module (and is plaintext if none decides).
		Topic string `json:"topic"`
		// Mode is "plaintext", "require-e2e", "at-rest", "reencrypt" or
		// "deny".
		Mode string `json:"mode"`
		// Key (at-rest, reencrypt) is the key id to store under instead
		// of the ring's active at-rest key.
		Key string `json:"key"`
		// Keys (require-e2e, reencrypt) lists the envelope key ids
		// accepted from publishers; empty accepts any.
		Keys []string `json:"keys"`
		// DenyIfContains refuses a message whose payload contains one of
		// these strings. Reading payloads needs allow_payload = true.
		DenyIfContains []string `json:"deny_if_contains"`
	} `json:"rules"`
}

type rule struct {
	filter []string
	mode   moat.Mode // 0 for deny
	key    string
	keys   []string
	deny   [][]byte
}

// policy is the configuration of one instance.
type policy struct {
	attr  string
	rules []rule
}

var modes = map[string]moat.Mode{
	"plaintext":   moat.ModePlaintext,
	"require-e2e": moat.ModeRequireE2E,
	"at-rest":     moat.ModeAtRest,
	"reencrypt":   moat.ModeReencrypt,
	"deny":        0,
}

// configure parses and checks cfg, reporting every problem at once with
// the path of the key at fault.
func (p *policy) configure(cfg []byte) error {
	var c config
	dec := json.NewDecoder(bytes.NewReader(cfg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("payload: config: %w", err)
	}
	var errs []error
	rules := make([]rule, 0, len(c.Rules))
	for i, r := range c.Rules {
		mode, ok := modes[r.Mode]
		if !ok {
			errs = append(errs, fmt.Errorf("payload: config: rules[%d].mode: %q: want plaintext, require-e2e, at-rest, reencrypt or deny", i, r.Mode))
		}
		if r.Key != "" && mode != moat.ModeAtRest && mode != moat.ModeReencrypt {
			errs = append(errs, fmt.Errorf("payload: config: rules[%d].key: only for at-rest and reencrypt", i))
		}
		if len(r.Keys) > 0 && mode != moat.ModeRequireE2E && mode != moat.ModeReencrypt {
			errs = append(errs, fmt.Errorf("payload: config: rules[%d].keys: only for require-e2e and reencrypt", i))
		}
		if r.Topic == "" || strings.Contains(strings.TrimSuffix(r.Topic, "#"), "#") {
			errs = append(errs, fmt.Errorf("payload: config: rules[%d].topic: %q is not a topic filter", i, r.Topic))
		}
		nr := rule{filter: strings.Split(r.Topic, "/"), mode: mode, key: r.Key, keys: r.Keys}
		for _, w := range r.DenyIfContains {
			nr.deny = append(nr.deny, []byte(w))
		}
		rules = append(rules, nr)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	p.attr, p.rules = c.DeliverKeyAttribute, rules
	return nil
}

// decide answers a payload request: for a publish, the mode of the first
// rule matching the topic; for the delivery of a re-encrypted message, the
// subscriber's key.
func (p *policy) decide(r *moat.PayloadRequest) moat.PayloadResult {
	if r.Action == moat.ActionDeliver {
		if key, ok := r.Attributes.Get(p.attr); ok && p.attr != "" && key != "" {
			return moat.PayloadResult{Result: moat.Allow(), KeyID: key}
		}
		return moat.PayloadResult{Result: moat.Deny(0, "no subscriber key")}
	}
	for i := range p.rules {
		rl := &p.rules[i]
		if !match(rl.filter, r.Topic) {
			continue
		}
		switch {
		case rl.mode == 0:
			return moat.PayloadResult{Result: moat.Deny(moat.ReasonNotAuthorized, "payload refused on this topic")}
		case len(rl.keys) > 0 && !slices.Contains(rl.keys, r.EnvelopeKeyID):
			return moat.PayloadResult{Result: moat.Deny(moat.ReasonPayloadFormatInvalid, "envelope key not accepted")}
		case len(rl.deny) > 0:
			if msg := contains(r, rl.deny); msg != "" {
				return moat.PayloadResult{Result: moat.Deny(moat.ReasonPayloadFormatInvalid, msg)}
			}
		}
		res := moat.PayloadResult{Result: moat.Allow(), Mode: rl.mode, KeyID: rl.key}
		if rl.mode == moat.ModeRequireE2E && len(rl.keys) > 0 {
			res.KeyID = r.EnvelopeKeyID // the host checks the envelope names it
		}
		return res
	}
	return moat.PayloadResult{Result: moat.Ignore()}
}

// contains reads the payload and returns a refusal message if it holds one
// of words, "" otherwise. A module without allow_payload cannot read it,
// and refuses rather than let an unchecked message through.
func contains(r *moat.PayloadRequest, words [][]byte) string {
	b, err := r.Payload()
	if err != nil {
		return "payload not readable: grant allow_payload"
	}
	for _, w := range words {
		if bytes.Contains(b, w) {
			return "payload holds a forbidden word"
		}
	}
	return ""
}

// match reports whether the topic filter (split in levels) matches topic.
// Wildcards at the first level do not match topics that start with '$'
// [MQTT-4.7.2-1].
func match(filter []string, topic string) bool {
	if len(filter) > 0 && (filter[0] == "#" || filter[0] == "+") && strings.HasPrefix(topic, "$") {
		return false
	}
	rest, done := topic, false
	for i, f := range filter {
		if done {
			return f == "#" && i == len(filter)-1
		}
		level, after, found := strings.Cut(rest, "/")
		rest, done = after, !found
		switch f {
		case "#":
			return true
		case "+":
		default:
			if level != f {
				return false
			}
		}
	}
	return done
}
