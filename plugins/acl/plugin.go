// Command acl is moat's ACL-file plugin: it authorizes publishes,
// subscriptions and deliveries against a Mosquitto acl_file (plus moat's
// @-extensions, see plugins/acl/aclfile). Build it with GOOS=wasip1
// GOARCH=wasm -buildmode=c-shared; see README.md.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	moat "github.com/moat-mqtt/moat/sdk/go"

	"github.com/moat-mqtt/moat/plugins/acl/aclfile"
)

// config is the [plugin.config] table.
type config struct {
	// File is the [plugin.files] grant name of the ACL file; default "acl".
	File string `json:"file"`
	// NoMatch is the verdict when no line matches: "deny" (default, as in
	// Mosquitto) or "ignore" (pass to the next module).
	NoMatch string `json:"no_match"`
}

type plugin struct {
	acl      *aclfile.ACL
	ignore   bool
	readFile func(name string) ([]byte, error)
	attrs    []aclfile.Attr // reused per call: an instance serves one call at a time
}

func (p *plugin) configure(raw []byte) error {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("acl: config: %w", err)
	}
	if c.File == "" {
		c.File = "acl"
	}
	switch c.NoMatch {
	case "", "deny":
	case "ignore":
		p.ignore = true
	default:
		return fmt.Errorf("acl: config: no_match %q: want \"deny\" or \"ignore\"", c.NoMatch)
	}
	data, err := p.readFile(c.File)
	if err != nil {
		return fmt.Errorf("acl: file %q: %w", c.File, err)
	}
	a, err := aclfile.Parse(bytes.NewReader(data), c.File)
	if err != nil {
		return err
	}
	p.acl = a
	return nil
}

func (p *plugin) authorize(req *moat.AuthzRequest) moat.Result {
	var action aclfile.Action
	switch req.Action {
	case moat.ActionPublish:
		action = aclfile.Publish
	case moat.ActionSubscribe:
		action = aclfile.Subscribe
	case moat.ActionDeliver:
		action = aclfile.Deliver
	default:
		return moat.Ignore() // decrypt is the payload policy's business
	}
	q := aclfile.Query{
		Action:    action,
		ClientID:  req.ClientID,
		Username:  req.Username,
		Anonymous: req.Username == "",
		Topic:     req.Topic,
		QoS:       req.QoS,
		Retain:    req.Retain,
	}
	if p.acl.UsesAttributes() {
		p.attrs = p.attrs[:0]
		for _, a := range req.Attributes {
			p.attrs = append(p.attrs, aclfile.Attr{Key: a.Key, Value: a.Value})
		}
		q.Attributes = p.attrs
	}
	switch p.acl.Check(q) {
	case aclfile.Allow:
		return moat.Allow()
	case aclfile.Deny:
		return moat.Deny(moat.ReasonNotAuthorized, "")
	}
	if p.ignore {
		return moat.Ignore()
	}
	return moat.Deny(moat.ReasonNotAuthorized, "")
}

func main() {}
