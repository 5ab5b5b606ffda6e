package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits checked by Validate.
const (
	maxCallTimeout  = 60 * time.Second
	wasmPage        = 64 * KiB
	maxMemoryLimit  = 4 * GiB // wasm32 addresses 4GiB
	maxInstances    = 1024
	minPacketSize   = 128
	maxPacketSize   = 268435455 + 5 // [MQTT-2.2.3] remaining length limit plus fixed header
	maxKeepalive    = math.MaxUint16 * time.Second
	maxSessionLimit = math.MaxUint32 * time.Second
	maxQueued       = 1 << 20 // a pointer each, allocated as the queue fills: 8MiB
	minQueuedBytes  = KiB
)

// maxHistory bounds [reload] dry_run_history.
const maxHistory = 1000000

// Validate checks the whole config and returns every problem as an
// errors.Join of *Error (see Error for the format), or nil.
//
// Unlike the pure Validate of STYLE.md's lifecycle, it reads the files the
// config names: certificates and keys must load with tls.X509KeyPair, CA
// bundles must parse, and modules and granted files must be regular files.
// An operator running `moat check` wants to hear about a missing
// certificate before the broker refuses to start. It does not compile
// modules. Load and Parse call it; call it yourself on a Config you built
// or changed in code.
func (c *Config) Validate() error {
	p := &problems{file: c.Path, lines: c.lines}
	c.validate(p)
	return p.err()
}

func (c *Config) validate(p *problems) {
	if len(c.Listeners) == 0 {
		p.add("", errors.New("no [[listener]]: at least one is required"))
	}
	names := map[string]int{}
	addrs := map[string]int{}
	for i := range c.Listeners {
		c.validateListener(p, i, names, addrs)
	}
	c.validateMQTT(p)

	if err := oneOf(c.Persistence.Type, PersistenceNone, PersistenceBolt); err != nil {
		p.add("persistence.type", err)
	}
	if err := oneOf(c.Log.Level, "debug", "info", "warn", "error"); err != nil {
		p.add("log.level", err)
	}
	if err := oneOf(c.Log.Format, "text", "json"); err != nil {
		p.add("log.format", err)
	}
	c.validateAuditSample(p)
	c.validateMetrics(p)
	if err := oneOf(c.Auth.NoMatch, "deny", "allow"); err != nil {
		p.add("auth.no_match", err)
	}
	if err := oneOf(c.Auth.AuthzNoMatch, "deny", "allow"); err != nil {
		p.add("auth.authz_no_match", err)
	}
	if err := timeout(c.Auth.Timeout); err != nil {
		p.add("auth.timeout", err)
	}
	if c.Cache.Enabled {
		if c.Cache.TTL.Duration <= 0 {
			p.add("cache.ttl", fmt.Errorf("%s: want more than 0 (or enabled = false)", c.Cache.TTL.Duration))
		}
		if c.Cache.MaxPerClient <= 0 {
			p.add("cache.max_per_client", fmt.Errorf("%d: want at least 1 (or enabled = false)", c.Cache.MaxPerClient))
		}
	}

	if n := c.Reload.DryRunHistory; n < 0 || n > maxHistory {
		p.add("reload.dry_run_history", fmt.Errorf("%d: want 0 (keep none) to %d", n, maxHistory))
	}

	c.validateAdmin(p)
	c.validateLimits(p)  // limits.go
	c.validatePayload(p) // keys.go

	plugins := map[string]int{}
	for i := range c.Plugins {
		c.validatePlugin(p, i, plugins)
	}
}

// validateOrigins checks allowed_origins: only on websocket listeners, each
// "*" or an origin as a browser sends it.
func (c *Config) validateOrigins(p *problems, key string, l *Listener) {
	if len(l.AllowedOrigins) == 0 {
		return
	}
	if l.Type != ListenerWS && l.Type != ListenerWSS {
		p.add(key+".allowed_origins", fmt.Errorf("only for ws and wss listeners, this one is %q", l.Type))
		return
	}
	for j, o := range l.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			p.add(fmt.Sprintf("%s.allowed_origins[%d]", key, j), err)
		}
	}
}

