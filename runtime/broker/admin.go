package broker

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/config"
)

// What the admin endpoint (runtime/server) shows of clients and sessions,
// and the two actions it may take on them: kick a client, delete a
// session. Everything crosses the package boundary as plain structs, so
// that nothing of mochi leaks out.

// ReasonAdministrativeAction is the MQTT 5 DISCONNECT reason code of a
// client an administrator disconnected (0x98, MQTT 5 §3.14.2.1).
const ReasonAdministrativeAction = 0x98

// ErrNoClient is returned for a client id that has no connected client
// (Kick) or no session (DeleteSession).
var ErrNoClient = errors.New("broker: no such client")

// Subscription is one subscription of a session.
type Subscription struct {
	Filter string `json:"filter"`
	QoS    byte   `json:"qos"`
}

// ClientInfo describes one session: a connected client, or the session an
// offline client left behind.
type ClientInfo struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	// Listener is the name of the listener the client came in on.
	Listener string `json:"listener"`
	Remote   string `json:"remote"`
	// Protocol is the MQTT version: "3.1", "3.1.1" or "5".
	Protocol string `json:"protocol"`
	// Connected is false for the session of a client that is gone.
	Connected bool `json:"connected"`
	// ConnectedSince is when the session was established; zero for a
	// session restored from the store whose client has not reconnected.
	ConnectedSince time.Time `json:"connected_since,omitzero"`
	// DisconnectedAt is when an offline session's connection ended.
	DisconnectedAt time.Time `json:"disconnected_at,omitzero"`
	// SessionExpiry is how long the session outlives its connection, in
	// seconds (MQTT 5 session expiry; for 3.1.1, 0 with a clean session).
	SessionExpiry uint32         `json:"session_expiry_s"`
	Subscriptions []Subscription `json:"subscriptions"`
	// Queued counts the QoS 1/2 messages waiting in the session: queued
	// for an offline client, held back by its receive maximum, or sent and
	// not yet acknowledged.
	Queued int `json:"queued"`
}

// ListenerInfo describes one listener.
type ListenerInfo struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Address string `json:"address"`
	// Clients counts the clients connected through it.
	Clients int `json:"clients"`
}

// adminHook notes when each session was established, which mochi does not
// record. It decides nothing.
type adminHook struct {
	mqtt.HookBase
	mu    sync.Mutex
	since map[*mqtt.Client]time.Time
}

func newAdminHook() *adminHook { return &adminHook{since: make(map[*mqtt.Client]time.Time)} }

// ID implements mqtt.Hook.
func (h *adminHook) ID() string { return "moat-admin" }

// Provides implements mqtt.Hook.
func (h *adminHook) Provides(b byte) bool {
	return b == mqtt.OnSessionEstablished || b == mqtt.OnDisconnect
}

// OnSessionEstablished implements mqtt.Hook.
func (h *adminHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.mu.Lock()
	h.since[cl] = time.Now()
	h.mu.Unlock()
}

// OnDisconnect implements mqtt.Hook.
func (h *adminHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	delete(h.since, cl)
	h.mu.Unlock()
}

func (h *adminHook) connectedSince(cl *mqtt.Client) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.since[cl]
}

// connected reports whether cl has a live connection.
func connected(cl *mqtt.Client) bool { return cl.Net.Conn != nil && !cl.Closed() }

func (b *Broker) info(cl *mqtt.Client) ClientInfo {
	ci := ClientInfo{
		ID:             cl.ID,
		Username:       string(cl.Properties.Username),
		Listener:       cl.Net.Listener,
		Remote:         cl.Net.Remote,
		Protocol:       protocolName(cl.Properties.ProtocolVersion),
		Connected:      connected(cl),
		ConnectedSince: b.admin.connectedSince(cl),
		Queued:         cl.State.Inflight.Len(),
		Subscriptions:  []Subscription{},
	}
	if cl.Properties.ProtocolVersion == 5 {
		ci.SessionExpiry = cl.Properties.Props.SessionExpiryInterval
	} else if !cl.Properties.Clean {
		ci.SessionExpiry = b.srv.Options.Capabilities.MaximumSessionExpiryInterval
	}
	if !ci.Connected {
		if t := cl.StopTime(); t > 0 {
			ci.DisconnectedAt = time.Unix(t, 0)
		}
	}
	for filter, sub := range cl.State.Subscriptions.GetAll() {
		ci.Subscriptions = append(ci.Subscriptions, Subscription{Filter: filter, QoS: sub.Qos})
	}
	sort.Slice(ci.Subscriptions, func(i, j int) bool { return ci.Subscriptions[i].Filter < ci.Subscriptions[j].Filter })
	return ci
}

