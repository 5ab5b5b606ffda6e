package broker

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/moat-mqtt/moat/runtime/config"
)

// certHolder holds the certificate and key of a tls or wss listener, which
// a reload may replace while the listener serves: every new handshake
// takes the pair in force through tls.Config.GetCertificate, and
// connections already established keep the session they negotiated.
type certHolder struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// loadCertPair loads and checks a certificate and key: the key must match
// the certificate (tls.X509KeyPair) and the certificate must be valid now,
// so that a reload never swaps in a pair that no client would accept.
func loadCertPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load cert_file %s and key_file %s: %w", certFile, keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("cert_file %s: %w", certFile, err)
		}
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("cert_file %s: certificate expired at %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("cert_file %s: certificate not valid before %s", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &cert, nil
}

func newCertHolder(lc config.Listener) (*certHolder, error) {
	c, err := loadCertPair(lc.CertFile, lc.KeyFile, time.Now())
	if err != nil {
		return nil, fmt.Errorf("broker: listener %q: %w", lc.Name, err)
	}
	h := &certHolder{certFile: lc.CertFile, keyFile: lc.KeyFile}
	h.cur.Store(c)
	return h, nil
}

// get is tls.Config.GetCertificate.
func (h *certHolder) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return h.cur.Load(), nil }

// reload reads the files again. It returns whether the pair in force
// changed; on error the pair in force stays.
func (h *certHolder) reload() (bool, error) {
	c, err := loadCertPair(h.certFile, h.keyFile, time.Now())
	if err != nil {
		return false, err
	}
	old := h.cur.Load()
	if samePair(old, c) {
		return false, nil
	}
	h.cur.Store(c)
	return true, nil
}

func samePair(a, b *tls.Certificate) bool {
	if len(a.Certificate) != len(b.Certificate) {
		return false
	}
	for i := range a.Certificate {
		if !bytes.Equal(a.Certificate[i], b.Certificate[i]) {
			return false
		}
	}
	return true
}

// CertReload is the outcome of reloading one listener's certificate.
type CertReload struct {
	Listener string
	// CertFile and KeyFile are the files read.
	CertFile, KeyFile string
	// Changed is true when new handshakes now use a new pair.
	Changed bool
	// Err is why the files were refused; the pair in force stays.
	Err error
}

// ReloadCertificates reads the certificate and key of every tls and wss
// listener again, from the files the running config names. A valid new
// pair serves every later handshake; connections already established are
// not touched. A pair that does not load, does not match or is not valid
// now is refused and the pair in force stays. Safe for concurrent use; a
// no-op before Start.
func (b *Broker) ReloadCertificates() []CertReload {
	b.mu.Lock()
	lns := b.listeners
	b.mu.Unlock()
	var out []CertReload
	for _, l := range lns {
		if l.certs == nil {
			continue
		}
		changed, err := l.certs.reload()
		r := CertReload{Listener: l.name, CertFile: l.certs.certFile, KeyFile: l.certs.keyFile, Changed: changed, Err: err}
		switch {
		case err != nil:
			b.log.Error("certificate not reloaded; the one in force stays", "listener", l.name, "err", err)
		case changed:
			b.log.Info("certificate reloaded", "listener", l.name, "cert_file", l.certs.certFile)
		}
		out = append(out, r)
	}
	return out
}

// CertFiles lists the certificate and key files of the tls and wss
// listeners, for the file watcher.
func (b *Broker) CertFiles() []string {
	var out []string
	for _, lc := range b.cfg.Listeners {
		if lc.TLS() {
			out = append(out, lc.CertFile, lc.KeyFile)
		}
	}
	return out
}
