package sdktest

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/api"
)

// moatAlways are the host functions of sdk/ABI.md §6 that any module may
// import; file_size and file_read need a grant.
var moatAlways = []string{
	"log", "time_now", "time_monotonic", "random",
	"set_message", "add_attribute", "set_expiry", "set_auth_data", "set_auth_state", "set_key_id",
	"payload_read",
}

func TestExportsAndImports(t *testing.T) {
	i32 := api.ValueTypeI32
	wantExports := map[string][2][]api.ValueType{
		"_initialize":       {nil, nil},
		"moat_abi_v1":       {nil, nil},
		"moat_buffer":       {{i32}, {i32}},
		"moat_authenticate": {{i32}, {i32}},
		"moat_authorize":    {{i32}, {i32}},
		"moat_payload":      {{i32}, {i32}},
		"moat_configure":    {{i32}, {i32}},
	}
	tests := []struct {
		module    string
		wantFiles bool
	}{
		{"demo", false},
		{"probe", false},
		{"files", true},
	}
	for _, tc := range tests {
		t.Run(tc.module, func(t *testing.T) {
			cm := env.compiled[tc.module]
			if _, ok := cm.ExportedMemories()["memory"]; !ok {
				t.Error("no exported memory")
			}
			exports := cm.ExportedFunctions()
			for name, sig := range wantExports {
				f, ok := exports[name]
				if !ok {
					t.Errorf("missing export %s", name)
					continue
				}
				if !slices.Equal(f.ParamTypes(), sig[0]) || !slices.Equal(f.ResultTypes(), sig[1]) {
					t.Errorf("export %s: %v -> %v, want %v -> %v", name, f.ParamTypes(), f.ResultTypes(), sig[0], sig[1])
				}
			}
			var moat []string
			for _, f := range cm.ImportedFunctions() {
				mod, name, _ := f.Import()
				switch mod {
				case "moat":
					moat = append(moat, name)
				case "wasi_snapshot_preview1":
				default:
					t.Errorf("import from module %q: %s", mod, name)
				}
			}
			var files []string
			for _, name := range moat {
				if !slices.Contains(moatAlways, name) {
					files = append(files, name)
				}
			}
			slices.Sort(files)
			want := []string(nil)
			if tc.wantFiles {
				want = []string{"file_read", "file_size"}
			}
			if !slices.Equal(files, want) {
				t.Errorf("capability imports %q, want %q (all moat imports: %q)", files, want, moat)
			}
		})
	}
}

// TestReactorInit checks how Go runs a c-shared wasip1 module, which the
// SDK documents: _initialize runs package initialisers (the handlers are
// registered), main never runs, and no export works before _initialize.
func TestReactorInit(t *testing.T) {
	g := instantiate(t, "probe", nil)
	if res, msg := g.configure(t, `{"a":1}`); res != 0 {
		t.Fatalf("configure = %d (%q): the handler registered in init is missing", res, msg)
	}
	res, _, err := g.decide(t, "moat_authorize", authz("allow").Encode())
	if err != nil || res != 1 {
		t.Fatalf("authorize = %#x, %v; want allow", res, err)
	}
	for _, l := range append(g.st.logs, g.stdout.String()) {
		if strings.Contains(l, "main ran") {
			t.Errorf("main ran: %q", l)
		}
	}

	mod, err := env.rt.InstantiateModule(context.Background(), env.compiled["probe"],
		newModuleConfig("uninitialised"))
	if err != nil {
		t.Fatal(err)
	}
	defer mod.Close(context.Background())
	if _, err := mod.ExportedFunction("moat_buffer").Call(context.Background(), 4096); err == nil {
		t.Error("moat_buffer before _initialize succeeded; the SDK documents that it traps")
	}
}

func authz(topic string) *Request {
	return (&Request{Kind: KindAuthz, Action: 1, Protocol: 5}).SetString(FieldTopic, topic)
}

