package server

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/moat-mqtt/moat/runtime/broker"
)

// The admin API besides POST /reload, on the same endpoints and with the
// same authentication (admin.go). Every answer is JSON.
//
//	GET    /status               Status
//	GET    /clients              []broker.ClientInfo, connected clients
//	GET    /clients/{id}         broker.ClientInfo, a connected client or an offline session
//	POST   /clients/{id}/kick    disconnect it; body {"reason": "..."} (optional)
//	GET    /sessions             []broker.ClientInfo, every session
//	DELETE /sessions/{id}        delete a session, disconnecting its client
//	GET    /denials              []Denial, the last refusals, newest first
//	GET    /reloads              []ReloadRecord, the last reloads, newest first
//
// A client id is one path segment, escaped (url.PathEscape) when it holds
// a "/" or other reserved characters. Errors are {"error": "..."} with
// 404 for an unknown client, 400 for a bad body. Actions (kick, delete,
// ban add and remove) are audit records (auditAdmin) with who asked;
// reads are logged at debug, so that the status page's refresh does not
// fill the log.

// AdminOptions are what the admin endpoint shows that the Server does not
// know.
type AdminOptions struct {
	// Version is moat's version, as `moat version` prints it.
	Version string
}

// Status is the answer of GET /status.
type Status struct {
	Version   string                `json:"version"`
	GoVersion string                `json:"go_version"`
	Started   time.Time             `json:"started"`
	Uptime    float64               `json:"uptime_s"`
	Listeners []broker.ListenerInfo `json:"listeners"`
	Plugins   []PluginStatus        `json:"plugins"`
	Clients   int                   `json:"clients"`
	Sessions  int                   `json:"sessions"`
	// Denials counts the refusals since start (the ring keeps the last
	// ones only).
	Denials int64 `json:"denials"`
	// LastReload is the latest reload, if any.
	LastReload *ReloadRecord `json:"last_reload,omitempty"`
}

// PluginStatus is one [[plugin]] of the version in force.
type PluginStatus struct {
	Name      string   `json:"name"`
	Module    string   `json:"module"`
	Digest    string   `json:"sha256"`
	Decisions []string `json:"decisions"`
	// Denials counts the refusals since start that named this plugin.
	Denials int64 `json:"denials"`
}

// KickRequest is the body of POST /clients/{id}/kick and DELETE
// /sessions/{id} (optional in both).
type KickRequest struct {
	// Reason goes to an MQTT 5 client as the DISCONNECT's reason string.
	Reason string `json:"reason"`
}

// maxReason bounds a kick's reason string, which ends up in a packet and
// the log.
const maxReason = 256

func (a *Admin) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /status", a.getStatus)
	mux.HandleFunc("GET /clients", a.getClients)
	mux.HandleFunc("GET /clients/{id}", a.getClient)
	mux.HandleFunc("POST /clients/{id}/kick", a.kick)
	mux.HandleFunc("GET /sessions", a.getSessions)
	mux.HandleFunc("DELETE /sessions/{id}", a.deleteSession)
	mux.HandleFunc("GET /denials", a.getDenials)
	mux.HandleFunc("GET /reloads", a.getReloads)
	a.uiRoutes(mux)
}

// Status describes the running broker.
func (s *Server) Status(version string) Status {
	st := Status{
		Version:   version,
		GoVersion: runtime.Version(),
		Started:   s.started,
		Uptime:    time.Since(s.started).Seconds(),
		Listeners: s.broker.Listeners(),
		Clients:   len(s.broker.Clients()),
		Sessions:  len(s.broker.Sessions()),
		Plugins:   []PluginStatus{},
	}
	s.reloadMu.Lock()
	for _, pc := range s.cfg.Plugins {
		p := PluginStatus{Name: pc.Name, Module: pc.Module, Decisions: slices.Clone(pc.Decisions)}
		for _, r := range s.reports {
			if r.Name == pc.Name {
				p.Digest = r.Digest
			}
		}
		st.Plugins = append(st.Plugins, p)
	}
	s.reloadMu.Unlock()
	for i := range st.Plugins {
		st.Plugins[i].Denials = s.recent.moduleDenials(st.Plugins[i].Name)
	}
	s.recent.mu.Lock()
	st.Denials = s.recent.total
	s.recent.mu.Unlock()
	if rs := s.recent.Reloads(); len(rs) > 0 {
		st.LastReload = &rs[0]
	}
	return st
}

