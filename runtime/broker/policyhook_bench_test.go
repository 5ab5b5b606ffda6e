package broker

import (
	"context"
	"log/slog"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// BenchmarkHookAuthorizeCached measures the hook's share of the hot paths,
// with every verdict in the decision cache: a PUBLISH (OnPacketRead, then
// OnACLCheck with write) and a delivery (OnACLCheck without write), against
// the Decider alone. The hook methods are called as mochi calls them, on a
// client authenticated through OnConnect; the authorizer is native Go, so
// the figures are the hook and cache, not a module.
func BenchmarkHookAuthorizeCached(b *testing.B) {
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	d := policy.NewDecider(policy.New(
		[]policy.Step[policy.Authenticator]{{Name: "users", Module: testUsers()}},
		[]policy.Step[policy.Authorizer]{{Name: "rules", Module: topicRules{}}},
		policy.Options{}), policy.CacheOptions{}, nil)
	defer d.Close()
	h := newPolicyHook(srv, d, nil)
	defer h.OnStopped()

	cl := srv.NewClient(nil, "bench", "", false)
	connect := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 5,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30,
			ClientIdentifier: "bench-client",
			UsernameFlag:     true, Username: []byte("bob"),
			PasswordFlag: true, Password: []byte("bob-pw"),
		},
	}
	cl.ParseConnect("bench", connect)
	if err := h.OnConnect(cl, connect); err != nil {
		b.Fatal(err)
	}
	const topic = "sensors/building-7/floor-3/temperature"
	publish := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		TopicName:   topic,
		PacketID:    7,
	}

	b.Run("publish", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pk, _ := h.OnPacketRead(cl, publish)
			if !h.OnACLCheck(cl, pk.TopicName, true) {
				b.Fatal("denied")
			}
		}
	})
	b.Run("deliver", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !h.OnACLCheck(cl, topic, false) {
				b.Fatal("denied")
			}
		}
	})
	b.Run("deliver-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if !h.OnACLCheck(cl, topic, false) {
					b.Error("denied")
					return
				}
			}
		})
	})
	b.Run("decider-only", func(b *testing.B) {
		// The floor: the cached decision without the hook around it.
		s := h.state(cl).session
		req := &policy.AuthzRequest{Action: policy.ActionPublish, Topic: topic, QoS: 1}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if d.Authorize(ctx, s, req).Verdict != policy.Allow {
				b.Fatal("denied")
			}
		}
	})
}
