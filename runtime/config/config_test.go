package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

// TestBrokenFiles parses each broken file in testdata/config and expects
// exactly the listed problems, each as "file:line: key: message" (a prefix
// of the message is enough), in this order.
func TestBrokenFiles(t *testing.T) {
	dir := fixtureDir(t)
	tests := []struct {
		file string
		want []string
	}{
		{"bad_syntax.toml", []string{
			"bad_syntax.toml:3: syntax error: strings cannot contain newlines",
		}},
		{"bad_unknown_key.toml", []string{
			`bad_unknown_key.toml:5: listener[1].address: required: host:port`,
			"bad_unknown_key.toml:7: listener[1].adress: unknown key",
		}},
		{"bad_unknown_table.toml", []string{
			"bad_unknown_table.toml:6: mqtt.retain: unknown key",
			"bad_unknown_table.toml:8: persistance: unknown key", // and not persistance.type
		}},
		{"bad_case.toml", []string{
			`bad_case.toml:2: listener[0].Type: unknown key (keys are case-sensitive; did you mean "type"?)`,
			`bad_case.toml:5: MQTT: unknown key (keys are case-sensitive; did you mean "mqtt"?)`,
		}},
		{"bad_wrong_type.toml", []string{
			"bad_wrong_type.toml:7: listener[1].address: incompatible types: TOML value has type int64; destination has type string",
			"bad_wrong_type.toml:10: mqtt.maximum_qos: incompatible types",
		}},
		{"bad_qos_range.toml", []string{
			"bad_qos_range.toml:6: mqtt.maximum_qos: -1 is out of range for uint8",
			"bad_qos_range.toml:9: cache.max_per_client: incompatible types: TOML value has type float64; destination has type integer",
		}},
		{"bad_missing_cert.toml", []string{
			"bad_missing_cert.toml:8: listener[1].cert_file: open certs/nope.pem: no such file or directory",
		}},
		{"bad_tls_files.toml", []string{
			"bad_tls_files.toml:5: listener[0].key_file: certs/wrong.key: tls: private key does not match public key",
			`bad_tls_files.toml:12: listener[1].client_ca_file: certs/junk.pem: no certificate found`,
			`bad_tls_files.toml:17: listener[2].cert_file: certs/junk.pem: no certificate found`,
			"bad_tls_files.toml:19: listener[2].require_client_cert: needs client_ca_file",
			"bad_tls_files.toml:21: listener[3].cert_file: required for a wss listener",
			"bad_tls_files.toml:21: listener[3].key_file: required for a wss listener",
		}},
		{"bad_tls_on_plain.toml", []string{
			`bad_tls_on_plain.toml:4: listener[0].cert_file: only for tls and wss listeners, this one is "tcp"`,
			`bad_tls_on_plain.toml:5: listener[0].key_file: only for tls and wss listeners`,
			`bad_tls_on_plain.toml:10: listener[1].require_client_cert: only for tls and wss listeners, this one is "ws"`,
			`bad_tls_on_plain.toml:11: listener[1].min_tls_version: only for tls and wss listeners`,
		}},
		{"bad_duplicate_listener.toml", []string{
			`bad_duplicate_listener.toml:7: listener[1].name: "main" is already the name of listener[0]`,
			`bad_duplicate_listener.toml:9: listener[1].address: "127.0.0.1:1883" is already the address of listener[0]`,
		}},
		{"bad_address.toml", []string{
			"bad_address.toml:3: listener[0].address: address localhost: missing port in address",
			`bad_address.toml:7: listener[1].address: "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`,
			"bad_address.toml:9: listener[2].address: required",
		}},
		{"bad_no_listener.toml", []string{
			"bad_no_listener.toml: no [[listener]]: at least one is required",
		}},
		{"bad_enum.toml", []string{
			`bad_enum.toml:2: listener[0].type: "udp" is not one of "tcp", "tls", "ws", "wss"`,
			`bad_enum.toml:10: listener[1].min_tls_version: "1.1" is not one of "1.2", "1.3"`,
			`bad_enum.toml:13: persistence.type: "redis" is not one of "none", "bolt"`,
			`bad_enum.toml:16: log.level: "verbose" is not one of "debug", "info", "warn", "error"`,
			`bad_enum.toml:17: log.format: "xml" is not one of "text", "json"`,
			`bad_enum.toml:20: auth.no_match: "maybe" is not one of "deny", "allow"`,
			`bad_enum.toml:25: plugin[0].decisions[1]: "acl" is not one of "authn", "authz", "payload"`,
			`bad_enum.toml:26: plugin[0].on_error: "panic" is not one of "deny", "allow", "ignore"`,
		}},
		{"bad_mqtt_ranges.toml", []string{
			"bad_mqtt_ranges.toml:6: mqtt.maximum_packet_size: 10: want 0 (the protocol's limit) or 128 to 268435460 bytes",
			"bad_mqtt_ranges.toml:7: mqtt.receive_maximum: 0: want 1 to 65535",
			"bad_mqtt_ranges.toml:8: mqtt.maximum_inflight: 0: want 1 to 65535",
			"bad_mqtt_ranges.toml:9: mqtt.maximum_keepalive: 27h46m40s: want 0s (no limit) to 65535s",
			"bad_mqtt_ranges.toml:10: mqtt.maximum_session_expiry: -1s: want 0s (no cap) to 4294967295s",
			"bad_mqtt_ranges.toml:11: mqtt.maximum_clients: -5: want 0 (no limit) or more",
			"bad_mqtt_ranges.toml:12: mqtt.maximum_qos: 3: want 0, 1 or 2",
			`bad_mqtt_ranges.toml:13: mqtt.v3_denied_publish: "drop": want "ack" or "disconnect"`,
			"bad_mqtt_ranges.toml:16: cache.ttl: 0s: want more than 0",
			"bad_mqtt_ranges.toml:17: cache.max_per_client: 0: want at least 1",
			"bad_mqtt_ranges.toml:20: auth.timeout: 1m30s: want more than 0s and at most 1m0s",
		}},
		{"bad_mqtt_overload.toml", []string{
			"bad_mqtt_overload.toml:6: mqtt.maximum_queued_messages: 0: want 1 to 1048576",
			"bad_mqtt_overload.toml:7: mqtt.maximum_queued_bytes: 100: want 0 (no limit) or at least 1KiB",
			"bad_mqtt_overload.toml:8: mqtt.slow_subscriber_timeout: 0s: want 1ms to 1h",
		}},
		{"bad_duration.toml", []string{
			`bad_duration.toml:6: auth.timeout: duration 100 has no unit: write it as a string such as "100s" or "100ms"`,
			`bad_duration.toml:12: plugin[0].timeout: invalid duration "fast"`,
		}},
		{"bad_memory_limit.toml", []string{
			"bad_memory_limit.toml:9: plugin[0].memory_limit: 100KiB: want a multiple of 64KiB (the wasm page) from 64KiB to 4GiB",
			"bad_memory_limit.toml:15: plugin[1].memory_limit: 8GiB: want a multiple of 64KiB",
			"bad_memory_limit.toml:21: plugin[2].memory_limit: 0: want a multiple of 64KiB",
		}},
		{"bad_memory_unit.toml", []string{
			`bad_memory_unit.toml:9: plugin[0].memory_limit: invalid size "64MB": unknown unit "MB", want KiB, MiB or GiB`,
		}},
		{"bad_missing_module.toml", []string{
			"bad_missing_module.toml:7: plugin[0].module: stat plugins/nope.wasm: no such file or directory",
			"bad_missing_module.toml:12: plugin[1].module: plugins/dir.wasm: is a directory",
			"bad_missing_module.toml:15: plugin[2].module: required",
		}},
		{"bad_duplicate_plugin.toml", []string{
			`bad_duplicate_plugin.toml:11: plugin[1].name: "acl" is already the name of plugin[0]`,
			"bad_duplicate_plugin.toml:15: plugin[2].name: required",
		}},
		{"bad_plugin_fields.toml", []string{
			`bad_plugin_fields.toml:8: plugin[0].sha256: "abc123": want 64 hex digits`,
			"bad_plugin_fields.toml:9: plugin[0].decisions: required",
			"bad_plugin_fields.toml:10: plugin[0].timeout: 2m0s: want more than 0s and at most 1m0s",
			"bad_plugin_fields.toml:11: plugin[0].instances: 2000: want 0 (GOMAXPROCS) to 1024",
			`bad_plugin_fields.toml:12: plugin[0].allow_payload: needs "payload" in decisions`,
			"bad_plugin_fields.toml:15: plugin[0].files.missing: stat files/nope: no such file or directory",
			"bad_plugin_fields.toml:16: plugin[0].files.folder: files: is a directory",
			`bad_plugin_fields.toml:21: plugin[1].decisions[1]: "authz" is listed twice`,
			"bad_plugin_fields.toml:22: plugin[1].timeout: 0s: want more than 0s",
			"bad_plugin_fields.toml:23: plugin[1].instances: -1: want 0 (GOMAXPROCS) to 1024",
		}},
		{"bad_shadow.toml", []string{
			"bad_shadow.toml:6: reload.dry_run_history: -1: want 0 (keep none) to 1000000",
			"bad_shadow.toml:13: plugin[0].shadow_sample: 1.5: want a fraction from 0.0 to 1.0",
		}},
		{"bad_shadow_sample.toml", []string{
			"bad_shadow_sample.toml:9: plugin[0].shadow_sample: needs shadow = true",
		}},
		{"bad_plugin_config.toml", []string{
			"bad_plugin_config.toml:9: plugin[0].config: want a table, got an integer",
			`bad_plugin_config.toml:15: plugin[1].files: want a table of name = "path", got a string`,
			"bad_plugin_config.toml:18: plugin[1].config.limits.rate: NaN has no JSON form",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata/config", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tc.file)
			c, err := Parse(data, path)
			if err == nil {
				t.Fatalf("Parse succeeded, want %d problems", len(tc.want))
			}
			if c != nil {
				t.Errorf("Parse returned a config along with errors")
			}
			probs := Problems(err)
			var got []string
			for _, p := range probs {
				var ce *Error
				if !errors.As(p, &ce) {
					t.Errorf("problem %q is a %T, want *config.Error", p, p)
				}
				if ce.File != path {
					t.Errorf("problem %q names file %q, want %q", p, ce.File, path)
				}
				got = append(got, strings.TrimPrefix(p.Error(), dir+string(filepath.Separator)))
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s...", i, got[i], tc.want[i])
				}
			}
			// The joined error prints one problem per line, as moat check shows.
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tc.want) {
				t.Errorf("err.Error() has %d lines, want %d", n, len(tc.want))
			}
		})
	}
}

