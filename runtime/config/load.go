package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults that are not spelled out where they are used.
const (
	defaultMaxPacketSize  = 256 * KiB
	defaultReceiveMaximum = 1024
	defaultInflight       = 8192
	defaultQueued         = 8192
	defaultQueuedBytes    = 8 * MiB
	defaultSlowSubscriber = 10 * time.Second
	defaultTopicAlias     = math.MaxUint16
	defaultAuthTimeout    = time.Second
	defaultCacheTTL       = 5 * time.Minute
	defaultCacheSize      = 1024
	defaultPluginTimeout  = 100 * time.Millisecond
	defaultMemoryLimit    = 128 * MiB
	defaultDBFile         = "moat.db"
	defaultDryRunHistory  = 1024
)

// Load reads, decodes and validates the config file at path. On success
// every field holds a concrete value (defaults filled in, paths absolute).
// On failure it returns nil and every problem found, as described on Error.
//
// Load reads the files the config names (certificates, CA bundles) and
// checks that modules and granted files exist; it does not compile modules
// (runtime/server does, and `moat check` asks it to).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse is Load for a document already in memory. path names it in
// messages and anchors its relative paths: they resolve against
// filepath.Dir(path), or the working directory when path is "".
func Parse(data []byte, path string) (*Config, error) {
	p := &problems{file: path}
	var raw rawFile
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		p.syntaxErr(err, data)
		return nil, p.err()
	}
	lines := scanLines(data)
	p.lines = lines
	c := &Config{Path: path, lines: lines, written: map[string]string{}}

	// Decode section by section, so that one wrong type does not hide the
	// others, and so that an error in an array entry knows its index.
	for i, prim := range raw.Listeners {
		key := "listener[" + strconv.Itoa(i) + "]"
		var l Listener
		if err := md.PrimitiveDecode(prim, &l); err != nil {
			p.decodeErr(err, key)
			continue
		}
		c.Listeners = append(c.Listeners, l)
	}
	sections := []struct {
		name string
		prim toml.Primitive
		dst  any
	}{
		{"mqtt", raw.MQTT, &c.MQTT},
		{"persistence", raw.Persistence, &c.Persistence},
		{"log", raw.Log, &c.Log},
		{"auth", raw.Auth, &c.Auth},
		{"cache", raw.Cache, &c.Cache},
		{"wasm", raw.Wasm, &c.Wasm},
		{"reload", raw.Reload, &c.Reload},
		{"admin", raw.Admin, &c.Admin},
		{"metrics", raw.Metrics, &c.Metrics},
		{"limits", raw.Limits, &c.Limits},
	}
	for _, s := range sections {
		if !md.IsDefined(s.name) {
			continue
		}
		if err := md.PrimitiveDecode(s.prim, s.dst); err != nil {
			p.decodeErr(err, s.name)
		}
	}
	for i, prim := range raw.Plugins {
		key := "plugin[" + strconv.Itoa(i) + "]"
		if pl, ok := decodePlugin(&md, prim, key, p); ok {
			pl.Line = lines.lineOf(key)
			c.Plugins = append(c.Plugins, pl)
		}
	}
	c.decodePayload(&md, &raw.rawPayload, path, p) // keys.go
	if len(p.errs) > 0 {
		// A half-decoded section would only produce misleading follow-up
		// errors (and "unknown" keys it never reached).
		return nil, p.err()
	}

	unknownKeys(&md, p)
	c.defaults(&md)
	c.resolve(path)
	c.validate(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// rawFile is the first decoding pass: every section stays a Primitive so
// that Parse decodes each on its own.
type rawFile struct {
	Listeners   []toml.Primitive `toml:"listener"`
	MQTT        toml.Primitive   `toml:"mqtt"`
	Persistence toml.Primitive   `toml:"persistence"`
	Log         toml.Primitive   `toml:"log"`
	Auth        toml.Primitive   `toml:"auth"`
	Cache       toml.Primitive   `toml:"cache"`
	Wasm        toml.Primitive   `toml:"wasm"`
	Reload      toml.Primitive   `toml:"reload"`
	Admin       toml.Primitive   `toml:"admin"`
	Metrics     toml.Primitive   `toml:"metrics"`
	Limits      toml.Primitive   `toml:"limits"`
	Plugins     []toml.Primitive `toml:"plugin"`
	rawPayload                   // keys.go: [[key]], [keys] and [payload]
}

// rawPlugin shadows the Plugin fields whose absence must be told apart
// from a zero value, and those the library would decode too leniently.
type rawPlugin struct {
	Plugin
	Timeout     *Duration `toml:"timeout"`
	MemoryLimit *ByteSize `toml:"memory_limit"`
	// ShadowSample defaults to 1, not 0.
	ShadowSample *float64 `toml:"shadow_sample"`
	// Files is checked by hand: the library silently decodes a non-table
	// into an empty map.
	Files any `toml:"files"`
	// Config stays opaque here: the module decides what it means.
	Config any `toml:"config"`
}

func decodePlugin(md *toml.MetaData, prim toml.Primitive, key string, p *problems) (Plugin, bool) {
	var rp rawPlugin
	if err := md.PrimitiveDecode(prim, &rp); err != nil {
		p.decodeErr(err, key)
		return Plugin{}, false
	}
	pl := rp.Plugin
	pl.Timeout = Duration{defaultPluginTimeout}
	if rp.Timeout != nil {
		pl.Timeout = *rp.Timeout
	}
	pl.MemoryLimit = defaultMemoryLimit
	if rp.MemoryLimit != nil {
		pl.MemoryLimit = *rp.MemoryLimit
	}
	ok := true
	pl.ShadowSample = 1
	if rp.ShadowSample != nil {
		pl.ShadowSample = *rp.ShadowSample
		// 1.0 is the default, which an encoded config writes for every
		// plugin: only another value says the operator meant a shadow.
		if !pl.Shadow && pl.ShadowSample != 1 {
			p.add(key+".shadow_sample", errors.New("needs shadow = true"))
			ok = false
		}
	}
	switch files := rp.Files.(type) {
	case nil:
	case map[string]any:
		pl.Files = make(map[string]string, len(files))
		for name, v := range files {
			s, isString := v.(string)
			if !isString {
				p.add(key+".files."+pathPart(name), fmt.Errorf("want a file path string, got %s", tomlType(v)))
				ok = false
				continue
			}
			pl.Files[name] = s
		}
	default:
		p.add(key+".files", fmt.Errorf("want a table of name = \"path\", got %s", tomlType(files)))
		ok = false
	}
	js, err := configJSON(rp.Config, key+".config")
	if err != nil {
		var ve *valueError
		if errors.As(err, &ve) {
			p.add(ve.path, ve.err)
		} else {
			p.add(key+".config", err)
		}
		ok = false
	}
	pl.ConfigJSON = js
	return pl, ok
}

// configJSON encodes a [plugin.config] table as the JSON a module receives.
func configJSON(v any, path string) ([]byte, error) {
	switch v.(type) {
	case nil:
		return []byte("{}"), nil
	case map[string]any:
	default:
		return nil, fmt.Errorf("want a table, got %s", tomlType(v))
	}
	j, err := jsonValue(v, path)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // guests get "<" as written, not \u003c
	if err := enc.Encode(j); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// jsonValue maps a decoded TOML value onto what encoding/json writes as the
// ABI says: date-times become RFC 3339 strings (local ones keep their
// partial form), and floats JSON cannot hold are refused.
func jsonValue(v any, path string) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			j, err := jsonValue(e, path+"."+pathPart(k))
			if err != nil {
				return nil, err
			}
			out[k] = j
		}
		return out, nil
	case []map[string]any:
		out := make([]any, len(v))
		for i, e := range v {
			j, err := jsonValue(e, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			j, err := jsonValue(e, path+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			out[i] = j
		}
		return out, nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, &valueError{path, fmt.Errorf("%v has no JSON form", v)}
		}
		return v, nil
	case time.Time:
		// BurntSushi/toml marks local date-times with these zone names.
		switch v.Location().String() {
		case "datetime-local":
			return v.Format("2006-01-02T15:04:05.999999999"), nil
		case "date-local":
			return v.Format("2006-01-02"), nil
		case "time-local":
			return v.Format("15:04:05.999999999"), nil
		}
		return v.Format(time.RFC3339Nano), nil
	}
	return v, nil
}

