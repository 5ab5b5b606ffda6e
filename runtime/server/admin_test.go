package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// unixClient is an HTTP client for the admin socket at path.
func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
}

// post sends POST /reload and decodes the answer.
func post(t *testing.T, c *http.Client, url, token string) (int, ReloadResult) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var res ReloadResult
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnprocessableEntity {
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatalf("%s: %v\n%s", resp.Status, err, body)
		}
	}
	return resp.StatusCode, res
}

func openAdmin(t *testing.T, e *env) *Admin {
	t.Helper()
	a, err := e.s.OpenAdmin(AdminOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return a
}

// TestAdminSocket reloads through the admin socket, as `moat reload` does.
func TestAdminSocket(t *testing.T) {
	allow, deny := wat(t, "allow"), wat(t, "deny")
	doc := anonymous + "\n[admin]\nsocket = \"admin.sock\"\n" + gate("gate", "gate.wasm")
	e := startEnv(t, map[string][]byte{"gate.wasm": allow}, doc)
	a := openAdmin(t, e)
	sock := filepath.Join(e.dir, "admin.sock")
	if a.SocketPath() != sock || a.HTTPAddr() != "" {
		t.Fatalf("socket %q, http %q; want %s and none", a.SocketPath(), a.HTTPAddr(), sock)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket file: %v, %v; want a socket with mode 0600", fi.Mode(), err)
	}
	c := unixClient(sock)

	e.write("gate.wasm", deny)
	code, res := post(t, c, "http://moat/reload", "")
	if code != http.StatusOK || !res.Applied || res.Modules[0].Digest != digest(deny) {
		t.Fatalf("POST /reload: %d %+v", code, res)
	}
	if res.Trigger.Source != TriggerAdmin || res.Trigger.Endpoint != "unix:"+sock {
		t.Errorf("trigger = %+v", res.Trigger)
	}
	if runtime.GOOS == "linux" {
		if res.Trigger.PeerUID == nil || *res.Trigger.PeerUID != os.Getuid() || res.Trigger.PeerPID != os.Getpid() {
			t.Errorf("trigger = %+v, want this process's uid and pid", res.Trigger)
		}
		if !strings.Contains(e.logs.String(), "trigger.peer_uid=") {
			t.Errorf("the audit record lacks the peer uid:\n%s", e.logs)
		}
	}
	if subscribes(t, e, "x") {
		t.Error("the reload through the socket did not apply")
	}

	e.write("gate.wasm", []byte("not wasm"))
	code, res = post(t, c, "http://moat/reload", "")
	if code != http.StatusUnprocessableEntity || res.Applied || len(res.Errors) == 0 {
		t.Fatalf("POST /reload of a broken module: %d %+v", code, res)
	}

	resp, err := c.Get("http://moat/reload")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /reload: %s, want 405", resp.Status)
	}

	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("socket file after Close: %v, want none", err)
	}
}

// TestAdminSocketUnknownPeer: a peer whose credentials cannot be read is
// refused, and nothing is reloaded; the real credentials admit the same
// request.
func TestAdminSocketUnknownPeer(t *testing.T) {
	doc := anonymous + "\n[admin]\nsocket = \"admin.sock\"\n" + gate("gate", "gate.wasm")
	for _, tc := range []struct {
		name  string
		creds func(net.Conn) (int, int, error)
		want  int
	}{
		{"unreadable", func(net.Conn) (int, int, error) { return 0, 0, errors.New("getsockopt: operation not supported") }, http.StatusForbidden},
		{"no descriptor", func(c net.Conn) (int, int, error) { return peerCred(struct{ net.Conn }{c}) }, http.StatusForbidden},
		{"readable", peerCred, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnv(t, map[string][]byte{"gate.wasm": wat(t, "allow")}, doc)
			e.s.peerCred = tc.creds
			a := openAdmin(t, e)
			code, _ := post(t, unixClient(a.SocketPath()), "http://moat/reload", "")
			if code != tc.want {
				t.Fatalf("status %d, want %d\n%s", code, tc.want, e.logs)
			}
			reloads := e.logs.count("audit=reload")
			if tc.want == http.StatusForbidden {
				if reloads != 0 {
					t.Errorf("%d reloads after a refused request", reloads)
				}
				if e.logs.count("peer credentials unreadable") != 1 {
					t.Errorf("the refusal is not logged:\n%s", e.logs)
				}
			}
		})
	}
}

// TestAdminSocketFile checks what OpenAdmin does with a file already at
// the socket's path.
func TestAdminSocketFile(t *testing.T) {
	doc := anonymous + "\n[admin]\nsocket = \"admin.sock\"\n" + gate("gate", "gate.wasm")
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string)
		err     string // "" when OpenAdmin must succeed
	}{
		{"stale socket", func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			ln.(*net.UnixListener).SetUnlinkOnClose(false) // as after a crash
			ln.Close()
		}, ""},
		{"live socket", func(t *testing.T, path string) {
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
		}, "another moat is serving on it"},
		{"regular file", func(t *testing.T, path string) {
			writeFile(t, path, []byte("x"))
		}, "exists and is not a socket"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnv(t, map[string][]byte{"gate.wasm": wat(t, "allow")}, doc)
			tc.prepare(t, filepath.Join(e.dir, "admin.sock"))
			a, err := e.s.OpenAdmin(AdminOptions{})
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				a.Close(context.Background())
				return
			}
			if err == nil {
				a.Close(context.Background())
				t.Fatalf("OpenAdmin succeeded, want %q", tc.err)
			}
			if !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "server: admin.socket: ") {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

// TestAdminHTTP reloads through the loopback HTTP listener, which needs
// the bearer token.
func TestAdminHTTP(t *testing.T) {
	token := "0123456789abcdef0123456789abcdef"
	doc := anonymous + "\n[admin]\nsocket = \"off\"\nhttp = \"127.0.0.1:0\"\ntoken_file = \"token\"\n" + gate("gate", "gate.wasm")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEnvIn(t, dir, map[string][]byte{"gate.wasm": wat(t, "allow")}, doc)
	a := openAdmin(t, e)
	if a.SocketPath() != "" || a.HTTPAddr() == "" {
		t.Fatalf("socket %q, http %q; want none and an address", a.SocketPath(), a.HTTPAddr())
	}
	url := "http://" + a.HTTPAddr() + "/reload"
	for _, tc := range []struct {
		name, token string
		code        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", strings.Repeat("x", len(token)), http.StatusUnauthorized},
		{"prefix of the token", token[:16], http.StatusUnauthorized},
		{"token", token, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, res := post(t, http.DefaultClient, url, tc.token)
			if code != tc.code {
				t.Fatalf("status %d, want %d", code, tc.code)
			}
			if code == http.StatusOK && (res.Trigger.Endpoint != "http:"+a.HTTPAddr() || !strings.HasPrefix(res.Trigger.Remote, "127.0.0.1:")) {
				t.Errorf("trigger = %+v", res.Trigger)
			}
		})
	}
}
