package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Ban kinds.
const (
	BanClientID = "client_id"
	BanUsername = "username"
	BanIP       = "ip" // an address or a CIDR prefix
)

// Ban refuses connections by client id, username or source address. A
// client that matches a ban is refused in CONNACK (MQTT 5: 0x8A banned;
// MQTT 3.1.1: 5, not authorized); one already connected when the ban is
// added is disconnected at once.
type Ban struct {
	// Kind is BanClientID, BanUsername or BanIP.
	Kind string `json:"kind"`
	// Value is the client id, the username, or for BanIP an address
	// ("192.0.2.7") or a prefix ("192.0.2.0/24", "2001:db8::/32").
	Value string `json:"value"`
	// Expires is when the ban ends; zero: never.
	Expires time.Time `json:"expires,omitzero"`
	// Reason is the operator's note, or "flapping" for the temporary bans
	// of flapping detection (which are not written to the ban file).
	Reason string `json:"reason,omitempty"`
	// Created is when the ban was added.
	Created time.Time `json:"created"`
}

// ReasonFlapping marks the bans flapping detection adds.
const ReasonFlapping = "flapping"

// normalize checks b and puts its value in canonical form (a prefix for
// BanIP, so that "10.0.0.1" and "10.0.0.1/32" are one ban).
func (b *Ban) normalize() error {
	switch b.Kind {
	case BanClientID, BanUsername:
		if b.Value == "" {
			return fmt.Errorf("broker: ban: empty %s", b.Kind)
		}
	case BanIP:
		p, err := parsePrefix(b.Value)
		if err != nil {
			return fmt.Errorf("broker: ban: ip %q: want an address or a CIDR prefix", b.Value)
		}
		b.Value = p.String()
	default:
		return fmt.Errorf("broker: ban: kind %q: want %q, %q or %q", b.Kind, BanClientID, BanUsername, BanIP)
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// banList holds the bans in force. It is safe for concurrent use; a check
// costs a map lookup per id and a scan of the IP prefixes (few, in
// practice).
type banList struct {
	path string // "" keeps bans in memory only

	mu     sync.RWMutex
	ids    map[banKey]Ban
	prefix []Ban // BanIP, with parsed prefixes in nets
	nets   []netip.Prefix
}

type banKey struct{ kind, value string }

func newBanList(path string) *banList {
	return &banList{path: path, ids: map[banKey]Ban{}}
}

// load reads the ban file; a missing file is an empty list. Expired bans
// are kept until the next write drops them; they match nothing.
func (l *banList) load() error {
	if l.path == "" {
		return nil
	}
	data, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("broker: limits.ban_file: %w", err)
	}
	var bans []Ban
	if err := json.Unmarshal(data, &bans); err != nil {
		return fmt.Errorf("broker: limits.ban_file: %s: %w", l.path, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, b := range bans {
		if err := b.normalize(); err != nil {
			return fmt.Errorf("broker: limits.ban_file: %s: entry %d: %w", l.path, i, err)
		}
		l.put(b)
	}
	return nil
}

// put adds or replaces b; l.mu is held or l is not shared yet.
func (l *banList) put(b Ban) {
	if b.Kind != BanIP {
		l.ids[banKey{b.Kind, b.Value}] = b
		return
	}
	p, _ := parsePrefix(b.Value)
	if i := slices.Index(l.nets, p); i >= 0 {
		l.prefix[i] = b
		return
	}
	l.prefix = append(l.prefix, b)
	l.nets = append(l.nets, p)
}

// add adds or replaces a ban and, unless it is temporary (flapping),
// writes the file.
func (l *banList) add(b Ban) error {
	if err := b.normalize(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.put(b)
	if b.Reason == ReasonFlapping {
		return nil
	}
	return l.saveLocked()
}

// remove deletes the ban of kind and value; it reports whether one was
// there.
func (l *banList) remove(kind, value string) (bool, error) {
	b := Ban{Kind: kind, Value: value}
	if err := b.normalize(); err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	found := false
	if b.Kind == BanIP {
		p, _ := parsePrefix(b.Value)
		if i := slices.Index(l.nets, p); i >= 0 {
			l.nets = slices.Delete(l.nets, i, i+1)
			l.prefix = slices.Delete(l.prefix, i, i+1)
			found = true
		}
	} else if _, ok := l.ids[banKey{b.Kind, b.Value}]; ok {
		delete(l.ids, banKey{b.Kind, b.Value})
		found = true
	}
	if !found {
		return false, nil
	}
	return true, l.saveLocked()
}

// list returns the bans in force, expired ones left out, sorted by kind
// and value.
func (l *banList) list(now time.Time) []Ban {
	l.mu.RLock()
	out := make([]Ban, 0, len(l.ids)+len(l.prefix))
	for _, b := range l.ids {
		if live(b, now) {
			out = append(out, b)
		}
	}
	for _, b := range l.prefix {
		if live(b, now) {
			out = append(out, b)
		}
	}
	l.mu.RUnlock()
	slices.SortFunc(out, func(a, b Ban) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out
}

func live(b Ban, now time.Time) bool { return b.Expires.IsZero() || now.Before(b.Expires) }

// match returns the ban in force that refuses a client, if any. addr may
// be invalid (unknown address).
func (l *banList) match(clientID, username string, addr netip.Addr, now time.Time) (Ban, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.ids) > 0 {
		if b, ok := l.ids[banKey{BanClientID, clientID}]; ok && live(b, now) {
			return b, true
		}
		if username != "" {
			if b, ok := l.ids[banKey{BanUsername, username}]; ok && live(b, now) {
				return b, true
			}
		}
	}
	return l.matchAddrLocked(addr, now)
}

// matchAddr returns the ban in force on addr, if any.
func (l *banList) matchAddr(addr netip.Addr, now time.Time) (Ban, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.matchAddrLocked(addr, now)
}

func (l *banList) matchAddrLocked(addr netip.Addr, now time.Time) (Ban, bool) {
	if !addr.IsValid() {
		return Ban{}, false
	}
	addr = addr.Unmap()
	for i, p := range l.nets {
		if p.Contains(addr) && live(l.prefix[i], now) {
			return l.prefix[i], true
		}
	}
	return Ban{}, false
}

// saveLocked writes the permanent bans to the file atomically (a temporary
// file in the same directory, synced, then renamed over it). Expired bans
// are dropped from the file.
func (l *banList) saveLocked() error {
	if l.path == "" {
		return nil
	}
	now := time.Now()
	var bans []Ban
	for _, b := range l.ids {
		if b.Reason != ReasonFlapping && live(b, now) {
			bans = append(bans, b)
		}
	}
	for _, b := range l.prefix {
		if b.Reason != ReasonFlapping && live(b, now) {
			bans = append(bans, b)
		}
	}
	slices.SortFunc(bans, func(a, b Ban) int {
		return strings.Compare(a.Kind+"\x00"+a.Value, b.Kind+"\x00"+b.Value)
	})
	if bans == nil {
		bans = []Ban{}
	}
	data, err := json.MarshalIndent(bans, "", "  ")
	if err != nil {
		return fmt.Errorf("broker: ban file: %w", err)
	}
	if err := writeAtomic(l.path, append(data, '\n')); err != nil {
		return fmt.Errorf("broker: ban file: %w", err)
	}
	return nil
}

// writeAtomic replaces path with data so that a crash leaves either the old
// or the new file, never a torn one.
func writeAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
