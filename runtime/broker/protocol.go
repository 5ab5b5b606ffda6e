package broker

import (
	"log/slog"
	"strconv"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// protocolHook corrects what mochi v2.7.9 gets wrong on the wire, where a
// client can tell the difference (see RATIONALE.md, "Protocol fixes"):
//
//   - An empty password with the password flag set is legal
//     [MQTT-3.1.2-19] says a password must be present, and a zero-length
//     one is present), but mochi refuses it with CONNACK 0x82, even to an
//     MQTT 3.1.1 client. OnPacketRead passes it on to the policy, which
//     decides as for any password.
//   - A PUBLISH naming a topic alias the client never set is a protocol
//     error, DISCONNECT 0x94 [MQTT-3.3.2-8 and 3.3.4]; mochi lets it
//     through with an empty topic, which the policy can only refuse as
//     "not authorized".
//   - An MQTT 3.1.1 CONNACK may only carry return codes 0 to 5 (MQTT 3.1.1
//     §3.2.2.3); mochi translates few of its MQTT 5 reason codes.
//     OnPacketEncode maps every CONNACK to a 3.1.1 (or 3.1) client onto
//     that range, and closes the connection without a CONNACK for a
//     malformed CONNECT, as MQTT 3.1.1 §4.8 and Mosquitto do.
//
// It provides no authentication or ACL check (see checkAuthHooks), and is
// registered first, so that the policy hook's OnPacketRead sees a packet it
// has already checked.
type protocolHook struct {
	mqtt.HookBase
	srv *mqtt.Server
	log *slog.Logger
	// connects counts the CONNECT packets read, for $SYS (sys.go).
	connects atomic.Int64
}

func newProtocolHook(srv *mqtt.Server, log *slog.Logger) *protocolHook {
	return &protocolHook{srv: srv, log: log}
}

// ID implements mqtt.Hook.
func (h *protocolHook) ID() string { return "moat-protocol" }

// Provides implements mqtt.Hook.
func (h *protocolHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnSessionEstablished, mqtt.OnDisconnect:
		return true
	}
	return false
}

// OnSessionEstablished implements mqtt.Hook: the CONNACK has been sent.
// One line per connection at info, with what an operator asks first: who,
// from where, on which listener, how.
func (h *protocolHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if cl.Net.Inline {
		return
	}
	h.log.Info("client connected", "client_id", cl.ID, "username", string(cl.Properties.Username),
		"listener", cl.Net.Listener, "remote", cl.Net.Remote, "protocol", protocolName(cl.Properties.ProtocolVersion),
		"clean_start", pk.Connect.Clean, "keepalive", cl.State.Keepalive)
}

// OnDisconnect implements mqtt.Hook: one line per connection that ends, at
// info, with the reason.
func (h *protocolHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if cl.Net.Inline {
		return
	}
	reason := "client sent DISCONNECT"
	switch {
	case cl.IsTakenOver():
		reason = "session taken over by a new connection with the same client id"
	case err != nil:
		reason = err.Error()
	case cl.StopCause() != nil:
		reason = cl.StopCause().Error()
	}
	h.log.Info("client disconnected", "client_id", cl.ID, "username", string(cl.Properties.Username),
		"listener", cl.Net.Listener, "remote", cl.Net.Remote, "reason", reason, "session_ends", expire)
}

// protocolName names an MQTT protocol level as users know it.
func protocolName(v byte) string {
	switch v {
	case 3:
		return "3.1"
	case 4:
		return "3.1.1"
	case 5:
		return "5"
	}
	return "level " + strconv.Itoa(int(v))
}