// valueError is a problem with one value inside [plugin.config].
type valueError struct {
	path string
	err  error
}

func (e *valueError) Error() string { return e.path + ": " + e.err.Error() }

// tomlType names the TOML type of a decoded value for messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// libErr matches the errors BurntSushi/toml builds with fmt rather than as
// a ParseError: "toml: line 5 (last key "listener.address"): message". The
// line is not used: the library keeps one line per key name, so it is the
// last [[listener]]'s line for every listener.
var libErr = regexp.MustCompile(`(?s)^toml: (?:line \d+ )?\(last key "(.*)"\): (.*)$`)

// syntaxErr records an error of toml.Decode: a syntax error, whose
// position the library knows, or a top-level type mismatch.
func (p *problems) syntaxErr(err error, data []byte) {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		p.decodeErr(err, "")
		return
	}
	line := pe.Position.Line
	// When the offending token is a newline ("[[listener]" + "\n") the
	// library has already counted it and blames the next line.
	start, end := pe.Position.Start, pe.Position.Start+pe.Position.Len
	if start >= 0 && start <= end && end <= len(data) && bytes.IndexByte(data[start:end], '\n') >= 0 {
		if l := bytes.Count(data[:start], []byte("\n")) + 1; l == line-1 {
			line = l
		}
	}
	p.addAt(line, "", fmt.Errorf("syntax error: %s", pe.Message))
}

