package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"
)

// The admin endpoint is a small HTTP API for `moat reload`, `moat clients`,
// `moat kick`, `moat sessions`, `moat status` (and curl), and a read-only
// status page for a browser (admin_ui.go):
//
//	POST /reload   reload now; the answer is a ReloadResult as JSON, with
//	               status 200 when the new version is in force and 422
//	               when it was refused (the old one still is).
//	POST /reload/dry-run[?config=/abs/candidate.toml]   what a reload
//	               would change, changing nothing (DryRunResult; dryrun.go).
//
// and the routes of admin_api.go.
//
// It is served on a Unix socket ([admin] socket, default moat.sock beside
// the config, mode 0600; requests from a user other than the broker's own
// or root are refused, and so are those of a peer whose credentials cannot
// be read: SO_PEERCRED on Linux, LOCAL_PEERCRED on macOS and FreeBSD; on
// other platforms the socket refuses everyone), and optionally on a
// loopback TCP address ([admin] http) where each request needs the bearer
// token of [admin] token_file. Nothing is open to the network by default.

// AdminPath is the path of the reload request.
const AdminPath = "/reload"

// maxSocketPath is the longest Unix socket path every platform accepts
// (sun_path is 104 bytes on the BSDs and macOS, 108 on Linux, NUL included).
const maxSocketPath = 103

// Admin is the running admin endpoint.
type Admin struct {
	s      *Server
	log    *slog.Logger
	socket string // "" when off
	token  []byte
	unix   *http.Server
	http   *http.Server
	httpLn net.Listener
	errs   chan error
	opts   AdminOptions
	// uiCookie is the value of the status page's session cookie, derived
	// from the token (admin_ui.go); nil without [admin] http.
	uiCookie []byte
}

type peerKey struct{}

// peer is what the admin endpoint knows of the other end of a connection.
type peer struct {
	uid, pid int
	known    bool   // uid (and pid, where the platform gives it) are set
	credErr  error  // why they are not, on the Unix socket
	endpoint string // "unix:<path>" or "http:<addr>"
}

// OpenAdmin opens the admin endpoint described by the server's [admin]
// section and serves it in the background until Close. A stale socket
// file left by a broker that crashed is replaced; a socket another broker
// still answers on is not.
func (s *Server) OpenAdmin(opts AdminOptions) (*Admin, error) {
	a := &Admin{s: s, log: s.log, errs: make(chan error, 2), opts: opts}
	if path := s.cfg.AdminSocket(); path != "" {
		ln, err := listenUnix(path)
		if err != nil {
			return nil, fmt.Errorf("server: admin.socket: %w", err)
		}
		a.socket = path
		endpoint := "unix:" + path
		a.unix = a.newHTTPServer(endpoint, false)
		creds := s.peerCred
		if creds == nil {
			creds = peerCred
		}
		a.unix.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			p := peer{endpoint: endpoint}
			p.uid, p.pid, p.credErr = creds(c)
			p.known = p.credErr == nil
			return context.WithValue(ctx, peerKey{}, p)
		}
		go a.serve(a.unix, ln)
	}
	if s.cfg.Admin.HTTP != "" {
		tok, err := s.cfg.AdminToken()
		if err != nil {
			return nil, errors.Join(fmt.Errorf("server: %w", err), a.Close(context.Background()))
		}
		a.token = []byte(tok)
		a.uiCookie = uiCookieValue(a.token)
		ln, err := net.Listen("tcp", s.cfg.Admin.HTTP)
		if err != nil {
			return nil, errors.Join(fmt.Errorf("server: admin.http: %w", err), a.Close(context.Background()))
		}
		a.httpLn = ln
		endpoint := "http:" + ln.Addr().String()
		a.http = a.newHTTPServer(endpoint, true)
		a.http.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peer{endpoint: endpoint})
		}
		go a.serve(a.http, ln)
	}
	for _, e := range []string{a.socket, a.HTTPAddr()} {
		if e != "" {
			a.log.Info("admin endpoint", "address", e)
		}
	}
	return a, nil
}

// listenUnix binds a Unix socket at path with mode 0600.
func listenUnix(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("%s: the path is %d bytes, over the %d a Unix socket allows; set a shorter [admin] socket, or \"off\"", path, len(path), maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another moat is serving on it", path)
		}
		// Nobody answers: left by a broker that did not shut down.
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The socket file takes the umask's mode: narrow it at once. On Linux
	// the peer check in authorize closes the window before the chmod.
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, errors.Join(err, ln.Close())
	}
	return ln, nil
}

