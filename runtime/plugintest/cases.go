// Package plugintest runs a policy module against a file of requests and
// expected decisions (a conformance case file), through the broker's own
// wasm runtime but without a broker: `moat plugin test` and the
// reference-policy conformance test use it.
//
// It imports runtime/wasm and runtime/policy and nothing of MQTT's wire:
// a case is turned into the policy.Request the broker would build, handed to
// the module as the broker would hand it, and the result compared field by
// field with what the case expects.
//
// # Case files
//
// A case file is TOML (the language of moat.toml, so that a plugin's
// config is written the same way in both):
//
//	# [config] is the module's [plugin.config], handed to moat_configure
//	# as JSON exactly as the broker would.
//	[config]
//	users = [{ name = "alice", password = "alice-pw", tenant = "acme" }]
//
//	[[case]]
//	name     = "alice connects"
//	kind     = "authn"
//	username = "alice"
//	password = "alice-pw"
//	expect   = { verdict = "allow", attributes = { tenant = "acme" } }
//
//	[[case]]
//	name       = "alice publishes to her tenant"
//	kind       = "authz"
//	action     = "publish"
//	username   = "alice"
//	attributes = { tenant = "acme" }
//	topic      = "tenants/acme/news"
//	expect     = { verdict = "allow" }
//
// Two top-level keys grant what moat.toml would: files = { name = "path" }
// ([plugin.files]; a relative path is relative to the case file) and
// allow_payload = true (payload_read sees each case's payload).
//
// Request keys (all optional but name and kind): client_id, username,
// password (absent means the CONNECT had none), remote_addr, listener,
// protocol (3, 4 or 5; default 5), cert_cn, cert_sans, superuser,
// attributes, user_properties (tables of strings), action (publish,
// subscribe, deliver, decrypt; authz and payload), topic, qos, retain,
// share_group, auth_method, auth_data, auth_state, round, content_type,
// envelope_key_id, payload, mode (the mode of a deliver).
//
// Expectation keys: verdict (allow, deny, ignore, continue; required),
// reason (the MQTT 5 reason code; 0, the default, means the module left it
// to the host), superuser (authn), attributes (authn: the exact set on an
// allow; absent means none), mode and key_id (payload: compared on every
// allow; absent means none), message (compared only when given; "" demands
// that none be set).
//
// Unknown keys are errors, so a misspelt expectation cannot pass silently.
package plugintest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Suite is a parsed case file.
type Suite struct {
	// Path is the file the suite came from, for messages.
	Path string
	// Config is the [config] table; nil when the file has none.
	Config map[string]any
	// Files grants files by name, paths resolved against the case file's
	// directory; AllowPayload lets payload_read see payloads.
	Files        map[string]string
	AllowPayload bool
	Cases        []Case
}

// Case is one request and what the module must answer.
type Case struct {
	Name string `toml:"name"`
	Kind string `toml:"kind"`
	// Line is where the case's [[case]] header is, 0 when unknown.
	Line int `toml:"-"`

	ClientID       string            `toml:"client_id"`
	Username       string            `toml:"username"`
	Password       *string           `toml:"password"`
	RemoteAddr     string            `toml:"remote_addr"`
	Listener       string            `toml:"listener"`
	Protocol       uint8             `toml:"protocol"`
	CertCN         string            `toml:"cert_cn"`
	CertSANs       []string          `toml:"cert_sans"`
	Superuser      bool              `toml:"superuser"`
	Attributes     map[string]string `toml:"attributes"`
	UserProperties map[string]string `toml:"user_properties"`

	Action        string `toml:"action"`
	Topic         string `toml:"topic"`
	QoS           uint8  `toml:"qos"`
	Retain        bool   `toml:"retain"`
	ShareGroup    string `toml:"share_group"`
	AuthMethod    string `toml:"auth_method"`
	AuthData      string `toml:"auth_data"`
	AuthState     string `toml:"auth_state"`
	Round         int    `toml:"round"`
	ContentType   string `toml:"content_type"`
	EnvelopeKeyID string `toml:"envelope_key_id"`
	Payload       string `toml:"payload"`
	Mode          string `toml:"mode"`

	Expect Expect `toml:"expect"`
}

// Expect is what a case demands of the module's result.
type Expect struct {
	Verdict    string            `toml:"verdict"`
	Reason     int               `toml:"reason"`
	Superuser  bool              `toml:"superuser"`
	Attributes map[string]string `toml:"attributes"`
	Mode       string            `toml:"mode"`
	KeyID      string            `toml:"key_id"`
	Message    *string           `toml:"message"`
}

type file struct {
	Config       map[string]any    `toml:"config"`
	Files        map[string]string `toml:"files"`
	AllowPayload bool              `toml:"allow_payload"`
	Cases        []Case            `toml:"case"`
}

// Load reads and parses a case file.
func Load(path string) (*Suite, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plugintest: %w", err)
	}
	return Parse(path, data)
}

var caseHeader = regexp.MustCompile(`^\s*\[\[\s*case\s*\]\]`)

