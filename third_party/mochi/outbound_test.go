// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2026 moat authors (patch for mochi v2.7.9, see PATCHES.md)

package mqtt

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
	"github.com/stretchr/testify/require"
)

// qpk returns a publish named name (its topic) at qos with a payload of
// size bytes.
func qpk(name string, qos byte, size int) *packets.Packet {
	return &packets.Packet{TopicName: name, Payload: make([]byte, size), FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}}
}

// aliased returns a qos 0 publish using outbound topic alias 1: with its
// topic, it sets the alias; without, it relies on it. An empty topic is
// named b in the queue's listing.
func aliased(topic string, alias uint16) *packets.Packet {
	pk := qpk(topic, 0, 1)
	pk.Properties.TopicAlias, pk.Properties.TopicAliasFlag = alias, true
	if topic == "" {
		pk.Properties.User = []packets.UserProperty{{Key: "name", Val: "b"}}
	}
	return pk
}

// names lists the topics of pks, space-separated.
func names(pks []*packets.Packet) string {
	var s []string
	for _, pk := range pks {
		if pk.TopicName == "" && len(pk.Properties.User) > 0 {
			s = append(s, pk.Properties.User[0].Val)
			continue
		}
		s = append(s, pk.TopicName)
	}
	return strings.Join(s, " ")
}

// TestOutboundQueuePush checks the eviction rule: a packet that finds the
// queue full by count or by bytes evicts the oldest qos 0 packets, never a
// qos 1 or 2 one, and nothing at all if that would not make room.
func TestOutboundQueuePush(t *testing.T) {
	type push struct {
		pk      *packets.Packet
		ok      bool
		evicted string
	}
	for _, tc := range []struct {
		name   string
		lim    outboundLimits
		pushes []push
		want   string // the queue, oldest first
	}{
		{"room", outboundLimits{count: 3}, []push{
			{qpk("a", 0, 1), true, ""}, {qpk("b", 1, 1), true, ""}, {qpk("c", 0, 1), true, ""},
		}, "a b c"},
		{"qos 0 evicts the oldest qos 0", outboundLimits{count: 3}, []push{
			{qpk("a", 1, 1), true, ""}, {qpk("b", 0, 1), true, ""}, {qpk("c", 0, 1), true, ""},
			{qpk("d", 0, 1), true, "b"}, {qpk("e", 0, 1), true, "c"},
		}, "a d e"},
		{"qos 1 evicts qos 0 too", outboundLimits{count: 3}, []push{
			{qpk("a", 0, 1), true, ""}, {qpk("b", 2, 1), true, ""}, {qpk("c", 0, 1), true, ""},
			{qpk("d", 1, 1), true, "a"}, {qpk("e", 1, 1), true, "c"},
		}, "b d e"},
		{"no qos 1 or 2 is evicted", outboundLimits{count: 2}, []push{
			{qpk("a", 1, 1), true, ""}, {qpk("b", 2, 1), true, ""},
			{qpk("c", 0, 1), false, ""}, {qpk("d", 1, 1), false, ""},
		}, "a b"},
		{"bytes: evict as many as needed", outboundLimits{count: 10, bytes: 10}, []push{
			{qpk("a", 0, 2), true, ""}, {qpk("b", 1, 2), true, ""}, {qpk("c", 0, 2), true, ""}, // 3 bytes each
			{qpk("d", 0, 5), true, "a c"},
		}, "b d"},
		{"bytes: nothing evicted in vain", outboundLimits{count: 10, bytes: 10}, []push{
			{qpk("a", 0, 2), true, ""}, {qpk("b", 1, 6), true, ""},
			{qpk("c", 0, 3), false, ""}, // 7 + 4 > 10 even without a
		}, "a b"},
		{"bytes: a large packet passes an empty queue", outboundLimits{count: 10, bytes: 10}, []push{
			{qpk("a", 1, 99), true, ""}, {qpk("b", 0, 1), false, ""},
		}, "a"},
		{"a topic alias is kept", outboundLimits{count: 2}, []push{
			{aliased("a", 1), true, ""}, {aliased("", 1), true, ""}, {qpk("c", 0, 1), true, "b"},
		}, "a c"},
		{"bytes: 0 is no limit", outboundLimits{count: 10}, []push{
			{qpk("a", 0, 1<<20), true, ""}, {qpk("b", 0, 1<<20), true, ""},
		}, "a b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var q outboundQueue
			for i, p := range tc.pushes {
				evicted, _, ok := q.push(p.pk, tc.lim, false)
				require.Equal(t, p.ok, ok, "push %d", i)
				require.Equal(t, p.evicted, names(evicted), "push %d", i)
			}
			var got []*packets.Packet
			for pk := q.pop(); pk != nil; pk = q.pop() {
				got = append(got, pk)
			}
			require.Equal(t, tc.want, names(got))
			require.Equal(t, 0, q.spare)
			require.Equal(t, int64(0), q.bytes)
			require.Equal(t, int64(0), q.spareB)
		})
	}
}

