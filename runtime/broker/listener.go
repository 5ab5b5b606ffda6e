package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/moat-mqtt/moat/runtime/config"
)

// connectTimeout bounds the time between accepting a socket and reading its
// CONNECT packet, TLS handshake and websocket upgrade included. mochi sets no
// deadline before CONNECT, so without this a peer that opens sockets and
// stays silent would hold a goroutine and a file descriptor forever. After
// CONNECT mochi replaces the deadline with 1.5 times the keepalive. Start
// replaces it with [limits] connect_timeout (limits.go, applyLimits).
const connectTimeout = 20 * time.Second

// Listener types of moat.toml.
const (
	typeTCP = "tcp"
	typeTLS = "tls"
	typeWS  = "ws"
	typeWSS = "wss"
)

// listener serves one [[listener]] entry and implements mochi's
// listeners.Listener.
//
// moat binds sockets itself instead of using mochi's listeners.TCP and
// listeners.Websocket because in mochi v2.7.9:
//   - the websocket listener binds inside Serve (ListenAndServe), so a bind
//     error is only logged and the port of a ":0" address is never known;
//   - Close disconnects the clients and closes the socket in one step, so a
//     graceful shutdown cannot stop accepting while in-flight messages finish;
//   - the TCP accept loop writes a shared error variable from every
//     connection goroutine (a data race) and logs client errors at warn.
//
// Binding in Start also makes Start all-or-nothing: every socket is bound
// before mochi serves any of them.
type listener struct {
	name string
	typ  string
	log  *slog.Logger

	raw net.Listener // the bound TCP socket, for Addr
	// tracking wraps raw; its gate (limits.go) admits each socket.
	tracking *trackingListener
	ln       net.Listener // raw, or TLS over raw for tcp/tls listeners
	conns    *connSet     // every accepted socket, until it is closed
	http     *http.Server // ws and wss only
	up       websocket.Upgrader

	establish listeners.EstablishFn
	// connectTimeout is [limits] connect_timeout (limits.go sets it).
	connectTimeout time.Duration

	// certs is the certificate in force of a tls or wss listener, which
	// ReloadCertificates may replace (certs.go); nil on tcp and ws.
	certs *certHolder

	mu       sync.Mutex
	closed   bool           // no new connection is handed to mochi
	serving  bool           // Serve was entered
	served   chan struct{}  // closed when Serve returns
	handlers sync.WaitGroup // connection goroutines
}

var _ listeners.Listener = (*listener)(nil)

// bind opens the socket of lc. The listener is closed with closeUnserved
// until mochi has it, then by mochi's Server.Close.
func bind(lc config.Listener, log *slog.Logger) (*listener, error) {
	var tcfg *tls.Config
	var certs *certHolder
	switch lc.Type {
	case typeTCP, typeWS:
	case typeTLS, typeWSS:
		var err error
		if tcfg, certs, err = tlsConfig(lc); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("broker: listener %q: unknown type %q", lc.Name, lc.Type)
	}

	raw, err := net.Listen("tcp", lc.Address)
	if err != nil {
		return nil, fmt.Errorf("broker: listener %q: %w", lc.Name, err)
	}
	l := &listener{
		name:   lc.Name,
		typ:    lc.Type,
		log:    log.With("listener", lc.Name),
		raw:    raw,
		certs:  certs,
		conns:  &connSet{m: make(map[*trackedConn]struct{})},
		served: make(chan struct{}),

		connectTimeout: connectTimeout,
	}
	l.tracking = &trackingListener{Listener: raw, set: l.conns}
	var ln net.Listener = l.tracking
	if tcfg != nil {
		if l.typ == typeWSS {
			// Websockets ride on HTTP/1.1; never negotiate h2.
			tcfg.NextProtos = []string{"http/1.1"}
		}
		ln = tls.NewListener(ln, tcfg)
	}
	l.ln = ln

	if l.typ == typeWS || l.typ == typeWSS {
		l.up = websocket.Upgrader{
			Subprotocols: []string{"mqtt"},
			CheckOrigin:  originChecker(lc.AllowedOrigins, l.log),
			// An idle websocket holds no write buffer: one is taken from
			// the pool for each message written (see serveWebsocket).
			WriteBufferPool: new(sync.Pool),
		}
		l.http = &http.Server{
			Handler:           http.HandlerFunc(l.serveWebsocket),
			ReadHeaderTimeout: connectTimeout,
			// A non-nil empty map disables HTTP/2 on wss.
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
			// net/http logs TLS handshake failures itself; they are
			// client errors, so debug.
			ErrorLog: slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
		}
	}
	return l, nil
}

