package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/crypto"
)

// RewrapStats says what Rewrap did.
type RewrapStats struct {
	// Rewrapped counts payloads resealed under the active key: retained
	// messages, queued (inflight) messages and wills.
	Retained, Inflight, Wills int
	// Current counts broker-sealed payloads already under the active key.
	Current int
	// Failed counts payloads left as they were because they do not open
	// (a key no longer in the ring, a damaged envelope); each is logged
	// with its key id and topic.
	Failed int
}

// Rewrap re-encrypts, under the ring's active at-rest key, every payload
// the broker sealed (at-rest and reencrypt modes) that cfg's bolt file
// stores: retained messages, messages queued for sessions, and wills. It
// opens the file directly through mochi's storage schema, in one
// transaction, so it needs the broker stopped: a running broker holds the
// file's lock, and Rewrap then fails without changing anything.
//
// After it, the keys that sealed the rewrapped payloads may be removed
// from the ring (unless Failed is not zero, or end-to-end envelopes of
// devices still use them).
func Rewrap(ctx context.Context, cfg *config.Config, ring *crypto.Ring, log *slog.Logger) (RewrapStats, error) {
	var st RewrapStats
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Persistence.Type != config.PersistenceBolt {
		return st, fmt.Errorf("broker: rewrap: persistence.type is %q: nothing is stored", cfg.Persistence.Type)
	}
	if ring == nil {
		return st, errors.New("broker: rewrap: no [[key]] configured")
	}
	active := ring.Active(crypto.PurposeAtRest)
	if active == "" {
		return st, errors.New("broker: rewrap: no active at-rest key ([keys] at_rest)")
	}
	path := boltPath(cfg)
	if _, err := os.Stat(path); err != nil {
		return st, fmt.Errorf("broker: rewrap: %w", err) // and do not create an empty store
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: boltLockTimeout})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return st, fmt.Errorf("broker: rewrap: %s is locked by a running broker; stop it first", path)
		}
		return st, fmt.Errorf("broker: rewrap: open %s: %w", path, err)
	}
	defer db.Close()

	// reseal rewraps one marked payload, or returns it unchanged.
	reseal := func(kind, topic string, payload []byte, user []packets.UserProperty) ([]byte, bool) {
		i := markerIndex(user)
		if i < 0 {
			return payload, false
		}
		_, mtopic, ok := parseMarker(user[i].Val)
		if topic == "" {
			topic = mtopic
		}
		id := keyIDOf(payload)
		if !ok {
			st.Failed++
			log.Warn("rewrap: malformed marker, left as is", "kind", kind, "topic", topic, "key_id", id)
			return payload, false
		}
		if id == active {
			st.Current++
			return payload, false
		}
		env, from, err := ring.Reseal(active, topic, payload)
		if err != nil {
			st.Failed++
			log.Warn("rewrap: cannot open, left as is", "kind", kind, "topic", topic, "key_id", from, "err", err)
			return payload, false
		}
		return env, true
	}

	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(boltBucket))
		if b == nil {
			return nil // an empty database
		}
		type change struct{ k, v []byte }
		var changes []change
		err := b.ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			key := string(k)
			switch {
			case strings.HasPrefix(key, storage.RetainedKey+"_"), strings.HasPrefix(key, storage.InflightKey+"_"):
				var m storage.Message
				if err := json.Unmarshal(v, &m); err != nil {
					return fmt.Errorf("record %q: %w", key, err)
				}
				kind := "retained"
				if m.T == storage.InflightKey {
					kind = "inflight"
				}
				env, changed := reseal(kind, m.TopicName, m.Payload, m.Properties.User)
				if !changed {
					return nil
				}
				m.Payload = env
				nv, err := json.Marshal(m)
				if err != nil {
					return err
				}
				changes = append(changes, change{bytesClone(k), nv})
				if kind == "retained" {
					st.Retained++
				} else {
					st.Inflight++
				}
			case strings.HasPrefix(key, storage.ClientKey+"_"):
				var c storage.Client
				if err := json.Unmarshal(v, &c); err != nil {
					return fmt.Errorf("record %q: %w", key, err)
				}
				env, changed := reseal("will", c.Will.TopicName, c.Will.Payload, c.Will.User)
				if !changed {
					return nil
				}
				c.Will.Payload = env
				nv, err := json.Marshal(c)
				if err != nil {
					return err
				}
				changes = append(changes, change{bytesClone(k), nv})
				st.Wills++
			}
			return nil
		})
		if err != nil {
			return err
		}
		// A bucket must not be written while ForEach walks it.
		for _, c := range changes {
			if err := b.Put(c.k, c.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return RewrapStats{}, fmt.Errorf("broker: rewrap: %s: %w (nothing was changed)", path, err)
	}
	return st, nil
}

// boltBucket is the bucket of mochi's bolt hook (its defaultBucket, which
// boltOptions leaves in place).
const boltBucket = "mochi"

func bytesClone(b []byte) []byte { return append([]byte(nil), b...) }
