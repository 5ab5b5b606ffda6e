package broker

import (
	"bytes"
	"slices"
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// FuzzPayloadDelivery feeds the delivery hook PUBLISH packets with
// arbitrary markers, topics and payloads, as a damaged store or a bug
// upstream could produce them. It must never panic, never let a marker
// reach an MQTT 5 subscriber, never modify what the packet shares with the
// stored message, and deliver a changed payload only when it was a valid
// envelope for the delivered topic under a key of the ring.
func FuzzPayloadDelivery(f *testing.F) {
	r := newHookRig(f, payloadPolicy())
	reader3 := r.connect(f, "reader", 4)
	ring := r.ring.Load()
	env, _ := ring.Seal("k1", "rest/t", []byte("seed plaintext"))
	f.Add("at-rest:rest/t", "rest/t", env, true)
	f.Add("reencrypt:rest/t", "rest/t", env, true)
	f.Add("at-rest:rest/t", "", env, false)
	f.Add("at-rest:other", "rest/t", env, true)
	f.Add("garbage", "rest/t", []byte("plain"), true)
	f.Add("at-rest:", "", []byte{}, true)
	f.Add("plaintext:x", "x", []byte{0x6d, 0x45, 1, 1, 1, 'k'}, false)
	f.Fuzz(func(t *testing.T, marker, topic string, payload []byte, v5 bool) {
		sub := r.reader
		if !v5 {
			sub = reader3
		}
		user := []packets.UserProperty{{Key: "app", Val: "1"}, {Key: markerKey, Val: marker}, {Key: markerKey, Val: "x"}}
		pk := packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
			TopicName:   topic,
			Payload:     bytes.Clone(payload),
			Properties:  packets.Properties{User: slices.Clone(user)},
		}
		stored := pk
		out := r.payload.OnPacketEncode(sub, pk)
		if !slices.Equal(stored.Properties.User, user) || !bytes.Equal(stored.Payload, payload) {
			t.Fatal("the stored message was modified")
		}
		if v5 && markerIndex(out.Properties.User) >= 0 {
			t.Fatal("a marker reached an MQTT 5 subscriber")
		}
		if bytes.Equal(out.Payload, payload) {
			return
		}
		mode, mtopic, ok := parseMarker(marker)
		if !ok || mode != policy.ModeAtRest {
			t.Fatalf("payload changed under marker %q", marker)
		}
		aad := topic
		if aad == "" {
			aad = mtopic
		}
		plain, _, err := ring.Open(aad, payload)
		if err != nil || !bytes.Equal(plain, out.Payload) {
			t.Fatalf("delivered %q, which is not the opening of the stored envelope (%v)", out.Payload, err)
		}
	})
}

// FuzzMarker: any marker OnPublish writes parses back to its mode and
// topic, whatever the topic holds, and withoutMarker removes every marker
// and nothing else.
func FuzzMarker(f *testing.F) {
	f.Add(uint8(3), "a/b", "k", "v")
	f.Add(uint8(4), "a:b/c", markerKey, "at-rest:x")
	f.Add(uint8(1), "", "", "")
	f.Fuzz(func(t *testing.T, m uint8, topic, k, v string) {
		mode := policy.Mode(m)
		if mode == policy.ModeAtRest || mode == policy.ModeReencrypt {
			got, gotTopic, ok := parseMarker(markerValue(mode, topic))
			if !ok || got != mode || gotTopic != topic {
				t.Fatalf("marker of %v %q parses as %v %q %v", mode, topic, got, gotTopic, ok)
			}
		}
		props := []packets.UserProperty{{Key: k, Val: v}, {Key: markerKey, Val: v}, {Key: v, Val: k}}
		orig := slices.Clone(props)
		out := withoutMarker(props)
		if !slices.Equal(props, orig) {
			t.Fatal("withoutMarker modified its argument")
		}
		if markerIndex(out) >= 0 {
			t.Fatal("a marker survived withoutMarker")
		}
		want := 0
		for _, p := range orig {
			if p.Key != markerKey {
				want++
			}
		}
		if len(out) != want {
			t.Fatalf("withoutMarker kept %d of %d properties", len(out), want)
		}
	})
}
