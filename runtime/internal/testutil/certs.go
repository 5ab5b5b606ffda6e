// Package testutil holds helpers shared by moat's tests: certificates
// generated on the fly and MQTT clients (paho for 3.1.1 and 5) with test
// defaults. It imports nothing of moat, so every package's tests can use it,
// runtime/broker's included.
package testutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throwaway certificate authority. ECDSA P-256 keeps generation
// fast (well under a millisecond a key).
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// NewCA creates a self-signed CA named cn, valid for a day.
func NewCA(t testing.TB, cn string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"moat tests"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatalf("testutil: create CA: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testutil: parse CA: %v", err)
	}
	return &CA{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), key: key}
}

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Leaf is an issued certificate with its key, in PEM and parsed.
type Leaf struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
	TLS     tls.Certificate
}

// LeafOptions describe a certificate to issue.
type LeafOptions struct {
	CommonName string
	DNSNames   []string
	IPs        []net.IP
	Emails     []string
	// Client issues a client-auth certificate; otherwise server-auth.
	Client bool
	// NotAfter defaults to a day from now.
	NotAfter time.Time
}

// Issue signs a new leaf certificate.
func (ca *CA) Issue(t testing.TB, o LeafOptions) *Leaf {
	t.Helper()
	key := newKey(t)
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(24 * time.Hour)
	}
	usage := x509.ExtKeyUsageServerAuth
	if o.Client {
		usage = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial(t),
		Subject:        pkix.Name{CommonName: o.CommonName},
		DNSNames:       o.DNSNames,
		IPAddresses:    o.IPs,
		EmailAddresses: o.Emails,
		NotBefore:      time.Now().Add(-time.Hour),
		NotAfter:       o.NotAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		ExtKeyUsage:    []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		t.Fatalf("testutil: issue %q: %v", o.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testutil: parse %q: %v", o.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testutil: marshal key: %v", err)
	}
	l := &Leaf{Cert: cert, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: pemBlock("PRIVATE KEY", keyDER)}
	l.TLS, err = tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatalf("testutil: key pair: %v", err)
	}
	return l
}

// Certs is a CA with a server certificate for localhost and 127.0.0.1 and
// a client certificate, written as PEM files into Dir.
type Certs struct {
	Dir string
	CA  *CA
	// Server is valid for "localhost", 127.0.0.1 and ::1.
	Server *Leaf
	// Client has CommonName "client" and e-mail client@example.com.
	Client *Leaf

	CAFile, ServerCertFile, ServerKeyFile, ClientCertFile, ClientKeyFile string
}

// WriteCerts creates a CA, a server and a client certificate and writes
// them to dir as ca.pem, server.pem, server-key.pem, client.pem and
// client-key.pem.
func WriteCerts(t testing.TB, dir string) *Certs {
	t.Helper()
	ca := NewCA(t, "moat test CA")
	c := &Certs{
		Dir: dir,
		CA:  ca,
		Server: ca.Issue(t, LeafOptions{
			CommonName: "localhost",
			DNSNames:   []string{"localhost"},
			IPs:        []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		}),
		Client: ca.Issue(t, LeafOptions{CommonName: "client", Emails: []string{"client@example.com"}, Client: true}),

		CAFile:         filepath.Join(dir, "ca.pem"),
		ServerCertFile: filepath.Join(dir, "server.pem"),
		ServerKeyFile:  filepath.Join(dir, "server-key.pem"),
		ClientCertFile: filepath.Join(dir, "client.pem"),
		ClientKeyFile:  filepath.Join(dir, "client-key.pem"),
	}
	for path, data := range map[string][]byte{
		c.CAFile:         ca.CertPEM,
		c.ServerCertFile: c.Server.CertPEM,
		c.ServerKeyFile:  c.Server.KeyPEM,
		c.ClientCertFile: c.Client.CertPEM,
		c.ClientKeyFile:  c.Client.KeyPEM,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatalf("testutil: %v", err)
		}
	}
	return c
}

// ClientTLS returns a client configuration that trusts the CA and, when
// leaf is not nil, presents leaf. It presents leaf even when the server
// asks for certificates of other CAs: crypto/tls would otherwise quietly
// send none, and a test of a foreign certificate would test nothing.
func (c *Certs) ClientTLS(leaf *Leaf) *tls.Config {
	cfg := &tls.Config{RootCAs: c.CA.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if leaf != nil {
		cert := leaf.TLS
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return cfg
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testutil: generate key: %v", err)
	}
	return k
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("testutil: serial: %v", err)
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