func TestProbeAuthn(t *testing.T) {
	fp := make([]byte, 32)
	for i := range fp {
		fp[i] = byte(i * 7)
	}
	full := (&Request{Kind: KindAuthn, Flags: FlagCert | FlagPassword, Protocol: 5, Number: 3}).
		SetString(FieldClientID, "c-1").
		SetString(FieldUsername, "alice").
		SetString(FieldPassword, "pw\x00\xff").
		SetString(FieldRemoteAddr, "192.0.2.7:1234").
		SetString(FieldListener, "tls").
		SetString(FieldCertCN, "alice.example").
		Set(FieldCertSANs, Strings("a.example", "b@example.com")).
		Set(FieldCertSHA256, fp).
		Set(FieldUserProperties, Pairs("region", "eu", "empty", "")).
		SetString(FieldAuthMethod, "M").
		SetString(FieldAuthData, "d").
		SetString(FieldAuthState, "")
	withUser := func(user string) *Request {
		return (&Request{Kind: KindAuthn, Protocol: 5}).SetString(FieldUsername, user)
	}
	tests := []struct {
		name    string
		req     *Request
		want    uint32
		attrs   map[string]string // checked when not nil
		check   func(t *testing.T, rec record)
		wantLog string
	}{{
		name: "every field reaches the handler",
		req:  full,
		want: 1,
		attrs: map[string]string{
			"client_id": "c-1", "username": "alice", "password": "pw\x00\xff", "password_nil": "false",
			"remote_addr": "192.0.2.7:1234", "listener": "tls", "protocol": "5",
			"cert_cn": "alice.example", "cert_sans": "a.example,b@example.com", "cert_sha256": hex.EncodeToString(fp),
			"prop:region": "eu", "prop:empty": "", "auth_method": "M", "auth_data": "d",
			"auth_state": "", "auth_state_nil": "false", "round": "3", "configured": `{"k":"v"}`,
		},
		check: func(t *testing.T, rec record) {
			if rec.expiry == nil || *rec.expiry != 1700000000_000000123 {
				t.Errorf("expiry %v", rec.expiry)
			}
			if string(rec.authData) != "connack-data" {
				t.Errorf("auth data %q", rec.authData)
			}
		},
	}, {
		name:  "absent fields",
		req:   (&Request{Kind: KindAuthn, Protocol: 4}).SetString(FieldUsername, "bob"),
		want:  1,
		attrs: map[string]string{"password_nil": "true", "auth_state_nil": "true", "protocol": "4", "client_id": ""},
	}, {
		name: "superuser",
		req:  withUser("root"),
		want: 1 | 1<<16,
	}, {
		name: "continue",
		req:  withUser("continue").SetString(FieldAuthMethod, "SCRAM").SetString(FieldAuthData, "client-first"),
		want: 4,
		check: func(t *testing.T, rec record) {
			if string(rec.authData) != "server:client-first" || string(rec.authState) != "state:0" {
				t.Errorf("auth data %q, state %q", rec.authData, rec.authState)
			}
		},
	}, {
		name: "continue without auth method is malformed",
		req:  withUser("continue"), want: 0,
		wantLog: "continue is valid only for an authn request with an auth method",
	}, {
		name: "deny",
		req:  withUser("deny"),
		want: 2 | 0x8A<<8,
		check: func(t *testing.T, rec record) {
			if rec.message == nil || *rec.message != "banned" || rec.attrs != nil {
				t.Errorf("message %v, attributes %v", rec.message, rec.attrs)
			}
		},
	}, {
		name: "panic", req: withUser("panic"), want: 0,
		wantLog: "error: moat: authn handler panicked: probe: asked to panic",
	}, {
		name: "attributes beyond the host's limit", req: withUser("many"), want: 0,
		wantLog: "error: moat: host refused add_attribute (-2)",
	}, {
		name: "host clock and random",
		req:  withUser("clock"),
		want: 1,
		attrs: map[string]string{
			"now":        "1700000000000000007",
			"tail_zeros": "0", // the host never writes 0: the second random call happened
		},
	}, {
		name: "malformed request", req: authz("x"), want: 0,
		wantLog: "error: moat: malformed request: wrong kind",
	}}
	g := instantiate(t, "probe", nil)
	if res, msg := g.configure(t, `{"k":"v"}`); res != 0 {
		t.Fatalf("configure = %d, %q", res, msg)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.st.logs = nil
			res, rec, err := g.decide(t, "moat_authenticate", tc.req.Encode())
			if err != nil {
				t.Fatalf("moat_authenticate: %v", err)
			}
			if res != tc.want {
				t.Errorf("result %#x, want %#x (logs %q)", res, tc.want, g.st.logs)
			}
			if tc.attrs != nil {
				got := map[string]string{}
				for _, kv := range rec.attrs {
					got[kv[0]] = kv[1]
				}
				for k, v := range tc.attrs {
					if got[k] != v {
						t.Errorf("attribute %s = %q, want %q", k, got[k], v)
					}
				}
			}
			checkLogs(t, g.st.logs, tc.wantLog)
			if tc.check != nil {
				tc.check(t, rec)
			}
		})
	}
}

