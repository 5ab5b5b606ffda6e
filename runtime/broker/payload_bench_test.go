package broker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/crypto"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/sdk/envelope"
)

// memSource serves fixed keys from memory, for tests that need a ring but
// no files.
type memSource map[string][]byte

func (m memSource) Load(_ context.Context, spec crypto.KeySpec) ([]byte, error) {
	k, ok := m[spec.ID]
	if !ok {
		return nil, fmt.Errorf("no key %q", spec.ID)
	}
	return bytes.Clone(k), nil
}

// hookRig is the payload hook wired as mochi wires it, without sockets:
// hook methods are called directly on clients authenticated through
// OnConnect, as mochi calls them.
type hookRig struct {
	srv     *mqtt.Server
	policy  *policyHook
	payload *payloadHook
	ring    *crypto.RingHolder
	keys    memSource
	// reader may decrypt; tenant gets re-encrypted envelopes under "ta".
	reader, tenant, publisher *mqtt.Client
}

func newHookRig(tb testing.TB, p *policy.Policy) *hookRig {
	tb.Helper()
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	d := policy.NewDecider(p, policy.CacheOptions{}, nil)
	tb.Cleanup(d.Close)
	r := &hookRig{srv: srv, keys: memSource{}, ring: new(crypto.RingHolder)}
	var specs []crypto.KeySpec
	for i, id := range payloadKeyIDs {
		r.keys[id] = bytes.Repeat([]byte{byte(i + 1)}, envelope.KeySize)
		specs = append(specs, crypto.KeySpec{ID: id})
	}
	ring, err := crypto.NewRing(context.Background(), r.keys, specs, map[string]string{crypto.PurposeAtRest: "k1"})
	if err != nil {
		tb.Fatal(err)
	}
	r.ring.Store(ring)
	r.policy = newPolicyHook(srv, d, nil)
	tb.Cleanup(r.policy.OnStopped)
	r.payload = newPayloadHook(srv, r.policy, r.ring, false, nil)
	r.reader = r.connect(tb, "reader", 5)
	r.tenant = r.connect(tb, "ta-sub", 5)
	r.publisher = r.connect(tb, "publisher", 5)
	return r
}

func (r *hookRig) connect(tb testing.TB, username string, version byte) *mqtt.Client {
	tb.Helper()
	cl := r.srv.NewClient(nil, "rig", "", false)
	connect := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: version,
		Connect: packets.ConnectParams{
			ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30,
			ClientIdentifier: username + "-client",
			UsernameFlag:     true, Username: []byte(username),
		},
	}
	cl.ParseConnect("rig", connect)
	if err := r.policy.OnConnect(cl, connect); err != nil {
		tb.Fatal(err)
	}
	return cl
}

// publish runs a PUBLISH through the hooks as mochi does: OnPacketRead and
// OnACLCheck(write) of the policy hook, then OnPublish.
func (r *hookRig) publish(tb testing.TB, pk packets.Packet) packets.Packet {
	pk, _ = r.policy.OnPacketRead(r.publisher, pk)
	if !r.policy.OnACLCheck(r.publisher, pk.TopicName, true) {
		tb.Fatal("publish denied")
	}
	out, err := r.payload.OnPublish(r.publisher, pk)
	if err != nil {
		tb.Fatalf("OnPublish: %v", err)
	}
	return out
}

// BenchmarkPayloadHook measures what the payload policy adds to one
// message, through the hook path (no sockets): the publish side (policy
// hook, payload chain, sealing) and one delivery (OnPacketEncode: the
// decrypt permission from the cache and opening, or the deliver decision
// and resealing). The payload chain is native Go, so the figures are the
// hooks and the cryptography, not a wasm module. "off" has no payload
// chain: mochi would not even call the payload hook.
func BenchmarkPayloadHook(b *testing.B) {
	for _, size := range []int{256, 64 << 10} {
		plain := bytes.Repeat([]byte("p"), size)
		for _, mode := range []string{"off", "plaintext", "at-rest", "reencrypt"} {
			b.Run(fmt.Sprintf("%s/%s", sizeLabel(size), mode), func(b *testing.B) {
				p := payloadPolicy()
				if mode == "off" {
					p = policy.New([]policy.Step[policy.Authenticator]{{Name: "users", Module: payloadUsers{}}},
						[]policy.Step[policy.Authorizer]{{Name: "rules", Module: decryptRules{}}}, policy.Options{})
				}
				r := newHookRig(b, p)
				topic := map[string]string{"off": "plain/b", "plaintext": "plain/b", "at-rest": "rest/b", "reencrypt": "reenc/b"}[mode]
				payload := plain
				sub := r.reader
				if mode == "reencrypt" {
					payload, _ = envelope.Seal(envelope.AES256GCM, "dev", r.keys["dev"], topic, plain)
					sub = r.tenant
				}
				in := packets.Packet{
					FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
					TopicName:   topic, PacketID: 7, Payload: payload,
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					stored := r.publish(b, in)
					if mode == "off" {
						continue // mochi calls no payload hook without a payload policy
					}
					out := r.payload.OnPacketEncode(sub, stored)
					if len(out.Payload) < size {
						b.Fatal("short delivery")
					}
				}
			})
		}
	}
}