func (a *Admin) getStatus(w http.ResponseWriter, r *http.Request) {
	a.logRead(r)
	writeJSON(w, http.StatusOK, a.s.Status(a.opts.Version))
}

func (a *Admin) getClients(w http.ResponseWriter, r *http.Request) {
	a.logRead(r)
	writeJSON(w, http.StatusOK, a.s.broker.Clients())
}

func (a *Admin) getClient(w http.ResponseWriter, r *http.Request) {
	a.logRead(r)
	ci, ok := a.s.broker.Client(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "no client or session with id "+quote(r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, ci)
}

func (a *Admin) getSessions(w http.ResponseWriter, r *http.Request) {
	a.logRead(r)
	writeJSON(w, http.StatusOK, a.s.broker.Sessions())
}

func (a *Admin) getDenials(w http.ResponseWriter, r *http.Request) {
	a.logRead(r)
	writeJSON(w, http.StatusOK, a.s.recent.Denials())
}

func (a *Admin) getReloads(w http.ResponseWriter, r *http.Request) {
	a.logRead(r)
	writeJSON(w, http.StatusOK, a.s.recent.Reloads())
}

func (a *Admin) kick(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, "kick", a.s.broker.Kick, "not connected")
}

func (a *Admin) deleteSession(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, "delete session", a.s.broker.DeleteSession, "no session")
}

// act runs a kick or a session delete on the client of the request's path
// and logs it.
func (a *Admin) act(w http.ResponseWriter, r *http.Request, action string, do func(id, reason string) (broker.ClientInfo, error), missing string) {
	id := r.PathValue("id")
	var req KickRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		err = json.Unmarshal(body, &req)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "admin: "+action+": body: "+err.Error())
		return
	}
	if len(req.Reason) > maxReason {
		writeError(w, http.StatusBadRequest, "admin: "+action+": reason: longer than 256 bytes")
		return
	}
	ci, err := do(id, req.Reason)
	attrs := []any{"client_id", id, "reason", req.Reason, "by", who(r)}
	if errors.Is(err, broker.ErrNoClient) {
		auditAdmin(a.log, action, false, append(attrs, "err", missing)...)
		writeError(w, http.StatusNotFound, missing+": "+quote(id))
		return
	}
	if err != nil {
		auditAdmin(a.log, action, false, append(attrs, "err", err)...)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	auditAdmin(a.log, action, false, append(attrs, "username", ci.Username, "was_connected", ci.Connected)...)
	writeJSON(w, http.StatusOK, ci)
}

// logRead logs a read of the admin API at debug.
func (a *Admin) logRead(r *http.Request) {
	if a.log.Enabled(r.Context(), slog.LevelDebug) {
		a.log.Debug("admin read", "audit", "admin", "path", r.URL.Path, "by", who(r))
	}
}

// who describes the requester of an admin request for the audit record:
// the endpoint, and the peer's uid and pid or its address.
func who(r *http.Request) slog.Value {
	p, _ := r.Context().Value(peerKey{}).(peer)
	attrs := []slog.Attr{slog.String("endpoint", p.endpoint)}
	if p.known {
		attrs = append(attrs, slog.Int("peer_uid", p.uid), slog.Int("peer_pid", p.pid))
	}
	if strings.HasPrefix(p.endpoint, "http:") {
		attrs = append(attrs, slog.String("remote", r.RemoteAddr))
	}
	return slog.GroupValue(attrs...)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
