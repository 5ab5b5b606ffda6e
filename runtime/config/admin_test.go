package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const adminListener = `
[[listener]]
type = "tcp"
address = "127.0.0.1:0"
`

// TestAdmin checks [admin]: the socket's default and resolution, and the
// rules that keep the HTTP listener off the network.
func TestAdmin(t *testing.T) {
	token := strings.Repeat("t", MinAdminToken)
	tests := []struct {
		name   string
		admin  string
		files  map[string]string // name -> content, written with mode 0600
		socket string            // want AdminSocket(), relative to the dir
		errs   []string          // regexps, one per problem
	}{
		{name: "default", socket: "moat.sock"},
		{name: "relative socket", admin: `socket = "run/admin.sock"`, socket: "run/admin.sock"},
		{name: "absolute socket", admin: `socket = "/run/moat/admin.sock"`, socket: "/run/moat/admin.sock"},
		{name: "off", admin: `socket = "off"`, socket: ""},
		{name: "http", admin: "http = \"127.0.0.1:9091\"\ntoken_file = \"token\"", files: map[string]string{"token": token + "\n"}, socket: "moat.sock"},
		{name: "http ipv6", admin: "http = \"[::1]:9091\"\ntoken_file = \"token\"", files: map[string]string{"token": token}, socket: "moat.sock"},
		{name: "http on every interface", admin: "http = \"0.0.0.0:9091\"\ntoken_file = \"token\"", files: map[string]string{"token": token},
			errs: []string{`^moat\.toml:\d+: admin\.http: "0\.0\.0\.0:9091" is not a loopback address`}},
		{name: "http on a name", admin: "http = \"localhost:9091\"\ntoken_file = \"token\"", files: map[string]string{"token": token},
			errs: []string{`admin\.http: "localhost:9091" is not a loopback address`}},
		{name: "http on a LAN address", admin: "http = \"192.168.1.2:9091\"\ntoken_file = \"token\"", files: map[string]string{"token": token},
			errs: []string{`admin\.http: "192\.168\.1\.2:9091" is not a loopback`}},
		{name: "http without a port", admin: "http = \"127.0.0.1\"\ntoken_file = \"token\"", files: map[string]string{"token": token},
			errs: []string{`admin\.http: address 127\.0\.0\.1: missing port`}},
		{name: "http without a token", admin: `http = "127.0.0.1:9091"`,
			errs: []string{`admin\.token_file: required with admin\.http`}},
		{name: "missing token file", admin: "http = \"127.0.0.1:9091\"\ntoken_file = \"token\"",
			errs: []string{`admin\.token_file: stat token: no such file`}},
		{name: "short token", admin: "http = \"127.0.0.1:9091\"\ntoken_file = \"token\"", files: map[string]string{"token": "short\n"},
			errs: []string{`admin\.token_file: token: the token is 5 bytes, want at least 16`}},
		{name: "token without http", admin: `token_file = "token"`, files: map[string]string{"token": token},
			errs: []string{`admin\.token_file: only used with admin\.http`}},
		{name: "unknown key", admin: `sockett = "x"`, errs: []string{`admin\.sockett: unknown key`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, "moat.toml")
			doc := adminListener + "\n[admin]\n" + tc.admin + "\n"
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path)
			if len(tc.errs) > 0 {
				problems := Problems(err)
				if len(problems) != len(tc.errs) {
					t.Fatalf("problems:\n%v\nwant %d", err, len(tc.errs))
				}
				for i, re := range tc.errs {
					if !regexp.MustCompile(re).MatchString(strings.TrimPrefix(problems[i].Error(), dir+string(filepath.Separator))) {
						t.Errorf("problem %q, want a match for %s", problems[i], re)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tc.socket
			if want != "" && !filepath.IsAbs(want) {
				want = filepath.Join(dir, want)
			}
			if got := c.AdminSocket(); got != want {
				t.Errorf("AdminSocket() = %q, want %q", got, want)
			}
			// moat reload finds the same socket, and the token.
			r, err := ReadAdmin(path)
			if err != nil || r.AdminSocket() != want {
				t.Errorf("ReadAdmin: socket %q, %v; want %q", r.AdminSocket(), err, want)
			}
			if c.Admin.HTTP != "" {
				if tok, err := r.AdminToken(); err != nil || tok != token {
					t.Errorf("AdminToken() = %q, %v", tok, err)
				}
			}
		})
	}
}

// TestAdminTokenMode refuses a token file others may read.
func TestAdminTokenMode(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(strings.Repeat("t", 32)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Parse([]byte(adminListener+"\n[admin]\nhttp = \"127.0.0.1:9091\"\ntoken_file = \"token\"\n"), filepath.Join(dir, "moat.toml"))
	if err == nil || !strings.Contains(err.Error(), "admin.token_file: token: mode 0644 lets group or others read the token; chmod 600 it") {
		t.Errorf("err = %v", err)
	}
}

// TestReadAdminBroken finds the admin socket of a file that does not load:
// `moat reload` must reach the broker to hear what is wrong.
func TestReadAdminBroken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "moat.toml")
	cases := map[string]string{
		"invalid elsewhere": "[admin]\nsocket = \"a.sock\"\n[mqtt]\nmaximum_qos = 7\n[[plugin]]\nname = \"x\"\n",
		"syntax error":      "[admin]\nsocket = \"a.sock\"\n[[listener]\n",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := ReadAdmin(path)
			switch name {
			case "invalid elsewhere":
				if err != nil || c.AdminSocket() != filepath.Join(dir, "a.sock") {
					t.Errorf("socket %q, %v; want a.sock in %s", c.AdminSocket(), err, dir)
				}
			case "syntax error":
				// The section cannot be read: the default, and the error.
				if err == nil || c.AdminSocket() != filepath.Join(dir, "moat.sock") {
					t.Errorf("socket %q, %v; want the default and an error", c.AdminSocket(), err)
				}
			}
		})
	}
}
