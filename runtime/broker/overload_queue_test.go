package broker

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// The tests below fill the outbound queue of a subscriber that does not
// read its socket (mochi patch 3, third_party/mochi/PATCHES.md) and check
// which messages it gets once it reads again.

// queueConfig is completed by each test with the queue's limits.
const queueConfig = `
[[listener]]
name = "tcp"
type = "tcp"
address = "127.0.0.1:0"

[mqtt]
maximum_inflight = 1000
`

// dialStalled connects a raw MQTT 3.1.1 subscriber to filter at qos with a
// small socket receive buffer, so that what the broker writes to it while
// it does not read stays in the broker's queue rather than in the kernel.
func dialStalled(t *testing.T, addr, id, filter string, qos byte) *floodClient {
	t.Helper()
	c, err := dialFlood(addr, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.conn.Close() })
	if err := c.conn.(*net.TCPConn).SetReadBuffer(16 << 10); err != nil {
		t.Fatal(err)
	}
	subscribeFlood(t, c, filter, qos)
	return c
}

// publishSeq writes a PUBLISH of topic at qos whose payload is size bytes
// starting with seq. A QoS 1 message gets packet id seq+1.
func publishSeq(c *floodClient, topic string, qos byte, seq, size int) {
	body := append([]byte{byte(len(topic) >> 8), byte(len(topic))}, topic...)
	if qos > 0 {
		body = binary.BigEndian.AppendUint16(body, uint16(seq+1))
	}
	payload := make([]byte, size)
	binary.BigEndian.PutUint32(payload, uint32(seq))
	c.packet(0x30|qos<<1, append(body, payload...))
}

// readSeq reads the next PUBLISH, acknowledges it if it is QoS 1, and
// returns its topic, QoS and sequence number.
func readSeq(c *floodClient) (string, byte, int, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	h, p, err := c.read()
	if err != nil {
		return "", 0, 0, err
	}
	if h&0xf0 != 0x30 || len(p) < 2 {
		return "", 0, 0, fmt.Errorf("got %#x", h)
	}
	qos := (h >> 1) & 3
	tl := int(binary.BigEndian.Uint16(p))
	off := 2 + tl
	if qos > 0 {
		c.packet(0x40, p[off:off+2])
		if err := c.w.Flush(); err != nil {
			return "", 0, 0, err
		}
		off += 2
	}
	if len(p) < off+4 {
		return "", 0, 0, fmt.Errorf("publish of %d bytes", len(p))
	}
	return string(p[2 : 2+tl]), qos, int(binary.BigEndian.Uint32(p[off:])), nil
}

// fence publishes a QoS 1 message on topic from pub and waits for its
// PUBACK. mochi delivers a publisher's messages in order before it reads
// the next, so by then every earlier message of pub is queued or dropped.
func fence(t *testing.T, pub *floodClient, topic string, seq int) {
	t.Helper()
	publishSeq(pub, topic, 1, seq, 4)
	if err := pub.w.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = pub.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if h, _, err := pub.read(); err != nil || h&0xf0 != 0x40 {
		t.Fatalf("fence: PUBACK %#x %v", h, err)
	}
}

// overloadWarnings counts the overload rule's WARN lines.
func overloadWarnings(h *harness) int {
	n := 0
	for _, l := range h.logs.atLeast(slog.LevelWarn) {
		if strings.Contains(l, "overload:") {
			n++
		}
	}
	return n
}

// TestQueueEvictsOldestQoS0 publishes numbered QoS 0 messages to a
// subscriber that does not read, with the queue bounded by count or by
// bytes. Once it reads, it must get the newest messages, the oldest that
// did not reach its socket being gone, and the gap must match the
// evictions counted. mochi as released keeps the oldest and drops the
// newest.
func TestQueueEvictsOldestQoS0(t *testing.T) {
	const n, size = 300, 64 << 10
	for _, tc := range []struct {
		name, limits string
		kept         int // messages the full queue holds
	}{
		{"count", "maximum_queued_messages = 16\n", 16},
		{"bytes", "maximum_queued_messages = 1000\nmaximum_queued_bytes = \"1MiB\"\n", 1 << 20 / (size + len("q/t"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startHarness(t, queueConfig+tc.limits, nil)
			addr := h.addr("tcp")
			sub := dialStalled(t, addr, "stalled", "q/#", 0)
			pub, err := dialFlood(addr, "pub")
			if err != nil {
				t.Fatal(err)
			}
			defer pub.conn.Close()
			for i := range n {
				publishSeq(pub, "q/t", 0, i, size)
			}
			fence(t, pub, "other", 0)

			var got []int
			for {
				_, _, seq, err := readSeq(sub)
				if err != nil {
					t.Fatalf("after %v: %v", got, err)
				}
				got = append(got, seq)
				if seq == n-1 {
					break
				}
			}
			st := h.OverloadStats()
			t.Logf("received %d of %d; %+v", len(got), n, st)
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("out of order or duplicated: %v", got)
				}
			}
			// The queue held the newest messages, evicting the ones
			// before them, oldest first.
			if len(got) < tc.kept || got[len(got)-tc.kept] != n-tc.kept {
				t.Errorf("the newest %d messages did not all arrive: %v", tc.kept, got)
			}
			if missing := n - len(got); missing == 0 || uint64(missing) != st.QoS0Evicted {
				t.Errorf("%d messages missing, %d evictions counted", missing, st.QoS0Evicted)
			}
			if st.QoS0Dropped != 0 || st.StuckDropped != 0 {
				t.Errorf("stats %+v: want evictions only", st)
			}
			if w := overloadWarnings(h); w != 1 {
				t.Errorf("%d overload warnings, want 1 per episode", w)
			}
		})
	}
}

