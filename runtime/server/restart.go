package server

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/moat-mqtt/moat/runtime/config"
)

// What a reload applies, and what waits for a restart.
//
// Live: [[plugin]] (the whole policy: modules, their settings, config and
// granted files), [auth], [reload], and the payload key ring ([[key]] and
// [keys]). These are read by the policy, the ring and the reload itself,
// which are rebuilt on every reload. (Key files are read again on every
// reload, so a key file replaced under the same path takes effect too.)
//
// Restart only, reported key by key in ReloadResult.NeedsRestart:
//   - [[listener]]: sockets are bound once; rebinding live would drop the
//     connections of a changed listener, which is what a restart does, but
//     without the graceful drain of `moat serve`'s shutdown. (Certificates
//     are read at start too: a renewed certificate needs a restart.)
//   - [mqtt]: mochi reads its capabilities for every packet without a
//     lock, and clients were told some of them in their CONNACK (receive
//     maximum, topic alias maximum, maximum QoS).
//   - [persistence]: the store is opened once and holds the sessions.
//   - [wasm]: the compilation cache belongs to the engine every module
//     runs in.
//   - [log]: the logger is built by the command before the server and
//     shared by every package; changing it live is possible later, v1
//     keeps it simple.
//   - [cache]: the decision cache's settings are fixed when the Decider is
//     made; a reload flushes the cache but keeps its settings.
//   - [admin]: the endpoint `moat reload` talks to is opened at start.
//   - [metrics]: the observability listener is opened at start.
//   - [payload] require_e2e_disconnect: the payload hook is set up once.
//   - [limits]: the connection gate, the limits hook and the ban list are
//     built with the broker; bans themselves change live (`moat ban`).
//
// Between them, liveFields, restartSections and the two lists compared
// by hand (listeners, payload) must cover every field of config.Config
// (TestRestartOnlyCoversConfig).

// restartOnly lists the settings that differ between the running config a
// and the config file b but cannot change while the broker runs, each with
// its old and new value.
func restartOnly(a, b *config.Config) []Change {
	out := diffList(nil, "listener", a.Listeners, b.Listeners, func(l config.Listener) string {
		return fmt.Sprintf("%s %q (name %q)", l.Type, l.Address, l.Name)
	})
	for _, s := range restartSections {
		out = diffStruct(out, s, reflect.ValueOf(a).Elem().FieldByName(sectionField[s]), reflect.ValueOf(b).Elem().FieldByName(sectionField[s]))
	}
	if x, y := a.Payload.RequireE2EDisconnect, b.Payload.RequireE2EDisconnect; x != y {
		out = append(out, Change{Key: "payload.require_e2e_disconnect", Old: fmt.Sprint(x), New: fmt.Sprint(y)})
	}
	return out
}

// diffList compares two arrays of tables entry by entry: changed fields
// by key path, added and removed entries by summary.
func diffList[T any](out []Change, name string, a, b []T, summary func(T) string) []Change {
	for i := range max(len(a), len(b)) {
		key := name + "[" + strconv.Itoa(i) + "]"
		switch {
		case i >= len(a):
			out = append(out, Change{Key: key, Old: "(none)", New: summary(b[i])})
		case i >= len(b):
			out = append(out, Change{Key: key, Old: summary(a[i]), New: "(removed)"})
		default:
			out = diffStruct(out, key, reflect.ValueOf(a[i]), reflect.ValueOf(b[i]))
		}
	}
	return out
}

// restartSections are the sections compared field by field, in file
// order; sectionField maps each to its config.Config field.
var (
	restartSections = []string{"mqtt", "persistence", "log", "cache", "wasm", "admin", "metrics", "limits"}
	sectionField    = map[string]string{
		"mqtt": "MQTT", "persistence": "Persistence", "log": "Log",
		"cache": "Cache", "wasm": "Wasm", "admin": "Admin", "metrics": "Metrics", "limits": "Limits",
	}
	// liveFields are the config.Config fields a reload applies (or that
	// are not settings); byHand those restartOnly compares itself
	// (Payload only in part: its keys are live).
	liveFields = []string{"Path", "Plugins", "Auth", "Reload"}
	byHand     = []string{"Listeners", "Payload"}
)

// diffStruct appends a Change for each field of the structs a and b (of
// one type) that differs, keyed prefix.<toml name>.
func diffStruct(out []Change, prefix string, a, b reflect.Value) []Change {
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if !f.IsExported() || name == "-" || name == "" {
			continue
		}
		av, bv := a.Field(i), b.Field(i)
		if reflect.DeepEqual(av.Interface(), bv.Interface()) {
			continue
		}
		out = append(out, Change{Key: prefix + "." + name, Old: tomlValue(av), New: tomlValue(bv)})
	}
	return out
}

// tomlValue writes a setting as it would appear in moat.toml.
func tomlValue(v reflect.Value) string {
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return strconv.Quote(s.String()) // Duration, ByteSize: written as strings
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	}
	return fmt.Sprint(v.Interface())
}
