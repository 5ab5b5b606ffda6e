package server

import (
	"context"
	"log/slog"
)

// auditAdmin writes the audit record of one admin action (a kick, a
// session deleted, a refused admin request...): one record with
// audit=admin, the action, and attrs, which name the peer (uid and pid, or
// the HTTP client's address) and the target (client id), never a token.
// Refused requests (a bad token, another user on the socket) are at warn
// with the message "admin request refused", the others at info with
// "admin action": one message each, so that a log search finds every
// record of a kind, with the action as an attribute. See RATIONALE.md,
// "The decision audit log".
func auditAdmin(log *slog.Logger, action string, refused bool, attrs ...any) {
	level, msg := slog.LevelInfo, "admin action"
	if refused {
		level, msg = slog.LevelWarn, "admin request refused"
	}
	args := make([]any, 0, len(attrs)+6)
	args = append(args, "audit", "admin", "action", action)
	args = append(args, attrs...)
	log.Log(context.Background(), level, msg, append(args, "refused", refused)...)
}