// TestOutboundQueueReleased checks that an idle client holds no queue
// buffer, and that a queue that grew to hold a burst lets go of it once
// it drains: a buffered channel holds MaximumClientWritesPending slots for
// the client's whole life.
func TestOutboundQueueReleased(t *testing.T) {
	s := newServer()
	cl := newWaitClient(s)
	require.Equal(t, 0, cl.State.outbound.capacity(), "idle client")

	lim := outboundLimits{count: 1000}
	for i := 0; i < 1000; i++ {
		_, _, ok := cl.State.outbound.push(qpk(strconv.Itoa(i), byte(i%2), 10), lim, false)
		require.True(t, ok)
	}
	require.GreaterOrEqual(t, cl.State.outbound.capacity(), 1000)
	for i := 0; i < 1000; i++ {
		pk := cl.State.outbound.pop()
		require.Equal(t, strconv.Itoa(i), pk.TopicName)
	}
	require.Nil(t, cl.State.outbound.pop())
	require.Equal(t, 0, cl.State.outbound.capacity(), "drained queue")

	// A trickle keeps a small array instead of allocating for each packet.
	cl.State.outbound.push(qpk("x", 0, 1), lim, false)
	cl.State.outbound.pop()
	require.LessOrEqual(t, cl.State.outbound.capacity(), keepQueueCap)
}

// TestOutboundQueueBounded checks that a queue kept full under a flood of
// qos 0 packets, each evicting the oldest, does not grow its array beyond
// a small multiple of its limit.
func TestOutboundQueueBounded(t *testing.T) {
	var q outboundQueue
	lim := outboundLimits{count: 64}
	q.push(qpk("stuck", 1, 1), lim, false) // the writer never takes it
	for i := 0; i < 100000; i++ {
		_, _, ok := q.push(qpk("x", 0, 1), lim, false)
		require.True(t, ok)
	}
	require.Equal(t, 64, q.Len())
	require.LessOrEqual(t, q.capacity(), 4*64)
	require.Equal(t, "stuck", q.pop().TopicName)
}

// evictHook counts OnPublishEvicted and OnPublishDropped calls.
type evictHook struct {
	HookBase
	mu               sync.Mutex
	evicted, dropped []string
}

func (h *evictHook) ID() string { return "evict" }
func (h *evictHook) Provides(b byte) bool {
	return b == OnPublishEvicted || b == OnPublishDropped
}
func (h *evictHook) OnPublishEvicted(cl *Client, pk packets.Packet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.evicted = append(h.evicted, pk.TopicName)
}
func (h *evictHook) OnPublishDropped(cl *Client, pk packets.Packet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dropped = append(h.dropped, pk.TopicName)
}

// TestDeliverToClientEvictsOldestQoS0 fills a client's queue, whose writer
// does not run, and checks what deliveries do: a newer message takes the
// place of the oldest qos 0 one, which OnPublishEvicted hears of; a qos 0
// message that finds only qos 1 messages is dropped itself.
func TestDeliverToClientEvictsOldestQoS0(t *testing.T) {
	s := newServer()
	h := new(evictHook)
	require.NoError(t, s.AddHook(h, nil))
	s.Options.Capabilities.MaximumClientWritesPending = 3
	s.Options.Capabilities.MaximumClientWritesPendingBytes = 0
	cl := newWaitClient(s)
	cl.ops.hooks = s.hooks
	cl.State.writing.Store(true) // no writer: the queue only fills

	deliver := func(topic string, qos byte) error {
		pk := packets.Packet{TopicName: topic, FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}}
		_, err := s.deliverToClient(cl, packets.Subscription{Filter: "#", Qos: 2}, pk, false)
		return err
	}
	require.NoError(t, deliver("q0-a", 0))
	require.NoError(t, deliver("q1-b", 1))
	require.NoError(t, deliver("q0-c", 0))
	require.NoError(t, deliver("q0-d", 0)) // evicts q0-a
	require.NoError(t, deliver("q1-e", 1)) // evicts q0-c
	require.NoError(t, deliver("q1-f", 1)) // evicts q0-d
	require.ErrorIs(t, deliver("q0-g", 0), packets.ErrPendingClientWritesExceeded)
	require.ErrorIs(t, deliver("q1-h", 1), packets.ErrPendingClientWritesExceeded) // not waiting: dropped, as before

	require.Equal(t, []string{"q0-a", "q0-c", "q0-d"}, h.evicted)
	require.Equal(t, []string{"q0-g", "q1-h"}, h.dropped)
	require.Equal(t, int64(5), atomic.LoadInt64(&s.Info.MessagesDropped))
	require.Equal(t, int32(3), atomic.LoadInt32(&cl.State.outboundQty))
	require.Equal(t, 3, cl.State.Inflight.Len()) // q1-h rolled back
	var got []*packets.Packet
	for pk := cl.State.outbound.pop(); pk != nil; pk = cl.State.outbound.pop() {
		got = append(got, pk)
	}
	require.Equal(t, "q1-b q1-e q1-f", names(got))
}