func checkLogs(t *testing.T, logs []string, want string) {
	t.Helper()
	if want == "" {
		if len(logs) != 0 {
			t.Errorf("unexpected log lines %q", logs)
		}
		return
	}
	if !slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, want) }) {
		t.Errorf("log lines %q, want one containing %q", logs, want)
	}
}

func TestProbeLogs(t *testing.T) {
	g := instantiate(t, "probe", nil)
	res, _, err := g.decide(t, "moat_authenticate", (&Request{Kind: KindAuthn}).SetString(FieldUsername, "log").Encode())
	if err != nil || res != 3 {
		t.Fatalf("authenticate = %#x, %v; want ignore", res, err)
	}
	want := []string{"warn: probe: warn line", "info: probe: 42 info"}
	if !reflect.DeepEqual(g.st.logs, want) {
		t.Errorf("logs %q, want %q", g.st.logs, want)
	}
	if !strings.Contains(g.stdout.String(), "probe: to stderr") {
		t.Errorf("stderr %q", g.stdout.String())
	}
}

func TestProbeAuthz(t *testing.T) {
	long := strings.Repeat("a/", 5000) + "end" // beyond the first 4096-byte buffer
	tests := []struct {
		name    string
		req     []byte
		want    uint32
		message string
		wantLog string
	}{{
		name: "every field reaches the handler",
		req: (&Request{Kind: KindAuthz, Action: 2, QoS: 1, Flags: FlagRetain | FlagSuperuser, Protocol: 4}).
			SetString(FieldClientID, "c").
			SetString(FieldUsername, "u").
			SetString(FieldTopic, "a/+/#").
			SetString(FieldShareGroup, "g").
			Set(FieldAttributes, Pairs("tenant", "acme", "role", "ops")).Encode(),
		want:    2 | 0x97<<8,
		message: "action=subscribe topic=a/+/# qos=1 retain=true share=g client=c user=u superuser=true protocol=4 attr:tenant=acme attr:role=ops",
	}, {
		name:    "a request larger than the buffer",
		req:     authz(long).Encode(),
		want:    2 | 0x97<<8,
		message: truncate("action=publish topic="+long, 1024), // the SDK cuts messages at the host's limit
	}, {
		name: "allow", req: authz("allow").Encode(), want: 1,
	}, {
		name: "ignore", req: authz("ignore").Encode(), want: 3,
	}, {
		name: "nil map panic", req: authz("panic").Encode(), want: 0,
		wantLog: "error: moat: authz handler panicked: runtime error: invalid memory address or nil pointer dereference",
	}, {
		name: "zero result", req: authz("zero").Encode(), want: 0,
		wantLog: "error: moat: malformed result: no verdict",
	}, {
		name: "truncated request", req: authz("x").Encode()[:20], want: 0,
		wantLog: "error: moat: malformed request: total does not match",
	}}
	g := instantiate(t, "probe", nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.st.logs = nil
			res, rec, err := g.decide(t, "moat_authorize", tc.req)
			if err != nil {
				t.Fatalf("moat_authorize: %v", err)
			}
			if res != tc.want {
				t.Errorf("result %#x, want %#x (logs %q)", res, tc.want, g.st.logs)
			}
			msg := ""
			if rec.message != nil {
				msg = *rec.message
			}
			if msg != tc.message {
				t.Errorf("message %.100q..., want %.100q...", msg, tc.message)
			}
			checkLogs(t, g.st.logs, tc.wantLog)
		})
	}
	t.Run("length beyond the buffer", func(t *testing.T) {
		g.st.logs = nil
		g.stack[0] = uint64(g.bufSize + 1)
		if err := g.fn("moat_authorize").CallWithStack(g.ctx, g.stack); err != nil || g.stack[0] != 0 {
			t.Errorf("moat_authorize(buffer+1) = %#x, %v; want 0", g.stack[0], err)
		}
		checkLogs(t, g.st.logs, "shorter than its header")
	})
}

