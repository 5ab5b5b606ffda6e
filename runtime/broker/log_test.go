package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"
)

func TestMochiLogger(t *testing.T) {
	t.Parallel()
	secret := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish},
		TopicName:   "a/b",
		PacketID:    7,
		Payload:     []byte("PAYLOAD-SECRET"),
		Connect:     packets.ConnectParams{Password: []byte("PASSWORD-SECRET")},
	}
	tests := []struct {
		name      string
		level     slog.Level
		msg       string
		args      []any
		wantLevel string            // "" when the line must be dropped at info
		wantAttrs map[string]string // exact values, after conversion
		absent    []string          // keys that must not appear
	}{
		{
			name: "bad packet is debug and summarised", level: slog.LevelWarn, msg: "error processing packet",
			args:      []any{"error", errors.New("malformed"), "client", "c1", "listener", "tcp", "pk", secret},
			wantLevel: "DEBUG",
			wantAttrs: map[string]string{"err": "malformed", "client_id": "c1", "packet_type": "Publish", "topic": "a/b", "packet_id": "7"},
			absent:    []string{"error", "client", "pk"},
		},
		{
			name: "packet pointer", level: slog.LevelDebug, msg: "failed publishing packet",
			args:      []any{"packet", &secret},
			wantLevel: "DEBUG",
			wantAttrs: map[string]string{"packet_type": "Publish", "topic": "a/b"},
			absent:    []string{"packet"},
		},
		{
			name: "hook refusal", level: slog.LevelError, msg: "publish packet error",
			args: []any{"error", packets.ErrNotAuthorized, "hook", "moat-policy", "packet", secret}, wantLevel: "DEBUG",
		},
		{
			name: "keepalive", level: slog.LevelWarn, msg: mqtt.ErrMinimumKeepalive.Error(),
			args: []any{"client", "c1", "keepalive", 1}, wantLevel: "DEBUG",
		},
		{
			name: "lifecycle info", level: slog.LevelInfo, msg: "added hook",
			args: []any{"hook", "moat-policy"}, wantLevel: "DEBUG",
		},
		{
			name: "storage failure stays an error", level: slog.LevelError, msg: "failed to upsert data",
			args:      []any{"error", errors.New("disk full"), "key", "CL_c1"},
			wantLevel: "ERROR", wantAttrs: map[string]string{"err": "disk full", "key": "CL_c1"},
		},
		{
			name: "missing $SYS record on a new store", level: slog.LevelError, msg: "failed to get data",
			args:      []any{"error", bolt.ErrKeyNotFound, "key", "SYS"},
			wantLevel: "DEBUG",
		},
		{
			name: "empty message", level: slog.LevelError, msg: "",
			args: []any{"error", errors.New("db file not open")}, wantLevel: "ERROR",
			wantAttrs: map[string]string{"msg": "mochi"},
		},
		{
			// One line per dropped message: overloadHook warns once per
			// episode instead (overload.go).
			name: "quota is debug", level: slog.LevelWarn, msg: "client store quota reached",
			args: []any{"client", "c1"}, wantLevel: "DEBUG", wantAttrs: map[string]string{"client_id": "c1"},
		},
	}
	for _, tc := range tests {
		for _, min := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
			t.Run(fmt.Sprintf("%s/min %s", tc.name, min), func(t *testing.T) {
				var buf bytes.Buffer
				log := newMochiLogger(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: min})))
				log.With("with", "x").Log(t.Context(), tc.level, tc.msg, tc.args...)

				out := buf.String()
				for _, s := range []string{"PAYLOAD-SECRET", "PASSWORD-SECRET"} {
					if strings.Contains(out, s) {
						t.Fatalf("log line leaks %s: %s", s, out)
					}
				}
				dropped := tc.wantLevel == "DEBUG" && min > slog.LevelDebug
				if dropped {
					if out != "" {
						t.Errorf("line logged at %s, want it dropped: %s", min, out)
					}
					return
				}
				var got map[string]any
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					t.Fatalf("no JSON line (%v): %q", err, out)
				}
				if got["level"] != tc.wantLevel {
					t.Errorf("level %v, want %s", got["level"], tc.wantLevel)
				}
				if got["with"] != "x" {
					t.Errorf("attribute from With lost: %s", out)
				}
				for k, v := range tc.wantAttrs {
					if fmt.Sprint(got[k]) != v {
						t.Errorf("%s = %v, want %s", k, got[k], v)
					}
				}
				for _, k := range tc.absent {
					if _, ok := got[k]; ok {
						t.Errorf("key %q present: %s", k, out)
					}
				}
			})
		}
	}
}

// TestMochiLoggerWithAttrs: attributes bound with With are converted too.
func TestMochiLoggerWithAttrs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := newMochiLogger(slog.New(slog.NewJSONHandler(&buf, nil)))
	log.With("client", "c9", "pk", packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, Connect: packets.ConnectParams{Password: []byte("hunter2")}}).Warn("stopping")
	out := buf.String()
	if strings.Contains(out, "hunter2") || !strings.Contains(out, `"client_id":"c9"`) || !strings.Contains(out, `"packet_type":"Connect"`) {
		t.Errorf("With attributes not converted: %s", out)
	}
}
