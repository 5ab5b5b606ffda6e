package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moat-mqtt/moat/runtime/config/mosquittoconf"
)

const migrateDoc = `Migrate translates a Mosquitto 2.0 configuration into a moat.toml:

  moat migrate /etc/mosquitto/mosquitto.conf > moat.toml

It follows include_dir, and carries listeners (port, bind_address,
protocol websockets, cafile/certfile/keyfile, require_certificate,
tls_version), password_file and acl_file (as [[plugin]] entries of the
first-party passwd and acl plugins, reading the same files), allow_anonymous,
persistence, max_packet_size, message_size_limit, max_inflight_messages,
max_keepalive, max_qos, retain_available, persistent_client_expiration and
per_listener_settings where the listeners agree. Every option it cannot
carry is listed on stderr with the reason, as
	mosquitto.conf:12: max_queued_messages: not carried: ...
The result is meant to pass 'moat check'; read it before serving it.

-plugins names the directory of passwd.wasm and acl.wasm; by default the
"plugins" directory beside the moat executable, where 'make build' puts
them. Relative paths of the Mosquitto file (certificates, password and ACL
files) are written as absolute paths, resolved against the working
directory as Mosquitto resolves them.
`

func runMigrate(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("migrate", "moat migrate [-plugins dir] mosquitto.conf", migrateDoc, stderr)
	plugins := fs.String("plugins", defaultPluginDir(), "the `directory` of the first-party plugins (passwd.wasm, acl.wasm)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "moat migrate: want one mosquitto.conf, got %d arguments\nRun 'moat help migrate' for usage.\n", fs.NArg())
		return exitUsage
	}
	ds, err := mosquittoconf.Load(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "moat migrate:", err)
		return exitFail
	}
	m := translate(ds, fs.Arg(0), *plugins)
	for _, n := range m.notes {
		fmt.Fprintln(stderr, n)
	}
	if _, err := io.WriteString(stdout, m.toml()); err != nil {
		fmt.Fprintln(stderr, "moat migrate:", err)
		return exitFail
	}
	return exitOK
}

// defaultPluginDir is bin/plugins when moat runs as bin/moat.
func defaultPluginDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "plugins"
	}
	return filepath.Join(filepath.Dir(exe), "plugins")
}

// mqListener is one Mosquitto listener and the options given under it.
type mqListener struct {
	pos        string
	port, bind string
	websockets bool
	cafile     string
	certfile   string
	keyfile    string
	requireCrt bool
	tlsVersion string
	auth       mqAuth
	// explicit is false for the default listener until "port" or
	// "bind_address" creates it: Mosquitto 2.0 opens no default listener
	// otherwise.
	explicit bool
}

// mqAuth holds the options that per_listener_settings makes per listener.
type mqAuth struct {
	passwordFile, aclFile string
	allowAnonymous        *bool
}

func (a mqAuth) same(b mqAuth) bool {
	return a.passwordFile == b.passwordFile && a.aclFile == b.aclFile &&
		(a.allowAnonymous == nil) == (b.allowAnonymous == nil) &&
		(a.allowAnonymous == nil || *a.allowAnonymous == *b.allowAnonymous)
}

// migration is the outcome of translate: the moat.toml's values and the
// notes for stderr.
type migration struct {
	source     string
	pluginDir  string
	listeners  []*mqListener
	global     mqAuth
	localOnly  bool // no listener: Mosquitto 2.0's local-only mode
	perLis     bool
	persist    bool
	persistDir string
	mqtt       []kv // [mqtt] keys, in order
	notes      []string
}

type kv struct{ key, value string }