// checkOrigin accepts "*" and scheme://host[:port] with scheme http or
// https and nothing after the host.
func checkOrigin(o string) error {
	if o == "*" {
		return nil
	}
	u, err := url.Parse(o)
	want := fmt.Errorf("%q: want an origin such as \"https://app.example.com\" (scheme://host[:port], no path), or \"*\"", o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return want
	}
	return nil
}

func (c *Config) validateListener(p *problems, i int, names, addrs map[string]int) {
	l := &c.Listeners[i]
	key := "listener[" + strconv.Itoa(i) + "]"

	typeOK := true
	if l.Type == "" {
		p.add(key+".type", errors.New(`required: "tcp", "tls", "ws" or "wss"`))
		typeOK = false
	} else if err := oneOf(l.Type, ListenerTCP, ListenerTLS, ListenerWS, ListenerWSS); err != nil {
		p.add(key+".type", err)
		typeOK = false
	}

	if j, dup := names[l.Name]; dup {
		p.add(key+".name", fmt.Errorf("%q is already the name of listener[%d]", l.Name, j))
	} else {
		names[l.Name] = i
	}

	if l.Address == "" {
		p.add(key+".address", errors.New("required: host:port, such as \"127.0.0.1:1883\""))
	} else if host, port, err := net.SplitHostPort(l.Address); err != nil {
		p.add(key+".address", err)
	} else if n, err := strconv.ParseUint(port, 10, 16); err != nil {
		p.add(key+".address", fmt.Errorf("%q: port %q is not a number from 0 to 65535", l.Address, port))
	} else if n != 0 { // port 0 picks a free port each time: no clash
		canon := net.JoinHostPort(host, strconv.FormatUint(n, 10))
		if j, dup := addrs[canon]; dup {
			p.add(key+".address", fmt.Errorf("%q is already the address of listener[%d]", l.Address, j))
		} else {
			addrs[canon] = i
		}
	}

	if !typeOK {
		return
	}
	c.validateOrigins(p, key, l)
	if !l.TLS() {
		// Refuse TLS settings on a plain listener: the operator meant TLS.
		refuse := func(field string, set bool) {
			if set {
				p.add(key+"."+field, fmt.Errorf("only for tls and wss listeners, this one is %q", l.Type))
			}
		}
		refuse("cert_file", l.CertFile != "")
		refuse("key_file", l.KeyFile != "")
		refuse("client_ca_file", l.ClientCAFile != "")
		refuse("require_client_cert", l.RequireClientCert)
		refuse("min_tls_version", l.MinTLSVersion != "")
		return
	}

	if err := oneOf(l.MinTLSVersion, "1.2", "1.3"); err != nil {
		p.add(key+".min_tls_version", err)
	}
	required := fmt.Errorf("required for a %s listener", l.Type)
	if l.CertFile == "" {
		p.add(key+".cert_file", required)
	}
	if l.KeyFile == "" {
		p.add(key+".key_file", required)
	}
	if l.CertFile != "" && l.KeyFile != "" {
		c.checkKeyPair(p, key, l)
	}
	if l.ClientCAFile != "" {
		if err := c.checkCABundle(l.ClientCAFile); err != nil {
			p.add(key+".client_ca_file", err)
		}
	} else if l.RequireClientCert {
		p.add(key+".require_client_cert", errors.New("needs client_ca_file to verify client certificates against"))
	}
}

// checkKeyPair loads the certificate and key as the listener will, blaming
// the file at fault.
func (c *Config) checkKeyPair(p *problems, key string, l *Listener) {
	certPEM, certErr := os.ReadFile(l.CertFile)
	if certErr != nil {
		p.add(key+".cert_file", c.fileErr(certErr))
	}
	keyPEM, keyErr := os.ReadFile(l.KeyFile)
	if keyErr != nil {
		p.add(key+".key_file", c.fileErr(keyErr))
	}
	if certErr != nil || keyErr != nil {
		return
	}
	if n, err := parseCerts(certPEM); err != nil || n == 0 {
		if err == nil {
			err = errors.New(`no certificate found (want PEM "CERTIFICATE" blocks)`)
		}
		p.add(key+".cert_file", fmt.Errorf("%s: %w", c.shown(l.CertFile), err))
		return
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		p.add(key+".key_file", fmt.Errorf("%s: %w", c.shown(l.KeyFile), err))
	}
}

