package moat

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/sdk/go/internal/sdktest"
)

// recorder is a host that records what the SDK sets, and can refuse a
// setter the way the broker does when a limit is exceeded.
type recorder struct {
	logs      []string
	message   *string
	attrs     []Attribute
	expiry    *int64
	authData  []byte
	authState []byte
	keyID     *string
	calls     []string
	refuse    string // setter name answered with -2
}

func (r *recorder) status(name string) int32 {
	r.calls = append(r.calls, name)
	if r.refuse == name {
		return -2
	}
	return 0
}

func (r *recorder) log(level Level, msg string) { r.logs = append(r.logs, level.String()+": "+msg) }
func (r *recorder) setMessage(msg string) int32 { r.message = &msg; return r.status("set_message") }
func (r *recorder) addAttribute(k, v string) int32 {
	r.attrs = append(r.attrs, Attribute{k, v})
	return r.status("add_attribute")
}
func (r *recorder) setExpiry(ns int64) int32    { r.expiry = &ns; return r.status("set_expiry") }
func (r *recorder) setAuthData(b []byte) int32  { r.authData = b; return r.status("set_auth_data") }
func (r *recorder) setAuthState(b []byte) int32 { r.authState = b; return r.status("set_auth_state") }
func (r *recorder) setKeyID(id string) int32    { r.keyID = &id; return r.status("set_key_id") }

func authnReq(method string) []byte {
	r := (&sdktest.Request{Kind: sdktest.KindAuthn, Protocol: 5}).SetString(sdktest.FieldUsername, "alice")
	if method != "" {
		r.SetString(sdktest.FieldAuthMethod, method)
	}
	return r.Encode()
}

func authzReq() []byte {
	return (&sdktest.Request{Kind: sdktest.KindAuthz, Action: 1}).SetString(sdktest.FieldTopic, "t").Encode()
}

func TestRunAuthn(t *testing.T) {
	expiry := time.Unix(1700000000, 5)
	tests := []struct {
		name    string
		fn      func(*AuthnRequest) AuthnResult
		req     []byte
		refuse  string
		want    uint32
		calls   []string
		check   func(t *testing.T, h *recorder)
		wantLog string
	}{{
		name: "allow with everything",
		fn: func(r *AuthnRequest) AuthnResult {
			return AuthnResult{
				Result: Allow(), Superuser: true, Attributes: Attributes{{"tenant", "acme"}, {"role", "ops"}},
				Expiry: expiry, AuthData: []byte("final"), AuthState: []byte("dropped"),
			}
		},
		req:   authnReq(""),
		want:  1 | 1<<16,
		calls: []string{"add_attribute", "add_attribute", "set_expiry", "set_auth_data"},
		check: func(t *testing.T, h *recorder) {
			if !reflect.DeepEqual(h.attrs, []Attribute{{"tenant", "acme"}, {"role", "ops"}}) {
				t.Errorf("attributes %v", h.attrs)
			}
			if h.expiry == nil || *h.expiry != expiry.UnixNano() {
				t.Errorf("expiry %v, want %d", h.expiry, expiry.UnixNano())
			}
			if string(h.authData) != "final" {
				t.Errorf("auth data %q", h.authData)
			}
		},
	}, {
		name: "plain allow sets nothing",
		fn:   func(*AuthnRequest) AuthnResult { return AuthnResult{Result: Allow()} },
		req:  authnReq(""),
		want: 1,
	}, {
		name: "deny drops what only allow carries",
		fn: func(*AuthnRequest) AuthnResult {
			return AuthnResult{Result: Deny(ReasonBanned, "banned"), Superuser: true, Attributes: Attributes{{"a", "b"}}, Expiry: expiry}
		},
		req:   authnReq(""),
		want:  2 | 0x8A<<8,
		calls: []string{"set_message"},
		check: func(t *testing.T, h *recorder) {
			if *h.message != "banned" {
				t.Errorf("message %q", *h.message)
			}
		},
	}, {
		name:  "deny with the default reason",
		fn:    func(*AuthnRequest) AuthnResult { return AuthnResult{Result: Deny(0, "no")} },
		req:   authnReq(""),
		want:  2,
		calls: []string{"set_message"},
	}, {
		name: "continue",
		fn: func(r *AuthnRequest) AuthnResult {
			return Continue([]byte("server-first"), []byte("nonce"))
		},
		req:   authnReq("SCRAM-SHA-256"),
		want:  4,
		calls: []string{"set_auth_data", "set_auth_state"},
		check: func(t *testing.T, h *recorder) {
			if string(h.authData) != "server-first" || string(h.authState) != "nonce" {
				t.Errorf("auth data %q state %q", h.authData, h.authState)
			}
		},
	}, {
		name:    "continue without an auth method",
		fn:      func(r *AuthnRequest) AuthnResult { return Continue(nil, nil) },
		req:     authnReq(""),
		want:    0,
		wantLog: "continue is valid only",
	}, {
		name:    "zero result",
		fn:      func(*AuthnRequest) AuthnResult { return AuthnResult{} },
		req:     authnReq(""),
		want:    0,
		wantLog: "no verdict",
	}, {
		name:    "deny reason below 0x80",
		fn:      func(*AuthnRequest) AuthnResult { return AuthnResult{Result: Deny(0x05, "")} },
		req:     authnReq(""),
		want:    0,
		wantLog: "0x5 is not an MQTT 5 error code",
	}, {
		name: "host refuses an attribute",
		fn: func(*AuthnRequest) AuthnResult {
			return AuthnResult{Result: Allow(), Attributes: Attributes{{"a", "b"}}}
		},
		req:     authnReq(""),
		refuse:  "add_attribute",
		want:    0,
		calls:   []string{"add_attribute"},
		wantLog: "host refused add_attribute (-2)",
	}, {
		name:    "no handler",
		req:     authnReq(""),
		want:    0,
		wantLog: "no authn handler",
	}, {
		name:    "malformed request",
		fn:      func(*AuthnRequest) AuthnResult { panic("not reached") },
		req:     authzReq(),
		want:    0,
		wantLog: "malformed request: wrong kind",
	}, {
		name:    "handler panics",
		fn:      func(r *AuthnRequest) AuthnResult { var a Attributes; return AuthnResult{Result: Deny(0, a[3].Key)} },
		req:     authnReq(""),
		want:    0,
		wantLog: "authn handler panicked: runtime error: index out of range",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &recorder{refuse: tc.refuse}
			if got := runAuthn(h, new(decoder), tc.fn, tc.req); got != tc.want {
				t.Errorf("runAuthn = %#x, want %#x (logs %q)", got, tc.want, h.logs)
			}
			if !reflect.DeepEqual(h.calls, tc.calls) {
				t.Errorf("setters called: %q, want %q", h.calls, tc.calls)
			}
			checkLog(t, h, tc.wantLog)
			if tc.check != nil {
				tc.check(t, h)
			}
		})
	}
}

