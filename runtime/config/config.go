// Package config defines moat.toml: its schema, its defaults and its
// validation. It is a leaf package: it imports neither the broker nor the
// wasm engine, so every other package can depend on it.
//
// Loading follows the Caddy lifecycle described in STYLE.md: decode (unknown
// keys are errors), apply defaults, then Validate, which reports every
// problem in one pass, each naming the file, the line where it is known and
// the key path (see Error).
//
// After Load or Parse every field holds a concrete value: defaults are
// filled in and paths are absolute, so consumers never interpret "zero
// means default" themselves. The documented default of each field is what
// Parse puts there when the key is absent.
package config

// Config is a whole moat.toml after defaults have been applied.
//
// Paths inside it (certificates, modules, granted files, the persistence
// file, the wasm cache) are resolved relative to the directory of the file
// they came from and stored absolute, so a config can be moved together
// with its files and the broker may change directory.
//
// To tell what changed between two versions of a config (reload), compare
// sections, not whole Configs: the unexported bookkeeping below and
// Plugin.Line differ whenever the file's layout does.
type Config struct {
	// Path is the file this config was loaded from, as given to Load (so
	// messages show what the operator typed); "" when built in code.
	Path string `toml:"-"`

	Listeners   []Listener  `toml:"listener"`
	MQTT        MQTT        `toml:"mqtt"`
	Persistence Persistence `toml:"persistence"`
	Log         Log         `toml:"log"`
	Auth        Auth        `toml:"auth"`
	Cache       Cache       `toml:"cache"`
	Wasm        Wasm        `toml:"wasm"`
	Reload      Reload      `toml:"reload"`
	Admin       Admin       `toml:"admin"`   // admin.go
	Metrics     Metrics     `toml:"metrics"` // metrics.go
	Limits      Limits      `toml:"limits"`  // limits.go
	Payload     Payload     `toml:"-"`       // keys.go: [[key]], [keys] and [payload]
	Plugins     []Plugin    `toml:"plugin"`

	// lines locates keys for messages; nil for a config built in code.
	lines *keyLines
	// written maps a resolved absolute path back to the path as written in
	// the file, so messages quote what the operator wrote.
	written map[string]string
}

// Listener types.
const (
	ListenerTCP = "tcp"
	ListenerTLS = "tls"
	ListenerWS  = "ws"
	ListenerWSS = "wss"
)

// Listener is one `[[listener]]` entry. At least one is required.
type Listener struct {
	// Name identifies the listener in logs and in policy requests (ABI
	// field "listener"). Default "<type>-<index>", e.g. "tcp-0"; names must
	// be unique.
	Name string `toml:"name"`
	// Type is "tcp", "tls", "ws" (MQTT over WebSocket) or "wss" (over
	// WebSocket and TLS). Required.
	Type string `toml:"type"`
	// Address is host:port; an empty host listens on every interface.
	// Port 0 picks a free port (tests use this). Required; two listeners
	// may not share an address unless its port is 0.
	Address string `toml:"address"`

	// TLS settings: CertFile and KeyFile are required for "tls" and "wss";
	// every TLS setting is refused for "tcp" and "ws", so that a listener
	// the operator believes encrypted cannot silently be plain text.
	// CertFile may hold the chain after the leaf certificate.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// ClientCAFile is a PEM bundle of CAs that client certificates are
	// verified against. Without RequireClientCert a client may still
	// connect without a certificate (and then has no cert_* fields in its
	// policy requests); with it, a client without a valid certificate is
	// refused during the TLS handshake (mTLS). RequireClientCert needs
	// ClientCAFile.
	ClientCAFile      string `toml:"client_ca_file"`
	RequireClientCert bool   `toml:"require_client_cert"`
	// MinTLSVersion is "1.2" or "1.3"; default "1.2" on TLS listeners, ""
	// on the others.
	MinTLSVersion string `toml:"min_tls_version"`

	// AllowedOrigins lists the web origins ("https://app.example.com",
	// scheme://host[:port], no path) whose pages may open MQTT over
	// WebSocket on a ws or wss listener; "*" allows any. A request without
	// an Origin header (mosquitto, paho and every other non-browser
	// client) is always allowed. Default: none, so a browser page from any
	// site is refused, which keeps a page a user visits from using the
	// user's network position (a broker on localhost or the LAN) or client
	// certificate. Mosquitto accepts every origin. Refused on tcp and tls.
	AllowedOrigins []string `toml:"allowed_origins"`

	// MaxConnections bounds the open sockets of this listener; default 0:
	// only [limits] max_connections applies.
	MaxConnections int `toml:"max_connections"`
	// ConnectionRate is the sustained rate of new connections this
	// listener accepts, per second, as a token bucket of ConnectionBurst
	// (default twice the rate); default 0: off. Over it a CONNECT is
	// refused: MQTT 5 0x9F connection rate exceeded, 3.1.1 code 3.
	ConnectionRate  float64 `toml:"connection_rate"`
	ConnectionBurst int     `toml:"connection_burst"`
}