// TestDeliverToClientWaitEvictsQoS0 checks that a qos 1 message waiting
// for room is not kept out by qos 0 messages queued while it waits: it
// takes their room.
func TestDeliverToClientWaitEvictsQoS0(t *testing.T) {
	s := newServer()
	s.Options.Capabilities.MaximumClientWritesPending = 1
	s.Options.Capabilities.MaximumClientWritesWait = 10 * time.Second
	cl := newWaitClient(s)
	cl.State.writing.Store(true) // no writer: the test takes packets itself
	cl.State.outbound.push(qpk("q1-a", 1, 0), outboundLimits{count: 1}, false)

	done := make(chan error, 1)
	go func() {
		pk := packets.Packet{TopicName: "q1-b", FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}}
		_, err := s.deliverToClient(cl, packets.Subscription{Filter: "#", Qos: 1}, pk, true)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("queued without room: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	// Free the slot and fill it with qos 0 at once, under the waiter's nose.
	cl.State.outbound.mu.Lock()
	cl.State.outbound.pks[cl.State.outbound.head] = qpk("q0-c", 0, 0)
	cl.State.outbound.spare++
	cl.State.outbound.spareB += 4
	if cl.State.outbound.room != nil {
		close(cl.State.outbound.room)
		cl.State.outbound.room = nil
	}
	cl.State.outbound.mu.Unlock()
	require.NoError(t, <-done)
	require.Equal(t, "q1-b", cl.State.outbound.pop().TopicName)
}

// TestWriterHammerMixed has senders of qos 0 and of qos 1 share a small
// queue, bounded by count and by bytes, while the writer starts and stops.
// Every qos 1 message must be written exactly once and in its sender's
// order; qos 0 messages may be evicted or dropped, but each one written is
// written once, in order, and written plus evicted plus dropped is what
// was sent.
func TestWriterHammerMixed(t *testing.T) {
	s := newServer()
	s.Options.Capabilities.MaximumClientWritesPending = 8
	s.Options.Capabilities.MaximumClientWritesPendingBytes = 64
	s.Options.Capabilities.MaximumClientWritesWait = 10 * time.Second
	h := new(evictHook)
	require.NoError(t, s.AddHook(h, nil))
	r, w := net.Pipe()
	defer r.Close()
	cl := newClient(w, &ops{info: new(system.Info), hooks: s.hooks, log: logger, options: s.Options})
	cl.ID = "sub"
	cl.Properties.ProtocolVersion = 4
	s.Clients.Add(cl)

	const senders, each = 8, 300 // even senders qos 0, odd qos 1
	type msg struct{ sender, seq int }
	got := make(chan msg, senders*each)
	go func() {
		defer close(got)
		br := bufio.NewReader(r)
		for {
			b, err := br.ReadByte()
			if err != nil {
				return
			}
			n, _, err := packets.DecodeLength(br)
			if err != nil {
				return
			}
			body := make([]byte, n)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			off := 2 + (int(body[0])<<8 | int(body[1]))
			if (b>>1)&3 > 0 {
				off += 2
			}
			got <- msg{int(body[off]), (int(body[off+1])<<8 | int(body[off+2]))}
		}
	}()
	var wg sync.WaitGroup
	var refused atomic.Int64
	for i := 0; i < senders; i++ {
		i := i
		wg.Add(1)
		go func() {
			defer wg.Done()
			qos := byte(i % 2)
			for j := 0; j < each; j++ {
				pk := packets.Packet{TopicName: "t", Payload: []byte{byte(i), byte(j >> 8), byte(j), 0, 0, 0, 0, 0, 0}, FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: qos}}
				_, err := s.deliverToClient(cl, packets.Subscription{Filter: "t", Qos: 1}, pk, true)
				if err != nil {
					if qos > 0 {
						t.Errorf("sender %d packet %d: %v", i, j, err)
						return
					}
					refused.Add(1)
				}
				if j%32 == 0 {
					time.Sleep(time.Millisecond) // let the queue run dry now and then
				}
			}
		}()
	}
	wg.Wait()
	// Wait for the writer to finish, then close, so that got ends.
	require.Eventually(t, func() bool { return atomic.LoadInt32(&cl.State.outboundQty) == 0 }, 10*time.Second, time.Millisecond)
	w.Close()

	next := make([]int, senders)
	written := make([]int, senders)
	for m := range got {
		require.Less(t, m.sender, senders)
		if m.sender%2 == 1 {
			require.Equal(t, next[m.sender], m.seq, "qos 1 sender %d out of order or duplicated", m.sender)
		} else {
			require.GreaterOrEqual(t, m.seq, next[m.sender], "qos 0 sender %d out of order or duplicated", m.sender)
		}
		next[m.sender] = m.seq + 1
		written[m.sender]++
	}
	var written0 int
	for i := 0; i < senders; i++ {
		if i%2 == 1 {
			require.Equal(t, each, written[i], "qos 1 sender %d", i)
		} else {
			written0 += written[i]
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotEmpty(t, h.evicted, "the queue never made room by eviction")
	require.Equal(t, int(refused.Load()), len(h.dropped))
	require.Equal(t, senders/2*each, written0+len(h.evicted)+len(h.dropped), "qos 0 written %d, evicted %d, dropped %d", written0, len(h.evicted), len(h.dropped))
	t.Logf("qos 0: written %d, evicted %d, dropped %d", written0, len(h.evicted), len(h.dropped))
}

// FuzzOutboundQueue runs sequences of pushes and pops against a plain
// slice that applies the eviction rule the slow way, and checks that the
// queue (its head index, scan hint, counters and array reuse) agrees.
func FuzzOutboundQueue(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xff, 0x10, 0x20})
	f.Add([]byte{0x41, 0x41, 0x41, 0x40, 0x40, 0x40, 0x40, 0xff, 0x40, 0x80, 0x81})
	f.Fuzz(func(t *testing.T, ops []byte) {
		lim := outboundLimits{count: 5, bytes: 40}
		var q outboundQueue
		var model []*packets.Packet
		size := func(pks []*packets.Packet) (n int64) {
			for _, pk := range pks {
				n += packetSize(pk)
			}
			return n
		}
		for i, op := range ops {
			if op == 0xff {
				var want *packets.Packet
				if len(model) > 0 {
					want, model = model[0], model[1:]
				}
				require.Same(t, want, q.pop(), "op %d", i)
				continue
			}
			// bits 0-1: qos (3 is qos 0 setting a topic alias), 2-5: payload size
			qos, alias := op&3, op&3 == 3
			if alias {
				qos = 0
			}
			pk := qpk(strconv.Itoa(i%10), qos, int(op>>2&15))
			if alias {
				pk.Properties.TopicAlias = 1
			}
			// The slow way: evict the oldest evictable packets, if that can make room.
			var kept, spare []*packets.Packet
			for _, p := range model {
				if evictable(p) {
					spare = append(spare, p)
				} else {
					kept = append(kept, p)
				}
			}
			var wantEvicted []*packets.Packet
			wantOK := lim.fits(len(kept), size(kept), packetSize(pk))
			if wantOK {
				for !lim.fits(len(model), size(model), packetSize(pk)) {
					for j, p := range model {
						if evictable(p) {
							wantEvicted = append(wantEvicted, p)
							model = append(model[:j:j], model[j+1:]...)
							break
						}
					}
				}
				model = append(model, pk)
			}
			evicted, _, ok := q.push(pk, lim, false)
			require.Equal(t, wantOK, ok, "op %d", i)
			require.Equal(t, len(wantEvicted), len(evicted), "op %d", i)
			for j := range evicted {
				require.Same(t, wantEvicted[j], evicted[j], "op %d", i)
			}
			require.Equal(t, len(model), q.Len(), "op %d", i)
			require.Equal(t, size(model), q.bytes, "op %d", i)
			require.LessOrEqual(t, q.capacity(), 4*lim.count+keepQueueCap, "op %d", i)
		}
	})
}
