package server

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/config"
)

func TestNewLogger(t *testing.T) {
	tests := []struct {
		level, format string
		// which of debug, info, warn, error get through
		want []string
		json bool
	}{
		{"debug", "text", []string{"debug", "info", "warn", "error"}, false},
		{"info", "text", []string{"info", "warn", "error"}, false},
		{"", "", []string{"info", "warn", "error"}, false},
		{"warn", "json", []string{"warn", "error"}, true},
		{"error", "json", []string{"error"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.level+"/"+tc.format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := NewLogger(config.Log{Level: tc.level, Format: tc.format}, &buf)
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("debug", "k", "v")
			log.Info("info", "k", "v")
			log.Warn("warn", "k", "v")
			log.Error("error", "k", "v")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(tc.want), buf.String())
			}
			for i, l := range lines {
				if tc.json {
					var m map[string]any
					if err := json.Unmarshal([]byte(l), &m); err != nil || m["msg"] != tc.want[i] || m["k"] != "v" {
						t.Errorf("line %q: %v, want JSON with msg %q", l, err, tc.want[i])
					}
				} else if !strings.Contains(l, "msg="+tc.want[i]+" k=v") {
					t.Errorf("line %q, want text with msg=%s", l, tc.want[i])
				}
			}
		})
	}
	for _, bad := range []config.Log{{Level: "loud"}, {Format: "xml"}} {
		if _, err := NewLogger(bad, &bytes.Buffer{}); err == nil || !strings.HasPrefix(err.Error(), "server: log ") {
			t.Errorf("NewLogger(%+v) = %v, want a server: log error", bad, err)
		}
	}
}