// TLS reports whether the listener terminates TLS.
func (l *Listener) TLS() bool { return l.Type == ListenerTLS || l.Type == ListenerWSS }

// MQTT maps onto mochi's capabilities (mqtt.Capabilities).
type MQTT struct {
	// MaximumPacketSize bounds an incoming packet; default 256KiB. 0 means
	// the protocol's own limit (about 256MiB), which lets one client make
	// the broker buffer that much.
	MaximumPacketSize ByteSize `toml:"maximum_packet_size"`
	// ReceiveMaximum is how many QoS 1/2 publishes a client may have in
	// flight towards the broker; 1..65535, default 1024.
	ReceiveMaximum uint16 `toml:"receive_maximum"`
	// MaximumInflight is how many QoS 1/2 messages the broker keeps in
	// flight per client; 1..65535, default 8192.
	MaximumInflight uint16 `toml:"maximum_inflight"`
	// MaximumQueuedMessages is how many messages wait in a connected
	// client's outbound queue for its socket; 1..1048576, default 8192.
	// The queue takes memory only while it holds messages. What happens
	// when it is full: see MaximumQueuedBytes.
	MaximumQueuedMessages int32 `toml:"maximum_queued_messages"`
	// MaximumQueuedBytes bounds the same queue by size: the topic and
	// payload bytes of the messages in it (headers and properties are not
	// counted). A message that finds the queue full, by count or by bytes,
	// first evicts the oldest queued QoS 0 messages; a QoS 0 message that
	// still finds no room is dropped, a QoS 1/2 message waits (see
	// SlowSubscriberTimeout). A message larger than the limit still goes
	// through an empty queue. 0 is no limit (Mosquitto's max_queued_bytes
	// default); at least 1KiB otherwise; default 8MiB, so that one
	// subscriber that stopped reading holds at most that much of the
	// broker's memory in queued messages, not maximum_queued_messages
	// times maximum_packet_size (2GiB with the defaults).
	MaximumQueuedBytes ByteSize `toml:"maximum_queued_bytes"`
	// SlowSubscriberTimeout is how long a publisher is held, its socket
	// no longer read, while a QoS 1/2 message waits for room in a
	// subscriber's in-flight window (MaximumInflight) or outbound queue
	// (MaximumQueuedMessages). A subscriber still without room after it is
	// stuck: it is disconnected and the message is dropped for it, counted
	// and logged once. 1ms to 1h, default 10s. See runtime/RATIONALE.md,
	// "Delivery under overload".
	SlowSubscriberTimeout Duration `toml:"slow_subscriber_timeout"`
	// MaximumSessionExpiry caps the session expiry an MQTT 5 client asks
	// for, and is how long an MQTT 3.1.1 persistent session (clean session
	// off) is kept after its client disconnects. Whole seconds up to
	// 2^32-1. 0s (the default) is no cap: sessions are kept until their
	// client ends them, as Mosquitto keeps them (persistent_client_expiration
	// unset).
	MaximumSessionExpiry Duration `toml:"maximum_session_expiry"`
	// MaximumMessageExpiry caps a message's expiry, retained messages
	// included: a message older than it is dropped even when its publisher
	// set no expiry. 0s (the default) is no cap: a message expires only when
	// its publisher says so (MQTT 5 message expiry), and a retained message
	// without one is kept until it is replaced or cleared, as in Mosquitto.
	MaximumMessageExpiry Duration `toml:"maximum_message_expiry"`
	// MaximumKeepalive caps the keepalive a client asks for; 0 (default) is
	// no limit; at most 65535s.
	MaximumKeepalive Duration `toml:"maximum_keepalive"`
	// MaximumClients bounds concurrent connections; 0 (default) is no limit.
	MaximumClients int64 `toml:"maximum_clients"`
	// MaximumQoS is the highest QoS granted; 0..2, default 2.
	MaximumQoS uint8 `toml:"maximum_qos"`
	// RetainAvailable enables retained messages; default true.
	RetainAvailable bool `toml:"retain_available"`
	// WildcardSubscriptions allows + and # in filters; default true.
	WildcardSubscriptions bool `toml:"wildcard_subscriptions"`
	// SharedSubscriptions allows $share/ filters; default true.
	SharedSubscriptions bool `toml:"shared_subscriptions"`
	// MaximumTopicAlias is the topic alias maximum; default 65535, 0
	// disables aliases.
	MaximumTopicAlias uint16 `toml:"maximum_topic_alias"`
	// V3DeniedPublish is what an MQTT 3.1.1 client gets for a QoS 1 or 2
	// PUBLISH the policy refuses, since 3.1.1 acknowledgements carry no
	// reason code: V3DeniedAck (default) acknowledges and drops it, as
	// Mosquitto does and [MQTT-3.3.5-2] allows, so that a device does not
	// resend it on every reconnect; V3DeniedDisconnect closes the
	// connection. MQTT 5 clients always get a PUBACK/PUBREC reason code.
	V3DeniedPublish string `toml:"v3_denied_publish"`
}

