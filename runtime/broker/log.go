package broker

import (
	"context"
	"errors"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mochiHandler adapts mochi's log lines to moat's conventions before they
// reach moat's handler:
//
//   - Whole packets are never logged. mochi attaches the packet it failed on
//     ("pk", "packet"), which holds payloads and, for CONNECT, the password;
//     it is replaced by its type, topic and packet id.
//   - Client mistakes are debug, not warn or error: a bad packet, a refused
//     publish or a short keepalive is the client's problem and would let any
//     client flood the operator's log.
//   - A new bolt database has no $SYS record; mochi logs that at error.
//   - mochi's own lifecycle lines ("added hook", "attached listener") are
//     debug; moat logs its own at info.
//   - Keys follow STYLE.md: "err" and "client_id" instead of mochi's "error"
//     and "client".
type mochiHandler struct {
	h slog.Handler
}

func newMochiLogger(log *slog.Logger) *slog.Logger {
	return slog.New(mochiHandler{h: log.Handler()})
}

// clientCaused lists mochi messages logged at warn or error that a client
// can trigger at will.
var clientCaused = map[string]bool{
	"error processing packet":        true, // malformed or refused packet
	"publish packet error":           true, // a hook refused a PUBLISH
	"parse will error":               true, // a hook refused a will
	mqtt.ErrMinimumKeepalive.Error(): true, // keepalive below mochi's taste
	// One line per message dropped for a stuck subscriber; overloadHook
	// logs once per episode instead.
	"client store quota reached": true,
}

// deniedDelivery reports mochi's debug record of a delivery the policy
// denied ("failed publishing packet", not authorized): moat's own audit
// record (policyhook_authz.go) already says it, and a module that fails
// for subscribers to "#" would otherwise write one per message each.
func deniedDelivery(r slog.Record) bool {
	return r.Message == "failed publishing packet" && hasError(r, packets.ErrNotAuthorized)
}

// missingKey reports the bolt hook's error for a key that is not there,
// which it logs when a new database has no $SYS record yet.
func missingKey(r slog.Record) bool {
	return hasError(r, bolt.ErrKeyNotFound)
}

// hasError reports whether r's "error" attribute is, or wraps, target.
func hasError(r slog.Record, target error) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "error" && errors.Is(err, target) {
			found = true
			return false
		}
		return true
	})
	return found
}

// Enabled implements slog.Handler. Levels are only ever lowered, so a
// record disabled at its original level stays disabled.
func (m mochiHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return m.h.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (m mochiHandler) Handle(ctx context.Context, r slog.Record) error {
	if deniedDelivery(r) {
		return nil
	}
	level := r.Level
	switch {
	case level == slog.LevelInfo:
		level = slog.LevelDebug
	case level >= slog.LevelWarn && (clientCaused[r.Message] || missingKey(r)):
		level = slog.LevelDebug
	}
	if level != r.Level && !m.h.Enabled(ctx, level) {
		return nil
	}
	msg := r.Message
	if msg == "" {
		msg = "mochi" // the bolt hook logs errors without a message
	}
	out := slog.NewRecord(r.Time, level, msg, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(convertAttr(a)...)
		return true
	})
	return m.h.Handle(ctx, out)
}

// WithAttrs implements slog.Handler.
func (m mochiHandler) WithAttrs(as []slog.Attr) slog.Handler {
	conv := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		conv = append(conv, convertAttr(a)...)
	}
	return mochiHandler{h: m.h.WithAttrs(conv)}
}

// WithGroup implements slog.Handler.
func (m mochiHandler) WithGroup(name string) slog.Handler {
	return mochiHandler{h: m.h.WithGroup(name)}
}

// convertAttr renames mochi's keys and summarises packets.
func convertAttr(a slog.Attr) []slog.Attr {
	switch a.Key {
	case "error":
		a.Key = "err"
	case "client":
		a.Key = "client_id"
	}
	if a.Value.Kind() != slog.KindAny {
		return []slog.Attr{a}
	}
	var pk *packets.Packet
	switch v := a.Value.Any().(type) {
	case packets.Packet:
		pk = &v
	case *packets.Packet:
		pk = v
	default:
		return []slog.Attr{a}
	}
	if pk == nil {
		return nil
	}
	out := []slog.Attr{slog.String("packet_type", packetName(pk.FixedHeader.Type))}
	if pk.TopicName != "" {
		out = append(out, slog.String("topic", pk.TopicName))
	}
	if pk.PacketID != 0 {
		out = append(out, slog.Int("packet_id", int(pk.PacketID)))
	}
	return out
}

func packetName(t byte) string {
	if n, ok := packets.PacketNames[t]; ok {
		return n
	}
	return "unknown"
}
