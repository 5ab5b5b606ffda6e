package server

import (
	"crypto/tls"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// serverSerial makes a TLS handshake with the broker's tls listener and
// returns the serial number of the certificate it presented.
func serverSerial(t *testing.T, addr string, roots *testutil.CA) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestCertificateReload: a reload (Server.Reload: SIGHUP, `moat reload`) and
// a change of the files (the Watcher) make new handshakes use the new
// certificate and key; connections already established stay; a bad pair
// is refused, reported, and the pair in force stays.
func TestCertificateReload(t *testing.T) {
	ca := testutil.NewCA(t, "reload CA")
	issue := func() *testutil.Leaf {
		return ca.Issue(t, testutil.LeafOptions{CommonName: "localhost", DNSNames: []string{"localhost"}})
	}
	first, second, third := issue(), issue(), issue()
	e := startEnv(t, map[string][]byte{"srv.pem": first.CertPEM, "srv-key.pem": first.KeyPEM}, `
[auth]
allow_anonymous = true
authz_no_match = "allow"
`+`
[[listener]]
name = "tls"
type = "tls"
address = "127.0.0.1:0"
cert_file = "srv.pem"
key_file = "srv-key.pem"
`)
	addr := e.s.Broker().Addr("tls").String()
	if got := serverSerial(t, addr, ca); got != first.Cert.SerialNumber.String() {
		t.Fatalf("serving serial %s, want the first certificate's", got)
	}
	client := testutil.MustConnectV3(t, "tls://"+addr, testutil.V3Options{ClientID: "stays",
		TLS: &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}})
	client.Subscribe(t, "t/#", 1)

	// A new pair, by reload.
	e.replace("srv.pem", second.CertPEM)
	e.replace("srv-key.pem", second.KeyPEM)
	res := e.reload(true)
	if len(res.Certificates) != 1 || !res.Certificates[0].Reloaded || res.Certificates[0].Error != "" {
		t.Fatalf("certificates %+v, want tls reloaded", res.Certificates)
	}
	if got := serverSerial(t, addr, ca); got != second.Cert.SerialNumber.String() {
		t.Fatalf("after reload: serial %s, want the second certificate's", got)
	}
	if !client.IsConnected() {
		t.Fatal("the client connected before the reload was dropped")
	}
	client.Publish(t, "t/1", 1, false, "still here")
	client.Inbox.Want(t, "t/1", "still here")
	if res := e.reload(true); len(res.Certificates) != 1 || res.Certificates[0].Reloaded {
		t.Fatalf("unchanged files: %+v, want not reloaded", res.Certificates)
	}

	// A bad pair: the third certificate with the second's key.
	e.replace("srv.pem", third.CertPEM)
	// The config loader refuses the pair as well, so the whole reload is
	// refused, as for any bad file; the certificate report says why too.
	res = e.reload(false)
	if len(res.Certificates) != 1 || res.Certificates[0].Reloaded ||
		!strings.Contains(res.Certificates[0].Error, "private key does not match public key") ||
		!strings.Contains(res.Certificates[0].Error, filepath.Join(e.dir, "srv.pem")) {
		t.Fatalf("bad pair: %+v", res.Certificates)
	}
	if got := serverSerial(t, addr, ca); got != second.Cert.SerialNumber.String() {
		t.Fatalf("after a bad pair: serial %s, want the second certificate's still", got)
	}

	// The file watcher: fixing the pair reloads it without being asked.
	reloaded := make(chan ReloadResult, 4)
	w, err := e.s.Watch(WatchOptions{Quiet: 50 * time.Millisecond, Reloaded: func(r ReloadResult) { reloaded <- r }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e.replace("srv-key.pem", third.KeyPEM)
	deadline := time.After(10 * time.Second)
	for serverSerial(t, addr, ca) != third.Cert.SerialNumber.String() {
		select {
		case <-deadline:
			t.Fatal("the watcher did not reload the certificate")
		case r := <-reloaded:
			t.Logf("watcher reload: %s", fmt.Sprint(r.Certificates))
		}
	}
	if !client.IsConnected() {
		t.Fatal("the client was dropped")
	}
}