// Values of [mqtt] v3_denied_publish.
const (
	V3DeniedAck        = "ack"
	V3DeniedDisconnect = "disconnect"
)

// Persistence types.
const (
	PersistenceNone = "none"
	PersistenceBolt = "bolt"
)

// Persistence selects the session store.
type Persistence struct {
	// Type is "none" (default: everything is lost on restart) or "bolt": a
	// single bbolt file (mochi's bolt storage hook) that keeps sessions,
	// subscriptions, retained and inflight messages across restarts. Bolt
	// over pebble or badger: one file, no background compaction, no cgo,
	// and crash-safe transactions, which is what a broker's modest write
	// rate needs.
	Type string `toml:"type"`
	// Path is the database file; default "moat.db" beside the config.
	// Used only by "bolt".
	Path string `toml:"path"`
}

// Log configures the broker's slog logger.
type Log struct {
	// Level is "debug", "info" (default), "warn" or "error". Guest debug
	// logs are dropped unless the level is "debug".
	Level string `toml:"level"`
	// Format is "text" (default) or "json".
	Format string `toml:"format"`
	// AuditAllowSample is the share of allowed decisions the decision
	// audit log records, 0.0 (default: none) to 1.0 (all). Denials,
	// plugin errors, expiry kicks, reloads and admin actions are always
	// recorded; allows are the bulk of all decisions, so they are sampled.
	AuditAllowSample float64 `toml:"audit_allow_sample"`
}

// Auth holds the decisions taken when no module decides.
type Auth struct {
	// AllowAnonymous lets clients without a username connect when no authn
	// module decides (none configured, or every module ignores them).
	// Default false: with no policy configured, nobody may connect.
	AllowAnonymous bool `toml:"allow_anonymous"`
	// NoMatch is the authentication verdict when every authn module
	// returns ignore: "deny" (default) or "allow". With no authn module at
	// all, AllowAnonymous alone decides: "allow" never lets a client with
	// a username in when no module looked at it. It is also the default of
	// AuthzNoMatch, so that a config written before that key existed keeps
	// its meaning for a non-empty authz chain.
	NoMatch string `toml:"no_match"`
	// AuthzNoMatch is the authorization verdict (publish, subscribe,
	// delivery, decrypt) when no authz module decides: every module of the
	// chain returned ignore, or there is no authz module at all. "deny" or
	// "allow"; default: NoMatch when that is written in the file, else
	// "deny". An empty authz chain therefore denies everything unless the
	// operator says otherwise (Mosquitto without an acl_file allows: moat
	// does not, and says so at start and in `moat check`).
	AuthzNoMatch string `toml:"authz_no_match"`
	// Timeout bounds one authentication (all modules of the authn chain
	// together, per MQTT 5 AUTH round); default 1s, more than 0s and at
	// most 60s. A reload applies it to the next authentication.
	// Authorization is bounded per module by each plugin's timeout: a
	// deadline per publish would cost more than the decision.
	Timeout Duration `toml:"timeout"`
}

// Cache configures the authorization decision cache.
type Cache struct {
	// Enabled turns the cache on; default true.
	Enabled bool `toml:"enabled"`
	// TTL bounds how long a verdict is reused; default 5m, more than 0s
	// (turn the cache off with Enabled instead).
	TTL Duration `toml:"ttl"`
	// MaxPerClient bounds the entries kept per connection; default 1024.
	MaxPerClient int `toml:"max_per_client"`
}