// OnPacketRead implements mqtt.Hook. mochi calls it for every packet read,
// CONNECT included, before it validates or processes the packet.
func (h *protocolHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		h.connects.Add(1)
		if pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
			// mochi's ConnectValidate refuses a set flag with no bytes. A
			// cleared flag with a non-nil empty password passes it, and
			// the policy hook reads a non-nil password as present
			// (policy.AuthnRequest.Password: nil means no password field).
			pk.Connect.PasswordFlag = false
			pk.Connect.Password = []byte{}
		}
	case packets.Publish:
		a := pk.Properties.TopicAlias
		if cl.Properties.ProtocolVersion < 5 || !pk.Properties.TopicAliasFlag || a == 0 ||
			pk.TopicName != "" || a > h.srv.Options.Capabilities.TopicAliasMaximum {
			return pk, nil // mochi refuses an alias out of range itself (0x94)
		}
		// Set with an empty topic returns the topic the alias stands for,
		// or "" for an alias never set [MQTT-3.3.2-12].
		if cl.State.TopicAliases.Inbound.Set(a, "") == "" {
			h.log.Info("protocol error, disconnecting", "client_id", cl.ID, "reason", "unknown topic alias", "alias", a)
			_ = h.srv.DisconnectClient(cl, packets.ErrTopicAliasInvalid)
			// ErrRejectPacket is the one error that makes mochi stop
			// reading; the connection is closed already.
			return pk, packets.ErrRejectPacket
		}
	}
	return pk, nil
}

// OnPacketEncode implements mqtt.Hook: it keeps CONNACKs to MQTT 3.1 and
// 3.1.1 clients within their return codes, and sends such clients no
// DISCONNECT: MQTT 3.1.1 has no server DISCONNECT (§3.14: it is sent by
// the client), so a server that ends a 3.1.1 connection closes it, as
// Mosquitto does. mochi sends one in some paths (a refused publish with
// v3_denied_publish = "disconnect", shutdown, receive maximum exceeded).
func (h *protocolHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Disconnect && cl.Properties.ProtocolVersion < 5 {
		// Closing the connection here makes mochi's write fail, so nothing
		// is sent; the stop cause keeps the reason for the log.
		cl.Stop(packets.Code{Code: pk.ReasonCode, Reason: pk.Properties.ReasonString})
		return pk
	}
	if pk.FixedHeader.Type != packets.Connack {
		return pk
	}
	switch v := cl.Properties.ProtocolVersion; {
	case v != 3 && v != 4 && v != 5:
		// A protocol level moat does not speak: return code 1, in the
		// 3.1.1 encoding every version can read [MQTT-3.1.2-2].
		pk.ProtocolVersion = 4
		pk.ReasonCode = 1
		pk.SessionPresent = false
		return pk
	case v == 5:
		return pk
	}
	if pk.ReasonCode <= 5 {
		return pk
	}
	rc, ok := v3ConnackCode(pk.ReasonCode)
	if !ok {
		// No CONNACK for a malformed CONNECT: close the connection, so
		// that mochi's write fails and nothing is sent.
		h.log.Info("connection refused", "client_id", cl.ID, "remote", cl.Net.Remote,
			"reason", "malformed CONNECT", "code", pk.ReasonCode)
		cl.Stop(packets.Code{Code: pk.ReasonCode, Reason: "malformed CONNECT"})
		return pk
	}
	pk.ReasonCode = rc
	pk.SessionPresent = false // [MQTT-3.2.2-4]
	return pk
}

// v3ConnackCode maps an MQTT 5 CONNACK reason code to the MQTT 3.1.1 return
// code that means the same. ok is false for a malformed or protocol-violating
// CONNECT, which MQTT 3.1.1 answers by closing the connection (§4.8).
func v3ConnackCode(r byte) (code byte, ok bool) {
	switch r {
	case 0x81, 0x82: // malformed packet, protocol error
		return 0, false
	case 0x80:
		// mochi's only unspecified error on CONNECT: a persistent session
		// asked for without a client identifier [MQTT-3.1.3-8].
		return 2, true
	case 0x84: // unsupported protocol version
		return 1, true
	case 0x85: // client identifier not valid
		return 2, true
	case 0x88, 0x89, 0x97, 0x9F: // unavailable, busy, quota, rate
		return 3, true
	case 0x86, 0x8C: // bad user name or password, bad authentication method
		return 4, true
	}
	return 5, true // not authorized, banned, and anything else
}
