package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

const (
	adminToken    = "0123456789abcdef0123456789abcdef"
	adminPassword = "alice-secret-pw"
)

// startAdminEnv starts a server running the demo module (alice may do
// anything under demo/), with persistence and the admin endpoint on the
// socket and on loopback HTTP with adminToken.
func startAdminEnv(t *testing.T) (*env, *Admin) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := "\n[admin]\nsocket = \"admin.sock\"\nhttp = \"127.0.0.1:0\"\ntoken_file = \"token\"\n" +
		"\n[persistence]\ntype = \"bolt\"\npath = \"state.db\"\n" +
		demo([]demoUser{{"alice", adminPassword}}, []demoRule{{"alice", "all", "demo/#"}})
	e := startEnvIn(t, dir, map[string][]byte{"demo.wasm": demoWasm(t)}, doc)
	a, err := e.s.OpenAdmin(AdminOptions{Version: "v9.9.9-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close(t.Context()) })
	return e, a
}

// call sends one request to the admin endpoint with the given token
// ("" for none) and cookie (nil for none), and returns the status and the
// body.
func call(t *testing.T, c *http.Client, method, u, token string, cookie *http.Cookie, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	return v
}

// TestAdminAPI lists, shows and kicks clients and lists and deletes
// sessions over HTTP (with the token) and the socket, reads the status
// and the recent denials, and checks that each action is logged without
// the token or a password.
func TestAdminAPI(t *testing.T) {
	e, a := startAdminEnv(t)
	base := "http://" + a.HTTPAddr()
	hc := http.DefaultClient

	alice := testutil.MustConnectV5(t, e.addr, testutil.V5Options{ClientID: "alice/1", Username: "alice", Password: adminPassword})
	alice.Subscribe(t, "demo/#", 1)
	if _, _, err := testutil.ConnectV5(t, e.addr, testutil.V5Options{ClientID: "mallory", Username: "alice", Password: "wrong-pw-123"}); err == nil {
		t.Fatal("mallory connected")
	}
	off := testutil.MustConnectV3(t, e.url, testutil.V3Options{ClientID: "offline", Username: "alice", Password: adminPassword, Persistent: true})
	off.Subscribe(t, "demo/q", 1)
	off.Client.Disconnect(250)
	waitFor(t, 5*time.Second, "offline is offline", func() bool {
		ci, ok := e.s.Broker().Client("offline")
		return ok && !ci.Connected
	})

	if code, _ := call(t, hc, "GET", base+"/clients", "", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("GET /clients without token: %d, want 401", code)
	}
	code, body := call(t, hc, "GET", base+"/clients", adminToken, nil, "")
	cs := decode[[]broker.ClientInfo](t, body)
	if code != 200 || len(cs) != 1 || cs[0].ID != "alice/1" || cs[0].Username != "alice" || cs[0].Protocol != "5" ||
		len(cs[0].Subscriptions) != 1 || cs[0].Subscriptions[0].Filter != "demo/#" || cs[0].ConnectedSince.IsZero() {
		t.Fatalf("GET /clients: %d %s", code, body)
	}
	code, body = call(t, hc, "GET", base+"/clients/"+url.PathEscape("alice/1"), adminToken, nil, "")
	if ci := decode[broker.ClientInfo](t, body); code != 200 || ci.ID != "alice/1" || ci.Listener != "tcp" {
		t.Errorf("GET /clients/alice%%2F1: %d %s", code, body)
	}
	if code, _ := call(t, hc, "GET", base+"/clients/nobody", adminToken, nil, ""); code != http.StatusNotFound {
		t.Errorf("GET /clients/nobody: %d, want 404", code)
	}

	code, body = call(t, hc, "GET", base+"/status", adminToken, nil, "")
	st := decode[Status](t, body)
	if code != 200 || st.Version != "v9.9.9-test" || st.Clients != 1 || st.Sessions != 2 || len(st.Listeners) != 1 ||
		len(st.Plugins) != 1 || st.Plugins[0].Name != "demo" || len(st.Plugins[0].Digest) != 64 || st.Plugins[0].Denials < 1 {
		t.Errorf("GET /status: %d %s", code, body)
	}
	code, body = call(t, hc, "GET", base+"/denials", adminToken, nil, "")
	ds := decode[[]Denial](t, body)
	if code != 200 || len(ds) == 0 || ds[0].Kind != "connect" || ds[0].ClientID != "mallory" || ds[0].Username != "alice" || ds[0].Module != "demo" {
		t.Errorf("GET /denials: %d %s", code, body)
	}

	// Sessions over the socket, which needs no token.
	sc := unixClient(a.SocketPath())
	code, body = call(t, sc, "GET", "http://moat/sessions", "", nil, "")
	ss := decode[[]broker.ClientInfo](t, body)
	if code != 200 || len(ss) != 2 || ss[1].ID != "offline" || ss[1].Connected {
		t.Fatalf("GET /sessions: %d %s", code, body)
	}
	if code, _ := call(t, sc, "DELETE", "http://moat/sessions/offline", "", nil, ""); code != 200 {
		t.Errorf("DELETE /sessions/offline: %d", code)
	}
	if code, _ := call(t, sc, "DELETE", "http://moat/sessions/offline", "", nil, ""); code != http.StatusNotFound {
		t.Errorf("DELETE /sessions/offline again: %d, want 404", code)
	}
	if _, ok := e.s.Broker().Client("offline"); ok {
		t.Error("the deleted session is still there")
	}

	if code, body := call(t, hc, "POST", base+"/clients/alice%2F1/kick", adminToken, nil, `{"reason": 5}`); code != http.StatusBadRequest {
		t.Errorf("kick with a bad body: %d %s, want 400", code, body)
	}
	if code, body := call(t, hc, "POST", base+"/clients/alice%2F1/kick", adminToken, nil, `{"reason": "maintenance"}`); code != 200 {
		t.Fatalf("kick: %d %s", code, body)
	}
	select {
	case <-alice.Done():
	case <-time.After(testutil.Wait):
		t.Fatal("alice is still connected after the kick")
	}
	if code, _ := call(t, hc, "POST", base+"/clients/alice%2F1/kick", adminToken, nil, ""); code != http.StatusNotFound {
		t.Errorf("kick a client gone: %d, want 404", code)
	}

	e.s.Reload(t.Context(), Trigger{Source: TriggerAPI})
	code, body = call(t, hc, "GET", base+"/reloads", adminToken, nil, "")
	if rs := decode[[]ReloadRecord](t, body); code != 200 || len(rs) != 1 || !rs[0].Applied || rs[0].Trigger != "api" {
		t.Errorf("GET /reloads: %d %s", code, body)
	}

	logs := e.logs.String()
	for _, want := range []string{"action=kick client_id=alice/1 reason=maintenance", `action="delete session" client_id=offline`} {
		if !strings.Contains(logs, "msg=\"admin action\" audit=admin "+want) {
			t.Errorf("no audit record %q in the log:\n%s", want, logs)
		}
	}
	for _, secret := range []string{adminToken, adminPassword, "wrong-pw-123"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds a secret %q", secret)
		}
	}
}

