package server

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/moat-mqtt/moat/runtime/config"
)

// NewLogger builds the broker's logger from [log]: a text or JSON handler
// writing to w at the configured level. The config has normally been
// validated; NewLogger still refuses values it does not know rather than
// guess, since a logger that silently drops errors hides everything else.
//
// The logger is the only one moat uses: every package receives it (or a
// child of it) and none logs through the slog default.
func NewLogger(cfg config.Log, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch cfg.Level {
	case "debug":
		level = slog.LevelDebug
	case "", "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("server: log level %q: want \"debug\", \"info\", \"warn\" or \"error\"", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.Format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("server: log format %q: want \"text\" or \"json\"", cfg.Format)
}