// Parse parses a case file's contents; name is used in messages. Every
// problem is reported, each naming the case by index, name and line.
func Parse(name string, data []byte) (*Suite, error) {
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("plugintest: %s: %w", name, err)
	}
	var problems []error
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "config" {
			continue
		}
		problems = append(problems, fmt.Errorf("%s: unknown key %s", name, k))
	}
	// The n-th [[case]] header is the n-th case: cases are written as
	// array-of-tables headers, which is what makes a line number useful.
	var lines []int
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for n := 1; sc.Scan(); n++ {
		if caseHeader.Match(sc.Bytes()) {
			lines = append(lines, n)
		}
	}
	s := &Suite{Path: name, Config: f.Config, AllowPayload: f.AllowPayload, Cases: f.Cases}
	if len(f.Files) > 0 {
		s.Files = make(map[string]string, len(f.Files))
		for k, p := range f.Files {
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(name), p)
			}
			s.Files[k] = p
		}
	}
	names := map[string]int{}
	for i := range s.Cases {
		c := &s.Cases[i]
		if i < len(lines) {
			c.Line = lines[i]
		}
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Errorf("%s: %s: %s", name, c.where(i), fmt.Sprintf(format, args...)))
		}
		if c.Name == "" {
			bad("name: missing")
		} else if j, dup := names[c.Name]; dup {
			bad("name: %q is also case %d", c.Name, j)
		}
		names[c.Name] = i
		switch c.Kind {
		case "authn", "authz", "payload":
		default:
			bad("kind: %q, want authn, authz or payload", c.Kind)
		}
		if c.Kind != "authn" {
			if _, ok := actions[c.Action]; !ok {
				bad("action: %q, want publish, subscribe, deliver or decrypt", c.Action)
			}
		} else if c.Action != "" {
			bad("action: authn requests have none")
		}
		if c.Protocol == 0 {
			c.Protocol = 5
		} else if c.Protocol < 3 || c.Protocol > 5 {
			bad("protocol: %d, want 3, 4 or 5", c.Protocol)
		}
		if c.QoS > 2 {
			bad("qos: %d, want 0, 1 or 2", c.QoS)
		}
		if _, ok := modes[c.Mode]; !ok {
			bad("mode: %q, want plaintext, require-e2e, at-rest or reencrypt", c.Mode)
		}
		if _, ok := verdicts[c.Expect.Verdict]; !ok || c.Expect.Verdict == "" {
			bad("expect.verdict: %q, want allow, deny, ignore or continue", c.Expect.Verdict)
		}
		if _, ok := modes[c.Expect.Mode]; !ok {
			bad("expect.mode: %q, want plaintext, require-e2e, at-rest or reencrypt", c.Expect.Mode)
		}
		if c.Expect.Reason < 0 || c.Expect.Reason > 0xff {
			bad("expect.reason: %d is not a reason code", c.Expect.Reason)
		}
	}
	if len(s.Cases) == 0 {
		problems = append(problems, fmt.Errorf("%s: no [[case]]", name))
	}
	if err := errors.Join(problems...); err != nil {
		return nil, fmt.Errorf("plugintest: %w", err)
	}
	return s, nil
}

func (c *Case) where(i int) string {
	s := fmt.Sprintf("case[%d]", i)
	if c.Name != "" {
		s += fmt.Sprintf(" %q", c.Name)
	}
	if c.Line > 0 {
		s += fmt.Sprintf(" (line %d)", c.Line)
	}
	return s
}

// ConfigJSON returns the [config] table as the JSON a module's
// moat_configure receives, "{}" when there is none. TOML datetimes become
// RFC 3339 strings, as in the broker.
func (s *Suite) ConfigJSON() ([]byte, error) {
	if s.Config == nil {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(jsonable(s.Config))
	if err != nil {
		return nil, fmt.Errorf("plugintest: %s: config: %w", s.Path, err)
	}
	return b, nil
}

func jsonable(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = jsonable(x)
		}
		return out
	case []map[string]any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsonable(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = jsonable(x)
		}
		return out
	case time.Time:
		return v.Format(time.RFC3339Nano)
	}
	return v
}

// Decisions returns the decisions the suite's cases exercise, in the order
// authn, authz, payload: what the module is loaded with.
func (s *Suite) Decisions() []string {
	seen := map[string]bool{}
	for _, c := range s.Cases {
		seen[c.Kind] = true
	}
	var out []string
	for _, d := range []string{"authn", "authz", "payload"} {
		if seen[d] {
			out = append(out, d)
		}
	}
	return out
}

// describe renders the request of a case on one line, for failure reports.
func (c *Case) describe() string {
	var b strings.Builder
	b.WriteString(c.Kind)
	if c.Action != "" {
		fmt.Fprintf(&b, " %s %q", c.Action, c.Topic)
		if c.QoS != 0 {
			fmt.Fprintf(&b, " qos=%d", c.QoS)
		}
	}
	fmt.Fprintf(&b, " username=%q", c.Username)
	if c.ClientID != "" {
		fmt.Fprintf(&b, " client_id=%q", c.ClientID)
	}
	if c.Kind == "authn" {
		if c.Password == nil {
			b.WriteString(" (no password)")
		} else {
			b.WriteString(" password=(set)")
		}
	}
	if len(c.Attributes) > 0 {
		fmt.Fprintf(&b, " attributes=%s", pairs(c.Attributes))
	}
	return b.String()
}

func pairs(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	b.WriteByte('}')
	return b.String()
}