func TestMissingFileKeepsErrNotExist(t *testing.T) {
	dir := fixtureDir(t)
	data, err := os.ReadFile("testdata/config/bad_missing_cert.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(data, filepath.Join(dir, "moat.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
	if _, err := Load(filepath.Join(dir, "absent.toml")); !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: open ") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

// goodConfig is what good.toml must decode to, with dir the directory it
// was loaded from.
// defaultLimits is [limits] as Parse fills it in for a file in dir.
func defaultLimits(dir string) Limits {
	return Limits{
		MaxClientIDLength: 256, MaxTopicLength: 4096, MaxTopicLevels: 128,
		MaxSubscriptionsPerClient: 1024, ConnectTimeout: Duration{10 * time.Second},
		MaxConnections: 100000, RateGrace: Duration{10 * time.Second},
		BanFile: filepath.Join(dir, "moat.bans"), FlapWindow: Duration{time.Minute},
		FlapBan: Duration{5 * time.Minute}, AuthnFailureTTL: Duration{2 * time.Second},
		AuthnFailureRatePerIP: 10, AuthnFailureBurstPerIP: 20, PluginConcurrency: 1024,
	}
}

func goodConfig(dir string) *Config {
	d := func(s string) Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			panic(err)
		}
		return Duration{v}
	}
	abs := func(p string) string { return filepath.Join(dir, p) }
	return &Config{
		Path: filepath.Join(dir, "good.toml"),
		Listeners: []Listener{
			{Name: "plain", Type: "tcp", Address: "127.0.0.1:1883"},
			{Name: "tls-1", Type: "tls", Address: "127.0.0.1:8883",
				CertFile: abs("certs/srv.pem"), KeyFile: abs("certs/srv.key"), ClientCAFile: abs("certs/ca.pem"),
				RequireClientCert: true, MinTLSVersion: "1.3"},
			{Name: "ws-2", Type: "ws", Address: ":0"},
			{Name: "wss-3", Type: "wss", Address: "[::1]:0",
				CertFile: abs("certs/srv.pem"), KeyFile: abs("certs/srv.key"), MinTLSVersion: "1.2"},
		},
		MQTT: MQTT{
			MaximumPacketSize:     MiB,
			ReceiveMaximum:        100,
			MaximumInflight:       200,
			MaximumQueuedMessages: 300,
			MaximumQueuedBytes:    64 * KiB,
			SlowSubscriberTimeout: d("3s"),
			MaximumSessionExpiry:  d("1h"),
			MaximumMessageExpiry:  d("2h"),
			MaximumKeepalive:      d("10m"),
			MaximumClients:        5000,
			MaximumQoS:            1,
			RetainAvailable:       false,
			WildcardSubscriptions: false,
			SharedSubscriptions:   false,
			MaximumTopicAlias:     0,
			V3DeniedPublish:       "disconnect",
		},
		Persistence: Persistence{Type: "bolt", Path: abs("data/moat.db")},
		Log:         Log{Level: "debug", Format: "json"},
		Auth:        Auth{AllowAnonymous: true, NoMatch: "allow", AuthzNoMatch: "allow", Timeout: d("2s")},
		Cache:       Cache{Enabled: false, TTL: d("1m"), MaxPerClient: 10},
		Wasm:        Wasm{CacheDir: abs("wasm-cache")},
		Limits:      defaultLimits(dir),
		Reload:      Reload{Reauthenticate: true, DryRunHistory: 50},
		Plugins: []Plugin{
			{
				Name:         "demo",
				Module:       abs("plugins/demo.wasm"),
				SHA256:       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
				Decisions:    []string{"authn", "authz", "payload"},
				OnError:      "ignore",
				Timeout:      d("250ms"),
				MemoryLimit:  64 * MiB,
				Instances:    4,
				Files:        map[string]string{"passwords": abs("files/passwd"), "acl file": abs("files/acl")},
				AllowPayload: true,
				ShadowSample: 1,
				ConfigJSON: []byte(`{"day":"1979-05-27","greeting":"<hello>","rule":[{"allow":true,"topic":"demo/#"}],` +
					`"users":[{"password":"demo","username":"demo"}],"when":"1979-05-27T07:32:00Z"}`),
				Line: 71,
			},
			{
				Name:         "acl",
				Module:       abs("plugins/acl.wasm"),
				Decisions:    []string{"authz"},
				OnError:      "deny",
				Timeout:      d("100ms"),
				MemoryLimit:  128 * MiB,
				ShadowSample: 1,
				ConfigJSON:   []byte("{}"),
				Line:         98,
			},
			{
				Name:         "acl-next",
				Module:       abs("plugins/acl.wasm"),
				Decisions:    []string{"authz"},
				OnError:      "deny",
				Timeout:      d("100ms"),
				MemoryLimit:  128 * MiB,
				Shadow:       true,
				ShadowSample: 0.25,
				ConfigJSON:   []byte("{}"),
				Line:         103,
			},
		},
	}
}

