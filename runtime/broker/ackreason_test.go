package broker

import (
	"context"
	"strings"
	"testing"

	"github.com/eclipse/paho.golang/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// reasonRules denies a publish on "deny/<hex code>" with that reason code
// and allows everything else.
type reasonRules struct{}

func (reasonRules) Authorize(_ context.Context, req *policy.AuthzRequest) (policy.AuthzResult, error) {
	code, ok := strings.CutPrefix(req.Topic, "deny/")
	if !ok || req.Action != policy.ActionPublish {
		return policy.AuthzResult{Verdict: policy.Allow}, nil
	}
	var reason byte
	for _, c := range code {
		reason = reason<<4 | byte(strings.IndexRune("0123456789abcdef", c))
	}
	return policy.AuthzResult{Verdict: policy.Deny, Reason: reason}, nil
}

// TestPublishDenyReason: the PUBACK or PUBREC of a publish the policy
// denies carries the module's reason code where MQTT 5 allows one there,
// and 0x87 otherwise; the broker goes on serving the client.
func TestPublishDenyReason(t *testing.T) {
	p := policy.New(nil, []policy.Step[policy.Authorizer]{{Name: "reasons", Module: reasonRules{}}}, policy.Options{AllowAnonymous: true})
	h := startHarness(t, tcpConfig, p)
	c, ack := dialRawV5(t, h.addr("tcp"), "reasons", 0)
	if ack.ReasonCode != 0 {
		t.Fatalf("CONNACK 0x%02x", ack.ReasonCode)
	}
	id := uint16(0)
	for _, tc := range []struct {
		topic string
		want  byte
	}{
		{"deny/97", 0x97},   // quota exceeded
		{"deny/90", 0x90},   // topic name invalid
		{"deny/99", 0x99},   // payload format invalid
		{"deny/80", 0x80},   // unspecified error
		{"deny/83", 0x83},   // implementation specific error
		{"deny/00", 0x87},   // no reason: the default
		{"deny/8a", 0x87},   // banned: a CONNACK code, not a PUBACK one
		{"deny/91", 0x87},   // packet identifier in use: not the policy's
		{"allowed/x", 0x00}, // the next publish is not affected
	} {
		for _, qos := range []byte{1, 2} {
			id++
			cp := packets.NewControlPacket(packets.PUBLISH)
			pub := cp.Content.(*packets.Publish)
			pub.Topic, pub.QoS, pub.PacketID, pub.Payload = tc.topic, qos, id, []byte("x")
			pub.Properties = &packets.Properties{}
			c.write(cp)
			var got byte
			var gotID uint16
			if qos == 1 {
				a := c.read(packets.PUBACK).Content.(*packets.Puback)
				got, gotID = a.ReasonCode, a.PacketID
			} else {
				a := c.read(packets.PUBREC).Content.(*packets.Pubrec)
				got, gotID = a.ReasonCode, a.PacketID
				if got == 0 { // complete the QoS 2 flow
					rel := packets.NewControlPacket(packets.PUBREL)
					rel.Content.(*packets.Pubrel).PacketID = id
					c.write(rel)
					c.read(packets.PUBCOMP)
				}
			}
			if got != tc.want || gotID != id {
				t.Errorf("%s QoS %d: reason 0x%02x (packet id %d), want 0x%02x (%d)", tc.topic, qos, got, gotID, tc.want, id)
			}
		}
	}
	if n := h.policy.ackReasons.Load(); n != 0 {
		t.Errorf("%d reason codes still pending", n)
	}
}
