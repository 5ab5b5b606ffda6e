// Package config defines moat.toml: its schema, its defaults and its
// validation. It is a leaf package: it imports neither the broker nor the
// wasm engine, so every other package can depend on it.
//
// Loading follows the Caddy lifecycle described in STYLE.md: decode (unknown
// keys are errors), apply defaults, then Validate, which reports every
// problem in one pass, each naming the file, the line where the TOML library
// knows it, and the key path.
package config

import (
	"time"

	"github.com/BurntSushi/toml"
)

// Config is a whole moat.toml after defaults have been applied.
//
// Paths inside it (certificates, modules, granted files, the persistence
// directory) are resolved relative to the directory of the file they came
// from, so a config can be moved together with its files.
type Config struct {
	// Path is the file this config was loaded from; "" when built in code.
	Path string `toml:"-"`

	Listeners   []Listener  `toml:"listener"`
	MQTT        MQTT        `toml:"mqtt"`
	Persistence Persistence `toml:"persistence"`
	Log         Log         `toml:"log"`
	Auth        Auth        `toml:"auth"`
	Cache       Cache       `toml:"cache"`
	Wasm        Wasm        `toml:"wasm"`
	Plugins     []Plugin    `toml:"plugin"`
}

// Listener is one `[[listener]]` entry.
type Listener struct {
	// Name identifies the listener in logs and in policy requests. Defaults
	// to "<type>-<index>"; names must be unique.
	Name string `toml:"name"`
	// Type is "tcp", "tls", "ws" or "wss".
	Type string `toml:"type"`
	// Address is host:port. Port 0 picks a free port (tests use this).
	Address string `toml:"address"`

	// TLS settings; required for "tls" and "wss", refused for "tcp" and "ws".
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// ClientCAFile enables client certificate verification against this CA
	// bundle. With RequireClientCert a client without a valid certificate is
	// refused during the TLS handshake (mTLS).
	ClientCAFile      string `toml:"client_ca_file"`
	RequireClientCert bool   `toml:"require_client_cert"`
	// MinTLSVersion is "1.2" (default) or "1.3".
	MinTLSVersion string `toml:"min_tls_version"`

	// Path is the HTTP path of a websocket listener; default "/mqtt"... kept
	// for documentation: mochi serves websockets on every path.
}

// MQTT maps onto mochi's capabilities. Zero values mean "use the default".
type MQTT struct {
	MaximumPacketSize    uint32   `toml:"maximum_packet_size"`    // bytes; 0 = default 256 KiB
	ReceiveMaximum       uint16   `toml:"receive_maximum"`        // default 1024
	MaximumInflight      uint16   `toml:"maximum_inflight"`       // per client; default 8192
	MaximumSessionExpiry Duration `toml:"maximum_session_expiry"` // default 24h
	MaximumMessageExpiry Duration `toml:"maximum_message_expiry"` // default 24h
	MaximumKeepalive     Duration `toml:"maximum_keepalive"`      // 0 = no limit
	MaximumClients       int64    `toml:"maximum_clients"`        // 0 = unlimited
	MaximumQoS           *uint8   `toml:"maximum_qos"`            // default 2
	RetainAvailable      *bool    `toml:"retain_available"`       // default true
	WildcardSubAvailable *bool    `toml:"wildcard_subscriptions"` // default true
	SharedSubAvailable   *bool    `toml:"shared_subscriptions"`   // default true
	MaximumTopicAlias    uint16   `toml:"maximum_topic_alias"`    // default 65535
}

// Persistence selects the session store.
type Persistence struct {
	// Type is "none" (default) or "bolt": a single bbolt file that keeps
	// sessions, subscriptions, retained and inflight messages across restarts.
	Type string `toml:"type"`
	// Path is the database file for "bolt"; default "moat.db" beside the config.
	Path string `toml:"path"`
}

// Log configures the broker's slog logger.
type Log struct {
	Level  string `toml:"level"`  // "debug", "info" (default), "warn", "error"
	Format string `toml:"format"` // "text" (default) or "json"
}

// Auth holds the decisions taken when no module decides.
type Auth struct {
	// AllowAnonymous lets clients without a username connect when no authn
	// module is configured or every module ignores them. Default false.
	AllowAnonymous bool `toml:"allow_anonymous"`
	// NoMatch is the verdict when every module in a chain returns ignore:
	// "deny" (default) or "allow".
	NoMatch string `toml:"no_match"`
	// Timeout bounds one whole decision (all modules of a chain together);
	// default 1s.
	Timeout Duration `toml:"timeout"`
}

// Cache configures the authorization decision cache.
type Cache struct {
	Enabled *bool    `toml:"enabled"`        // default true
	TTL     Duration `toml:"ttl"`            // default 5m
	Size    int      `toml:"max_per_client"` // entries per client; default 1024
}

// Wasm holds engine-wide settings.
type Wasm struct {
	// CacheDir keeps compiled machine code across restarts. Default: the
	// user cache dir + "/moat/wasm"; "off" disables it.
	CacheDir string `toml:"cache_dir"`
}

// Plugin is one `[[plugin]]` entry: a wasm module and the decisions it takes.
type Plugin struct {
	Name   string `toml:"name"`
	Module string `toml:"module"`
	// SHA256 pins the module's digest (hex); a module that does not match is
	// refused.
	SHA256 string `toml:"sha256"`
	// Decisions lists what the module decides: "authn", "authz", "payload".
	Decisions []string `toml:"decisions"`
	// OnError is what a plugin error (trap, timeout, bad result) means:
	// "deny" (default), "allow" or "ignore".
	OnError string `toml:"on_error"`
	// Timeout bounds one call into the module; default 100ms.
	Timeout Duration `toml:"timeout"`
	// MemoryLimit caps the module's linear memory, e.g. "64MiB"; default 128MiB.
	MemoryLimit ByteSize `toml:"memory_limit"`
	// Instances is the pool size; default GOMAXPROCS.
	Instances int `toml:"instances"`
	// Files grants read access to named files: the module reads file "key"
	// through the ABI's file capability; the value is the host path.
	Files map[string]string `toml:"files"`
	// AllowPayload lets the payload decision read message payloads.
	AllowPayload bool `toml:"allow_payload"`
	// Config is handed to the module once per instance, as JSON.
	Config toml.Primitive `toml:"config"`

	// ConfigJSON is Config re-encoded as JSON by Load.
	ConfigJSON []byte `toml:"-"`
	// Line is the line of the entry in the file, for error messages.
	Line int `toml:"-"`
}

// Duration is a time.Duration written as a string such as "150ms" or "5m".
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// ByteSize is a size in bytes written as an integer or a string with a unit
// ("64MiB", "512KiB", "1GiB").
type ByteSize int64