func (c *Config) checkCABundle(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return c.fileErr(err)
	}
	n, err := parseCerts(data)
	if err == nil && n == 0 {
		err = errors.New(`no certificate found (want PEM "CERTIFICATE" blocks)`)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", c.shown(path), err)
	}
	return nil
}

// parseCerts parses every CERTIFICATE block of a PEM file and returns how
// many there are. Other blocks are skipped: a bundle may carry comments or
// a key beside the chain.
func parseCerts(data []byte) (int, error) {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return n, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		n++
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return n, fmt.Errorf("certificate %d: %w", n, err)
		}
	}
}

func (c *Config) validateMQTT(p *problems) {
	m := &c.MQTT
	if s := m.MaximumPacketSize; s != 0 && (s < minPacketSize || s > maxPacketSize) {
		p.add("mqtt.maximum_packet_size", fmt.Errorf("%s: want 0 (the protocol's limit) or %d to %d bytes", s, minPacketSize, maxPacketSize))
	}
	if m.ReceiveMaximum == 0 {
		p.add("mqtt.receive_maximum", errors.New("0: want 1 to 65535 [MQTT-3.2.2.3.3]"))
	}
	if m.MaximumInflight == 0 {
		p.add("mqtt.maximum_inflight", errors.New("0: want 1 to 65535"))
	}
	if q := m.MaximumQueuedMessages; q < 1 || q > maxQueued {
		p.add("mqtt.maximum_queued_messages", fmt.Errorf("%d: want 1 to %d", q, maxQueued))
	}
	if b := m.MaximumQueuedBytes; b < 0 || b > 0 && b < minQueuedBytes {
		p.add("mqtt.maximum_queued_bytes", fmt.Errorf("%s: want 0 (no limit) or at least %s", b, minQueuedBytes))
	}
	if d := m.SlowSubscriberTimeout.Duration; d < time.Millisecond || d > time.Hour {
		p.add("mqtt.slow_subscriber_timeout", fmt.Errorf("%s: want 1ms to 1h", d))
	}
	if d := m.MaximumSessionExpiry.Duration; d < 0 || d > maxSessionLimit {
		p.add("mqtt.maximum_session_expiry", fmt.Errorf("%s: want 0s (no cap) to %ds (about 136 years)", d, uint32(math.MaxUint32)))
	}
	if d := m.MaximumMessageExpiry.Duration; d < 0 {
		p.add("mqtt.maximum_message_expiry", fmt.Errorf("%s: want 0s (no cap) or more", d))
	}
	switch m.V3DeniedPublish {
	case "", V3DeniedAck, V3DeniedDisconnect: // "" is the default, in a Config built in code
	default:
		p.add("mqtt.v3_denied_publish", fmt.Errorf("%q: want %q or %q", m.V3DeniedPublish, V3DeniedAck, V3DeniedDisconnect))
	}
	if d := m.MaximumKeepalive.Duration; d < 0 || d > maxKeepalive {
		p.add("mqtt.maximum_keepalive", fmt.Errorf("%s: want 0s (no limit) to %ds", d, math.MaxUint16))
	}
	if m.MaximumClients < 0 {
		p.add("mqtt.maximum_clients", fmt.Errorf("%d: want 0 (no limit) or more", m.MaximumClients))
	}
	if m.MaximumQoS > 2 {
		p.add("mqtt.maximum_qos", fmt.Errorf("%d: want 0, 1 or 2", m.MaximumQoS))
	}
}