// TestAdminUIAuth: the status page needs the token once, at /ui/login,
// which sets a cookie; the cookie admits reads only.
func TestAdminUIAuth(t *testing.T) {
	_, a := startAdminEnv(t)
	base := "http://" + a.HTTPAddr()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	code, body := call(t, noRedirect, "GET", base+"/ui/", "", nil, "")
	if code != http.StatusUnauthorized || !strings.Contains(string(body), `<form method="post" action="/ui/login">`) {
		t.Fatalf("GET /ui/ without cookie: %d\n%s", code, body)
	}
	if code, _ := call(t, noRedirect, "GET", base+"/ui/login?token=wrong-token-0123456789", "", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("login with a wrong token: %d, want 401", code)
	}
	resp, err := noRedirect.PostForm(base+"/ui/login", url.Values{"token": {adminToken}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == uiCookieName {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode ||
		strings.Contains(cookie.Value, adminToken) {
		t.Fatalf("login: %s, cookie %+v", resp.Status, cookie)
	}
	code, body = call(t, noRedirect, "GET", base+"/ui/", "", cookie, "")
	if code != 200 || !strings.Contains(string(body), `<table id="clients">`) {
		t.Errorf("GET /ui/ with the cookie: %d\n%s", code, body)
	}
	if code, _ := call(t, noRedirect, "GET", base+"/clients", "", cookie, ""); code != 200 {
		t.Errorf("GET /clients with the cookie: %d", code)
	}
	for _, tc := range []struct{ method, path string }{{"POST", "/reload"}, {"POST", "/clients/x/kick"}, {"DELETE", "/sessions/x"}} {
		if code, _ := call(t, noRedirect, tc.method, base+tc.path, "", cookie, ""); code != http.StatusUnauthorized {
			t.Errorf("%s %s with the cookie only: %d, want 401", tc.method, tc.path, code)
		}
	}
	forged := &http.Cookie{Name: uiCookieName, Value: strings.Repeat("0", len(cookie.Value))}
	if code, _ := call(t, noRedirect, "GET", base+"/clients", "", forged, ""); code != http.StatusUnauthorized {
		t.Errorf("GET /clients with a forged cookie: %d, want 401", code)
	}
}

// TestDenialRing: the ring keeps the newest maxDenials, newest first.
func TestDenialRing(t *testing.T) {
	r := newRecent()
	for i := range maxDenials + 5 {
		r.addDenial(Denial{ClientID: string(rune('a' + i%26)), Module: "m"})
	}
	ds := r.Denials()
	if len(ds) != maxDenials || ds[0].ClientID != string(rune('a'+(maxDenials+4)%26)) || r.moduleDenials("m") != maxDenials+5 {
		t.Errorf("%d denials, newest %q, counted %d", len(ds), ds[0].ClientID, r.moduleDenials("m"))
	}
}

// TestDenialTap: refusals are kept even when the log's level hides them,
// other records are not, and the log itself is unchanged.
func TestDenialTap(t *testing.T) {
	var out strings.Builder
	r := newRecent()
	log := slog.New(r.tap(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn})))
	log.Info("not authorized", "client_id", "c1", "action", "subscribe", "topic", "a/b", "module", "acl", "reason", "no")
	log.With("client_id", "c2").Info("connection refused", "username", "u", "module", "passwd")
	log.Debug("not authorized", "client_id", "cached")
	log.Info("listening", "address", "x")
	log.WithGroup("g").Info("not authorized", "client_id", "grouped")
	log.Warn("something else")
	ds := r.Denials()
	want := []Denial{
		{Kind: "connect", ClientID: "c2", Username: "u", Module: "passwd"},
		{Kind: "subscribe", ClientID: "c1", Topic: "a/b", Module: "acl", Reason: "no"},
	}
	if len(ds) != len(want) {
		t.Fatalf("denials = %+v", ds)
	}
	for i := range want {
		ds[i].Time = time.Time{}
		if ds[i] != want[i] {
			t.Errorf("denial %d = %+v, want %+v", i, ds[i], want[i])
		}
	}
	if got := out.String(); strings.Count(got, "\n") != 1 || !strings.Contains(got, "something else") {
		t.Errorf("the log at warn got:\n%s", got)
	}
}
