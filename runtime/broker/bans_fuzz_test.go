package broker

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// FuzzBanFile loads arbitrary ban files: a file is refused with an error or
// loaded, and a loaded list survives a write and a second load unchanged.
func FuzzBanFile(f *testing.F) {
	f.Add(`[{"kind":"ip","value":"10.0.0.0/8","created":"2026-01-01T00:00:00Z"}]`)
	f.Add(`[{"kind":"client_id","value":"x","expires":"2999-01-01T00:00:00Z","created":"2026-01-01T00:00:00Z"}]`)
	f.Add(`[{"kind":"ip","value":"::ffff:1.2.3.4"},{"kind":"username","value":"u"}]`)
	f.Add(`[{"kind":"ip","value":"1.2.3.4/40"}]`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, data string) {
		dir := t.TempDir()
		path := filepath.Join(dir, "bans")
		if err := writeAtomic(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		l := newBanList(path)
		if err := l.load(); err != nil {
			return
		}
		far := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		before := l.list(far)
		l.mu.Lock()
		err := l.saveLocked()
		l.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		again := newBanList(path)
		if err := again.load(); err != nil {
			t.Fatalf("reload of a saved list: %v", err)
		}
		// saveLocked drops bans expired by now; compare what is live now.
		now := time.Now()
		if a, b := l.list(now), again.list(now); !reflect.DeepEqual(stripMono(a), stripMono(b)) {
			t.Fatalf("round trip changed the list:\n%+v\n%+v", a, b)
		}
		for _, b := range before {
			if b.Kind == BanIP {
				if _, err := netip.ParsePrefix(b.Value); err != nil {
					t.Fatalf("stored ip ban %q is not a prefix", b.Value)
				}
			}
		}
	})
}

func stripMono(bs []Ban) []Ban {
	out := make([]Ban, len(bs))
	for i, b := range bs {
		b.Expires, b.Created = b.Expires.UTC().Round(0), b.Created.UTC().Round(0)
		out[i] = b
	}
	return out
}
