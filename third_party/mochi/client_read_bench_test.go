// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2026 moat authors (patch for mochi v2.7.9, see PATCHES.md)

package mqtt

import (
	"bytes"
	"net"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
)

// BenchmarkClientRead measures Client.Read over loopback TCP with QoS 0
// PUBLISH packets written one per write call ("single": the client's read
// buffer runs empty at the end of most packets) or 64 per write
// ("batch64"). Patch 4 reads a packet's first byte directly when the read
// buffer is empty, which costs one read call more per such packet.
func BenchmarkClientRead(b *testing.B) {
	var buf bytes.Buffer
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: "bench/sensor/1", Payload: make([]byte, 64)}
	if err := pk.PublishEncode(&buf); err != nil {
		b.Fatal(err)
	}
	one := buf.Bytes()
	for _, tc := range []struct {
		name  string
		batch int
	}{{"single", 1}, {"batch64", 64}} {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			sc, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Close()

			opts := &Options{Capabilities: NewDefaultServerCapabilities()}
			opts.ensureDefaults()
			cc := &countingConn{Conn: sc}
			cl := newClient(cc, &ops{info: new(system.Info), hooks: new(Hooks), log: logger, options: opts})
			cl.State.Keepalive = 0
			chunk := bytes.Repeat(one, tc.batch)
			n := b.N
			go func() {
				for i := 0; i < n; i += tc.batch {
					if _, err := c.Write(chunk); err != nil {
						return
					}
				}
			}()
			b.ResetTimer()
			got := 0
			want := (n + tc.batch - 1) / tc.batch * tc.batch
			_ = cl.Read(func(cl *Client, pk packets.Packet) error {
				got++
				if got == want {
					return errBenchDone
				}
				return nil
			})
			b.ReportMetric(float64(cc.reads)/float64(got), "reads/packet")
		})
	}
}

// countingConn counts the reads of a connection.
type countingConn struct {
	net.Conn
	reads int
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads++
	return c.Conn.Read(p)
}

var errBenchDone = net.ErrClosed
