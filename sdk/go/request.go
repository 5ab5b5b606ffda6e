package moat

// Action is what an authorization or payload request asks to do. The values
// are those of the ABI (sdk/ABI.md §3, header byte 1).
type Action uint8

const (
	// ActionPublish: the client sends a PUBLISH (or has a will published).
	ActionPublish Action = 1
	// ActionSubscribe: the client subscribes to a topic filter.
	ActionSubscribe Action = 2
	// ActionDeliver: a message is about to reach the client, whether live,
	// retained or a will (Mosquitto calls this "read").
	ActionDeliver Action = 3
	// ActionDecrypt: the client may receive the plaintext of an encrypted
	// payload.
	ActionDecrypt Action = 4
)

// String returns the action's name as moat.toml spells it.
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

// Mode is a payload mode (sdk/ABI.md §4). Zero means "not set".
type Mode uint8

const (
	ModePlaintext  Mode = 1 // nothing is done to the payload
	ModeRequireE2E Mode = 2 // the payload must be a moat envelope; never decrypted
	ModeAtRest     Mode = 3 // the broker encrypts, and decrypts for permitted subscribers
	ModeReencrypt  Mode = 4 // the broker decrypts and re-encrypts per subscriber
)

// Attribute is a key/value pair that authentication attached to a client,
// such as a tenant or a role.
type Attribute struct {
	Key, Value string
}

// Attributes is a client's attribute list, in the order authentication
// added them.
type Attributes []Attribute

// Get returns the value of the first attribute named key.
func (a Attributes) Get(key string) (value string, ok bool) {
	for _, kv := range a {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Property is an MQTT 5 user property.
type Property struct {
	Key, Value string
}

// Properties is a list of MQTT 5 user properties in packet order; a key may
// repeat.
type Properties []Property

// Get returns the value of the first property named key.
func (p Properties) Get(key string) (value string, ok bool) {
	for _, kv := range p {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Cert describes the verified TLS client certificate of a connection.
type Cert struct {
	// CommonName is the subject CN.
	CommonName string
	// SANs holds the DNS names, e-mail addresses, URIs and IP addresses of
	// the certificate, in that order.
	SANs []string
	// SHA256 is the fingerprint of the DER certificate (zero if the host did
	// not send it).
	SHA256 [32]byte
}

// Client is who is asking. Every request embeds it.
//
// A handler may keep its fields (see the package documentation). A string
// field the host did not send reads as "", like an empty one; byte-slice
// fields keep the difference (nil means absent).
type Client struct {
	ClientID string
	Username string
	// RemoteAddr is the client's address as "host:port".
	RemoteAddr string
	// Listener is the listener's name in moat.toml.
	Listener string
	// Protocol is the MQTT protocol level: 3 (3.1), 4 (3.1.1) or 5.
	Protocol uint8
	// Cert is nil unless the client presented a verified certificate.
	Cert *Cert
	// Superuser and Attributes are what authentication decided; both are
	// empty in an AuthnRequest.
	Superuser  bool
	Attributes Attributes
}

// AuthnRequest is a CONNECT, or a round of MQTT 5 enhanced authentication.
// The SDK reuses the struct for the next request: keep its fields or a
// copy of it, not the pointer.
type AuthnRequest struct {
	Client
	// Password is nil when the CONNECT had no password field, and empty but
	// not nil when it had an empty one.
	Password []byte
	// UserProperties are those of the CONNECT (MQTT 5).
	UserProperties Properties
	// AuthMethod, AuthData and AuthState are set for MQTT 5 enhanced
	// authentication: AuthState is what this module returned with Continue
	// in the previous round (nil in round 0).
	AuthMethod string
	AuthData   []byte
	AuthState  []byte
	// Round is 0 for the CONNECT and counts AUTH packets after it.
	Round uint32
}

// AuthzRequest asks whether the client may do Action on Topic. For publish
// the client is the publisher; for subscribe and deliver, the subscriber.
// The SDK reuses the struct for the next request: keep its fields or a
// copy of it, not the pointer.
type AuthzRequest struct {
	Client
	Action Action
	// Topic is a topic name, or a topic filter for ActionSubscribe, without
	// any "$share/<group>/" prefix (see ShareGroup).
	Topic      string
	QoS        uint8
	Retain     bool
	ShareGroup string
}

// PayloadRequest asks what to do with a message payload (sdk/ABI.md §4,
// payload modes). The payload itself is not in the request: read it with
// ReadAt or Payload, which work only for a plugin granted allow_payload and
// only during the handler call. The SDK reuses the struct for the next
// request: keep its fields or a copy of it, not the pointer.
type PayloadRequest struct {
	Client
	Action         Action
	Topic          string
	QoS            uint8
	Retain         bool
	UserProperties Properties
	ContentType    string
	// EnvelopeKeyID is the key id of the payload's moat envelope, when it is
	// one.
	EnvelopeKeyID string
	// PublishedMode is, for ActionDeliver, the mode the message was
	// published under; zero otherwise.
	PublishedMode Mode
	// PayloadSize is the payload's length in bytes.
	PayloadSize uint32
}
