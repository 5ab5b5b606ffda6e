// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2026 moat authors (patch for mochi v2.7.9, see PATCHES.md)

package mqtt

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"
)

// readSpy is a connection that records, in the client's read goroutine,
// whether the client held a read buffer at each read of the connection.
type readSpy struct {
	net.Conn
	cl    *Client
	reads []spiedRead
}

type spiedRead struct {
	direct bool // a read into Client.Net.first while no read buffer is held
	held   bool // the client held a read buffer
}

func (c *readSpy) Read(p []byte) (int, error) {
	c.reads = append(c.reads, spiedRead{
		direct: len(p) > 0 && &p[0] == &c.cl.Net.first.buf[0],
		held:   c.cl.Net.bconn != nil,
	})
	return c.Conn.Read(p)
}

// TestClientReadPipelined reads a stream of packets cut into chunks of
// every size, so that packets end inside, at the end of and across the
// client's read buffer, and checks that every packet arrives whole and in
// order, and that the client waits for a packet's first byte without a
// read buffer.
func TestClientReadPipelined(t *testing.T) {
	var stream []byte
	var want []string
	for i := 0; i < 20; i++ {
		topic := "t/" + strconv.Itoa(i)
		payload := bytes.Repeat([]byte{byte('a' + i)}, i*3)
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic, Payload: payload}
		var buf bytes.Buffer
		require.NoError(t, pk.PublishEncode(&buf))
		stream = append(stream, buf.Bytes()...)
		want = append(want, topic+"="+string(payload))
	}

	for _, chunk := range []int{1, 2, 3, 7, 16, 17, 64, len(stream)} {
		t.Run(strconv.Itoa(chunk), func(t *testing.T) {
			cl, r, w := newTestClient()
			cl.ops.options.ClientNetReadBufferSize = 16 // smaller than most packets
			spy := &readSpy{Conn: w, cl: cl}
			cl.Net.Conn = spy
			go func() {
				for b := stream; len(b) > 0; b = b[min(chunk, len(b)):] {
					if _, err := r.Write(b[:min(chunk, len(b))]); err != nil {
						return
					}
				}
				_ = r.Close()
			}()

			var got []string
			err := cl.Read(func(cl *Client, pk packets.Packet) error {
				got = append(got, pk.TopicName+"="+string(pk.Payload))
				return nil
			})
			require.ErrorIs(t, err, io.EOF)
			require.Equal(t, want, got)
			direct := 0
			for i, rd := range spy.reads {
				if rd.direct {
					direct++
				}
				require.Equal(t, !rd.direct, rd.held, "read %d: direct %v, holding a read buffer %v", i, rd.direct, rd.held)
			}
			require.NotZero(t, direct, "every first byte was read through a read buffer")
		})
	}
}

// TestIdleClientStack checks that the stack of an idle client's goroutine
// shrinks at garbage collection to 4 KiB (8 KiB with the race detector,
// which doubles the runtime's stack guard): the frames it waits in use
// less than a quarter of 8 KiB. It was 16 KiB when they used more than a
// quarter of 16 KiB, and is 8 KiB if they use more than 2 KiB (see
// PATCHES.md, patch 4).
func TestIdleClientStack(t *testing.T) {
	s := newServer()
	ln := listeners.NewTCP(listeners.Config{ID: "idle", Address: "127.0.0.1:0"})
	require.NoError(t, s.AddListener(ln))
	require.NoError(t, s.Serve())
	defer s.Close()

	const n = 200
	stack0 := stackInuse()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	ack := make([]byte, 4)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Address())
		require.NoError(t, err)
		conns = append(conns, c)
		id := "idle-" + strconv.Itoa(i)
		body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, byte(len(id))}, id...)
		_, err = c.Write(append([]byte{packets.Connect << 4, byte(len(body))}, body...))
		require.NoError(t, err)
		_, err = io.ReadFull(c, ack)
		require.NoError(t, err)
		require.Equal(t, []byte{packets.Connack << 4, 2, 0, 0}, ack)
	}

	perConn := (int64(stackInuse()) - int64(stack0)) / n
	t.Logf("stack per idle client: %d B", perConn)
	want := int64(4 << 10)
	if raceEnabled {
		want = 8 << 10
	}
	require.Less(t, perConn, want+want/2)
}

// stackInuse collects garbage a few times, each of which may halve an idle
// goroutine's stack, and returns the bytes of stack in use.
func stackInuse() uint64 {
	for i := 0; i < 5; i++ {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.StackInuse
}

// panicHook panics when a session is established.
type panicHook struct {
	HookBase
}

func (h *panicHook) ID() string { return "panic-on-session" }

func (h *panicHook) Provides(b byte) bool { return b == OnSessionEstablished }

func (h *panicHook) OnSessionEstablished(cl *Client, pk packets.Packet) {
	panic("hook failed")
}

// TestEstablishConnectionPanicUncounts checks that a client counted in
// Info.ClientsConnected is uncounted when a hook panics after it was
// counted, as when attachClient deferred the decrement itself.
func TestEstablishConnectionPanicUncounts(t *testing.T) {
	s := newServer()
	defer s.Close()
	require.NoError(t, s.AddHook(new(panicHook), nil))

	r, w := net.Pipe()
	defer w.Close()
	go func() {
		_, _ = w.Write(packets.TPacketData[packets.Connect].Get(packets.TConnectClean).RawBytes)
		_, _ = io.Copy(io.Discard, w) // the CONNACK
	}()

	recovered := func() (v any) {
		defer func() { v = recover() }()
		_ = s.EstablishConnection("tcp", r)
		return nil
	}()
	require.Equal(t, "hook failed", recovered)
	require.Equal(t, int64(0), atomic.LoadInt64(&s.Info.ClientsConnected))
}