func (a *Admin) newHTTPServer(endpoint string, token bool) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+AdminPath, a.reload)
	mux.HandleFunc("POST "+DryRunPath, a.dryRun) // dryrun.go
	a.routes(mux)                                // admin_api.go
	a.handleBans(mux)                            // bans.go
	return &http.Server{
		Handler:           a.authorize(mux, token),
		ReadHeaderTimeout: 10 * time.Second,
		// No write timeout: a reload that compiles a large module takes
		// as long as it takes, and the client decides how long to wait.
		ErrorLog: slog.NewLogLogger(a.log.With("admin", endpoint).Handler(), slog.LevelWarn),
	}
}

func (a *Admin) serve(srv *http.Server, ln net.Listener) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.log.Error("admin endpoint stopped", "err", err)
	}
}

// authorize admits requests: on the Unix socket, from the broker's own
// user or root (when the platform tells who is connected); on HTTP, with
// the bearer token.
func (a *Admin) authorize(next http.Handler, token bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(peer)
		if token {
			given, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(given)), a.token) == 1 {
				next.ServeHTTP(w, r)
				return
			}
			// The status page's browser: see admin_ui.go.
			if a.uiAdmit(w, r, next) {
				return
			}
			auditAdmin(a.log, "request", true, "method", r.Method, "path", r.URL.Path, "err", "bad or missing token", "by", who(r))
			w.Header().Set("WWW-Authenticate", `Bearer realm="moat"`)
			http.Error(w, "moat: a valid bearer token is required", http.StatusUnauthorized)
			return
		} else if !p.known {
			// The socket's mode (0600) is set after it is bound, and a
			// file mode is all that would stand between any local user
			// and a reload: without credentials, nobody is admitted.
			auditAdmin(a.log, "request", true, "method", r.Method, "path", r.URL.Path, "err", "peer credentials unreadable: "+fmt.Sprint(p.credErr), "by", who(r))
			http.Error(w, "moat: the admin socket cannot tell who is connecting, so it refuses; use [admin] http with a token_file", http.StatusForbidden)
			return
		} else if p.uid != os.Geteuid() && p.uid != 0 {
			auditAdmin(a.log, "request", true, "method", r.Method, "path", r.URL.Path, "err", "another user", "by", who(r))
			http.Error(w, "moat: only the broker's user and root may use the admin socket", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// reload serves POST /reload.
func (a *Admin) reload(w http.ResponseWriter, r *http.Request) {
	p, _ := r.Context().Value(peerKey{}).(peer)
	t := Trigger{Source: TriggerAdmin, Endpoint: p.endpoint}
	if p.known {
		uid := p.uid
		t.PeerUID, t.PeerPID = &uid, p.pid
	}
	if strings.HasPrefix(p.endpoint, "http:") {
		t.Remote = r.RemoteAddr
	}
	res := a.s.Reload(r.Context(), t)
	w.Header().Set("Content-Type", "application/json")
	if res.Applied {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusUnprocessableEntity)
	}
	_ = json.NewEncoder(w).Encode(res)
}

// SocketPath returns the admin socket's path, "" when it is off.
func (a *Admin) SocketPath() string { return a.socket }

// HTTPAddr returns the address of the HTTP listener, "" when it is off.
func (a *Admin) HTTPAddr() string {
	if a.httpLn == nil {
		return ""
	}
	return a.httpLn.Addr().String()
}

// Close stops the endpoint, letting requests in progress finish within
// ctx, and removes the socket file.
func (a *Admin) Close(ctx context.Context) error {
	var errs []error
	for _, srv := range []*http.Server{a.unix, a.http} {
		if srv != nil {
			errs = append(errs, srv.Shutdown(ctx))
		}
	}
	return errors.Join(errs...)
}

// peerCred returns the uid and pid of the process at the other end of a
// Unix socket connection, where the platform tells (see peercred_*.go); pid
// is 0 where the platform gives a uid only.
func peerCred(c net.Conn) (uid, pid int, err error) {
	sc, isSys := c.(syscall.Conn)
	if !isSys {
		return 0, 0, fmt.Errorf("server: admin socket: %T has no file descriptor", c)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, fmt.Errorf("server: admin socket: %w", err)
	}
	var cerr error
	err = raw.Control(func(fd uintptr) { uid, pid, cerr = sockPeerCred(fd) })
	if err = errors.Join(err, cerr); err != nil {
		return 0, 0, fmt.Errorf("server: admin socket: peer credentials: %w", err)
	}
	return uid, pid, nil
}
