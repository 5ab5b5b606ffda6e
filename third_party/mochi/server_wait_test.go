// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2026 moat authors (patch for mochi v2.7.9, see PATCHES.md)

package mqtt

import (
	"bufio"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
	"github.com/stretchr/testify/require"
)

// newWaitClient returns a client of s without a write loop, so that the
// test decides when its outbound queue drains.
func newWaitClient(s *Server) *Client {
	_, w := net.Pipe()
	cl := newClient(w, &ops{info: new(system.Info), hooks: new(Hooks), log: logger, options: s.Options})
	cl.ID = "sub"
	s.Clients.Add(cl)
	return cl
}

func TestDeliverToClientWaitsForInflightRoom(t *testing.T) {
	s := newServer()
	s.Options.Capabilities.MaximumInflight = 2
	s.Options.Capabilities.MaximumClientWritesWait = 10 * time.Second
	cl := newWaitClient(s)
	cl.State.Inflight.Set(packets.Packet{PacketID: 1})
	cl.State.Inflight.Set(packets.Packet{PacketID: 2})

	done := make(chan error, 1)
	go func() {
		_, err := s.deliverToClient(cl, packets.Subscription{Filter: "a", Qos: 1}, packets.Packet{TopicName: "a", FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}}, true)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("delivered without room: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cl.State.Inflight.Delete(1) // as a PUBACK would
	cl.signalRoom()
	require.NoError(t, <-done)
	require.Equal(t, 2, cl.State.Inflight.Len())
	require.Equal(t, int64(0), atomic.LoadInt64(&s.Info.InflightDropped))
}

func TestDeliverToClientWaitTimesOut(t *testing.T) {
	s := newServer()
	s.Options.Capabilities.MaximumInflight = 1
	s.Options.Capabilities.MaximumClientWritesWait = 20 * time.Millisecond
	cl := newWaitClient(s)
	cl.State.Inflight.Set(packets.Packet{PacketID: 1})
	_, err := s.deliverToClient(cl, packets.Subscription{Filter: "a", Qos: 1}, packets.Packet{TopicName: "a", FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}}, true)
	require.ErrorIs(t, err, packets.ErrQuotaExceeded)
	require.Equal(t, int64(1), atomic.LoadInt64(&s.Info.InflightDropped))
}

func TestDeliverToClientWaitsForOutboundRoom(t *testing.T) {
	s := newServer()
	s.Options.Capabilities.MaximumClientWritesPending = 1
	s.Options.Capabilities.MaximumClientWritesWait = 10 * time.Second
	cl := newWaitClient(s)
	cl.State.outbound.push(&packets.Packet{FixedHeader: packets.FixedHeader{Qos: 1}}, outboundLimits{count: 1}, false)

	pk := packets.Packet{TopicName: "a", FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}}
	// QoS 0 never waits: it is dropped at once.
	_, err := s.deliverToClient(cl, packets.Subscription{Filter: "a", Qos: 0}, pk, true)
	require.ErrorIs(t, err, packets.ErrPendingClientWritesExceeded)

	done := make(chan error, 1)
	go func() {
		_, err := s.deliverToClient(cl, packets.Subscription{Filter: "a", Qos: 1}, pk, true)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("queued without room: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cl.State.outbound.pop() // as the writer would
	require.NoError(t, <-done)
	require.Equal(t, int32(1), atomic.LoadInt32(&cl.State.outboundQty)) // queued, and a writer started for it
	require.Equal(t, 1, cl.State.Inflight.Len())
}

func TestDeliverToClientNeverWaitsForItself(t *testing.T) {
	s := newServer()
	s.Options.Capabilities.MaximumInflight = 1
	s.Options.Capabilities.MaximumClientWritesWait = 10 * time.Second
	cl := newWaitClient(s)
	cl.State.Inflight.Set(packets.Packet{PacketID: 1})
	pk := packets.Packet{TopicName: "a", Origin: cl.ID, FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}}
	_, err := s.deliverToClient(cl, packets.Subscription{Filter: "a", Qos: 1}, pk, true)
	require.ErrorIs(t, err, packets.ErrQuotaExceeded)
}