// decodeErr records an error of decoding the entry at prefix
// ("listener[1]", "mqtt"; "" for the whole document).
func (p *problems) decodeErr(err error, prefix string) {
	var pe toml.ParseError
	key, msg := "", err.Error()
	if errors.As(err, &pe) {
		key, msg = pe.LastKey, pe.Message
	} else if m := libErr.FindStringSubmatch(msg); m != nil {
		key, msg = m[1], m[2]
		if u, err := strconv.Unquote(`"` + key + `"`); err == nil {
			key = u
		}
	}
	msg = strings.TrimPrefix(msg, "toml: ")
	path := prefix
	if key != "" && p.lines != nil {
		if found := p.lines.under(prefix, key); found != "" {
			path = found
		}
	}
	if path == "" {
		path = key
	}
	p.add(path, errors.New(msg))
}

// unknownKeys reports keys that map onto no field: misspellings, and keys
// the library matched only case-insensitively ("Address"), since TOML keys
// are case-sensitive and a config that works by accident is worse than an
// error. Only the outermost unknown key of a table is reported.
func unknownKeys(md *toml.MetaData, p *problems) {
	undecoded := map[string]bool{}
	for _, k := range md.Undecoded() {
		undecoded[k.String()] = true
	}
	reported := map[string]bool{}
	seen := map[string]int{}
	for _, k := range md.Keys() {
		s := k.String()
		nth := seen[s]
		seen[s]++
		schema := schemaParts(k)
		wrongCase := false
		for _, part := range k[:schema] {
			if part != strings.ToLower(part) {
				wrongCase = true
			}
		}
		// Keys past the schema parts are free-form names: [plugin.config]
		// belongs to the module, [plugin.files] names are the operator's.
		if !wrongCase && (schema < len(k) || !undecoded[s]) {
			continue
		}
		parentReported := false
		for i := 1; i < len(k); i++ {
			if reported[k[:i].String()] {
				parentReported = true
				break
			}
		}
		reported[s] = true
		if parentReported {
			continue
		}
		path := p.lines.indexed(k, nth)
		if path == "" {
			path = s
		}
		msg := "unknown key"
		if wrongCase {
			msg = fmt.Sprintf("unknown key (keys are case-sensitive; did you mean %q?)", strings.ToLower(k[len(k)-1]))
		}
		p.add(path, errors.New(msg))
	}
}

// schemaParts returns how many leading parts of k are names from moat's
// schema; the rest are free-form (module config, granted file names).
func schemaParts(k toml.Key) int {
	if len(k) > 2 && k[0] == "plugin" && (k[1] == "config" || k[1] == "files") {
		return 2
	}
	return len(k)
}

