package server

import (
	"context"
	"log/slog"
)

// auditAdmin writes the audit record of one admin action (a kick, a
// session deleted, a refused admin request...): one record with
// audit=admin, the action, and attrs, which name the peer (uid and pid, or
// the HTTP client's address) and the target (client id), never a token.
// Refused requests are at warn, the others at info. See RATIONALE.md,
// "The decision audit log".
func auditAdmin(log *slog.Logger, action string, refused bool, attrs ...any) {
	level := slog.LevelInfo
	if refused {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "admin "+action, append([]any{"audit", "admin", "action", action, "refused", refused}, attrs...)...)
}
