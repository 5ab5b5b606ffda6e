package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
	"go.etcd.io/bbolt"

	"github.com/moat-mqtt/moat/runtime/config"
)

// boltLockTimeout bounds the wait for the database file lock, held by
// another moat using the same file.
const boltLockTimeout = time.Second

// boltStore is the session store of `[persistence] type = "bolt"`: one
// bbolt file holding clients, subscriptions, retained and inflight
// messages, in the layout of mochi's own bolt hook (bucket "mochi", keys
// "CL_<id>", "SUB_<id>:<filter>", "RET_<topic>", "IFM_<id>:<packet id>",
// "SYS"), so that a file written by an earlier moat, or by mochi, loads.
//
// Why bbolt: it is pure Go (no cgo, one static binary), a single file that
// an operator can back up or delete, every write is a transaction fsync'd
// before it returns (a PUBACK is only sent after the inflight message is on
// disk). Its costs, one fsync per QoS 1/2 state change and a single writer,
// are acceptable for a broker whose hot path is policy, not storage;
// pebble or badger would add compaction goroutines and a directory of
// files for throughput moat does not need.
//
// It is moat's own hook rather than mochi's (v2.7.9), whose database handle
// is private, because each client record also carries the identity
// authentication gave the session (identity.go): without it a session
// restored after a restart had no attributes and lost, on the next reload,
// every subscription granted by an attribute rule. The record is mochi's
// storage.Client with one more JSON field, which mochi's hook ignores.
// It also repairs three problems of mochi's hook:
//   - inflight messages were stored without their packet id; they are
//     stored with it, and StoredInflightMessages recovers it from the key
//     of a record written without it.
//   - OnSubscribed stored every filter of a SUBSCRIBE, refused ones
//     included, with the reason code as its QoS; after a restart mochi would
//     restore a subscription the policy refused. Only granted filters are
//     stored here.
//   - Stop set the database to nil while mochi's event loop may still call
//     the hook (a data race, then "db not open" errors); a lock orders Stop
//     after every running call and later calls do nothing.
type boltStore struct {
	mqtt.HookBase

	// mu is held for reading by every call that uses db, and for writing
	// by Stop.
	mu      sync.RWMutex
	db      *bbolt.DB
	stopped bool
	stopErr error
	initErr error

	// identityOf returns the identity to persist with a client's session,
	// or nil (policyHook.attachStore sets it before Init).
	identityOf func(*mqtt.Client) *storedIdentity

	// ids holds the identities of the stored clients, by client id, as
	// read at restore and written since.
	idsMu sync.Mutex
	ids   map[string]*storedIdentity
}

// bucket is boltBucket (payload_rewrap.go), mochi's bucket name, kept for
// compatibility.
var bucket = []byte(boltBucket)

// storeOptions is the configuration handed to Init by mqtt.Server.AddHook.
type storeOptions struct {
	Path    string
	Options *bbolt.Options
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

func newBoltStore() *boltStore { return &boltStore{ids: make(map[string]*storedIdentity)} }

// boltOptions returns the options of the store at path.
func boltOptions(path string) *storeOptions {
	return &storeOptions{Path: path, Options: &bbolt.Options{Timeout: boltLockTimeout}}
}

// ID implements mqtt.Hook.
func (s *boltStore) ID() string { return "moat-bolt" }

// Provides implements mqtt.Hook.
func (s *boltStore) Provides(b byte) bool {
	switch b {
	case mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnSubscribed, mqtt.OnUnsubscribed,
		mqtt.OnRetainMessage, mqtt.OnWillSent, mqtt.OnQosPublish, mqtt.OnQosComplete,
		mqtt.OnQosDropped, mqtt.OnSysInfoTick, mqtt.OnClientExpired, mqtt.OnRetainedExpired,
		mqtt.StoredClients, mqtt.StoredInflightMessages, mqtt.StoredRetainedMessages,
		mqtt.StoredSubscriptions, mqtt.StoredSysInfo:
		return true
	}
	return false
}

// Init opens the database; it fails if the directory is missing or another
// process holds the file (after boltLockTimeout). The error is kept for
// Start, which reports it without mochi's wrapping.
func (s *boltStore) Init(cfg any) error {
	s.initErr = s.open(cfg)
	return s.initErr
}

func (s *boltStore) open(cfg any) error {
	o, ok := cfg.(*storeOptions)
	if !ok || o == nil || o.Path == "" {
		return mqtt.ErrInvalidConfigType
	}
	db, err := bbolt.Open(o.Path, 0o600, o.Options)
	if err != nil {
		return err
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		return errors.Join(err, db.Close())
	}
	s.db = db
	return nil
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
	if s.db != nil {
		s.stopErr = s.db.Close()
	}
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
	if s.stopped || s.db == nil {
		s.mu.RUnlock()
		return false
	}
	return true
}

// put stores v under key; errors are logged, as mochi's hook does: a
// hook has no way to return them.
func (s *boltStore) put(key string, v any) {
	data, err := json.Marshal(v)
	if err == nil {
		err = s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), data) })
	}
	if err != nil {
		s.Log.Error("store: write failed", "key", key, "err", err)
	}
}

