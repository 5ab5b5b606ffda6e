package broker

import (
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
	"go.etcd.io/bbolt"

	"github.com/moat-mqtt/moat/runtime/config"
)

// boltLockTimeout bounds the wait for the database file lock, held by
// another moat using the same file.
const boltLockTimeout = time.Second

// boltStore is the session store of `[persistence] type = "bolt"`: mochi's
// own bbolt storage hook, which keeps clients, subscriptions, retained and
// inflight messages in one file.
//
// Why bbolt: it is pure Go (no cgo, one static binary), a single file that
// an operator can back up or delete, every write is a transaction fsync'd
// before it returns (a PUBACK is only sent after the inflight message is on
// disk), and mochi ships and tests the hook. Its costs, one fsync per QoS
// 1/2 state change and a single writer, are acceptable for a broker whose
// hot path is policy, not storage; pebble or badger would add compaction
// goroutines and a directory of files for throughput moat does not need.
//
// The wrapper repairs three problems of mochi v2.7.9's hook:
//   - inflight messages are stored without their packet id (the badger and
//     pebble hooks store it); StoredInflightMessages recovers it from the
//     record's key.
//   - OnSubscribed stores every filter of a SUBSCRIBE, refused ones
//     included, with the reason code as its QoS; after a restart mochi would
//     restore a subscription the policy refused. Only granted filters are
//     stored here.
//   - Stop sets the database to nil while mochi's event loop may still call
//     the hook (a data race, then "db not open" errors); a lock orders Stop
//     after every running call and later calls do nothing.
type boltStore struct {
	*bolt.Hook
	mu      sync.RWMutex
	stopped bool
	stopErr error
	initErr error
}

// boltPath returns the database file: the configured path, else "moat.db"
// beside the configuration file.
func boltPath(cfg *config.Config) string {
	if cfg.Persistence.Path != "" {
		return cfg.Persistence.Path
	}
	if cfg.Path == "" {
		return "moat.db"
	}
	return filepath.Join(filepath.Dir(cfg.Path), "moat.db")
}

func newBoltStore() *boltStore { return &boltStore{Hook: new(bolt.Hook)} }

// options is the configuration handed to Init by mqtt.Server.AddHook.
func boltOptions(path string) *bolt.Options {
	return &bolt.Options{Path: path, Options: &bbolt.Options{Timeout: boltLockTimeout}}
}

// Init opens the database; it fails if the directory is missing or another
// process holds the file (after boltLockTimeout). The error is kept for
// Start, which reports it without mochi's wrapping.
func (s *boltStore) Init(cfg any) error {
	s.initErr = s.Hook.Init(cfg)
	return s.initErr
}

// Stop closes the database after the calls that are running. The close
// error is kept for Broker.Close: mochi only logs it at debug.
func (s *boltStore) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return s.stopErr
	}
	s.stopped = true
	s.stopErr = s.Hook.Stop()
	return s.stopErr
}

// closeErr returns the error of closing the database, if any.
func (s *boltStore) closeErr() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.stopErr
}

// enter takes the read lock if the database is open; the caller then calls
// s.mu.RUnlock. It returns false, holding nothing, after Stop.
func (s *boltStore) enter() bool {
	s.mu.RLock()
	if s.stopped {
		s.mu.RUnlock()
		return false
	}
	return true
}

// OnSubscribed stores only the granted filters (reason code below 0x80).
func (s *boltStore) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if !s.enter() {
		return
	}
	defer s.mu.RUnlock()
	var filters packets.Subscriptions
	var granted []byte
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] < packets.ErrUnspecifiedError.Code {
			filters = append(filters, f)
			granted = append(granted, codes[i])
		}
	}
	if len(filters) == 0 {
		return
	}
	pk.Filters = filters
	s.Hook.OnSubscribed(cl, pk, granted)
}

// The methods below only add the lock around mochi's hook.

func (s *boltStore) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnSessionEstablished(cl, pk)
	}
}

func (s *boltStore) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnDisconnect(cl, err, expire)
	}
}

func (s *boltStore) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnUnsubscribed(cl, pk)
	}
}

func (s *boltStore) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, r int64) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnRetainMessage(cl, pk, r)
	}
}

func (s *boltStore) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnWillSent(cl, pk)
	}
}

func (s *boltStore) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, resends int) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnQosPublish(cl, pk, sent, resends)
	}
}

func (s *boltStore) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnQosComplete(cl, pk)
	}
}

func (s *boltStore) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnQosDropped(cl, pk)
	}
}

func (s *boltStore) OnSysInfoTick(info *system.Info) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnSysInfoTick(info)
	}
}

func (s *boltStore) OnClientExpired(cl *mqtt.Client) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnClientExpired(cl)
	}
}

func (s *boltStore) OnRetainedExpired(filter string) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.Hook.OnRetainedExpired(filter)
	}
}

func (s *boltStore) StoredClients() ([]storage.Client, error) {
	if !s.enter() {
		return nil, storage.ErrDBFileNotOpen
	}
	defer s.mu.RUnlock()
	return s.Hook.StoredClients()
}

func (s *boltStore) StoredSubscriptions() ([]storage.Subscription, error) {
	if !s.enter() {
		return nil, storage.ErrDBFileNotOpen
	}
	defer s.mu.RUnlock()
	return s.Hook.StoredSubscriptions()
}

// StoredInflightMessages restores each message's packet id from its key:
// the hook stores inflight messages without it, so they would all come
// back with id 0, overwrite one another in the client's inflight map, and
// make the resend on reconnect fail ("missing packet id").
func (s *boltStore) StoredInflightMessages() ([]storage.Message, error) {
	if !s.enter() {
		return nil, storage.ErrDBFileNotOpen
	}
	defer s.mu.RUnlock()
	msgs, err := s.Hook.StoredInflightMessages()
	if err != nil {
		return nil, err
	}
	out := msgs[:0]
	for _, m := range msgs {
		if m.PacketID == 0 {
			id, ok := inflightKeyPacketID(m.ID)
			if !ok {
				s.Log.Warn("dropping stored inflight message without packet id", "client_id", m.Client, "topic", m.TopicName)
				continue
			}
			m.PacketID = id
		}
		out = append(out, m)
	}
	return out, nil
}

// inflightKeyPacketID parses the packet id at the end of an inflight key,
// "IF_<client id>:<packet id>" (client ids may hold colons).
func inflightKeyPacketID(key string) (uint16, bool) {
	i := strings.LastIndexByte(key, ':')
	if i < 0 {
		return 0, false
	}
	id, err := strconv.ParseUint(key[i+1:], 10, 16)
	if err != nil || id == 0 {
		return 0, false
	}
	return uint16(id), true
}

func (s *boltStore) StoredRetainedMessages() ([]storage.Message, error) {
	if !s.enter() {
		return nil, storage.ErrDBFileNotOpen
	}
	defer s.mu.RUnlock()
	return s.Hook.StoredRetainedMessages()
}

func (s *boltStore) StoredSysInfo() (storage.SystemInfo, error) {
	if !s.enter() {
		return storage.SystemInfo{}, storage.ErrDBFileNotOpen
	}
	defer s.mu.RUnlock()
	return s.Hook.StoredSysInfo()
}
