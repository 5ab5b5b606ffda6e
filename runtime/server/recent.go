package server

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// The status page and `moat status` show what the policy refused lately and
// the last reloads. Both are kept in small rings in memory: a broker under
// attack refuses thousands of clients a second, and the page needs the
// latest few, not a history (the log has that).

// Ring sizes.
const (
	maxDenials = 100
	maxReloads = 20
)

// Denial is one refusal by the policy, as the broker logged it.
type Denial struct {
	Time time.Time `json:"time"`
	// Kind is "connect", "publish", "subscribe", "deliver", "will",
	// "expiry", "reauthentication" or "revoked".
	Kind     string `json:"kind"`
	ClientID string `json:"client_id,omitempty"`
	Username string `json:"username,omitempty"`
	Remote   string `json:"remote,omitempty"`
	Topic    string `json:"topic,omitempty"`
	Module   string `json:"module,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// ReloadRecord is one reload, as the status page shows it.
type ReloadRecord struct {
	Time    time.Time     `json:"time"`
	Trigger string        `json:"trigger"`
	Applied bool          `json:"applied"`
	Errors  []string      `json:"errors,omitempty"`
	Took    time.Duration `json:"took_ns"`
	Revoked int           `json:"revoked_subscriptions"`
	Kicked  int           `json:"disconnected_clients"`
}

// recent holds the rings. Its methods are safe for concurrent use.
type recent struct {
	mu       sync.Mutex
	denials  []Denial // oldest first, at most maxDenials
	reloads  []ReloadRecord
	byModule map[string]int64 // denials naming each module, since start
	total    int64
}

func newRecent() *recent { return &recent{byModule: make(map[string]int64)} }

func push[T any](ring []T, v T, max int) []T {
	if len(ring) == max {
		copy(ring, ring[1:])
		ring = ring[:max-1]
	}
	return append(ring, v)
}

func (r *recent) addDenial(d Denial) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.denials = push(r.denials, d, maxDenials)
	r.total++
	if d.Module != "" {
		r.byModule[d.Module]++
	}
}

func (r *recent) addReload(res ReloadResult) {
	rec := ReloadRecord{Time: time.Now(), Trigger: res.Trigger.String(), Applied: res.Applied, Errors: res.Errors,
		Took: res.Took, Revoked: res.Revoked, Kicked: res.Disconnected}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reloads = push(r.reloads, rec, maxReloads)
}

// Denials returns the recent denials, newest first.
func (r *recent) Denials() []Denial {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Denial, len(r.denials))
	for i, d := range r.denials {
		out[len(out)-1-i] = d
	}
	return out
}

// Reloads returns the recent reloads, newest first.
func (r *recent) Reloads() []ReloadRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]ReloadRecord, len(r.reloads))
	for i, d := range r.reloads {
		out[len(out)-1-i] = d
	}
	return out
}

func (r *recent) moduleDenials(name string) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byModule[name]
}

// denialKinds maps the messages of the broker's refusal records to a kind;
// "not authorized" takes its kind from the record's action.
var denialKinds = map[string]string{
	"not authorized":                           "",
	"connection refused":                       "connect",
	"credentials expired, disconnecting":       "expiry",
	"client disconnected by re-authentication": "reauthentication",
	"subscription revoked by reload":           "revoked",
	"will dropped: not authorized":             "will",
}

// tap returns a handler that passes every record to next as before and
// copies the broker's refusal records (info and above) into r. Taking them
// from the log keeps the broker's hot path as it is: a refusal is logged
// anyway, and the log is the one place every refusal already goes
// through. TestStatusDenials fails if the broker's messages change.
func (r *recent) tap(next slog.Handler) slog.Handler { return &denialTap{next: next, r: r} }

type denialTap struct {
	next  slog.Handler
	r     *recent
	attrs []slog.Attr // from WithAttrs, outside any group
	group bool        // a group is open: attributes are nested, not read
}

func (t *denialTap) Enabled(ctx context.Context, l slog.Level) bool {
	return (!t.group && l >= slog.LevelInfo) || t.next.Enabled(ctx, l)
}

func (t *denialTap) Handle(ctx context.Context, rec slog.Record) error {
	if kind, ok := denialKinds[rec.Message]; ok && !t.group && rec.Level >= slog.LevelInfo {
		d := Denial{Time: rec.Time, Kind: kind}
		set := func(a slog.Attr) bool {
			v := a.Value.Resolve().String()
			switch a.Key {
			case "client_id":
				d.ClientID = v
			case "username":
				d.Username = v
			case "remote":
				d.Remote = v
			case "topic":
				d.Topic = v
			case "module":
				d.Module = v
			case "reason":
				d.Reason = v
			case "action":
				if d.Kind == "" {
					d.Kind = v
				}
			}
			return true
		}
		for _, a := range t.attrs {
			set(a)
		}
		rec.Attrs(set)
		t.r.addDenial(d)
	}
	if !t.next.Enabled(ctx, rec.Level) {
		return nil
	}
	return t.next.Handle(ctx, rec)
}

func (t *denialTap) WithAttrs(as []slog.Attr) slog.Handler {
	n := *t
	n.next = t.next.WithAttrs(as)
	if !t.group {
		n.attrs = append(append([]slog.Attr(nil), t.attrs...), as...)
	}
	return &n
}

func (t *denialTap) WithGroup(name string) slog.Handler {
	if name == "" {
		return t
	}
	n := *t
	n.next = t.next.WithGroup(name)
	n.group = true
	return &n
}
