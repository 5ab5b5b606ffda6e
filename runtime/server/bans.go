package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/moat-mqtt/moat/runtime/broker"
)

// AdminBansPath is the admin endpoint's ban list (`moat ban`):
//
//	GET    /bans                       the bans in force, a JSON array of broker.Ban
//	POST   /bans  {BanRequest}         add or replace a ban; answers BanResult
//	DELETE /bans?kind=K&value=V        lift a ban; 404 when there was none
//
// It is served on the admin socket and the admin HTTP listener, behind the
// same peer checks as AdminPath.
const AdminBansPath = "/bans"

// BanRequest is the body of POST /bans.
type BanRequest struct {
	Kind  string `json:"kind"`
	Value string `json:"value"`
	// For is how long the ban lasts, e.g. "1h"; "" or "0s": for ever.
	For    string `json:"for,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// BanResult answers POST and DELETE /bans.
type BanResult struct {
	Ban          *broker.Ban `json:"ban,omitempty"`
	Disconnected int         `json:"disconnected"`
	Removed      bool        `json:"removed,omitempty"`
	Error        string      `json:"error,omitempty"`
}

// handleBans registers the ban handlers on mux.
func (a *Admin) handleBans(mux *http.ServeMux) {
	mux.HandleFunc("GET "+AdminBansPath, a.listBans)
	mux.HandleFunc("POST "+AdminBansPath, a.addBan)
	mux.HandleFunc("DELETE "+AdminBansPath, a.removeBan)
}

// banBroker returns the running broker, or answers 503.
func (a *Admin) banBroker(w http.ResponseWriter) *broker.Broker {
	b := a.s.Broker()
	if b == nil {
		writeJSON(w, http.StatusServiceUnavailable, BanResult{Error: "the broker is not running"})
	}
	return b
}

func (a *Admin) listBans(w http.ResponseWriter, _ *http.Request) {
	if b := a.banBroker(w); b != nil {
		writeJSON(w, http.StatusOK, b.Bans())
	}
}

func (a *Admin) addBan(w http.ResponseWriter, r *http.Request) {
	b := a.banBroker(w)
	if b == nil {
		return
	}
	var req BanRequest
	data, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err == nil {
		err = json.Unmarshal(data, &req)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, BanResult{Error: fmt.Sprintf("server: ban: bad request: %v", err)})
		return
	}
	ban := broker.Ban{Kind: req.Kind, Value: req.Value, Reason: req.Reason, Created: time.Now().UTC()}
	if req.For != "" {
		d, err := time.ParseDuration(req.For)
		if err != nil || d < 0 {
			writeJSON(w, http.StatusBadRequest, BanResult{Error: fmt.Sprintf("server: ban: for %q: want a duration such as 1h", req.For)})
			return
		}
		if d > 0 {
			ban.Expires = ban.Created.Add(d)
		}
	}
	n, err := b.AddBan(ban)
	if err != nil {
		auditAdmin(a.log, "ban add", false, "kind", ban.Kind, "value", ban.Value, "err", err, "by", who(r))
		writeJSON(w, http.StatusUnprocessableEntity, BanResult{Error: err.Error()})
		return
	}
	a.s.countBan(true)
	auditAdmin(a.log, "ban add", false, "kind", ban.Kind, "value", ban.Value, "expires", ban.Expires, "ban_reason", ban.Reason,
		"disconnected", n, "by", who(r))
	writeJSON(w, http.StatusOK, BanResult{Ban: &ban, Disconnected: n})
}

func (a *Admin) removeBan(w http.ResponseWriter, r *http.Request) {
	b := a.banBroker(w)
	if b == nil {
		return
	}
	kind, value := r.URL.Query().Get("kind"), r.URL.Query().Get("value")
	found, err := b.RemoveBan(kind, value)
	switch {
	case err != nil:
		auditAdmin(a.log, "ban remove", false, "kind", kind, "value", value, "err", err, "by", who(r))
		writeJSON(w, http.StatusUnprocessableEntity, BanResult{Error: err.Error()})
	case !found:
		auditAdmin(a.log, "ban remove", false, "kind", kind, "value", value, "err", "no such ban", "by", who(r))
		writeJSON(w, http.StatusNotFound, BanResult{Error: fmt.Sprintf("no %s ban on %q", kind, value)})
	default:
		a.s.countBan(false)
		auditAdmin(a.log, "ban remove", false, "kind", kind, "value", value, "by", who(r))
		writeJSON(w, http.StatusOK, BanResult{Removed: true})
	}
}
