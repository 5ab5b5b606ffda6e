package mqtt

import (
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/stretchr/testify/require"
)

// TestDetachClientStoppedBeforeRead: Read returns nil when it finds its
// client already stopped. Stopped by the server (a hook, an admin) before
// its read loop began, the client keeps its will; stopped by its own
// DISCONNECT, it does not [MQTT-3.14.4-3].
func TestDetachClientStoppedBeforeRead(t *testing.T) {
	tests := []struct {
		name  string
		cause error
		sent  bool
	}{
		{"stopped by the server", packets.ErrNotAuthorized, true},
		{"disconnected by the client", packets.CodeDisconnect, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer()
			cl, _, _ := newTestClient()
			cl.ID = "sender"
			cl.Properties.Will = Will{Flag: 1, TopicName: "a/b/c", Payload: []byte("gone"), Retain: true}
			s.Clients.Add(cl)
			cl.Stop(tc.cause)
			require.NoError(t, cl.Read(func(*Client, packets.Packet) error { return nil })) // the client is stopped: nil at once
			s.detachClient(cl, "t1", nil)
			n := len(s.Topics.Messages("a/b/c"))
			if tc.sent {
				require.Equal(t, 1, n, "the will was not sent")
			} else {
				require.Equal(t, 0, n, "the will was sent after a DISCONNECT")
			}
		})
	}
}
