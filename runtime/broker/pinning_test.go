package broker

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/packets"
)

// TestKeptTopicsDoNotPinPackets: mochi decodes a packet's strings without
// copying, so a topic or filter that outlives its packet (an inbound topic
// alias, a cached decision, a subscription) kept the whole packet, up to
// maximum_packet_size, alive. A client that defines 30 aliases with 200 KiB
// publishes and makes 30 subscriptions in 200 KiB SUBSCRIBE packets made
// the broker hold over 8 MiB; it must hold about the strings.
func TestKeptTopicsDoNotPinPackets(t *testing.T) {
	h := startHarness(t, tcpConfig, nil)
	c, ack := dialRawV5(t, h.addr("tcp"), "pinner", 0)
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
	}
	const n, size = 30, 200 << 10
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	big := strings.Repeat("x", size)
	for i := range n {
		cp := packets.NewControlPacket(packets.PUBLISH)
		p := cp.Content.(*packets.Publish)
		alias := uint16(i + 1)
		p.Topic, p.QoS, p.PacketID, p.Payload = fmt.Sprintf("pin/%d", i), 1, uint16(i+1), []byte(big)
		p.Properties = &packets.Properties{TopicAlias: &alias}
		c.write(cp)
		if r := c.read(packets.PUBACK).Content.(*packets.Puback).ReasonCode; r != 0 {
			t.Fatalf("PUBACK 0x%02x", r)
		}

		cp = packets.NewControlPacket(packets.SUBSCRIBE)
		s := cp.Content.(*packets.Subscribe)
		s.PacketID = uint16(i + 1)
		s.Properties = &packets.Properties{User: []packets.User{{Key: "k", Value: big}}}
		s.Subscriptions = []packets.SubOptions{{Topic: fmt.Sprintf("sub/%d/#", i), QoS: 1}}
		c.write(cp)
		if r := c.read(packets.SUBACK).Content.(*packets.Suback).Reasons; len(r) != 1 || r[0] != 1 {
			t.Fatalf("SUBACK %v", r)
		}
	}
	after := heap()
	grown := int64(after) - int64(before)
	t.Logf("heap grew by %d KiB for %d publishes and %d subscriptions of %d KiB", grown>>10, n, n, size>>10)
	if grown > 3<<20 {
		t.Errorf("heap grew by %d KiB: kept strings pin their packets", grown>>10)
	}
	runtime.KeepAlive(c)
}
