package broker

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// storedIdentity is what authentication decided for a session, persisted
// with it (store.go) so that a session restored after a restart is
// authorized as the identity it had: the same username, listener, client
// certificate, attributes and superuser flag. Without it, every rule that
// needs an attribute fails closed for a restored session, and the first
// reload after a restart revokes the subscriptions such rules granted.
//
// No credential is stored: not the password, not the authentication data
// of an enhanced authentication, not the certificate itself (only what the
// policy sees of it). Expiry is kept for the record; a session's queued
// messages are authorized as its identity whether or not the credentials
// have expired, as while the broker runs (an expired client is
// disconnected, its session is not ended).
type storedIdentity struct {
	Username   string       `json:"username"`
	Listener   string       `json:"listener"`
	Superuser  bool         `json:"superuser,omitempty"`
	Attributes []storedAttr `json:"attributes,omitempty"`
	Expiry     *time.Time   `json:"expiry,omitempty"`
	Cert       *storedCert  `json:"cert,omitempty"`
}

type storedAttr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type storedCert struct {
	SubjectCN   string   `json:"subject_cn,omitempty"`
	SANs        []string `json:"sans,omitempty"`
	Fingerprint [32]byte `json:"sha256"`
}

// newStoredIdentity records the identity of c, which authentication gave
// expiry (zero for none).
func newStoredIdentity(c *policy.Client, expiry time.Time) *storedIdentity {
	id := &storedIdentity{Username: c.Username, Listener: c.Listener, Superuser: c.Superuser}
	for _, a := range c.Attributes {
		id.Attributes = append(id.Attributes, storedAttr{Key: a.Key, Value: a.Value})
	}
	if !expiry.IsZero() {
		id.Expiry = &expiry
	}
	if c.Cert != nil {
		id.Cert = &storedCert{SubjectCN: c.Cert.SubjectCN, SANs: c.Cert.SANs, Fingerprint: c.Cert.Fingerprint}
	}
	return id
}

// client rebuilds the policy's view of the restored session cl.
func (id *storedIdentity) client(cl *mqtt.Client) *policy.Client {
	c := &policy.Client{
		ClientID:        cl.ID,
		Username:        id.Username,
		Listener:        id.Listener,
		ProtocolVersion: cl.Properties.ProtocolVersion,
		Superuser:       id.Superuser,
	}
	if len(id.Attributes) > 0 {
		c.Attributes = make([]policy.Attribute, len(id.Attributes))
		for i, a := range id.Attributes {
			c.Attributes[i] = policy.Attribute{Key: a.Key, Value: a.Value}
		}
	}
	if id.Cert != nil {
		c.Cert = &policy.Cert{SubjectCN: id.Cert.SubjectCN, SANs: id.Cert.SANs, Fingerprint: id.Cert.Fingerprint}
	}
	return c
}

// attachStore connects the hook and the session store: the store persists
// the identity of each session the hook admitted, the hook reads back the
// identity of sessions restored at start and removes from the store the
// messages it drops. Call it before the store is added to the server.
func (h *policyHook) attachStore(s *boltStore) {
	s.identityOf = h.identityToStore
	h.store.Store(s)
}

// identityToStore returns the identity of cl's session, or nil for a
// client the hook did not admit (mochi's inline client).
func (h *policyHook) identityToStore(cl *mqtt.Client) *storedIdentity {
	st := h.state(cl)
	if st == nil {
		return nil
	}
	return newStoredIdentity(st.session.Client(), st.expiresAt)
}

// storedIdentity returns the identity persisted with the session of cl,
// restored from the store at start.
func (h *policyHook) storedIdentity(cl *mqtt.Client) (*storedIdentity, bool) {
	s := h.store.Load()
	if s == nil {
		return nil, false
	}
	id, ok := s.identity(cl.ID)
	return id, ok && id != nil
}