// originChecker returns the Origin check of a websocket listener with
// allowed_origins list. A request without an Origin header comes from
// something other than a browser page (mosquitto, paho) and is allowed:
// MQTT authenticates in CONNECT. A browser page is allowed only from a
// listed origin ("*": any), because a page the user merely visits would
// otherwise speak MQTT from the user's machine: to a broker reachable only
// from there (localhost, the LAN), and with the TLS client certificate the
// browser presents for the user. Mosquitto and mochi accept every origin.
func originChecker(allowed []string, log *slog.Logger) func(*http.Request) bool {
	set := make(map[string]bool, len(allowed))
	for _, o := range allowed {
		set[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" || set["*"] || set[strings.ToLower(origin)] {
			return true
		}
		log.Info("websocket refused: origin not in allowed_origins", "origin", origin, "remote", r.RemoteAddr)
		return false
	}
}

// tlsConfig builds the server TLS settings of a tls or wss listener. The
// certificate comes from the returned holder at each handshake, so that a
// reload can replace it (certs.go).
func tlsConfig(lc config.Listener) (*tls.Config, *certHolder, error) {
	certs, err := newCertHolder(lc)
	if err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{GetCertificate: certs.get}
	switch lc.MinTLSVersion {
	case "", "1.2":
		cfg.MinVersion = tls.VersionTLS12
	case "1.3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, nil, fmt.Errorf("broker: listener %q: min_tls_version %q: want \"1.2\" or \"1.3\"", lc.Name, lc.MinTLSVersion)
	}
	if lc.ClientCAFile == "" {
		if lc.RequireClientCert {
			return nil, nil, fmt.Errorf("broker: listener %q: require_client_cert needs client_ca_file", lc.Name)
		}
		return cfg, certs, nil
	}
	pem, err := os.ReadFile(lc.ClientCAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("broker: listener %q: client_ca_file: %w", lc.Name, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("broker: listener %q: client_ca_file %s: no PEM certificate found", lc.Name, lc.ClientCAFile)
	}
	cfg.ClientCAs = pool
	// Without require_client_cert a certificate is optional, but one that is
	// presented must verify: policy may then trust Cert fields.
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	if lc.RequireClientCert {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, certs, nil
}

// ID implements listeners.Listener; it is the listener's name.
func (l *listener) ID() string { return l.name }

// Address implements listeners.Listener: the bound address.
func (l *listener) Address() string { return l.raw.Addr().String() }

// Protocol implements listeners.Listener.
func (l *listener) Protocol() string { return l.typ }

// Init implements listeners.Listener. The socket is already bound and the
// listener logs with moat's logger, so there is nothing to do.
func (l *listener) Init(*slog.Logger) error { return nil }

// Serve implements listeners.Listener: it hands accepted connections to
// mochi until the listener is closed. mochi runs it in its own goroutine.
func (l *listener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	if l.closed || l.serving {
		l.mu.Unlock()
		return
	}
	l.serving = true
	l.establish = establish
	l.mu.Unlock()
	defer close(l.served)

	if l.http != nil {
		if err := l.http.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !l.isClosed() {
			l.log.Error("websocket listener stopped", "err", err)
		}
		return
	}

	var backoff time.Duration
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait and retry, as
			// net/http does, rather than spin or give up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accept failed", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !l.track() {
			_ = conn.Close()
			return
		}
		go func() {
			defer l.handlers.Done()
			l.handle(conn)
		}()
	}
}

// track registers a connection goroutine, or reports that the listener is
// closed and the connection must be dropped.
func (l *listener) track() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.handlers.Add(1)
	return true
}