// exported returns c without its unexported bookkeeping, for comparison.
func exported(c *Config) Config {
	e := *c
	e.lines, e.written = nil, nil
	return e
}

func TestGoodFile(t *testing.T) {
	dir := fixtureDir(t)
	data, err := os.ReadFile("testdata/config/good.toml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := goodConfig(dir)
	if !reflect.DeepEqual(exported(got), *want) {
		gj, _ := json.MarshalIndent(exported(got), "", "  ")
		wj, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("Load(good.toml):\n got %s\nwant %s", gj, wj)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate after Load: %v", err)
	}

	// Round trip: encoding the loaded config and parsing it again gives
	// the same config, so the schema's tags, the defaults and the path
	// resolution agree with each other. [plugin.config] is not encoded.
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(got); err != nil {
		t.Fatal(err)
	}
	again, err := Parse(buf.Bytes(), filepath.Join(dir, "again.toml"))
	if err != nil {
		t.Fatalf("Parse(encoded config): %v\n%s", err, buf.Bytes())
	}
	a, g := exported(again), exported(got)
	a.Path, g.Path = "", ""
	for _, c := range []*Config{&a, &g} {
		c.Listeners = append([]Listener(nil), c.Listeners...)
		c.Plugins = append([]Plugin(nil), c.Plugins...)
		for i := range c.Plugins {
			c.Plugins[i].Line, c.Plugins[i].ConfigJSON = 0, nil
		}
	}
	if !reflect.DeepEqual(a, g) {
		t.Errorf("round trip changed the config:\n got %+v\nwant %+v\n%s", a, g, buf.Bytes())
	}
}

func TestDefaults(t *testing.T) {
	dir := fixtureDir(t)
	data, err := os.ReadFile("testdata/config/minimal.toml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data, filepath.Join(dir, "moat.toml"))
	if err != nil {
		t.Fatal(err)
	}
	cacheDir := CacheOff
	if d, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(d, "moat", "wasm")
	}
	want := Config{
		Path:      filepath.Join(dir, "moat.toml"),
		Listeners: []Listener{{Name: "tcp-0", Type: "tcp", Address: "127.0.0.1:0"}},
		MQTT: MQTT{
			MaximumPacketSize:     256 * KiB,
			ReceiveMaximum:        1024,
			MaximumInflight:       8192,
			MaximumQueuedMessages: 8192,
			MaximumQueuedBytes:    8 * MiB,
			SlowSubscriberTimeout: Duration{10 * time.Second},
			MaximumQoS:            2,
			RetainAvailable:       true,
			WildcardSubscriptions: true,
			SharedSubscriptions:   true,
			MaximumTopicAlias:     65535,
			V3DeniedPublish:       V3DeniedAck,
		},
		Persistence: Persistence{Type: "none", Path: filepath.Join(dir, "moat.db")},
		Log:         Log{Level: "info", Format: "text"},
		Auth:        Auth{AllowAnonymous: false, NoMatch: "deny", AuthzNoMatch: "deny", Timeout: Duration{time.Second}},
		Cache:       Cache{Enabled: true, TTL: Duration{5 * time.Minute}, MaxPerClient: 1024},
		Wasm:        Wasm{CacheDir: cacheDir},
		Limits:      defaultLimits(dir),
		Reload:      Reload{Reauthenticate: true, DryRunHistory: 1024},
	}
	if !reflect.DeepEqual(exported(got), want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", exported(got), want)
	}
}

// TestExplicitZero checks that a key set to its zero value is not taken
// for an absent one.
func TestExplicitZero(t *testing.T) {
	doc := `
[[listener]]
type = "tcp"
address = "127.0.0.1:0"
[mqtt]
maximum_packet_size = 0
retain_available = false
maximum_topic_alias = 0
maximum_session_expiry = "0s"
[cache]
enabled = false
[wasm]
cache_dir = "off"
`
	c, err := Parse([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	m := c.MQTT
	if m.MaximumPacketSize != 0 || m.RetainAvailable || m.MaximumTopicAlias != 0 || m.MaximumSessionExpiry.Duration != 0 {
		t.Errorf("explicit zeros replaced by defaults: %+v", m)
	}
	if c.Cache.Enabled {
		t.Error("cache.enabled = false ignored")
	}
	if c.Wasm.CacheDir != CacheOff {
		t.Errorf(`cache_dir = "off" gave %q`, c.Wasm.CacheDir)
	}
	// Relative paths of a config without a file resolve against the
	// working directory.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "moat.db"); c.Persistence.Path != want {
		t.Errorf("persistence.path = %q, want %q", c.Persistence.Path, want)
	}
}

func TestPluginConfigJSON(t *testing.T) {
	dir := fixtureDir(t)
	tests := []struct {
		name, config, want string
	}{
		{"absent", "", `{}`},
		{"empty", "[plugin.config]\n", `{}`},
		{"scalars", "[plugin.config]\ns = \"a\\\"b\"\ni = -3\nf = 1.5\nb = true\n", `{"b":true,"f":1.5,"i":-3,"s":"a\"b"}`},
		{"html kept", "[plugin.config]\ns = \"<a & b>\"\n", `{"s":"<a & b>"}`},
		{"offset datetime", "[plugin.config]\nt = 1979-05-27T00:32:00.5-07:00\n", `{"t":"1979-05-27T00:32:00.5-07:00"}`},
		{"local datetime", "[plugin.config]\nt = 1979-05-27T07:32:00\n", `{"t":"1979-05-27T07:32:00"}`},
		{"local date", "[plugin.config]\nt = 1979-05-27\n", `{"t":"1979-05-27"}`},
		{"local time", "[plugin.config]\nt = 07:32:00.25\n", `{"t":"07:32:00.25"}`},
		{"nested", "[plugin.config]\na = [[1, 2], [\"x\"]]\n[plugin.config.t]\nk = { v = [] }\n", `{"a":[[1,2],["x"]],"t":{"k":{"v":[]}}}`},
		{"array of tables", "[[plugin.config.rule]]\ntopic = \"a\"\n[[plugin.config.rule]]\ntopic = \"b\"\n", `{"rule":[{"topic":"a"},{"topic":"b"}]}`},
		{"inline", "config = { users = [{ username = \"demo\" }] }\n", `{"users":[{"username":"demo"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:0\"\n" +
				"[[plugin]]\nname = \"p\"\nmodule = \"plugins/demo.wasm\"\ndecisions = [\"authz\"]\n" + tc.config
			c, err := Parse([]byte(doc), filepath.Join(dir, "moat.toml"))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(c.Plugins[0].ConfigJSON); got != tc.want {
				t.Errorf("ConfigJSON = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestValidateInCode checks Validate on a config built without a file: no
// file, no line, paths as given.
func TestValidateInCode(t *testing.T) {
	c := &Config{
		Listeners:   []Listener{{Name: "a", Type: "tls", Address: "127.0.0.1:0", CertFile: "/nonexistent/srv.pem", KeyFile: "/nonexistent/srv.key", MinTLSVersion: "1.2"}},
		MQTT:        MQTT{ReceiveMaximum: 1, MaximumInflight: 1, MaximumQueuedMessages: 1, SlowSubscriberTimeout: Duration{time.Second}},
		Persistence: Persistence{Type: "none"}, Log: Log{Level: "info", Format: "text"},
		Auth: Auth{NoMatch: "deny", AuthzNoMatch: "deny", Timeout: Duration{time.Second}},
	}
	err := c.Validate()
	want := "listener[0].cert_file: open /nonexistent/srv.pem: no such file or directory\n" +
		"listener[0].key_file: open /nonexistent/srv.key: no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v, want\n%s", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	e := errors.New("boom")
	tests := []struct {
		err  Error
		want string
	}{
		{Error{File: "moat.toml", Line: 14, Key: "listener[1].cert_file", Err: e}, "moat.toml:14: listener[1].cert_file: boom"},
		{Error{File: "moat.toml", Key: "listener", Err: e}, "moat.toml: listener: boom"},
		{Error{File: "moat.toml", Line: 3, Err: e}, "moat.toml:3: boom"},
		{Error{Line: 3, Key: "mqtt", Err: e}, "line 3: mqtt: boom"},
		{Error{Key: "mqtt", Err: e}, "mqtt: boom"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
		if !errors.Is(&tc.err, e) {
			t.Errorf("%q does not unwrap to its cause", tc.want)
		}
	}
	if Problems(nil) != nil {
		t.Error("Problems(nil) != nil")
	}
	if p := Problems(e); len(p) != 1 || p[0] != e {
		t.Errorf("Problems(single) = %v", p)
	}
	nested := errors.Join(e, errors.Join(e, e))
	if p := Problems(nested); len(p) != 3 {
		t.Errorf("Problems(nested) has %d, want 3", len(p))
	}
}

// BenchmarkParse measures loading a config that uses every key, TLS files
// included: a reload pays this before anything else.
func BenchmarkParse(b *testing.B) {
	dir := fixtureDir(b)
	data := readFile(b, "testdata/config/good.toml")
	path := filepath.Join(dir, "good.toml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, path); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkScanLines measures the key line index alone.
func BenchmarkScanLines(b *testing.B) {
	data := readFile(b, "testdata/config/good.toml")
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		scanLines(data)
	}
}

// TestAuthzNoMatch: authz_no_match defaults to deny, and to an explicit
// no_match = "allow" so that a config written when no_match governed both
// chains keeps its meaning.
func TestAuthzNoMatch(t *testing.T) {
	const listener = "[[listener]]\ntype = \"tcp\"\naddress = \"127.0.0.1:0\"\n[auth]\n"
	for _, tc := range []struct {
		name, auth   string
		authn, authz string
	}{
		{"absent", "", "deny", "deny"},
		{"no_match allow", `no_match = "allow"`, "allow", "allow"},
		{"no_match deny", `no_match = "deny"`, "deny", "deny"},
		{"own key", "no_match = \"allow\"\nauthz_no_match = \"deny\"", "allow", "deny"},
		{"own key only", `authz_no_match = "allow"`, "deny", "allow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(listener+tc.auth+"\n"), "moat.toml")
			if err != nil {
				t.Fatal(err)
			}
			if c.Auth.NoMatch != tc.authn || c.Auth.AuthzNoMatch != tc.authz {
				t.Errorf("no_match %q, authz_no_match %q; want %q, %q", c.Auth.NoMatch, c.Auth.AuthzNoMatch, tc.authn, tc.authz)
			}
		})
	}
	_, err := Parse([]byte(listener+`authz_no_match = "maybe"`+"\n"), "moat.toml")
	if err == nil || !strings.Contains(err.Error(), `moat.toml:5: auth.authz_no_match: "maybe" is not one of "deny", "allow"`) {
		t.Errorf("bad authz_no_match: %v", err)
	}
}

func TestAllowedOrigins(t *testing.T) {
	for _, tc := range []struct {
		name, typ, origins string
		err                string // "" when valid
	}{
		{"none", "ws", "[]", ""},
		{"listed", "ws", `["https://app.example.com", "http://localhost:8080", "https://x.example/"]`, ""},
		{"any", "ws", `["*"]`, ""},
		{"path", "ws", `["https://app.example.com/mqtt"]`, `listener[0].allowed_origins[0]: "https://app.example.com/mqtt": want an origin`},
		{"no scheme", "ws", `["app.example.com"]`, `listener[0].allowed_origins[0]: "app.example.com": want an origin`},
		{"ftp", "ws", `["ftp://x"]`, `allowed_origins[0]: "ftp://x"`},
		{"second bad", "ws", `["https://a.example", "https://"]`, `allowed_origins[1]: "https://"`},
		{"on tcp", "tcp", `["https://a.example"]`, `listener[0].allowed_origins: only for ws and wss listeners, this one is "tcp"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := fmt.Sprintf("[[listener]]\ntype = %q\naddress = \"127.0.0.1:0\"\nallowed_origins = %s\n", tc.typ, tc.origins)
			c, err := Parse([]byte(doc), "moat.toml")
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(c.Listeners[0].AllowedOrigins) == 0 && tc.origins != "[]" {
					t.Error("origins lost")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}