func sizeLabel(n int) string {
	if n >= 1024 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkPayloadPublish measures publish throughput end to end: a real
// broker on a loopback socket, 4 MQTT 5 publishers at QoS 1 (each waits
// for its PUBACK) and MQTT 5 subscribers that must receive every message.
// The at-rest subscriber may decrypt (every delivery is opened); the
// reencrypt subscriber gets every message resealed under its tenant key.
//
// The three modes run interleaved on one broker, in batches of 32 messages
// per mode, so that a change in the machine's load (the tests share it)
// hits all three alike; b.N counts messages per mode. Reported per mode:
// "<mode>-ns/msg", and throughput as a ratio of plaintext's,
// "<mode>-x-plaintext" (1 = as fast).
func BenchmarkPayloadPublish(b *testing.B) {
	const publishers, batch = 4, 32
	for _, size := range []int{256, 64 << 10} {
		b.Run(sizeLabel(size), func(b *testing.B) {
			e := newPayloadEnv(b)
			doc := e.doc("", nil, "")
			h := startPayloadBrokerLog(b, e.dir, doc, e.ring(b, doc), nil, slog.New(slog.DiscardHandler))
			plain := bytes.Repeat([]byte("p"), size)
			type lane struct {
				name, topic string
				payload     []byte
				sub         *v5Msgs
			}
			lanes := []lane{
				{"plaintext", "plain/b", plain, nil},
				{"at-rest", "rest/b", plain, nil},
				{"reencrypt", "reenc/b", e.seal(b, "dev", "reenc/b", string(plain)), nil},
			}
			for i := range lanes {
				user := "reader"
				if lanes[i].name == "reencrypt" {
					user = "ta-sub"
				}
				lanes[i].sub = mustV5Msgs(b, h.addr("tcp"), v5Opts{username: user})
				lanes[i].sub.sub(b, lanes[i].topic, 1)
			}
			var pubs [publishers]*v5Msgs
			for i := range pubs {
				pubs[i] = mustV5Msgs(b, h.addr("tcp"), v5Opts{username: "publisher"})
			}
			var spent [3]time.Duration
			b.SetBytes(int64(3 * size))
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				for li, l := range lanes {
					start := time.Now()
					var wg sync.WaitGroup
					var failed atomic.Bool
					for pi, p := range pubs {
						k := n / publishers
						if pi < n%publishers {
							k++
						}
						wg.Add(1)
						go func() {
							defer wg.Done()
							for range k {
								ctx, cancel := context.WithTimeout(context.Background(), testutil.Wait)
								_, err := p.Publish(ctx, &paho.Publish{Topic: l.topic, QoS: 1, Payload: l.payload})
								cancel()
								if err != nil {
									failed.Store(true)
									return
								}
							}
						}()
					}
					for i := 0; i < n; i++ {
						select {
						case m := <-l.sub.msgs:
							if len(m.Payload) < size {
								b.Fatalf("%s: %d bytes", l.name, len(m.Payload))
							}
						case <-time.After(testutil.Wait):
							b.Fatalf("%s: received %d of %d", l.name, i, n)
						}
					}
					wg.Wait()
					if failed.Load() {
						b.Fatal("a publish failed")
					}
					spent[li] += time.Since(start)
				}
			}
			b.StopTimer()
			for i, l := range lanes {
				b.ReportMetric(float64(spent[i].Nanoseconds())/float64(b.N), l.name+"-ns/msg")
				if i > 0 {
					b.ReportMetric(float64(spent[0])/float64(spent[i]), l.name+"-x-plaintext")
				}
			}
		})
	}
}