func (c *Config) validatePlugin(p *problems, i int, names map[string]int) {
	pl := &c.Plugins[i]
	key := "plugin[" + strconv.Itoa(i) + "]"

	switch j, dup := names[pl.Name]; {
	case pl.Name == "":
		p.add(key+".name", errors.New("required: the name that logs and messages use"))
	case dup:
		p.add(key+".name", fmt.Errorf("%q is already the name of plugin[%d]", pl.Name, j))
	default:
		names[pl.Name] = i
	}

	if pl.Module == "" {
		p.add(key+".module", errors.New("required: the path of a .wasm file"))
	} else if err := c.regularFile(pl.Module); err != nil {
		p.add(key+".module", err)
	}

	if s := pl.SHA256; s != "" {
		if _, err := hex.DecodeString(s); err != nil || len(s) != 64 {
			p.add(key+".sha256", fmt.Errorf("%q: want 64 hex digits, as sha256sum prints", s))
		}
	}

	if len(pl.Decisions) == 0 {
		p.add(key+".decisions", errors.New(`required: one or more of "authn", "authz", "payload"`))
	}
	for j, d := range pl.Decisions {
		dkey := key + ".decisions[" + strconv.Itoa(j) + "]"
		if err := oneOf(d, DecisionAuthn, DecisionAuthz, DecisionPayload); err != nil {
			p.add(dkey, err)
		} else if slices.Index(pl.Decisions, d) < j {
			p.add(dkey, fmt.Errorf("%q is listed twice", d))
		}
	}
	if pl.AllowPayload && !pl.Lists(DecisionPayload) {
		p.add(key+".allow_payload", errors.New(`needs "payload" in decisions`))
	}

	if err := oneOf(pl.OnError, "deny", "allow", "ignore"); err != nil {
		p.add(key+".on_error", err)
	}
	if err := timeout(pl.Timeout); err != nil {
		p.add(key+".timeout", err)
	}
	if m := pl.MemoryLimit; m < wasmPage || m > maxMemoryLimit || m%wasmPage != 0 {
		p.add(key+".memory_limit", fmt.Errorf("%s: want a multiple of 64KiB (the wasm page) from 64KiB to 4GiB", m))
	}
	if s := pl.ShadowSample; !(s >= 0 && s <= 1) {
		p.add(key+".shadow_sample", fmt.Errorf("%v: want a fraction from 0.0 to 1.0", s))
	}
	if pl.Instances < 0 || pl.Instances > maxInstances {
		p.add(key+".instances", fmt.Errorf("%d: want 0 (GOMAXPROCS) to %d", pl.Instances, maxInstances))
	}

	files := make([]string, 0, len(pl.Files))
	for name := range pl.Files {
		files = append(files, name)
	}
	slices.Sort(files)
	for _, name := range files {
		fkey := key + ".files." + pathPart(name)
		switch path := pl.Files[name]; {
		case name == "":
			p.add(fkey, errors.New("a granted file needs a name"))
		case path == "":
			p.add(fkey, errors.New("empty path"))
		default:
			if err := c.regularFile(path); err != nil {
				p.add(fkey, err)
			}
		}
	}
}

// regularFile checks that path names an existing regular file (following
// symbolic links).
func (c *Config) regularFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return c.fileErr(err)
	}
	if !fi.Mode().IsRegular() {
		what := "not a regular file"
		if fi.IsDir() {
			what = "is a directory"
		}
		return fmt.Errorf("%s: %s", c.shown(path), what)
	}
	return nil
}

// fileErr rewrites the path in a file system error to the one the operator
// wrote, keeping errors.Is(err, fs.ErrNotExist) working.
func (c *Config) fileErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &fs.PathError{Op: pe.Op, Path: c.shown(pe.Path), Err: pe.Err}
	}
	return err
}

func timeout(d Duration) error {
	if d.Duration <= 0 || d.Duration > maxCallTimeout {
		return fmt.Errorf("%s: want more than 0s and at most %s", d.Duration, maxCallTimeout)
	}
	return nil
}

// oneOf checks an enum value.
func oneOf(v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	q := make([]string, len(allowed))
	for i, a := range allowed {
		q[i] = strconv.Quote(a)
	}
	return fmt.Errorf("%q is not one of %s", v, strings.Join(q, ", "))
}