func TestProbePayload(t *testing.T) {
	req := func(action uint8, payload string) []byte {
		r := (&Request{Kind: KindPayload, Action: action, Protocol: 5, Number: uint32(len(payload))}).
			SetString(FieldTopic, "t").
			SetString(FieldContentType, "text/plain").
			SetString(FieldEnvelopeKeyID, "k0").
			Set(FieldUserProperties, Pairs("p", "1"))
		if action == 3 {
			r.Set(FieldMode, []byte{4})
		}
		return r.Encode()
	}
	big := strings.Repeat("0123456789", 10000)
	tests := []struct {
		name    string
		allow   bool
		req     []byte
		payload string
		want    uint32
		keyID   string
		message string
	}{{
		name: "publish at rest", allow: true, req: req(1, "hello"), payload: "hello",
		want: 1 | 3<<24, keyID: "key-t",
	}, {
		name: "deliver echoes the request", allow: true, req: req(3, big), payload: big,
		want:    2 | 0x87<<8,
		message: truncate("payload="+big, 1024),
	}, {
		name: "payload not granted", allow: false, req: req(1, "hello"), payload: "hello",
		want:    2 | 0x80<<8,
		message: "moat: payload not readable: set allow_payload = true for the plugin in moat.toml",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := instantiate(t, "probe", &state{payload: []byte(tc.payload), allowPayload: tc.allow})
			res, rec, err := g.decide(t, "moat_payload", tc.req)
			if err != nil {
				t.Fatalf("moat_payload: %v", err)
			}
			if res != tc.want {
				t.Errorf("result %#x, want %#x (logs %q)", res, tc.want, g.st.logs)
			}
			if got := deref(rec.keyID); got != tc.keyID {
				t.Errorf("key id %q, want %q", got, tc.keyID)
			}
			if got := deref(rec.message); got != tc.message {
				t.Errorf("message %.80q..., want %.80q...", got, tc.message)
			}
		})
	}
	t.Run("deliver fields", func(t *testing.T) {
		g := instantiate(t, "probe", &state{payload: []byte("x"), allowPayload: true})
		_, rec, err := g.decide(t, "moat_payload", req(3, "x"))
		if err != nil {
			t.Fatal(err)
		}
		want := "payload=x size=1 ct=text/plain env=k0 mode=4 action=deliver prop:p=1"
		if got := deref(rec.message); got != want {
			t.Errorf("message %q, want %q", got, want)
		}
	})
}

