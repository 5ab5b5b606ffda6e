// Package policy turns security questions into verdicts: it runs chains of
// modules for authentication (CONNECT), authorization (SUBSCRIBE, PUBLISH,
// delivery) and payload handling, caches authorization verdicts, and lets
// the whole policy be swapped atomically.
//
// It speaks plain Go types only. It knows MQTT concepts (topics, QoS, reason
// codes) but neither mochi nor wazero: runtime/broker maps packets to
// requests, runtime/wasm implements Module.
package policy

import "time"

// Action is what an authorization request asks to do. The numeric values are
// part of the wasm ABI (sdk/ABI.md) and must not change.
type Action uint8

const (
	// ActionPublish: the client sends a PUBLISH (or has a will published).
	ActionPublish Action = 1
	// ActionSubscribe: the client subscribes to a topic filter.
	ActionSubscribe Action = 2
	// ActionDeliver: a message on a topic is about to reach the client
	// (Mosquitto calls this "read"); asked for live, retained and will
	// messages alike.
	ActionDeliver Action = 3
	// ActionDecrypt: the client may receive the plaintext of an encrypted
	// payload (payload policy); without it a subscriber gets the envelope.
	ActionDecrypt Action = 4
)

func (a Action) String() string {
	switch a {
	case ActionPublish:
		return "publish"
	case ActionSubscribe:
		return "subscribe"
	case ActionDeliver:
		return "deliver"
	case ActionDecrypt:
		return "decrypt"
	}
	return "unknown"
}

// Verdict is a module's answer. The numeric values are part of the wasm ABI.
// Zero is deliberately invalid so that an uninitialised result is an error,
// not a decision.
type Verdict uint8

const (
	Allow Verdict = 1
	Deny  Verdict = 2
	// Ignore passes the request to the next module in the chain.
	Ignore Verdict = 3
	// Continue asks for another round of MQTT 5 enhanced authentication
	// (an AUTH packet carrying AuthnResult.AuthData).
	Continue Verdict = 4
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case Ignore:
		return "ignore"
	case Continue:
		return "continue"
	}
	return "invalid"
}

// MQTT 5 reason codes a policy uses; the broker maps them to MQTT 3.1.1
// CONNACK return codes for older clients.
const (
	ReasonUnspecified          byte = 0x80
	ReasonBadUserNameOrPass    byte = 0x86
	ReasonNotAuthorized        byte = 0x87
	ReasonServerUnavailable    byte = 0x88
	ReasonBanned               byte = 0x8A
	ReasonBadAuthMethod        byte = 0x8C
	ReasonPayloadFormatInvalid byte = 0x99
	ReasonMaximumConnectTime   byte = 0xA0
)

// Attribute is a key/value pair that authentication attaches to a client,
// such as a tenant or a role; later authorization requests carry it.
type Attribute struct {
	Key, Value string
}

// Property is an MQTT 5 user property.
type Property struct {
	Key, Value string
}

// Cert describes a verified TLS client certificate.
type Cert struct {
	SubjectCN string
	// SANs holds the DNS names, e-mail addresses, URIs and IP addresses of
	// the certificate, in that order.
	SANs []string
	// Fingerprint is the SHA-256 of the DER certificate.
	Fingerprint [32]byte
}

// Client is who is asking: fixed at CONNECT and shared, read-only, by every
// later request of that connection. Build it with the broker; do not mutate
// it after authentication.
type Client struct {
	ClientID        string
	Username        string
	RemoteAddr      string
	Listener        string
	ProtocolVersion uint8 // 3, 4 (3.1.1) or 5
	// Cert is nil unless the client presented a verified certificate.
	Cert *Cert
	// Attributes and Superuser come from the authentication result.
	Attributes []Attribute
	Superuser  bool
}