// del deletes key, logging an error.
func (s *boltStore) del(key string) {
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(key)) }); err != nil {
		s.Log.Error("store: delete failed", "key", key, "err", err)
	}
}

// each calls visit with every value whose key starts with prefix.
func (s *boltStore) each(prefix string, visit func(key string, v []byte) error) error {
	return s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			if err := visit(string(k), v); err != nil {
				return fmt.Errorf("store: %s: %w", k, err)
			}
		}
		return nil
	})
}

func clientKey(id string) string { return storage.ClientKey + "_" + id }

func subscriptionKey(id, filter string) string {
	return storage.SubscriptionKey + "_" + id + ":" + filter
}

func retainedKey(topic string) string { return storage.RetainedKey + "_" + topic }

func inflightKey(id string, pk packets.Packet) string {
	return storage.InflightKey + "_" + id + ":" + pk.FormatID()
}

// storedClient is a client record: mochi's, and the identity.
type storedClient struct {
	storage.Client
	Identity *storedIdentity `json:"moat_identity,omitempty"`
}

// OnSessionEstablished stores the client and the identity of its session.
func (s *boltStore) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.putClient(cl)
	}
}

// OnWillSent stores the client without its will.
func (s *boltStore) OnWillSent(cl *mqtt.Client, _ packets.Packet) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.putClient(cl)
	}
}

func (s *boltStore) putClient(cl *mqtt.Client) {
	var id *storedIdentity
	if s.identityOf != nil {
		id = s.identityOf(cl)
	}
	props := cl.Properties.Props.Copy(false)
	rec := storedClient{
		Client: storage.Client{
			ID:              cl.ID,
			T:               storage.ClientKey,
			Remote:          cl.Net.Remote,
			Listener:        cl.Net.Listener,
			Username:        cl.Properties.Username,
			Clean:           cl.Properties.Clean,
			ProtocolVersion: cl.Properties.ProtocolVersion,
			Properties: storage.ClientProperties{
				SessionExpiryInterval:     props.SessionExpiryInterval,
				SessionExpiryIntervalFlag: props.SessionExpiryIntervalFlag,
				AuthenticationMethod:      props.AuthenticationMethod,
				RequestProblemInfo:        props.RequestProblemInfo,
				RequestProblemInfoFlag:    props.RequestProblemInfoFlag,
				RequestResponseInfo:       props.RequestResponseInfo,
				ReceiveMaximum:            props.ReceiveMaximum,
				TopicAliasMaximum:         props.TopicAliasMaximum,
				User:                      props.User,
				MaximumPacketSize:         props.MaximumPacketSize,
			},
			Will: storage.ClientWill(cl.Properties.Will),
		},
		Identity: id,
	}
	s.put(clientKey(cl.ID), rec)
	s.setIdentity(cl.ID, id)
}

func (s *boltStore) setIdentity(clientID string, id *storedIdentity) {
	s.idsMu.Lock()
	defer s.idsMu.Unlock()
	if id == nil {
		delete(s.ids, clientID)
	} else {
		s.ids[clientID] = id
	}
}

// identity returns the identity stored with the session of clientID.
func (s *boltStore) identity(clientID string) (*storedIdentity, bool) {
	s.idsMu.Lock()
	defer s.idsMu.Unlock()
	id, ok := s.ids[clientID]
	return id, ok
}

// OnDisconnect forgets a client whose session ends with the connection,
// unless a new connection took the session over.
func (s *boltStore) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if !expire || cl.StopCause() == packets.ErrSessionTakenOver {
		return
	}
	s.OnClientExpired(cl)
}

// OnClientExpired forgets the client.
func (s *boltStore) OnClientExpired(cl *mqtt.Client) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.del(clientKey(cl.ID))
		s.setIdentity(cl.ID, nil)
	}
}

// OnSubscribed stores only the granted filters (reason code below 0x80).
func (s *boltStore) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	if !s.enter() {
		return
	}
	defer s.mu.RUnlock()
	for i, f := range pk.Filters {
		if i >= len(codes) || codes[i] >= packets.ErrUnspecifiedError.Code {
			continue
		}
		key := subscriptionKey(cl.ID, f.Filter)
		s.put(key, &storage.Subscription{
			ID:                key,
			T:                 storage.SubscriptionKey,
			Client:            cl.ID,
			Qos:               codes[i],
			Filter:            f.Filter,
			Identifier:        f.Identifier,
			NoLocal:           f.NoLocal,
			RetainHandling:    f.RetainHandling,
			RetainAsPublished: f.RetainAsPublished,
		})
	}
}

