package broker

import (
	"testing"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// BenchmarkTransportQoS1 measures one QoS 1 publish from a 3.1.1 client to
// a subscriber, waiting for the PUBACK, over each listener type: the cost
// of moat's own listeners (TLS, websocket framing) against plain TCP, with
// the allow-all policy. Client work (paho) is included.
//
//	go test -run='^$' -bench=BenchmarkTransportQoS1 -count=10 ./runtime/broker/
func BenchmarkTransportQoS1(b *testing.B) {
	dir := b.TempDir()
	certs := testutil.WriteCerts(b, dir)
	h := startHarnessIn(b, dir, tlsListeners+tcpConfig, nil)
	h.logs.quiet()
	for _, tc := range []struct{ name, url string }{
		{"tcp", h.url("tcp", "tcp")},
		{"tls", h.url("ssl", "tls")},
		{"ws", h.url("ws", "ws")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			sub := testutil.MustConnectV3(b, tc.url, testutil.V3Options{TLS: certs.ClientTLS(nil)})
			sub.Subscribe(b, "bench/"+tc.name, 1)
			pub := testutil.MustConnectV3(b, tc.url, testutil.V3Options{TLS: certs.ClientTLS(nil)})
			payload := make([]byte, 64)
			b.ReportAllocs()
			for b.Loop() {
				tok := pub.Client.Publish("bench/"+tc.name, 1, false, payload)
				if !tok.WaitTimeout(testutil.Wait) || tok.Error() != nil {
					b.Fatalf("publish: %v", tok.Error())
				}
				sub.Inbox.Next(b)
			}
		})
	}
}