// TestQueueNeverEvictsQoS1 interleaves QoS 0 and QoS 1 messages to a
// subscriber that stalls, then reads. Every QoS 1 message must arrive, once
// and in order, while QoS 0 ones make room for them: evicted or refused,
// each counted.
func TestQueueNeverEvictsQoS1(t *testing.T) {
	const n, size = 300, 64 << 10
	h := startHarness(t, queueConfig+"maximum_queued_messages = 16\nslow_subscriber_timeout = \"10s\"\n", nil)
	addr := h.addr("tcp")
	sub := dialStalled(t, addr, "stalled", "q/#", 1)
	pub, err := dialFlood(addr, "pub")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.conn.Close()

	pubDone := make(chan error, 1)
	go func() { // publish, and read the PUBACKs of the QoS 1 messages
		for i := range n {
			publishSeq(pub, "q/t", byte(i%2), i, size)
		}
		publishSeq(pub, "q/end", 1, n, 4)
		if err := pub.w.Flush(); err != nil {
			pubDone <- err
			return
		}
		for i := 0; i < n/2+1; i++ {
			_ = pub.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			if h, _, err := pub.read(); err != nil || h&0xf0 != 0x40 {
				pubDone <- fmt.Errorf("PUBACK %d: %#x %v", i, h, err)
				return
			}
		}
		pubDone <- nil
	}()

	// The subscriber stalls until its queue is full: a message evicted.
	for deadline := time.Now().Add(20 * time.Second); h.OverloadStats().QoS0Evicted == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: the stalled subscriber's queue never filled", h.OverloadStats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var got0 []int
	next1 := 1
	for {
		topic, qos, seq, err := readSeq(sub)
		if err != nil {
			t.Fatalf("after QoS 1 message %d: %v", next1, err)
		}
		if topic == "q/end" {
			break
		}
		if qos == 1 {
			if seq != next1 {
				t.Fatalf("QoS 1 message %d, want %d: lost, duplicated or out of order", seq, next1)
			}
			next1 += 2
			continue
		}
		if seq%2 != 0 || len(got0) > 0 && seq <= got0[len(got0)-1] {
			t.Fatalf("QoS 0 message %d after %v", seq, got0)
		}
		got0 = append(got0, seq)
	}
	if err := <-pubDone; err != nil {
		t.Fatal(err)
	}
	if next1 != n+1 {
		t.Errorf("QoS 1 messages up to %d arrived, want all %d", next1-2, n/2)
	}
	st := h.OverloadStats()
	t.Logf("QoS 0: %d of %d received; %+v", len(got0), n/2, st)
	if st.QoS0Evicted == 0 {
		t.Errorf("stats %+v: no QoS 0 message evicted", st)
	}
	if missing := uint64(n/2 - len(got0)); missing != st.QoS0Evicted+st.QoS0Dropped {
		t.Errorf("%d QoS 0 messages missing; %d evicted and %d refused counted", missing, st.QoS0Evicted, st.QoS0Dropped)
	}
	if st.StuckDropped != 0 || st.StuckEpisodes != 0 {
		t.Errorf("stats %+v: a QoS 1 message was dropped", st)
	}
	if w := overloadWarnings(h); w != 1 {
		t.Errorf("%d overload warnings, want 1 per episode", w)
	}
}

// TestStuckBySocket checks that a QoS 1 subscriber that stops reading is
// declared stuck within slow_subscriber_timeout even while its in-flight
// window has room: the publisher is held by the full outbound queue, then
// freed. In mochi as released, the publisher waited for the subscriber's
// blocked socket write (NextPacketID took the lock WritePacket holds while
// writing), with no bound.
func TestStuckBySocket(t *testing.T) {
	const n, size = 300, 64 << 10
	h := startHarness(t, queueConfig+"maximum_queued_messages = 16\nslow_subscriber_timeout = \"300ms\"\n", nil)
	addr := h.addr("tcp")
	dialStalled(t, addr, "stalled", "q/#", 1)
	pub, err := dialFlood(addr, "pub")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.conn.Close()
	errs := make(chan error, 1)
	go func() {
		for i := range n {
			publishSeq(pub, "q/t", 1, i, size)
		}
		errs <- pub.w.Flush()
	}()
	for i := range n {
		_ = pub.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if h, _, err := pub.read(); err != nil || h&0xf0 != 0x40 {
			t.Fatalf("PUBACK %d: %#x %v: the publisher is held", i, h, err)
		}
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if st := h.OverloadStats(); st.StuckEpisodes != 1 {
		t.Errorf("stats %+v: want one stuck episode", st)
	}
}
