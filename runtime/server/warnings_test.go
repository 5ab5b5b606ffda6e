package server

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/config"
)

// TestLoadWarnings: the load check runs on the config at New and on each
// applied reload; its warnings are logged and a reload's are in its notes.
func TestLoadWarnings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "moat.toml")
	writeFile(t, path, []byte(header()+anonymous))
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	check := func(c *config.Config) []string {
		return []string{"checked allow_anonymous=" + map[bool]string{true: "true", false: "false"}[c.Auth.AllowAnonymous]}
	}
	s, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)), WithLoadWarnings(check))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if !strings.Contains(logs.String(), `msg="config warning" warning="checked allow_anonymous=true"`) {
		t.Fatalf("start warning not logged:\n%s", logs)
	}
	writeFile(t, path, []byte(header()))
	res := s.Reload(context.Background(), Trigger{Source: TriggerAPI})
	if !res.Applied || !slices.Contains(res.Notes, "checked allow_anonymous=false") {
		t.Fatalf("reload: applied %v, notes %q, errors %q", res.Applied, res.Notes, res.Errors)
	}
}
