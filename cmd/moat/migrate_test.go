package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/config/mosquittoconf"
)

// migrateCorpus copies testdata/mosquitto into a temporary directory with
// @DIR@ replaced by it, and adds what the files name: certificates, a
// password file and an ACL file.
func migrateCorpus(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := filepath.WalkDir("testdata/mosquitto", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/mosquitto", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), bytes.ReplaceAll(b, []byte("@DIR@"), []byte(dir)), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeTestCerts(t, filepath.Join(dir, "certs"), "localhost")
	h, err := passwdfile.HashWith([]byte("pw"), passwdfile.FormatSHA512PBKDF2, passwdfile.HashOptions{Iterations: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{
		"passwd": "alice:" + h + "\n",
		"acl":    "user alice\ntopic readwrite sensors/#\npattern read devices/%u/#\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestMigrateCorpus translates every mosquitto.conf of the corpus, checks
// what is carried and what is listed as not carried, and loads the result
// with the real config loader (the certificates, modules and granted files
// it names must exist). The Debian-style file also goes through `moat
// check`, which compiles the passwd and acl plugins (built by make build).
func TestMigrateCorpus(t *testing.T) {
	dir := migrateCorpus(t)
	plugins, err := filepath.Abs(filepath.Join("..", "..", "bin", "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file      string
		toml      []string // substrings of the moat.toml
		notToml   []string
		notes     []string // substrings of stderr, in any order
		noteCount int
	}{
		{
			file: "debian.conf",
			toml: []string{
				`address = "127.0.0.1:1883"`,
				"type = \"tls\"\naddress = \":8883\"",
				`client_ca_file = "` + dir + `/certs/ca.pem"`, `min_tls_version = "1.2"`,
				"type = \"ws\"\naddress = \":9001\"",
				"[persistence]\ntype = \"bolt\"\npath = \"" + dir + "/lib/moat.db\"",
				"allow_anonymous = false",
				`passwords = "` + dir + `/passwd"`, `acl = "` + dir + `/acl"`,
				"# " + dir + "/conf.d/10-listeners.conf:2",
			},
			notToml: []string{"require_client_cert", "listener 1"},
			notes: []string{
				"debian.conf:6: pid_file: not carried",
				"debian.conf:8: persistence: carried as",
				"debian.conf:11: log_dest: not carried",
			},
			noteCount: 3,
		},
		{
			file: "plain/limits.conf",
			toml: []string{
				`address = ":1883"`, "maximum_packet_size = 65536", "maximum_inflight = 40",
				`maximum_keepalive = "120s"`, "maximum_clients = 500", `maximum_session_expiry = "336h0m0s"`,
				"retain_available = true", "allow_anonymous = true",
			},
			notToml: []string{"[[plugin]]", "[persistence]"},
			notes: []string{
				"limits.conf:5: max_queued_messages: not carried", "limits.conf:7: max_connections: carried as",
				"limits.conf:10: sys_interval: not carried", "limits.conf:12: connection_messages: not carried",
				"limits.conf:13: log_type: not carried", "limits.conf:14: log_type: not carried",
			},
			noteCount: 6,
		},
		{
			file:  "plain/localonly.conf",
			toml:  []string{`address = "127.0.0.1:1883"`, "allow_anonymous = true"},
			notes: []string{"localonly.conf:2: log_dest: not carried", "no listener: Mosquitto 2.0's local-only mode"},
		},
		{
			file: "plain/bridge.conf",
			toml: []string{"maximum_packet_size = 331784", `passwords = "` + dir + `/passwd"`},
			notes: []string{
				"bridge.conf:4: message_size_limit: carried as maximum_packet_size",
				"bridge.conf:5: auth_plugin: not carried", "bridge.conf:6: auth_opt_backends: not carried",
				"bridge.conf:8: connection: not carried: moat has no bridges",
				"bridge.conf:9: address: not carried", "bridge.conf:13: remote_password: not carried",
			},
			noteCount: 9,
		},
		{
			file: "perlistener/same.conf",
			toml: []string{
				`passwords = "` + dir + `/passwd"`, "require_client_cert = true", `min_tls_version = "1.3"`,
				"allow_anonymous = false",
			},
			notes:     []string{"same.conf:1: per_listener_settings: true: moat's policy is global"},
			noteCount: 1,
		},
		{
			file:    "perlistener/differ.conf",
			toml:    []string{"allow_anonymous = false", `address = "127.0.0.1:1883"`},
			notToml: []string{"[[plugin]]"},
			notes:   []string{"listeners differ in password_file, acl_file or allow_anonymous; none of them is carried"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			src := filepath.Join(dir, tc.file)
			var out, errOut bytes.Buffer
			if code := runMigrate([]string{"-plugins", plugins, src}, nil, &out, &errOut); code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			got := out.String()
			for _, s := range tc.toml {
				if !strings.Contains(got, s) {
					t.Errorf("moat.toml lacks %q:\n%s", s, got)
				}
			}
			for _, s := range tc.notToml {
				if strings.Contains(got, s) {
					t.Errorf("moat.toml has %q:\n%s", s, got)
				}
			}
			notes := strings.Split(strings.TrimSpace(errOut.String()), "\n")
			for _, s := range tc.notes {
				found := false
				for _, n := range notes {
					found = found || strings.Contains(n, s)
				}
				if !found {
					t.Errorf("stderr lacks %q:\n%s", s, errOut.String())
				}
			}
			if tc.noteCount > 0 && len(notes) != tc.noteCount {
				t.Errorf("%d notes, want %d:\n%s", len(notes), tc.noteCount, errOut.String())
			}
			path := filepath.Join(dir, strings.ReplaceAll(tc.file, "/", "-")+".toml")
			if err := os.WriteFile(path, out.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := config.Load(path); err != nil {
				t.Fatalf("config.Load of the result: %v\n%s", err, got)
			}
			if tc.file == "debian.conf" {
				// moat check also checks that the persistence directory
				// is writable: make the one the file names, as the
				// package's postinst would.
				if err := os.MkdirAll(filepath.Join(dir, "lib"), 0o755); err != nil {
					t.Fatal(err)
				}
				var so, se bytes.Buffer
				if code := runCheck([]string{"-c", path}, nil, &so, &se); code != exitOK {
					t.Fatalf("moat check: exit %d: %s%s", code, so.String(), se.String())
				}
			}
		})
	}
}

// FuzzMigrate: whatever the mosquitto.conf, migrate writes valid TOML (the
// config loader may still refuse a value, naming it, but never the syntax).
func FuzzMigrate(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/mosquitto/*/*.conf")
	more, _ := filepath.Glob("testdata/mosquitto/*.conf")
	for _, p := range append(seeds, more...) {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Add("listener 1883 \"a\\b\"\ncertfile \x01\npassword_file \"q\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		ds, err := mosquittoconf.Parse(strings.NewReader(in), "f.conf")
		if err != nil {
			return
		}
		doc := translate(ds, "f.conf", "/plugins").toml()
		var v map[string]any
		if _, err := toml.Decode(doc, &v); err != nil {
			t.Fatalf("invalid TOML: %v\n%s", err, doc)
		}
	})
}

// writeTestCerts writes ca.pem, and server.pem with server-key.pem signed
// by it for host, into dir.
func writeTestCerts(t testing.TB, dir, host string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, srvKey := key(), key()
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string]*pem.Block{
		"ca.pem":         {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem":     {Type: "CERTIFICATE", Bytes: srvDER},
		"server-key.pem": {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