// sessions returns mochi's clients, inline client aside, sorted by id.
func (b *Broker) sessions(connectedOnly bool) []*mqtt.Client {
	var out []*mqtt.Client
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline || (connectedOnly && !connected(cl)) {
			continue
		}
		out = append(out, cl)
	}
	slices.SortFunc(out, func(x, y *mqtt.Client) int {
		switch {
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
	return out
}

// Clients describes the connected clients, sorted by client id.
func (b *Broker) Clients() []ClientInfo {
	out := []ClientInfo{}
	for _, cl := range b.sessions(true) {
		out = append(out, b.info(cl))
	}
	return out
}

// Sessions describes every session, connected or not, sorted by client id.
func (b *Broker) Sessions() []ClientInfo {
	out := []ClientInfo{}
	for _, cl := range b.sessions(false) {
		out = append(out, b.info(cl))
	}
	return out
}

// Client describes the session of one client id; ok is false when there
// is none.
func (b *Broker) Client(id string) (ci ClientInfo, ok bool) {
	cl, ok := b.srv.Clients.Get(id)
	if !ok || cl.Net.Inline {
		return ClientInfo{}, false
	}
	return b.info(cl), true
}

// Kick disconnects the connected client id: an MQTT 5 client gets
// DISCONNECT 0x98 (administrative action) with reason as its reason
// string; 3.1.1 has no server DISCONNECT, so its connection is closed. As
// for any connection the server ends, its will is published (if the
// policy allows it) and its session stays, subject to its expiry, as
// Mosquitto's kick does. It returns ErrNoClient when id is not connected.
func (b *Broker) Kick(id, reason string) (ClientInfo, error) {
	cl, ok := b.srv.Clients.Get(id)
	if !ok || cl.Net.Inline || !connected(cl) {
		return ClientInfo{}, fmt.Errorf("broker: kick %q: %w connected", id, ErrNoClient)
	}
	ci := b.info(cl)
	b.disconnect(cl, reason)
	return ci, nil
}

func (b *Broker) disconnect(cl *mqtt.Client, reason string) {
	code := packets.Code{Code: ReasonAdministrativeAction, Reason: reason}
	if code.Reason == "" {
		code.Reason = "administrative action"
	}
	if cl.Properties.ProtocolVersion >= 5 {
		_ = b.srv.DisconnectClient(cl, code)
	}
	cl.Stop(code) // 3.1.1, and under PassiveClientDisconnect
}

// DeleteSession removes the session of client id, with its subscriptions
// and queued messages, from memory and from the store. A connected client
// is disconnected first, as Kick does, and its session is then ended by
// mochi as that of a clean-session client: mochi clears it when the
// connection's goroutine ends, a moment after DeleteSession returns. It
// returns the session as it was, or ErrNoClient.
//
// A client that connects with the same id while its session is being
// deleted may inherit part of it; the session is an administrator's to
// delete, not a client's to defend, so this is not prevented.
func (b *Broker) DeleteSession(id, reason string) (ClientInfo, error) {
	cl, ok := b.srv.Clients.Get(id)
	if !ok || cl.Net.Inline {
		return ClientInfo{}, fmt.Errorf("broker: delete session %q: %w", id, ErrNoClient)
	}
	ci := b.info(cl)
	if connected(cl) {
		// attachClient reads these once the connection ends (after Stop,
		// whose sync.Once orders this write before that read) and expires
		// the session itself: subscriptions, inflight, store, hooks.
		cl.Properties.Props.SessionExpiryInterval = 0
		cl.Properties.Clean = true
		b.disconnect(cl, reason)
		return ci, nil
	}
	// What mochi does when a clean session's connection ends, for a
	// session whose connection is long gone: ClearInflights and
	// UnsubscribeClient tell the store through mochi's hooks.
	cl.ClearInflights()
	b.srv.UnsubscribeClient(cl)
	b.srv.Clients.Delete(id)
	b.policy.OnClientExpired(cl)
	b.mu.Lock()
	store := b.store
	b.mu.Unlock()
	if store != nil {
		store.OnClientExpired(cl)
	}
	return ci, nil
}

// Listeners describes the listeners, in config order; nil before Start.
func (b *Broker) Listeners() []ListenerInfo {
	b.mu.Lock()
	lns := b.listeners
	b.mu.Unlock()
	count := make(map[string]int)
	for _, cl := range b.sessions(true) {
		count[cl.Net.Listener]++
	}
	out := make([]ListenerInfo, 0, len(lns))
	for _, l := range lns {
		out = append(out, ListenerInfo{Name: l.name, Type: l.typ, Address: l.Address(), Clients: count[l.name]})
	}
	return out
}

// StorePath returns the file of the session store cfg configures ([persistence]
// type "bolt"), "" without persistence.
func StorePath(cfg *config.Config) string {
	if cfg.Persistence.Type != "bolt" {
		return ""
	}
	return boltPath(cfg)
}