// translate interprets the directives as Mosquitto 2.0 does, as far as moat
// can follow it.
func translate(ds []mosquittoconf.Directive, source, pluginDir string) *migration {
	m := &migration{source: source, pluginDir: pluginDir}
	note := func(d mosquittoconf.Directive, why string) {
		m.notes = append(m.notes, fmt.Sprintf("%s: %s: not carried: %s", d.Pos(), d.Name, why))
	}
	warn := func(d mosquittoconf.Directive, what string) {
		m.notes = append(m.notes, fmt.Sprintf("%s: %s: %s", d.Pos(), d.Name, what))
	}
	for _, d := range ds {
		if d.Name == "per_listener_settings" && arg(d) == "true" {
			m.perLis = true
		}
	}
	var def *mqListener // the default listener of "port" and global options
	cur := func() *mqListener {
		if len(m.listeners) > 0 && m.listeners[len(m.listeners)-1] != def {
			return m.listeners[len(m.listeners)-1]
		}
		if def == nil {
			def = &mqListener{port: "1883"}
			m.listeners = append(m.listeners, def)
		}
		return def
	}
	auth := func() *mqAuth {
		if m.perLis {
			return &cur().auth
		}
		return &m.global
	}
	for _, d := range ds {
		if bridgeOptions[d.Name] || strings.HasPrefix(d.Name, "bridge_") {
			why := "bridge option; moat has no bridges"
			if d.Name == "connection" {
				why = "moat has no bridges; run a Mosquitto bridge beside moat, or an MQTT client that relays"
			}
			note(d, why)
			continue
		}
		switch d.Name {
		case "per_listener_settings":
			if m.perLis {
				warn(d, "true: moat's policy is global; the password and ACL files are carried only if every listener has the same ones (each plugin request names its listener, for policies that need to tell them apart)")
			}
		case "listener":
			if len(d.Args) == 0 {
				note(d, "no port given")
				continue
			}
			l := &mqListener{pos: d.Pos(), port: d.Args[0], explicit: true}
			if len(d.Args) > 1 {
				l.bind = d.Args[1]
			}
			if l.port == "0" {
				note(d, "port 0 is a Unix socket listener in Mosquitto 2.0 (with bind_address a path); moat listens on TCP only")
				continue
			}
			m.listeners = append(m.listeners, l)
		case "port":
			l := cur()
			l.port, l.explicit = arg(d), true
		case "bind_address":
			l := cur()
			l.bind, l.explicit = arg(d), true
		case "protocol":
			switch arg(d) {
			case "websockets":
				cur().websockets = true
			case "mqtt":
			default:
				note(d, fmt.Sprintf("%q: moat speaks mqtt and websockets", arg(d)))
			}
		case "cafile":
			cur().cafile = absPath(d.Value)
		case "certfile":
			cur().certfile = absPath(d.Value)
		case "keyfile":
			cur().keyfile = absPath(d.Value)
		case "require_certificate":
			cur().requireCrt = arg(d) == "true"
		case "tls_version":
			switch arg(d) {
			case "tlsv1.2":
				cur().tlsVersion = "1.2"
			case "tlsv1.3":
				cur().tlsVersion = "1.3"
			default:
				note(d, fmt.Sprintf("%q: moat accepts TLS 1.2 and 1.3 only; the listener keeps moat's minimum, 1.2", arg(d)))
			}
		case "password_file":
			auth().passwordFile = absPath(d.Value)
		case "acl_file":
			auth().aclFile = absPath(d.Value)
		case "allow_anonymous":
			b := arg(d) == "true"
			auth().allowAnonymous = &b
		case "persistence":
			m.persist = arg(d) == "true"
			if m.persist {
				warn(d, "carried as [persistence] type = \"bolt\": moat keeps its own store (moat.db, in persistence_location if given, else beside moat.toml); Mosquitto's mosquitto.db is not read, so retained messages and sessions start empty")
			}
		case "persistence_location":
			m.persistDir = absPath(d.Value)
		case "persistence_file":
			note(d, "moat's store is a bbolt file named moat.db; Mosquitto's file is not read")
		case "max_packet_size":
			if v, ok := uintArg(d); ok {
				if v != 0 && v < 128 {
					warn(d, fmt.Sprintf("%d is below moat's minimum of 128 bytes; 128 used", v))
					v = 128
				}
				m.setMQTT("maximum_packet_size", strconv.FormatUint(v, 10))
			} else {
				note(d, "not a number")
			}
		case "message_size_limit":
			if v, ok := uintArg(d); ok && v > 0 {
				if m.hasMQTT("maximum_packet_size") {
					note(d, "moat bounds whole packets, and max_packet_size is already given")
					continue
				}
				// The payload plus the largest header a client may send
				// with it (fixed header 5, topic 2+65535, id 2,
				// properties): approximate, and said so.
				m.setMQTT("maximum_packet_size", strconv.FormatUint(min(v+65544+4096, 268435460), 10))
				warn(d, "carried as maximum_packet_size (moat bounds whole packets, not payloads): payload limit + 69 KiB of headers")
			}
		case "max_inflight_messages":
			if v, ok := uintArg(d); ok {
				if v == 0 || v > 65535 {
					v = 65535
				}
				m.setMQTT("maximum_inflight", strconv.FormatUint(v, 10))
			}
		case "max_keepalive":
			if v, ok := uintArg(d); ok {
				if v > 65535 {
					v = 65535
				}
				m.setMQTT("maximum_keepalive", strconv.Quote(strconv.FormatUint(v, 10)+"s"))
			}
		case "max_qos":
			if v, ok := uintArg(d); ok && v <= 2 {
				m.setMQTT("maximum_qos", strconv.FormatUint(v, 10))
			}
		case "max_topic_alias":
			if v, ok := uintArg(d); ok && v <= 65535 {
				m.setMQTT("maximum_topic_alias", strconv.FormatUint(v, 10))
			}
		case "retain_available":
			m.setMQTT("retain_available", strconv.FormatBool(arg(d) == "true"))
		case "max_connections":
			if v, err := strconv.ParseInt(arg(d), 10, 64); err == nil && v > 0 {
				m.setMQTT("maximum_clients", strconv.FormatInt(v, 10))
				warn(d, "carried as [mqtt] maximum_clients, which bounds all listeners together")
			}
		case "persistent_client_expiration":
			if dur, ok := mosqDuration(arg(d)); ok {
				m.setMQTT("maximum_session_expiry", strconv.Quote(dur.String()))
			} else {
				note(d, fmt.Sprintf("%q: want a number and one of h, d, w, m, y", arg(d)))
			}
		case "max_queued_messages", "max_queued_bytes":
			note(d, "moat's [mqtt] maximum_queued_messages and maximum_queued_bytes bound a connected client's outbound queue (defaults 8192 and 8MiB) and evict its oldest QoS 0 message first, where Mosquitto's limits count messages beyond those in flight, offline sessions included, and drop new ones; set them by hand")
		case "max_inflight_bytes":
			note(d, "moat bounds in-flight messages by count only (maximum_inflight)")
		case "sys_interval":
			note(d, "moat refreshes $SYS every 10 s, Mosquitto's default")
		case "autosave_interval", "autosave_on_changes":
			note(d, "moat's store writes every change in a transaction; there is nothing to autosave")
		case "log_dest", "log_type", "log_timestamp", "log_timestamp_format", "log_facility", "connection_messages", "websockets_log_level":
			note(d, "moat logs to stderr as text or JSON ([log] level, format); route it with the service manager")
		case "pid_file", "user":
			note(d, "let the service manager run moat as its user; moat writes no pid file")
		case "capath", "crlfile", "ciphers", "ciphers_tls1.3", "dhparamfile", "psk_hint", "psk_file", "use_identity_as_username", "use_subject_as_username", "certfile_password", "keyform", "engine", "tls_engine", "tls_keyform", "tls_engine_kpass_sha1":
			note(d, "moat's TLS listeners take cert_file, key_file, client_ca_file, require_client_cert and min_tls_version; a verified client certificate reaches every plugin (cert_cn, SANs) for a policy that maps it to a user")
		case "plugin", "auth_plugin", "global_plugin":
			note(d, "moat plugins are WebAssembly modules ([[plugin]]); Mosquitto's C plugins do not load")
		case "mount_point", "socket_domain", "http_dir", "websockets_headers_size", "use_username_as_clientid", "auto_id_prefix", "allow_zero_length_clientid", "allow_duplicate_messages", "check_retain_source", "clientid_prefixes", "max_inflight", "memory_limit", "queue_qos0_messages", "set_tcp_nodelay", "upgrade_outgoing_qos", "accept_protocol_versions", "enable_control_api", "include_dir":
			note(d, "no moat equivalent")
		default:
			if strings.HasPrefix(d.Name, "plugin_opt_") || strings.HasPrefix(d.Name, "auth_opt_") {
				note(d, "option of a Mosquitto C plugin")
				continue
			}
			note(d, "unknown option")
		}
	}
	if def != nil && !def.explicit {
		// Listener options before any listener and without "port".
		kept := m.listeners[:0]
		for _, l := range m.listeners {
			if l != def {
				kept = append(kept, l)
			}
		}
		m.listeners = kept
		m.notes = append(m.notes, fmt.Sprintf("%s: listener options before the first listener, without port: Mosquitto 2.0 opens no default listener for them; not carried", source))
	}
	if len(m.listeners) == 0 {
		// Mosquitto 2.0 with no listener: local-only mode, loopback 1883,
		// anonymous clients allowed.
		m.localOnly = true
		m.listeners = []*mqListener{{port: "1883", bind: "127.0.0.1"}}
		if m.global.allowAnonymous == nil {
			t := true
			m.global.allowAnonymous = &t
		}
		m.notes = append(m.notes, fmt.Sprintf("%s: no listener: Mosquitto 2.0's local-only mode, carried as a loopback listener on port 1883 with anonymous clients allowed", source))
	}
	if m.perLis {
		a := m.listeners[0].auth
		for _, l := range m.listeners[1:] {
			if !l.auth.same(a) {
				m.notes = append(m.notes, fmt.Sprintf("%s: per_listener_settings: listeners differ in password_file, acl_file or allow_anonymous; none of them is carried, so the result lets nobody in: write one policy for all listeners (plugins see the listener of each request)", source))
				a = mqAuth{}
				break
			}
		}
		m.global = a
	}
	return m
}