// AuthnRequest is a CONNECT (or an AUTH round of enhanced authentication).
type AuthnRequest struct {
	Client *Client
	// Password is nil when the CONNECT had no password field.
	Password       []byte
	UserProperties []Property
	// AuthMethod and AuthData are the MQTT 5 enhanced-authentication fields.
	AuthMethod string
	AuthData   []byte
	// AuthState is what the module returned with its previous Continue, so
	// that a module keeps no per-connection state of its own.
	AuthState []byte
	// Round is 0 for CONNECT and counts AUTH packets after it.
	Round int
}

// AuthnResult is a module's or a chain's authentication answer.
type AuthnResult struct {
	Verdict Verdict
	// Reason is the MQTT 5 reason code of a Deny (0 means the default,
	// ReasonBadUserNameOrPass).
	Reason     byte
	Superuser  bool
	Attributes []Attribute
	// Expiry, when not zero, is the moment the broker disconnects the client
	// (token lifetime).
	Expiry time.Time
	// AuthData goes to the client in an AUTH packet (Continue) or in the
	// CONNACK (final Allow of enhanced authentication).
	AuthData []byte
	// AuthState comes back in the next round's AuthnRequest.AuthState.
	AuthState []byte
	// Message explains a Deny in logs and, for MQTT 5, the reason string.
	Message string
	// Module names the module that decided; "" when no module did.
	Module string
	// transient marks a Deny that came from a module error: the negative
	// cache (authnguard.go) does not keep it.
	transient bool
}

// AuthzRequest asks whether Client may do Action on Topic.
type AuthzRequest struct {
	Client *Client
	Action Action
	// Topic is a topic name, or a topic filter for ActionSubscribe (with any
	// "$share/<group>/" prefix removed; see ShareGroup).
	Topic      string
	QoS        uint8
	Retain     bool
	ShareGroup string
}

// AuthzResult is a module's or a chain's authorization answer.
type AuthzResult struct {
	Verdict Verdict
	// Reason is the MQTT 5 reason code of a Deny (0 means ReasonNotAuthorized).
	Reason  byte
	Message string
	Module  string
	// transient marks a verdict that came from a module error: it is
	// returned but never cached, so one timeout does not deny for a TTL.
	transient bool
}

// Mode is what the host does with a message payload. The numeric values are
// part of the wasm ABI.
type Mode uint8

const (
	// ModePlaintext: nothing is done; the default.
	ModePlaintext Mode = 1
	// ModeRequireE2E: the payload must be a valid moat envelope whose key id
	// the policy accepts; the broker never decrypts it.
	ModeRequireE2E Mode = 2
	// ModeAtRest: the host encrypts the payload before it is stored or
	// queued and decrypts it for each subscriber allowed to decrypt.
	ModeAtRest Mode = 3
	// ModeReencrypt: the host opens the publisher's envelope and seals the
	// payload for each subscriber under the key the policy picks for it.
	ModeReencrypt Mode = 4
)

func (m Mode) String() string {
	switch m {
	case ModePlaintext:
		return "plaintext"
	case ModeRequireE2E:
		return "require-e2e"
	case ModeAtRest:
		return "at-rest"
	case ModeReencrypt:
		return "reencrypt"
	}
	return "invalid"
}

// PayloadRequest asks what to do with a message payload: for ActionPublish
// which Mode applies (Client is the publisher), for ActionDeliver under which
// key to seal a re-encrypted message for the subscriber (Client).
type PayloadRequest struct {
	Client         *Client
	Action         Action
	Topic          string
	QoS            uint8
	Retain         bool
	ContentType    string
	UserProperties []Property
	// Payload is the message body. Modules read it only when their plugin
	// has allow_payload; the host never copies it otherwise.
	Payload []byte
	// EnvelopeKeyID is the key id of the payload's envelope, "" when the
	// payload is not an envelope.
	EnvelopeKeyID string
	// Mode is the mode the message was published under (ActionDeliver).
	Mode Mode
}

// PayloadResult is a module's or a chain's payload answer.
type PayloadResult struct {
	Verdict Verdict
	Reason  byte
	Mode    Mode
	// KeyID names the key to seal under; "" means the ring's active key for
	// the mode.
	KeyID   string
	Message string
	Module  string
}