func checkLog(t *testing.T, h *recorder, want string) {
	t.Helper()
	if want == "" {
		if len(h.logs) != 0 {
			t.Errorf("unexpected log lines %q", h.logs)
		}
		return
	}
	if len(h.logs) != 1 || !strings.HasPrefix(h.logs[0], "error: moat: ") || !strings.Contains(h.logs[0], want) {
		t.Errorf("log lines %q, want one error containing %q", h.logs, want)
	}
}

func TestRunAuthz(t *testing.T) {
	long := strings.Repeat("é", 600) // 1200 bytes
	tests := []struct {
		name    string
		fn      func(*AuthzRequest) Result
		want    uint32
		message *string
		wantLog string
	}{
		{name: "allow", fn: func(*AuthzRequest) Result { return Allow() }, want: 1},
		{name: "ignore", fn: func(*AuthzRequest) Result { return Ignore() }, want: 3},
		{name: "deny", fn: func(*AuthzRequest) Result { return Deny(ReasonNotAuthorized, "topic") }, want: 2 | 0x87<<8, message: ptr("topic")},
		{name: "deny with a long message cut at a rune", fn: func(*AuthzRequest) Result { return Deny(0, long) }, want: 2, message: ptr(long[:1024])},
		{name: "continue is authn only", fn: func(*AuthzRequest) Result { return Result{verdict: VerdictContinue} }, wantLog: "continue is valid only"},
		{name: "verdict out of range", fn: func(*AuthzRequest) Result { return Result{verdict: 9} }, wantLog: "no verdict"},
		{name: "no handler", wantLog: "no authz handler: call moat.HandleAuthz"},
		{name: "panic with an error", fn: func(*AuthzRequest) Result { panic(errors.New("boom")) }, wantLog: "authz handler panicked: boom"},
		{name: "panic with another value", fn: func(*AuthzRequest) Result { panic(42) }, wantLog: "authz handler panicked: (a value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &recorder{}
			if got := runAuthz(h, new(decoder), tc.fn, authzReq()); got != tc.want {
				t.Errorf("runAuthz = %#x, want %#x", got, tc.want)
			}
			if !reflect.DeepEqual(h.message, tc.message) {
				t.Errorf("message %v, want %v", deref(h.message), deref(tc.message))
			}
			checkLog(t, h, tc.wantLog)
		})
	}
}

