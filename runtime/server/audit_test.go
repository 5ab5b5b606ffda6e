package server

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestAuditAdmin(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	auditAdmin(log, "kick", false, "client_id", "c1", "peer_uid", 1000)
	auditAdmin(log, "request", true, "remote", "127.0.0.1:5555")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d records, want 2: %s", len(lines), buf.String())
	}
	want := []string{"INFO kick false c1", "WARN request true <nil>"}
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		got := strings.Join([]string{rec["level"].(string), rec["action"].(string), jsonString(rec["refused"]), jsonString(rec["client_id"])}, " ")
		if rec["audit"] != "admin" || got != want[i] {
			t.Errorf("record %d: audit %v, %q; want admin, %q", i, rec["audit"], got, want[i])
		}
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		return "<nil>"
	}
	return s
}
