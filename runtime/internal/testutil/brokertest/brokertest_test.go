package brokertest

import (
	"testing"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

func TestStart(t *testing.T) {
	dir := t.TempDir()
	certs := testutil.WriteCerts(t, dir)
	b := Start(t, Config(t, dir, TCP+`
[[listener]]
name = "mtls"
type = "tls"
address = "127.0.0.1:0"
cert_file = "server.pem"
key_file = "server-key.pem"
client_ca_file = "ca.pem"
require_client_cert = true
`), AllowAll(), nil)

	c := testutil.MustConnectV3(t, "tcp://"+b.Addr("tcp").String(), testutil.V3Options{})
	c.Subscribe(t, "x", 1)
	s := testutil.MustConnectV5(t, b.Addr("mtls").String(), testutil.V5Options{TLS: certs.ClientTLS(certs.Client)})
	s.Publish(t, "x", 1, false, "hi")
	c.Inbox.Want(t, "x", "hi")

	if _, _, err := testutil.ConnectV5(t, b.Addr("mtls").String(), testutil.V5Options{TLS: certs.ClientTLS(nil)}); err == nil {
		t.Error("connected to an mTLS listener without a certificate")
	}
}