func TestRunPayload(t *testing.T) {
	req := (&sdktest.Request{Kind: sdktest.KindPayload, Action: 1, Number: 10}).SetString(sdktest.FieldTopic, "t").Encode()
	tests := []struct {
		name    string
		fn      func(*PayloadRequest) PayloadResult
		want    uint32
		keyID   *string
		wantLog string
	}{
		{name: "allow at rest with a key", fn: func(*PayloadRequest) PayloadResult {
			return PayloadResult{Result: Allow(), Mode: ModeAtRest, KeyID: "k1"}
		}, want: 1 | 3<<24, keyID: ptr("k1")},
		{name: "allow without mode", fn: func(*PayloadRequest) PayloadResult { return PayloadResult{Result: Allow()} }, want: 1},
		{name: "deny ignores the key", fn: func(*PayloadRequest) PayloadResult {
			return PayloadResult{Result: Deny(ReasonPayloadFormatInvalid, ""), KeyID: "k1"}
		}, want: 2 | 0x99<<8},
		{name: "mode with deny", fn: func(*PayloadRequest) PayloadResult {
			return PayloadResult{Result: Deny(0, ""), Mode: ModePlaintext}
		}, wantLog: "payload mode with verdict deny"},
		{name: "unknown mode", fn: func(*PayloadRequest) PayloadResult {
			return PayloadResult{Result: Allow(), Mode: 5}
		}, wantLog: "unknown payload mode 5"},
		{name: "key id too long", fn: func(*PayloadRequest) PayloadResult {
			return PayloadResult{Result: Allow(), KeyID: strings.Repeat("k", 256)}
		}, wantLog: "key id longer than 255"},
		{name: "payload not readable natively", fn: func(r *PayloadRequest) PayloadResult {
			if _, err := r.Payload(); !errors.Is(err, ErrPayloadNotReadable) {
				return PayloadResult{Result: Deny(0, "unexpected")}
			}
			return PayloadResult{Result: Ignore()}
		}, want: 3},
		{name: "no handler", wantLog: "no payload handler"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &recorder{}
			if got := runPayload(h, new(decoder), tc.fn, req); got != tc.want {
				t.Errorf("runPayload = %#x, want %#x (logs %q)", got, tc.want, h.logs)
			}
			if !reflect.DeepEqual(h.keyID, tc.keyID) {
				t.Errorf("key id %v, want %v", deref(h.keyID), deref(tc.keyID))
			}
			checkLog(t, h, tc.wantLog)
		})
	}
}

func TestRunConfigure(t *testing.T) {
	tests := []struct {
		name    string
		fn      func([]byte) error
		cfg     string
		want    uint32
		message *string
	}{
		{name: "accepted", fn: func(b []byte) error { return nil }, cfg: `{"a":1}`, want: 0},
		{name: "refused", fn: func(b []byte) error { return errors.New(`unknown key "topics"`) }, cfg: `{"topics":1}`, want: 1, message: ptr(`unknown key "topics"`)},
		{name: "refused without a message", fn: func(b []byte) error { return errors.New("") }, cfg: `{}`, want: 1, message: ptr("refused")},
		{name: "panics", fn: func(b []byte) error { panic("bad") }, cfg: `{}`, want: 1, message: ptr("configuration handler panicked: bad")},
		{name: "no handler, empty config", cfg: " { \n} ", want: 0},
		{name: "no handler, a config", cfg: `{"a":1}`, want: 1, message: ptr("the module takes no configuration (it registers no moat.HandleConfig)")},
		{name: "no handler, not an object", cfg: `[]`, want: 1, message: ptr("the module takes no configuration (it registers no moat.HandleConfig)")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &recorder{}
			if got := runConfigure(h, tc.fn, []byte(tc.cfg)); got != tc.want {
				t.Errorf("runConfigure = %d, want %d", got, tc.want)
			}
			if !reflect.DeepEqual(h.message, tc.message) {
				t.Errorf("message %v, want %v", deref(h.message), deref(tc.message))
			}
		})
	}
	t.Run("handler owns its copy", func(t *testing.T) {
		buf := []byte(`{"k":"v"}`)
		var kept []byte
		runConfigure(&recorder{}, func(b []byte) error { kept = b; return nil }, buf)
		copy(buf, "XXXXXXXXX")
		if string(kept) != `{"k":"v"}` {
			t.Errorf("config changed with the buffer: %q", kept)
		}
	})
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"aé", 2, "a"}, // é is 2 bytes
		{"é", 1, ""},
		{"日本", 5, "日"},
	}
	for _, tc := range tests {
		if got := truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}

func TestUnixNano(t *testing.T) {
	tests := []struct {
		t    time.Time
		want int64
	}{
		{time.Unix(1, 2), 1e9 + 2},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), math.MaxInt64},
		{time.Unix(-5, 0), 0},
	}
	for _, tc := range tests {
		if got := unixNano(tc.t); got != tc.want {
			t.Errorf("unixNano(%v) = %d, want %d", tc.t, got, tc.want)
		}
	}
}

func TestResultAccessors(t *testing.T) {
	r := Deny(ReasonBanned, "why")
	if r.Verdict() != VerdictDeny || r.Reason() != ReasonBanned || r.Message() != "why" {
		t.Errorf("Deny accessors: %v %#x %q", r.Verdict(), r.Reason(), r.Message())
	}
	for v, s := range map[Verdict]string{VerdictAllow: "allow", VerdictDeny: "deny", VerdictIgnore: "ignore", VerdictContinue: "continue", 0: "invalid"} {
		if v.String() != s {
			t.Errorf("Verdict(%d).String() = %q, want %q", v, v.String(), s)
		}
	}
	for a, s := range map[Action]string{ActionPublish: "publish", ActionSubscribe: "subscribe", ActionDeliver: "deliver", ActionDecrypt: "decrypt", 0: "unknown"} {
		if a.String() != s {
			t.Errorf("Action(%d).String() = %q, want %q", a, a.String(), s)
		}
	}
}

func ptr(s string) *string { return &s }

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}