// bridgeOptions are the options of a bridge (`connection` sections).
var bridgeOptions = map[string]bool{
	"connection": true, "address": true, "addresses": true, "topic": true,
	"cleansession": true, "local_cleansession": true, "clientid": true, "remote_clientid": true,
	"local_clientid": true, "keepalive_interval": true, "idle_timeout": true,
	"notifications": true, "notification_topic": true, "notifications_local_only": true,
	"remote_password": true, "remote_username": true, "local_password": true, "local_username": true,
	"restart_timeout": true, "round_robin": true, "start_type": true, "threshold": true,
	"try_private": true, "username": true, "password": true,
}

func arg(d mosquittoconf.Directive) string {
	if len(d.Args) == 0 {
		return ""
	}
	return d.Args[0]
}

func uintArg(d mosquittoconf.Directive) (uint64, bool) {
	v, err := strconv.ParseUint(arg(d), 10, 64)
	return v, err == nil
}

// absPath resolves p against the working directory, as Mosquitto opens it.
func absPath(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// mosqDuration parses persistent_client_expiration: a number and one of
// h, d, w, m (month, 30 days) or y (365 days).
func mosqDuration(s string) (time.Duration, bool) {
	if len(s) < 2 {
		return 0, false
	}
	n, err := strconv.ParseUint(s[:len(s)-1], 10, 32)
	if err != nil || n == 0 {
		return 0, false
	}
	unit := map[byte]time.Duration{'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour,
		'm': 30 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}[s[len(s)-1]]
	if unit == 0 {
		return 0, false
	}
	d := time.Duration(n) * unit
	if d/unit != time.Duration(n) || d > (1<<32-1)*time.Second {
		d = (1<<32 - 1) * time.Second
	}
	return d, true
}

func (m *migration) setMQTT(key, value string) {
	for i := range m.mqtt {
		if m.mqtt[i].key == key {
			m.mqtt[i].value = value
			return
		}
	}
	m.mqtt = append(m.mqtt, kv{key, value})
}

func (m *migration) hasMQTT(key string) bool {
	for _, x := range m.mqtt {
		if x.key == key {
			return true
		}
	}
	return false
}

// toml writes the moat.toml.
func (m *migration) toml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# moat.toml written by `moat migrate` from %s.\n", m.source)
	b.WriteString("# Options it could not carry were listed on stderr. Check it with `moat check`.\n")
	names := make(map[string]bool)
	for _, l := range m.listeners {
		typ := "tcp"
		tls := l.certfile != "" || l.keyfile != ""
		switch {
		case l.websockets && tls:
			typ = "wss"
		case l.websockets:
			typ = "ws"
		case tls:
			typ = "tls"
		}
		name := typ + "-" + l.port
		for i := 2; names[name]; i++ {
			name = fmt.Sprintf("%s-%s-%d", typ, l.port, i)
		}
		names[name] = true
		b.WriteString("\n[[listener]]\n")
		if l.pos != "" {
			fmt.Fprintf(&b, "# %s\n", l.pos)
		}
		fmt.Fprintf(&b, "name = %s\ntype = %q\naddress = %s\n", tomlString(name), typ, tomlString(joinHostPort(l.bind, l.port)))
		if tls {
			fmt.Fprintf(&b, "cert_file = %s\nkey_file = %s\n", tomlString(l.certfile), tomlString(l.keyfile))
			if l.cafile != "" {
				// Mosquitto verifies a client certificate against cafile
				// when one is sent, and requires one with
				// require_certificate: moat's client_ca_file does the same.
				fmt.Fprintf(&b, "client_ca_file = %s\n", tomlString(l.cafile))
				if l.requireCrt {
					b.WriteString("require_client_cert = true\n")
				}
			}
			if l.tlsVersion != "" {
				fmt.Fprintf(&b, "min_tls_version = %q\n", l.tlsVersion)
			}
		}
	}
	if len(m.mqtt) > 0 {
		b.WriteString("\n[mqtt]\n")
		for _, x := range m.mqtt {
			fmt.Fprintf(&b, "%s = %s\n", x.key, x.value)
		}
	}
	if m.persist {
		dir := m.persistDir
		b.WriteString("\n[persistence]\ntype = \"bolt\"\n")
		if dir != "" {
			fmt.Fprintf(&b, "path = %s\n", tomlString(filepath.Join(dir, "moat.db")))
		}
	}
	anon := false // Mosquitto 2.0's default
	if m.global.allowAnonymous != nil {
		anon = *m.global.allowAnonymous
	}
	fmt.Fprintf(&b, "\n[auth]\nallow_anonymous = %t\n", anon)
	if f := m.global.passwordFile; f != "" {
		fmt.Fprintf(&b, "\n[[plugin]]\nname = \"passwd\"\nmodule = %s\ndecisions = [\"authn\"]\n[plugin.files]\npasswords = %s\n",
			tomlString(filepath.Join(m.pluginDir, "passwd.wasm")), tomlString(f))
	}
	if f := m.global.aclFile; f != "" {
		fmt.Fprintf(&b, "\n[[plugin]]\nname = \"acl\"\nmodule = %s\ndecisions = [\"authz\"]\n[plugin.files]\nacl = %s\n",
			tomlString(filepath.Join(m.pluginDir, "acl.wasm")), tomlString(f))
	}
	return b.String()
}

func joinHostPort(host, port string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
