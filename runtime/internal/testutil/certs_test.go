package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"testing"
)

func TestWriteCerts(t *testing.T) {
	c := WriteCerts(t, t.TempDir())
	for _, f := range []string{c.CAFile, c.ServerCertFile, c.ServerKeyFile, c.ClientCertFile, c.ClientKeyFile} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := tls.LoadX509KeyPair(c.ServerCertFile, c.ServerKeyFile); err != nil {
		t.Errorf("server key pair: %v", err)
	}
	tests := []struct {
		name  string
		leaf  *Leaf
		usage x509.ExtKeyUsage
		host  string
	}{
		{"server", c.Server, x509.ExtKeyUsageServerAuth, "localhost"},
		{"server ip", c.Server, x509.ExtKeyUsageServerAuth, "127.0.0.1"},
		{"client", c.Client, x509.ExtKeyUsageClientAuth, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.leaf.Cert.Verify(x509.VerifyOptions{Roots: c.CA.Pool(), DNSName: tc.host, KeyUsages: []x509.ExtKeyUsage{tc.usage}})
			if err != nil {
				t.Error(err)
			}
		})
	}
	other := NewCA(t, "other")
	if _, err := c.Client.Cert.Verify(x509.VerifyOptions{Roots: other.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("client certificate verifies against another CA")
	}
	if !c.Server.Cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("server IPs %v", c.Server.Cert.IPAddresses)
	}
}

// TestClientTLSAlwaysPresents: the client certificate is sent even when the
// server asks for another CA's, so that tests of foreign certificates test
// something.
func TestClientTLSAlwaysPresents(t *testing.T) {
	c := WriteCerts(t, t.TempDir())
	cfg := c.ClientTLS(c.Client)
	got, err := cfg.GetClientCertificate(&tls.CertificateRequestInfo{AcceptableCAs: [][]byte{[]byte("someone else")}})
	if err != nil || got == nil || len(got.Certificate) == 0 {
		t.Fatalf("GetClientCertificate: %v, %v", got, err)
	}
	if c.ClientTLS(nil).GetClientCertificate != nil {
		t.Error("a config without a leaf presents a certificate")
	}
}