// defaults fills in what the file left out. md tells absent keys from
// explicit zero values where zero is meaningful.
func (c *Config) defaults(md *toml.MetaData) {
	for i := range c.Listeners {
		l := &c.Listeners[i]
		if l.Name == "" {
			l.Name = l.Type + "-" + strconv.Itoa(i)
		}
		if l.MinTLSVersion == "" && l.TLS() {
			l.MinTLSVersion = "1.2"
		}
	}
	def := func(key ...string) bool { return !md.IsDefined(key...) }
	m := &c.MQTT
	if def("mqtt", "maximum_packet_size") {
		m.MaximumPacketSize = defaultMaxPacketSize
	}
	if def("mqtt", "receive_maximum") {
		m.ReceiveMaximum = defaultReceiveMaximum
	}
	if def("mqtt", "maximum_inflight") {
		m.MaximumInflight = defaultInflight
	}
	// maximum_session_expiry and maximum_message_expiry default to 0s, no
	// cap: nothing a client did not ask to expire is lost.
	if def("mqtt", "maximum_queued_messages") {
		m.MaximumQueuedMessages = defaultQueued
	}
	if def("mqtt", "maximum_queued_bytes") {
		m.MaximumQueuedBytes = defaultQueuedBytes
	}
	if def("mqtt", "slow_subscriber_timeout") {
		m.SlowSubscriberTimeout.Duration = defaultSlowSubscriber
	}
	if def("mqtt", "maximum_qos") {
		m.MaximumQoS = 2
	}
	if def("mqtt", "retain_available") {
		m.RetainAvailable = true
	}
	if def("mqtt", "wildcard_subscriptions") {
		m.WildcardSubscriptions = true
	}
	if def("mqtt", "shared_subscriptions") {
		m.SharedSubscriptions = true
	}
	if def("mqtt", "maximum_topic_alias") {
		m.MaximumTopicAlias = defaultTopicAlias
	}
	if m.V3DeniedPublish == "" {
		m.V3DeniedPublish = V3DeniedAck
	}
	if def("reload", "reauthenticate") {
		c.Reload.Reauthenticate = true
	}
	if c.Persistence.Type == "" {
		c.Persistence.Type = PersistenceNone
	}
	if c.Persistence.Path == "" {
		c.Persistence.Path = defaultDBFile
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = "text"
	}
	if c.Auth.NoMatch == "" {
		c.Auth.NoMatch = "deny"
	}
	if def("auth", "authz_no_match") {
		// An explicit no_match kept its old meaning for both chains.
		c.Auth.AuthzNoMatch = "deny"
		if !def("auth", "no_match") && c.Auth.NoMatch == "allow" {
			c.Auth.AuthzNoMatch = "allow"
		}
	}
	if def("auth", "timeout") {
		c.Auth.Timeout.Duration = defaultAuthTimeout
	}
	if def("reload", "dry_run_history") {
		c.Reload.DryRunHistory = defaultDryRunHistory
	}
	if def("cache", "enabled") {
		c.Cache.Enabled = true
	}
	if def("cache", "ttl") {
		c.Cache.TTL.Duration = defaultCacheTTL
	}
	if def("cache", "max_per_client") {
		c.Cache.MaxPerClient = defaultCacheSize
	}
	c.defaultsLimits(md) // limits.go
	for i := range c.Plugins {
		if c.Plugins[i].OnError == "" {
			c.Plugins[i].OnError = "deny"
		}
		c.Plugins[i].SHA256 = strings.ToLower(c.Plugins[i].SHA256)
	}
}

// resolve makes every path absolute, relative to the config's directory.
func (c *Config) resolve(path string) {
	dir := "."
	if path != "" {
		dir = filepath.Dir(path)
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	abs := func(p string) string {
		if p == "" {
			return ""
		}
		r := p
		if !filepath.IsAbs(p) {
			r = filepath.Join(dir, p)
		}
		if c.written != nil {
			c.written[r] = p
		}
		return r
	}
	for i := range c.Listeners {
		l := &c.Listeners[i]
		l.CertFile, l.KeyFile, l.ClientCAFile = abs(l.CertFile), abs(l.KeyFile), abs(l.ClientCAFile)
	}
	c.Persistence.Path = abs(c.Persistence.Path)
	switch c.Wasm.CacheDir {
	case CacheOff:
	case "":
		c.Wasm.CacheDir = CacheOff
		if d, err := os.UserCacheDir(); err == nil {
			c.Wasm.CacheDir = filepath.Join(d, "moat", "wasm")
		}
	default:
		c.Wasm.CacheDir = abs(c.Wasm.CacheDir)
	}
	c.resolveAdmin(abs)
	c.resolveLimits(abs) // limits.go
	for i := range c.Plugins {
		pl := &c.Plugins[i]
		pl.Module = abs(pl.Module)
		for name, f := range pl.Files {
			pl.Files[name] = abs(f)
		}
	}
}

// shown returns a path as the operator wrote it, for messages.
func (c *Config) shown(p string) string {
	if w, ok := c.written[p]; ok {
		return w
	}
	return p
}