func (l *listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// serveWebsocket upgrades an HTTP request and serves MQTT over it. mochi,
// like Mosquitto, serves websockets on every path.
func (l *listener) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	if !l.track() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	handed := false // to the connection's goroutine, which then calls Done
	defer func() {
		if !handed {
			l.handlers.Done()
		}
	}()
	ws, err := l.up.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered with an HTTP error.
		l.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	// The connection is hijacked: serve it in a goroutine of its own and
	// let net/http's goroutine end, which frees net/http's per-connection
	// state and buffers (about 5 KiB of heap per idle websocket, with the
	// upgrader's WriteBufferPool).
	handed = true
	go func() {
		defer l.handlers.Done()
		l.handle(&wsConn{Conn: ws.UnderlyingConn(), ws: ws})
	}()
}

// handle runs mochi's whole connection lifetime for conn. Every error here
// was caused by a client (bad packet, refused CONNECT, closed socket) or by
// shutdown, so it is logged at debug. A panic in mochi's packet handling is
// contained to this connection.
//
// handle's frame stays on the connection goroutine's stack while the
// client is idle, so the deadline and the logging are done in other
// functions: a few hundred bytes more here and the runtime can no longer
// shrink an idle connection's stack to 4 KiB (mochi patch 4,
// third_party/mochi/PATCHES.md).
func (l *listener) handle(conn net.Conn) {
	defer l.recoverConn(conn)
	l.setConnectDeadline(conn)
	if err := l.establish(l.name, conn); err != nil {
		l.connEnded(conn, err)
	}
}

// recoverConn is deferred by handle: it contains a panic to its connection.
func (l *listener) recoverConn(conn net.Conn) {
	if v := recover(); v != nil {
		_ = conn.Close()
		l.log.Error("recovered from panic serving a connection", "remote", conn.RemoteAddr().String(), "err", fmt.Sprint(v))
	}
}

// setConnectDeadline bounds the time until CONNECT; mochi replaces the
// deadline with the keepalive's once it has read the CONNECT.
//
//go:noinline
func (l *listener) setConnectDeadline(conn net.Conn) {
	if tc := trackedOf(conn); tc != nil {
		tc.armConnectDeadline(time.Now().Add(l.connectTimeout))
		return
	}
	_ = conn.SetDeadline(time.Now().Add(l.connectTimeout))
}

// connEnded logs why a connection ended, unless it simply closed, and
// counts a socket cut by the connect timeout.
//
//go:noinline
func (l *listener) connEnded(conn net.Conn, err error) {
	if !errors.Is(err, io.EOF) {
		l.log.Debug("connection ended", "remote", conn.RemoteAddr().String(), "err", err)
	}
	if tc := trackedOf(conn); tc != nil && tc.connectTimedOut(err) && l.tracking.gate != nil {
		l.tracking.gate.g.connectTimedOut(conn, l.name)
	}
}

// stopAccepting closes the socket; connections already accepted continue.
func (l *listener) stopAccepting() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	if l.http != nil {
		// Closes the socket and every connection that is not yet a
		// websocket; upgraded (hijacked) ones are mochi's.
		_ = l.http.Close()
	}
	_ = l.ln.Close()
}

// closeConns cuts every connection of this listener at the socket, whatever
// its state. mochi then sees read and write errors and cleans up.
func (l *listener) closeConns() { l.conns.closeAll() }

// Close implements listeners.Listener. mochi calls it from Server.Close:
// the socket is closed, mochi disconnects its clients on this listener
// (DISCONNECT "server shutting down" for MQTT 5), then any connection still
// open (one that never sent CONNECT, say) is cut, and Close waits for the
// listener's goroutines.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.stopAccepting()
	closeClients(l.name)
	l.closeConns()
	l.mu.Lock()
	serving := l.serving
	l.mu.Unlock()
	if serving {
		<-l.served
	}
	l.handlers.Wait()
}

// connSet tracks accepted sockets so that shutdown can cut them.
type connSet struct {
	mu sync.Mutex
	m  map[*trackedConn]struct{}
}

func (s *connSet) add(c *trackedConn) {
	s.mu.Lock()
	s.m[c] = struct{}{}
	s.mu.Unlock()
}