// Wasm holds engine-wide settings.
type Wasm struct {
	// CacheDir keeps compiled machine code across restarts, so a restart
	// does not recompile. Default: os.UserCacheDir()/moat/wasm. After
	// Parse it is an absolute path, or CacheOff ("off") when caching is
	// off: written so, or no user cache dir exists (no $HOME).
	CacheDir string `toml:"cache_dir"`
}

// CacheOff as [wasm] cache_dir turns the compilation cache off.
const CacheOff = "off"

// Reload configures policy reloads.
type Reload struct {
	// Reauthenticate runs every connected client through the new authn
	// chain after a reload and disconnects those it now refuses, so that
	// removing a user takes effect at once, as Mosquitto 2.0 does on
	// SIGHUP. Default true. Turned off, a reload re-checks subscriptions
	// only, and the broker keeps no credentials in memory.
	Reauthenticate bool `toml:"reauthenticate"`
	// DryRunHistory is how many recent policy decisions the broker keeps
	// for `moat reload --dry-run` to replay against a new config: a ring
	// of authentication and authorization requests, without passwords,
	// authentication data or payloads. Default 1024; 0 keeps none; at
	// most 1000000. A reload applies it (the ring keeps its newest
	// entries).
	DryRunHistory int `toml:"dry_run_history"`
}

// Decision kinds a plugin may take, as written in `decisions`.
const (
	DecisionAuthn   = "authn"
	DecisionAuthz   = "authz"
	DecisionPayload = "payload"
)

// Plugin is one `[[plugin]]` entry: a wasm module and the decisions it
// takes. Plugins run in file order within each chain.
type Plugin struct {
	// Name identifies the plugin in logs and messages; required, unique.
	Name string `toml:"name"`
	// Module is the .wasm file; required.
	Module string `toml:"module"`
	// SHA256 pins the module's digest (64 hex digits, stored lower case);
	// a module that does not match is refused. Optional.
	SHA256 string `toml:"sha256"`
	// Decisions lists what the module decides: a non-empty subset of
	// "authn", "authz", "payload". Required.
	Decisions []string `toml:"decisions"`
	// OnError is what a plugin error (trap, timeout, bad result) means:
	// "deny" (default), "allow" or "ignore".
	OnError string `toml:"on_error"`
	// Timeout bounds one call into the module; default 100ms, more than 0s
	// and at most 60s.
	Timeout Duration `toml:"timeout"`
	// MemoryLimit caps the module's linear memory, e.g. "64MiB"; a multiple
	// of 64KiB (the wasm page) from 64KiB to 4GiB; default 128MiB.
	MemoryLimit ByteSize `toml:"memory_limit"`
	// Instances is the pool size, 0..1024; 0 (default) means GOMAXPROCS at
	// the time the pool is built.
	Instances int `toml:"instances"`
	// Files grants read access to named files: the module reads file
	// "name" through the ABI's file capability (sdk/ABI.md §6) and never
	// learns the host path. Values are absolute after Parse; each must be
	// an existing regular file.
	Files map[string]string `toml:"files"`
	// AllowPayload lets the payload decision read message payloads; needs
	// "payload" in Decisions.
	AllowPayload bool `toml:"allow_payload"`
	// Shadow makes the plugin a trial: it is asked the same questions as
	// the live chains of its decisions (off the broker's hot path, on a
	// bounded queue drained by a worker), never decides, and every answer
	// that differs from the live verdict is counted and logged. A shadow
	// plugin is not part of any chain, so it does not change the order
	// of the others. Default false.
	Shadow bool `toml:"shadow"`
	// ShadowSample is the fraction of requests a shadow plugin is asked
	// about, 0.0 to 1.0; default 1.0. Another value needs Shadow.
	ShadowSample float64 `toml:"shadow_sample"`

	// ConfigJSON is the `[plugin.config]` table encoded as JSON, the form
	// the module receives (sdk/ABI.md §5); `{}` when absent. TOML
	// date-times become RFC 3339 strings.
	ConfigJSON []byte `toml:"-"`
	// Line is where the entry starts in the file, for messages; 0 when
	// unknown. It changes when lines are added above the entry: leave it
	// out when comparing two versions of a config.
	Line int `toml:"-"`
}

// Decides reports whether the plugin takes decision d ("authn", ...) in
// the live chains: a shadow plugin takes none (see Shadows).
func (p *Plugin) Decides(d string) bool {
	if p.Shadow {
		return false
	}
	return p.Lists(d)
}

// Lists reports whether d is in the plugin's decisions, whether it takes
// them live or as a shadow.
func (p *Plugin) Lists(d string) bool {
	for _, x := range p.Decisions {
		if x == d {
			return true
		}
	}
	return false
}
