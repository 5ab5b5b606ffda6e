// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2026 moat authors (patch for mochi v2.7.9, see PATCHES.md)

package mqtt

import (
	"net"
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
	cl.State.outbound <- new(packets.Packet)

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
	<-cl.State.outbound // as the write loop would
	require.NoError(t, <-done)
	require.Equal(t, 1, len(cl.State.outbound))
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