func (s *connSet) remove(c *trackedConn) {
	s.mu.Lock()
	delete(s.m, c)
	s.mu.Unlock()
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	cs := make([]*trackedConn, 0, len(s.m))
	for c := range s.m {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
	}
}

// setWriteDeadline sets the write deadline of every socket.
func (s *connSet) setWriteDeadline(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.m {
		_ = c.SetWriteDeadline(t)
	}
}

// trackingListener records every accepted socket in a connSet, once its
// gate (gate.go) has admitted it.
type trackingListener struct {
	net.Listener
	set  *connSet
	gate *listenerGate // nil: every socket is admitted
}

func (t *trackingListener) Accept() (net.Conn, error) {
	c, err := t.Listener.Accept()
	for err == nil && t.gate != nil {
		if c = t.gate.admit(c); c != nil {
			break
		}
		c, err = t.Listener.Accept() // refused and closed at once
	}
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, set: t.set}
	t.set.add(tc)
	return tc, nil
}

// trackedConn leaves its connSet when closed. It also tells whether the
// connect deadline was still the one in force when a read timed out.
type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
	// rearmed is set by any deadline set after armConnectDeadline: mochi
	// replaces the connect deadline with the keepalive's once it has read
	// the CONNECT.
	rearmed atomic.Bool
}

// armConnectDeadline sets the deadline by which the CONNECT must be read.
func (c *trackedConn) armConnectDeadline(t time.Time) {
	_ = c.Conn.SetDeadline(t)
	c.rearmed.Store(false)
}

// connectTimedOut reports whether err, what serving the connection ended
// with, is the connect deadline passing: a timeout while no other deadline
// had been set since armConnectDeadline.
func (c *trackedConn) connectTimedOut(err error) bool {
	return err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.rearmed.Load()
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	c.rearmed.Store(true)
	return c.Conn.SetDeadline(t)
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.rearmed.Store(true)
	return c.Conn.SetReadDeadline(t)
}

// trackedOf finds the trackedConn beneath the connection mochi serves.
func trackedOf(c net.Conn) *trackedConn {
	t, _ := beneath[*trackedConn](c)
	return t
}

// beneath finds the connection of type T beneath the one mochi serves: TLS
// and websocket wrap the tracked socket, which wraps the gated one.
func beneath[T net.Conn](c net.Conn) (T, bool) {
	for range 8 {
		if x, ok := c.(T); ok {
			return x, true
		}
		switch x := c.(type) {
		case *trackedConn:
			c = x.Conn
		case *wsConn:
			c = x.Conn
		case *tls.Conn:
			c = x.NetConn()
		default:
			var zero T
			return zero, false
		}
	}
	var zero T
	return zero, false
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.set.remove(c) })
	return c.Conn.Close()
}

// wsConn presents a websocket as the byte stream mochi reads MQTT from
// [MQTT-6.0.0-2]: packets may span binary messages and a message may hold
// several packets. Deadlines and addresses are those of the socket beneath.
type wsConn struct {
	net.Conn
	ws *websocket.Conn
	r  io.Reader // the message being read, nil between messages
}

// errTextFrame is returned for a text message [MQTT-6.0.0-1].
var errTextFrame = errors.New("broker: websocket: text message; MQTT needs binary")

func (c *wsConn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			typ, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if typ != websocket.BinaryMessage {
				return 0, errTextFrame
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n == 0 {
				continue // empty message, or end of one: read the next
			}
			err = nil
		}
		return n, err
	}
}

// Write sends p as one binary message. mochi serializes writes per client.
func (c *wsConn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ConnectionState reports the TLS state of a wss connection, so that the
// policy hook reads peer certificates of tls and wss clients alike through
// the method *tls.Conn has. On a ws listener the state is empty: no
// verified chains, no certificate.
func (c *wsConn) ConnectionState() tls.ConnectionState {
	if tc, ok := c.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// closeUnserved releases a listener that mochi never took over (Start
// failed part-way).
func (l *listener) closeUnserved() {
	l.stopAccepting()
	l.closeConns()
}