// TestRetainedWaitsForOutboundRoom: a qos 1 retained message sent on
// SUBSCRIBE, on the subscriber's own read loop, waits for its writer to
// free room in the outbound queue instead of being dropped; it never waits
// for inflight room, which only that read loop could free.
func TestRetainedWaitsForOutboundRoom(t *testing.T) {
	s := newServer()
	s.Options.Capabilities.MaximumClientWritesPending = 1
	s.Options.Capabilities.MaximumInflight = 2
	s.Options.Capabilities.MaximumClientWritesWait = 10 * time.Second
	cl := newWaitClient(s)
	cl.State.outbound.push(&packets.Packet{FixedHeader: packets.FixedHeader{Qos: 1}}, outboundLimits{count: 1}, false)
	s.Topics.RetainMessage(packets.Packet{TopicName: "a", Payload: []byte("kept"), FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Retain: true}})
	sub := packets.Subscription{Filter: "a", Qos: 1}

	done := make(chan struct{})
	go func() {
		s.publishRetainedToClient(cl, sub, false)
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("the retained message was not waited for: dropped for want of room")
	case <-time.After(50 * time.Millisecond):
	}
	cl.State.outbound.pop() // as the writer would
	<-done
	require.Equal(t, int32(1), atomic.LoadInt32(&cl.State.outboundQty)) // queued, and a writer started for it
	require.Equal(t, 1, cl.State.Inflight.Len())

	// With the inflight store full, it is dropped at once: waiting on the
	// read loop that alone frees that room would only run out the clock.
	cl.State.Inflight.Set(packets.Packet{PacketID: 60000})
	start := time.Now()
	s.publishRetainedToClient(cl, sub, false)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, 2, cl.State.Inflight.Len())
}

// TestStartWriterHammer queues packets from many goroutines while the
// writer keeps starting and stopping, and checks that every packet is
// written once, in each sender's order.
func TestStartWriterHammer(t *testing.T) {
	s := newServer()
	s.Options.Capabilities.MaximumClientWritesPending = 4
	s.Options.Capabilities.MaximumClientWritesWait = 10 * time.Second
	r, w := net.Pipe()
	defer r.Close()
	cl := newClient(w, &ops{info: new(system.Info), hooks: new(Hooks), log: logger, options: s.Options})
	cl.ID = "sub"
	cl.Properties.ProtocolVersion = 4
	s.Clients.Add(cl)

	const senders, each = 8, 200
	got := make(chan [2]byte, senders*each)
	go func() { // the client: decode each PUBLISH's payload
		br := bufio.NewReader(r)
		for {
			fh := new(packets.FixedHeader)
			b, err := br.ReadByte()
			if err != nil {
				close(got)
				return
			}
			if err := fh.Decode(b); err != nil {
				close(got)
				return
			}
			n, _, err := packets.DecodeLength(br)
			if err != nil {
				close(got)
				return
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(br, body); err != nil {
				close(got)
				return
			}
			got <- [2]byte{body[len(body)-2], body[len(body)-1]}
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < senders; i++ {
		i := i
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				pk := packets.Packet{TopicName: "a", Payload: []byte{byte(i), byte(j)}, FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}}
				_, err := s.deliverToClient(cl, packets.Subscription{Filter: "a", Qos: 1}, pk, true)
				if err != nil {
					t.Errorf("sender %d packet %d: %v", i, j, err)
					return
				}
				if j%16 == 0 {
					time.Sleep(time.Millisecond) // let the queue run dry now and then
				}
			}
		}()
	}
	next := make([]int, senders)
	for k := 0; k < senders*each; k++ {
		select {
		case p, ok := <-got:
			require.True(t, ok, "connection closed")
			require.Equal(t, next[p[0]], int(p[1]), "sender %d out of order", p[0])
			next[p[0]]++
		case <-time.After(10 * time.Second):
			t.Fatalf("stalled after %v", next)
		}
	}
	wg.Wait()
}
