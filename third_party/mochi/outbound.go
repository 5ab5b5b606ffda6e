// SPDX-License-Identifier: MIT
// SPDX-FileCopyrightText: 2026 moat authors (patch for mochi v2.7.9, see PATCHES.md)

package mqtt

import (
	"sync"

	"github.com/mochi-mqtt/server/v2/packets"
)

// keepQueueCap is the largest backing array an emptied outbound queue
// keeps for reuse (8 bytes a slot), so that a client receiving one message
// at a time does not allocate for each; a larger one is released.
const keepQueueCap = 8

// outboundQueue holds the packets waiting for a client's writer, oldest
// first, within a limit on their number and one on their size. Unlike a
// buffered channel of the maximum size, it costs a client nothing beyond
// the struct while it is empty: its backing array grows on demand and is
// released when the queue drains.
//
// When a packet finds the queue full, push makes room by evicting the
// oldest queued qos 0 packets (at most once delivery allows it); it never
// evicts a qos 1 or 2 packet, nor one that sets a topic alias. The zero value is an empty queue, safe for
// concurrent use.
type outboundQueue struct {
	mu     sync.Mutex
	pks    []*packets.Packet // pks[head:] are queued, oldest first
	head   int
	scan   int           // pks[head:scan] hold no evictable packet: where the search for the oldest one starts
	spare  int           // queued evictable packets, see evictable
	bytes  int64         // size of the queued packets, see packetSize
	spareB int64         // size of the queued evictable packets
	room   chan struct{} // closed when a packet leaves the queue; made for a waiter
	ready  chan struct{} // signalled when a packet is queued; made by watch
}

// outboundLimits bounds an outbound queue; bytes 0 is no limit.
type outboundLimits struct {
	count int
	bytes int64
}

// packetSize is what a queued packet counts against the byte limit: its
// topic and payload, the part that a publisher controls and that can be
// large. Header and properties are left out, so that the limit does not
// depend on the protocol version or encoding.
func packetSize(pk *packets.Packet) int64 {
	return int64(len(pk.TopicName) + len(pk.Payload))
}

// Len returns how many packets are queued.
func (q *outboundQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pks) - q.head
}

// push queues pk unless the queue is full even after evicting every queued
// qos 0 packet; in that case nothing is evicted and ok is false. A full
// queue is one where pk would exceed lim.count, or lim.bytes when the
// queue is not empty (a packet larger than lim.bytes still goes through
// an empty queue, or it could never be delivered). evicted are the qos 0
// packets removed to make room, oldest first, for the caller to count.
// If ok is false and wantRoom is set, room is closed at the next pop, so
// that a caller can wait for room without missing it.
func (q *outboundQueue) push(pk *packets.Packet, lim outboundLimits, wantRoom bool) (evicted []*packets.Packet, room <-chan struct{}, ok bool) {
	size := packetSize(pk)
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.pks) - q.head
	if !lim.fits(n-q.spare, q.bytes-q.spareB, size) {
		if wantRoom {
			if q.room == nil {
				q.room = make(chan struct{})
			}
			room = q.room
		}
		return nil, room, false
	}
	for !lim.fits(len(q.pks)-q.head, q.bytes, size) {
		evicted = append(evicted, q.evictOldest())
	}
	if q.head > 0 && len(q.pks) == cap(q.pks) && q.head >= len(q.pks)/2 {
		// Reuse the front of the array rather than grow it.
		m := copy(q.pks, q.pks[q.head:])
		clear(q.pks[m:])
		q.pks = q.pks[:m]
		q.scan = max(q.scan-q.head, 0)
		q.head = 0
	}
	q.pks = append(q.pks, pk)
	q.bytes += size
	if evictable(pk) {
		q.spare++
		q.spareB += size
	}
	if q.ready != nil {
		select {
		case q.ready <- struct{}{}:
		default:
		}
	}
	return evicted, nil, true
}

// watch returns a channel that receives a value after packets are queued,
// for a writer that stays (Client.WriteLoop).
func (q *outboundQueue) watch() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ready == nil {
		q.ready = make(chan struct{}, 1)
	}
	return q.ready
}

// fits reports whether a packet of size fits in a queue holding n packets
// of total bytes.
func (lim outboundLimits) fits(n int, bytes, size int64) bool {
	if n+1 > lim.count {
		return false
	}
	return lim.bytes <= 0 || n == 0 || bytes+size <= lim.bytes
}

// evictable reports whether pk may be evicted from a full queue: a qos 0
// packet, unless it sets an outbound topic alias (topic and alias both
// present), which the packets after it rely on: without it, the client
// would get an alias it does not know [MQTT-3.3.2-8].
func evictable(pk *packets.Packet) bool {
	return pk.FixedHeader.Qos == 0 && !(pk.Properties.TopicAlias > 0 && pk.TopicName != "")
}

// evictOldest removes and returns the oldest queued evictable packet;
// the caller has checked that there is one. The packets before it move up one
// slot, so that the order of the rest is kept.
func (q *outboundQueue) evictOldest() *packets.Packet {
	i := max(q.scan, q.head)
	for !evictable(q.pks[i]) {
		i++
	}
	pk := q.pks[i]
	copy(q.pks[q.head+1:i+1], q.pks[q.head:i])
	q.pks[q.head] = nil
	q.head++
	q.scan = i + 1
	size := packetSize(pk)
	q.bytes -= size
	q.spare--
	q.spareB -= size
	q.releaseIfEmpty()
	return pk
}

// pop removes and returns the oldest queued packet, or nil if there is
// none, and wakes the callers waiting for room.
func (q *outboundQueue) pop() *packets.Packet {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.pks) {
		return nil
	}
	pk := q.pks[q.head]
	q.pks[q.head] = nil
	q.head++
	size := packetSize(pk)
	q.bytes -= size
	if evictable(pk) {
		q.spare--
		q.spareB -= size
	}
	q.releaseIfEmpty()
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	return pk
}

// releaseIfEmpty lets go of a large backing array once nothing is queued.
func (q *outboundQueue) releaseIfEmpty() {
	if q.head != len(q.pks) {
		return
	}
	if cap(q.pks) > keepQueueCap {
		q.pks = nil
	} else {
		q.pks = q.pks[:0]
	}
	q.head, q.scan = 0, 0
}

// capacity returns the length of the backing array, for tests.
func (q *outboundQueue) capacity() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return cap(q.pks)
}