func truncate(s string, n int) string { return s[:min(len(s), n)] }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestConfigure(t *testing.T) {
	large := `{"k":"` + strings.Repeat("x", 10000) + `"}`
	tests := []struct {
		module, cfg string
		want        uint32
		message     string
	}{
		{"probe", `{"a":1}`, 0, ""},
		{"probe", large, 0, ""},
		{"probe", `{"refuse":true}`, 1, `probe: config: unknown key "refuse"`},
		{"files", `{}`, 0, ""},
		{"files", ` {} `, 0, ""},
		{"files", `{"a":1}`, 1, "the module takes no configuration (it registers no moat.HandleConfig)"},
		{"demo", `{"users":[],"rules":[]}`, 0, ""},
		{"demo", `{"user":[]}`, 1, `demo: config: json: unknown field "user"`},
		{"demo", `{"rules":[{"action":"read","topic":"a/#/b"}]}`, 1,
			"demo: config: rules[0].action: \"read\": want publish, subscribe, deliver, decrypt or all\n" +
				"demo: config: rules[0].topic: \"a/#/b\": '#' must be the last level"},
	}
	for _, tc := range tests {
		t.Run(tc.module+" "+truncate(tc.cfg, 30), func(t *testing.T) {
			g := instantiate(t, tc.module, nil)
			res, msg := g.configure(t, tc.cfg)
			if res != tc.want || msg != tc.message {
				t.Errorf("configure = %d, %q; want %d, %q", res, msg, tc.want, tc.message)
			}
		})
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "acl")
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(small, []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Larger than the host copies at once: ReadFile loops.
	bigContent := strings.Repeat("line of text\n", 100000)
	if err := os.WriteFile(big, []byte(bigContent), 0o600); err != nil {
		t.Fatal(err)
	}
	g := instantiate(t, "files", &state{files: map[string]string{
		"acl": small, "big": big, "gone": filepath.Join(dir, "missing"),
	}})
	read := func(name string) (uint32, string) {
		t.Helper()
		res, rec, err := g.decide(t, "moat_authorize", authz(name).Encode())
		if err != nil {
			t.Fatalf("moat_authorize: %v", err)
		}
		return res, deref(rec.message)
	}
	if res, msg := read("acl"); res != 2|0x87<<8 || msg != "v1" {
		t.Errorf("read acl: %#x %q", res, msg)
	}
	if err := os.WriteFile(small, []byte("version 2"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, msg := read("acl"); msg != "version 2" {
		t.Errorf("changed file read as %q", msg)
	}
	if _, msg := read("other"); msg != "not exist: read other: not granted" {
		t.Errorf("ungranted file: %q", msg)
	}
	if _, msg := read("gone"); msg != "error: read gone: i/o error on the host" {
		t.Errorf("missing host file: %q", msg)
	}
	// The message is cut at 1024 bytes; check the module read it all
	// through a length check in its own words.
	if res, msg := read("big"); res != 2|0x87<<8 || msg != bigContent[:1024] {
		t.Errorf("big file: %#x %.40q", res, msg)
	}
}

// TestDemo runs the example plugin as examples/moat.toml configures it.
func TestDemo(t *testing.T) {
	cfg := `{
		"users": [
			{"username": "demo", "password": "demo", "attributes": {"tenant": "acme", "role": "viewer"}},
			{"username": "admin", "password": "admin-pw", "superuser": true}
		],
		"rules": [
			{"username": "demo", "action": "all", "topic": "demo/#"},
			{"username": "demo", "action": "publish", "topic": "clients/%c/status"},
			{"action": "subscribe", "topic": "public/+"}
		]
	}`
	g := instantiate(t, "demo", nil)
	if res, msg := g.configure(t, cfg); res != 0 {
		t.Fatalf("configure = %d, %q", res, msg)
	}
	login := func(user, password string, withPassword bool) *Request {
		r := (&Request{Kind: KindAuthn, Protocol: 5}).SetString(FieldClientID, "c1").SetString(FieldUsername, user)
		if withPassword {
			r.Flags |= FlagPassword
			r.SetString(FieldPassword, password)
		}
		return r
	}
	authnTests := []struct {
		name    string
		req     *Request
		want    uint32
		attrs   [][2]string
		message string
	}{
		{"right password", login("demo", "demo", true), 1, [][2]string{{"role", "viewer"}, {"tenant", "acme"}}, ""},
		{"superuser", login("admin", "admin-pw", true), 1 | 1<<16, nil, ""},
		{"wrong password", login("demo", "demoo", true), 2 | 0x86<<8, nil, "bad username or password"},
		{"password prefix", login("demo", "dem", true), 2 | 0x86<<8, nil, "bad username or password"},
		{"no password", login("demo", "", false), 2 | 0x86<<8, nil, "bad username or password"},
		{"empty password", login("demo", "", true), 2 | 0x86<<8, nil, "bad username or password"},
		{"unknown user is left to the chain", login("mallory", "demo", true), 3, nil, ""},
	}
	for _, tc := range authnTests {
		t.Run("authn "+tc.name, func(t *testing.T) {
			res, rec, err := g.decide(t, "moat_authenticate", tc.req.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if res != tc.want || !reflect.DeepEqual(rec.attrs, tc.attrs) || deref(rec.message) != tc.message {
				t.Errorf("got %#x %q %q; want %#x %q %q", res, rec.attrs, deref(rec.message), tc.want, tc.attrs, tc.message)
			}
		})
	}
	check := func(user, client string, action uint8, topic string) *Request {
		return (&Request{Kind: KindAuthz, Action: action, Protocol: 5}).
			SetString(FieldClientID, client).SetString(FieldUsername, user).SetString(FieldTopic, topic).
			Set(FieldAttributes, Pairs("tenant", "acme"))
	}
	const allow, ignore = 1, 3
	authzTests := []struct {
		name string
		req  *Request
		want uint32
	}{
		{"publish under demo/", check("demo", "c1", 1, "demo/a/b"), allow},
		{"demo/# covers demo", check("demo", "c1", 1, "demo"), allow},
		{"subscribe demo/#", check("demo", "c1", 2, "demo/#"), allow},
		{"subscribe demo/+/x", check("demo", "c1", 2, "demo/+/x"), allow},
		{"deliver", check("demo", "c1", 3, "demo/x"), allow},
		{"decrypt is not in all", check("demo", "c1", 4, "demo/x"), ignore},
		{"other topic", check("demo", "c1", 1, "other/x"), ignore},
		{"subscribe # is wider than the rule", check("demo", "c1", 2, "#"), ignore},
		{"other user", check("eve", "c1", 1, "demo/x"), ignore},
		{"%c as a whole level", check("demo", "c1", 1, "clients/c1/status"), allow},
		{"%c of another client", check("demo", "c2", 1, "clients/c1/status"), ignore},
		{"%c only for publish", check("demo", "c1", 2, "clients/c1/status"), ignore},
		{"%c with a wildcard client id", check("demo", "+", 1, "clients/+/status"), ignore},
		{"rule for every user", check("eve", "e", 2, "public/news"), allow},
		{"rule + does not cover #", check("eve", "e", 2, "public/#"), ignore},
		{"rule + does not cover two levels", check("eve", "e", 2, "public/a/b"), ignore},
	}
	for _, tc := range authzTests {
		t.Run("authz "+tc.name, func(t *testing.T) {
			res, _, err := g.decide(t, "moat_authorize", tc.req.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if res != tc.want {
				t.Errorf("result %#x, want %#x", res, tc.want)
			}
		})
	}
	t.Run("no payload handler", func(t *testing.T) {
		g.st.logs = nil
		res, _, err := g.decide(t, "moat_payload", (&Request{Kind: KindPayload, Action: 1}).Encode())
		if err != nil || res != 0 {
			t.Errorf("moat_payload = %#x, %v; want 0", res, err)
		}
		checkLogs(t, g.st.logs, `error: moat: no payload handler: call moat.HandlePayload from an init function, or remove "payload" from the plugin's decisions in moat.toml`)
	})
}

// TestGarbageCollectionFinishes checks that a collection cycle started by
// a handler's allocations ends before the call returns. Without the SDK's
// help it would stay in its mark phase until the module allocates again,
// and every later call would pay for the write barrier.
func TestGarbageCollectionFinishes(t *testing.T) {
	g := instantiate(t, "probe", nil)
	marking := func() uint64 {
		res, err := g.fn("probe_gc_marking").Call(g.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	for i := range 5 {
		res, _, err := g.decide(t, "moat_authenticate", (&Request{Kind: KindAuthn}).SetString(FieldUsername, "garbage").Encode())
		if err != nil || res != 3 {
			t.Fatalf("authenticate = %#x, %v", res, err)
		}
		if marking() != 0 {
			t.Fatalf("call %d returned with a collection cycle marking", i)
		}
	}
}

// TestKeptRequestData checks inside wasm what the SDK promises: strings
// and lists of a request stay as they were after later requests overwrite
// the broker's buffer.
func TestKeptRequestData(t *testing.T) {
	g := instantiate(t, "probe", nil)
	send := func(topic string, attrs ...string) (uint32, string) {
		t.Helper()
		r := authz(topic)
		if attrs != nil {
			r.Set(FieldAttributes, Pairs(attrs...))
		}
		res, rec, err := g.decide(t, "moat_authorize", r.Encode())
		if err != nil {
			t.Fatal(err)
		}
		return res, deref(rec.message)
	}
	send("keep:abc", "tenant", "acme")
	// Same layout, other bytes: a view into the buffer would now read
	// "keep:xyz" and "umbrella".
	send("keep:xyz", "tenant", "umbrella")
	for range 300 { // more than a chunk's worth of requests
		send("ignore", "tenant", "other!!!")
	}
	g.st.call = record{}
	if _, msg := send("recall"); !strings.Contains(msg, "keep:abc tenant=acme") || !strings.Contains(msg, "keep:xyz tenant=umbrella") {
		t.Errorf("kept data read back as %q", msg)
	}
}
