package broker

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// bench.wasm allows every CONNECT and every topic under bench/; built from
// bench.wat with `wat2wasm --enable-all` (make build does it).
//
//go:embed testdata/bench.wasm
var benchWasm []byte

// The benchmarks below compare moat with bare mochi, measured in the same
// run, so that the ratio survives a noisy machine:
//
//	go test -run='^$' -bench='Throughput|ConnectRate' -count=10 ./runtime/broker/ | tee new.txt
//
// "bare" is mochi v2.7.9 with nothing but an allow-all hook (without one it
// refuses every client); "moat" is broker.New with a wasm policy. The load
// comes from a minimal raw MQTT 3.1.1 client, so that the client's own cost
// does not drown the broker's.

// startBare starts bare mochi on a free port and returns its address.
func startBare(b *testing.B) string {
	b.Helper()
	return startMochi(b, &mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
}

// startMochi starts mochi with opts and an allow-all hook on a free port
// and returns its address.
func startMochi(b *testing.B, opts *mqtt.Options) string {
	b.Helper()
	srv := mqtt.New(opts)
	for _, ev := range []byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck} {
		if err := srv.AddHook(&allowHook{provides: ev}, nil); err != nil {
			b.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "bare", Address: addr})); err != nil {
		b.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	// mochi binds in the background: wait until it accepts.
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		if i > 200 {
			b.Fatalf("bare mochi never listened: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startMoat starts moat with bench.wasm deciding authn and/or authz.
func startMoat(b *testing.B, authn, authz, cache bool) string {
	b.Helper()
	ctx := context.Background()
	engine, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := engine.Load(ctx, wasm.ModuleConfig{Name: "bench", Binary: benchWasm, Decisions: []string{"authn", "authz"}})
	if err != nil {
		b.Fatal(err)
	}
	var an []policy.Step[policy.Authenticator]
	var az []policy.Step[policy.Authorizer]
	if authn {
		an = append(an, policy.Step[policy.Authenticator]{Name: "bench", Module: m})
	}
	if authz {
		az = append(az, policy.Step[policy.Authorizer]{Name: "bench", Module: m})
	}
	p := policy.New(an, az, policy.Options{AllowAnonymous: true, AuthzNoMatch: policy.Allow})
	d := policy.NewDecider(p, policy.CacheOptions{Disabled: !cache}, nil)
	br, err := New(Options{Config: parseConfig(b, b.TempDir(), tcpConfig), Decider: d, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := br.Start(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		br.Close(cctx)
		d.Close()
		m.Close()
		engine.Close(ctx)
	})
	return br.Addr("tcp").String()
}

// benchClient is just enough MQTT 3.1.1 to drive a broker hard.
type benchClient struct{ frameConn }

// frameConn frames MQTT packets over a buffered connection: the wire side
// of the raw load clients of the benchmarks and of the flood tests.
type frameConn struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

func newFrameConn(conn net.Conn, size int) frameConn {
	return frameConn{conn: conn, r: bufio.NewReaderSize(conn, size), w: bufio.NewWriterSize(conn, size)}
}

func dialBench(b *testing.B, addr, id string) *benchClient {
	b.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	c := &benchClient{newFrameConn(conn, 64<<10)}
	if err := c.connect(id); err != nil {
		b.Fatal(err)
	}
	return c
}

func (c *benchClient) connect(id string) error {
	vh := []byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60} // clean session, keepalive 60
	body := append(vh, byte(len(id)>>8), byte(len(id)))
	body = append(body, id...)
	c.packet(0x10, body)
	if err := c.w.Flush(); err != nil {
		return err
	}
	typ, payload, err := c.read()
	if err != nil {
		return err
	}
	if typ != 0x20 || len(payload) != 2 || payload[1] != 0 {
		return fmt.Errorf("connack %#x %v", typ, payload)
	}
	return nil
}

// packet buffers one packet: the fixed header byte, the remaining length
// and body.
func (c *frameConn) packet(header byte, body []byte) {
	c.w.WriteByte(header)
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		c.w.WriteByte(d)
		if n == 0 {
			break
		}
	}
	c.w.Write(body)
}

// read returns the next packet's type (high nibble) and body.
func (c *benchClient) read() (byte, []byte, error) {
	h, body, err := c.readPacket()
	return h & 0xf0, body, err
}

// readPacket returns the next packet's fixed header byte (type and flags)
// and body.
func (c *frameConn) readPacket() (byte, []byte, error) {
	h, err := c.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for {
		d, err := c.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mul
		if d&0x80 == 0 {
			break
		}
		mul *= 128
	}
	buf := make([]byte, n)
	_, err = io.ReadFull(c.r, buf)
	return h, buf, err
}

func (c *benchClient) subscribe(b *testing.B, filter string, qos byte) {
	b.Helper()
	body := []byte{0, 1, byte(len(filter) >> 8), byte(len(filter))}
	body = append(append(body, filter...), qos)
	c.packet(0x82, body)
	c.w.Flush()
	typ, payload, err := c.read()
	if err != nil || typ != 0x90 || payload[2] > 2 {
		b.Fatalf("suback %#x %v %v", typ, payload, err)
	}
}

// BenchmarkThroughput measures QoS 1 publishes, each delivered to one QoS 0
// subscriber, pipelined by one publisher: every message crosses the publish
// authorization and the delivery authorization.
func BenchmarkThroughput(b *testing.B) {
	for _, tc := range []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"bare", startBare},
		// moat with empty chains: the cost of moat's listeners and hooks
		// without any policy call, to tell framework from policy cost.
		{"moat-nopolicy", func(b *testing.B) string { return startMoat(b, false, false, true) }},
		{"moat-wasm-cache", func(b *testing.B) string { return startMoat(b, false, true, true) }},
		{"moat-wasm-nocache", func(b *testing.B) string { return startMoat(b, false, true, false) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			addr := tc.start(b)
			sub := dialBench(b, addr, "sub")
			defer sub.conn.Close()
			sub.subscribe(b, "bench/#", 0)
			pub := dialBench(b, addr, "pub")
			defer pub.conn.Close()

			topic := "bench/sensor/1"
			payload := make([]byte, 64)
			got := make(chan error, 2)
			n := b.N
			go func() { // subscriber: count deliveries
				for i := 0; i < n; i++ {
					if typ, _, err := sub.read(); err != nil || typ != 0x30 {
						got <- fmt.Errorf("delivery %d: %#x %v", i, typ, err)
						return
					}
				}
				got <- nil
			}()
			go func() { // publisher: drain PUBACKs
				for i := 0; i < n; i++ {
					if typ, _, err := pub.read(); err != nil || typ != 0x40 {
						got <- fmt.Errorf("puback %d: %#x %v", i, typ, err)
						return
					}
				}
				got <- nil
			}()
			body := make([]byte, 0, 2+len(topic)+2+len(payload))
			b.ResetTimer()
			for i := 0; i < n; i++ {
				id := uint16(i%65535 + 1)
				body = append(body[:0], byte(len(topic)>>8), byte(len(topic)))
				body = append(body, topic...)
				body = binary.BigEndian.AppendUint16(body, id)
				body = append(body, payload...)
				pub.packet(0x32, body)
				if i%64 == 63 {
					pub.w.Flush()
				}
			}
			pub.w.Flush()
			for range 2 {
				if err := <-got; err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkConnectRate measures CONNECT, CONNACK and DISCONNECT on a fresh
// TCP connection: bare mochi against moat with a trivial wasm authn.
func BenchmarkConnectRate(b *testing.B) {
	for _, tc := range []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"bare", startBare},
		{"moat-wasm-authn", func(b *testing.B) string { return startMoat(b, true, false, true) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			addr := tc.start(b)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				c := dialBench(b, addr, fmt.Sprintf("c%d", i))
				c.packet(0xE0, nil)
				c.w.Flush()
				c.conn.Close()
			}
		})
	}
}