func (s *boltStore) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	if s.enter() {
		defer s.mu.RUnlock()
		for _, f := range pk.Filters {
			s.del(subscriptionKey(cl.ID, f.Filter))
		}
	}
}

// message is the stored form of a retained or inflight message.
func message(key, typ, clientID string, pk packets.Packet) *storage.Message {
	props := pk.Properties.Copy(false)
	return &storage.Message{
		ID:          key,
		T:           typ,
		Client:      clientID,
		Origin:      pk.Origin,
		FixedHeader: pk.FixedHeader,
		TopicName:   pk.TopicName,
		Payload:     pk.Payload,
		Created:     pk.Created,
		PacketID:    pk.PacketID,
		Properties: storage.MessageProperties{
			PayloadFormat:          props.PayloadFormat,
			MessageExpiryInterval:  props.MessageExpiryInterval,
			ContentType:            props.ContentType,
			ResponseTopic:          props.ResponseTopic,
			CorrelationData:        props.CorrelationData,
			SubscriptionIdentifier: props.SubscriptionIdentifier,
			TopicAlias:             props.TopicAlias,
			User:                   props.User,
		},
	}
}

func (s *boltStore) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, r int64) {
	if !s.enter() {
		return
	}
	defer s.mu.RUnlock()
	key := retainedKey(pk.TopicName)
	if r == -1 {
		s.del(key)
		return
	}
	m := message(key, storage.RetainedKey, cl.ID, pk)
	m.PacketID = 0
	s.put(key, m)
}

func (s *boltStore) OnRetainedExpired(topic string) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.del(retainedKey(topic))
	}
}

func (s *boltStore) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, _ int) {
	if s.enter() {
		defer s.mu.RUnlock()
		key := inflightKey(cl.ID, pk)
		m := message(key, storage.InflightKey, cl.ID, pk)
		m.Sent = sent
		s.put(key, m)
	}
}

func (s *boltStore) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.del(inflightKey(cl.ID, pk))
	}
}

func (s *boltStore) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	s.OnQosComplete(cl, pk)
}

func (s *boltStore) OnSysInfoTick(info *system.Info) {
	if s.enter() {
		defer s.mu.RUnlock()
		s.put(storage.SysInfoKey, &storage.SystemInfo{ID: storage.SysInfoKey, T: storage.SysInfoKey, Info: *info})
	}
}

// StoredClients reads the clients and keeps the identity of each.
func (s *boltStore) StoredClients() ([]storage.Client, error) {
	if !s.enter() {
		return nil, storage.ErrDBFileNotOpen
	}
	defer s.mu.RUnlock()
	var out []storage.Client
	err := s.each(storage.ClientKey+"_", func(_ string, v []byte) error {
		var rec storedClient
		if err := json.Unmarshal(v, &rec); err != nil {
			return err
		}
		out = append(out, rec.Client)
		s.setIdentity(rec.ID, rec.Identity)
		return nil
	})
	return out, err
}

func (s *boltStore) StoredSubscriptions() ([]storage.Subscription, error) {
	if !s.enter() {
		return nil, storage.ErrDBFileNotOpen
	}
	defer s.mu.RUnlock()
	var out []storage.Subscription
	err := s.each(storage.SubscriptionKey+"_", func(_ string, v []byte) error {
		var sub storage.Subscription
		if err := json.Unmarshal(v, &sub); err != nil {
			return err
		}
		out = append(out, sub)
		return nil
	})
	return out, err
}

func (s *boltStore) storedMessages(prefix string) ([]storage.Message, error) {
	var out []storage.Message
	err := s.each(prefix, func(_ string, v []byte) error {
		var m storage.Message
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

func (s *boltStore) StoredRetainedMessages() ([]storage.Message, error) {
	if !s.enter() {
		return nil, storage.ErrDBFileNotOpen
	}
	defer s.mu.RUnlock()
	return s.storedMessages(storage.RetainedKey + "_")
}

// StoredInflightMessages restores the packet id of a message stored
// without it (by mochi's hook, which omits it) from its key: they would
// all come back with id 0, overwrite one another in the client's inflight
// map, and make the resend on reconnect fail ("missing packet id").
func (s *boltStore) StoredInflightMessages() ([]storage.Message, error) {
	if !s.enter() {
		return nil, storage.ErrDBFileNotOpen
	}
	defer s.mu.RUnlock()
	msgs, err := s.storedMessages(storage.InflightKey + "_")
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

func (s *boltStore) StoredSysInfo() (storage.SystemInfo, error) {
	if !s.enter() {
		return storage.SystemInfo{}, storage.ErrDBFileNotOpen
	}
	defer s.mu.RUnlock()
	var v storage.SystemInfo
	err := s.db.View(func(tx *bbolt.Tx) error {
		if data := tx.Bucket(bucket).Get([]byte(storage.SysInfoKey)); data != nil {
			return json.Unmarshal(data, &v)
		}
		return nil
	})
	return v, err
}
