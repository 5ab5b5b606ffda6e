package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// Admin configures the local admin endpoint of `moat serve`, which
// `moat reload` talks to. Nothing of it is open to the network: the
// default is a Unix socket beside the config, and the optional HTTP
// listener must be bound to a loopback address and needs a bearer token.
//
// The endpoint is opened once, when the broker starts: a reload reports a
// change here as needing a restart.
type Admin struct {
	// Socket is the Unix socket of the admin endpoint; "off" (SocketOff)
	// disables it. The default is "moat.sock" beside the config file, so
	// that `moat serve -c f` and `moat reload -c f` agree on it without a
	// setting (a per-user directory such as $XDG_RUNTIME_DIR would differ
	// between the service account and an operator). The socket is created
	// with mode 0600, and on Linux a connection from a user other than the
	// broker's own (or root) is refused.
	//
	// Unlike other fields, an absent socket stays "" after Parse (a written
	// one is made absolute): use Config.AdminSocket for the path in force.
	Socket string `toml:"socket"`
	// HTTP also serves the endpoint over HTTP at host:port, e.g.
	// "127.0.0.1:9091". The host must be a loopback IP address: the admin
	// endpoint is never reachable from another machine. Default "": off.
	HTTP string `toml:"http"`
	// TokenFile holds the bearer token HTTP requests must carry
	// ("Authorization: Bearer <token>"); surrounding white space is
	// ignored. Required with HTTP. Like a key file, it must not be
	// accessible to group or others, and the token must be at least
	// MinAdminToken bytes.
	TokenFile string `toml:"token_file"`
}

// SocketOff as [admin] socket disables the admin socket.
const SocketOff = "off"

// MinAdminToken is the shortest bearer token [admin] token_file may hold.
const MinAdminToken = 16

// defaultSocket is the admin socket's file name beside the config.
const defaultSocket = "moat.sock"

// resolveAdmin makes the paths of [admin] absolute with abs
// (Config.resolve's resolver).
func (c *Config) resolveAdmin(abs func(string) string) {
	a := &c.Admin
	if a.Socket != SocketOff {
		a.Socket = abs(a.Socket)
	}
	a.TokenFile = abs(a.TokenFile)
}

// AdminSocket returns the absolute path of the admin socket, "" when
// [admin] socket is "off".
func (c *Config) AdminSocket() string {
	switch c.Admin.Socket {
	case SocketOff:
		return ""
	case "":
		dir := "."
		if c.Path != "" {
			dir = filepath.Dir(c.Path)
		}
		p := filepath.Join(dir, defaultSocket)
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		return p
	}
	return c.Admin.Socket
}

// validateAdmin checks [admin]: a loopback HTTP address and a usable token
// file, so that a typo can never open the admin endpoint to the network.
func (c *Config) validateAdmin(p *problems) {
	a := &c.Admin
	if a.HTTP == "" {
		if a.TokenFile != "" {
			p.add("admin.token_file", errors.New("only used with admin.http"))
		}
		return
	}
	if err := loopback(a.HTTP); err != nil {
		p.add("admin.http", err)
	}
	if a.TokenFile == "" {
		p.add("admin.token_file", errors.New("required with admin.http: a file holding the bearer token"))
		return
	}
	if _, err := c.readToken(a.TokenFile); err != nil {
		p.add("admin.token_file", err)
	}
}

// loopback checks that addr is host:port with a loopback IP address as
// host. Names, even "localhost", are refused: what they resolve to is up
// to /etc/hosts and DNS.
func loopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address: the admin endpoint is never open to the network; use 127.0.0.1 or [::1]", addr)
	}
	if port == "" {
		return fmt.Errorf("%q: no port", addr)
	}
	return nil
}

// readToken reads and checks a token file; the error never contains the
// token.
func (c *Config) readToken(path string) (string, error) {
	if err := c.regularFile(path); err != nil {
		return "", err
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", c.fileErr(err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s: mode %#o lets group or others read the token; chmod 600 it", c.shown(path), perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", c.fileErr(err)
	}
	tok := strings.TrimSpace(string(data))
	if len(tok) < MinAdminToken {
		return "", fmt.Errorf("%s: the token is %d bytes, want at least %d (e.g. head -c 32 /dev/urandom | base64)", c.shown(path), len(tok), MinAdminToken)
	}
	return tok, nil
}

// AdminToken reads the bearer token of [admin] token_file, checked as
// Validate checks it.
func (c *Config) AdminToken() (string, error) {
	tok, err := c.readToken(c.Admin.TokenFile)
	if err != nil {
		return "", fmt.Errorf("config: admin.token_file: %w", err)
	}
	return tok, nil
}

// ReadAdmin returns a Config holding only the [admin] section of the file
// at path (Path and Admin set, paths absolute as Load makes them), for
// `moat reload`: it
// must find the admin endpoint even when the rest of the file is broken,
// since the broker is what reports those problems. Everything outside
// [admin] is ignored. When the file cannot be parsed, ReadAdmin returns the
// defaults together with the error, so that the caller may still try the
// default socket.
func ReadAdmin(path string) (*Config, error) {
	c := &Config{Path: path}
	var raw struct {
		Admin Admin `toml:"admin"`
	}
	data, err := os.ReadFile(path)
	if err == nil {
		_, err = toml.Decode(string(data), &raw)
	}
	if err != nil {
		raw.Admin = Admin{}
	}
	c.Admin = raw.Admin
	dir := filepath.Dir(path)
	if abs, aerr := filepath.Abs(dir); aerr == nil {
		dir = abs
	}
	c.resolveAdmin(func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	})
	if err != nil {
		return c, fmt.Errorf("config: %s: [admin]: %w", path, err)
	}
	return c, nil
}
