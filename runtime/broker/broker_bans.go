package broker

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// AddBan adds or replaces a ban (see Ban), writes the ban file, and
// disconnects every connected client it matches: MQTT 5 clients get
// DISCONNECT 0x8A (banned), older ones see the connection close. It
// returns how many clients were disconnected. Created is set when zero.
func (b *Broker) AddBan(ban Ban) (int, error) {
	if ban.Created.IsZero() {
		ban.Created = time.Now().UTC()
	}
	if err := b.bans.add(ban); err != nil {
		return 0, err
	}
	b.log.Info("ban added", "kind", ban.Kind, "value", ban.Value, "expires", ban.Expires, "reason", ban.Reason)
	return b.kickBanned(), nil
}

// RemoveBan lifts the ban of kind and value and reports whether there was
// one.
func (b *Broker) RemoveBan(kind, value string) (bool, error) {
	found, err := b.bans.remove(kind, value)
	if found {
		b.log.Info("ban removed", "kind", kind, "value", value)
	}
	return found, err
}

// Bans lists the bans in force, flapping bans included.
func (b *Broker) Bans() []Ban { return b.bans.list(time.Now()) }

// Refused reports how many connections, subscriptions or clients the
// limits refused for reason ("max_connections", "banned", "flapping",
// ...), since the broker was built.
func (b *Broker) Refused(reason string) int64 { return b.gate.refused(reason) }

// kickBanned disconnects the connected clients a ban now matches.
func (b *Broker) kickBanned() int {
	now := time.Now()
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline || cl.Closed() {
			continue
		}
		if _, ok := b.bans.match(cl.ID, string(cl.Properties.Username), addrOf(remoteAddr(cl)), now); !ok {
			continue
		}
		b.disconnectBanned(cl)
		n++
	}
	return n
}

func (b *Broker) disconnectBanned(cl *mqtt.Client) {
	b.log.Info("banned client disconnected", "client_id", cl.ID)
	if cl.Properties.ProtocolVersion == 5 {
		_ = b.srv.DisconnectClient(cl, packets.ErrBanned)
		return
	}
	cl.Stop(packets.ErrBanned)
}
