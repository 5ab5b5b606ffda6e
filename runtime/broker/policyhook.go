package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// policyHook is moat's one and only auth hook in mochi. mochi allows a
// CONNECT or an ACL check when ANY hook says yes, so a second auth-providing
// hook would bypass every policy; this hook runs moat's own chains instead.
//
// Which mochi call decides what (mochi v2.7.9):
//
//   - CONNECT: OnConnect authenticates (and runs MQTT 5 enhanced
//     authentication), authorizes the will and sends its own CONNACK on
//     refusal; OnConnectAuthenticate only reports what OnConnect decided.
//   - PUBLISH: OnPacketRead resolves the topic alias and notes QoS and retain;
//     OnACLCheck(write) decides, because mochi's refusal after OnACLCheck is
//     protocol-correct while its refusal after OnPublish is not.
//   - SUBSCRIBE: OnSubscribe decides each filter and swaps a denied one for a
//     sentinel that OnACLCheck(read) refuses.
//   - delivery (live, retained, will): OnACLCheck(read) with a topic name.
//
// It is safe for concurrent use, as mochi requires.
type policyHook struct {
	mqtt.HookBase
	srv     *mqtt.Server
	decider *policy.Decider
	log     *slog.Logger
	// stats counts refusals and denied publishes when metrics are on
	// (stats.go); nil otherwise. auditAllow is [log] audit_allow_sample:
	// the share of allows logged as audit records (audit.go).
	stats      *statsHook
	auditAllow float64
	// refusals bounds the records of refused CONNECTs (refusallog.go).
	refusals *refusalLog
	// failures counts failed authentications per address for [limits]
	// authn_failure_rate_per_ip (authnrate.go); nil when off.
	failures *authnFailures

	// ctx is the context of every policy call. mochi's hooks take no context
	// and the wasm engine enforces each module's deadline itself, so one
	// long-lived context, cancelled when the server stops, replaces a
	// context.WithTimeout per decision (0.5 µs and allocations each).
	ctx    context.Context
	cancel context.CancelFunc

	// clients maps *mqtt.Client to *clientState. mochi's Client has no field
	// for user data. Keying by pointer, not client id, means a session
	// takeover (a new *Client with the same id) never sees or clobbers the
	// state of the connection it replaces.
	clients sync.Map

	// deniedFilter replaces a subscription filter the policy refused. It is a
	// valid filter (so mochi does not answer 0x8F) that OnACLCheck always
	// refuses (so mochi answers 0x87). Random per hook so that no client can
	// subscribe to it on purpose; one that does is refused.
	deniedFilter string

	// connackAuth counts clients whose success CONNACK still has to carry
	// MQTT 5 authentication properties. Provides(OnPacketEncode) is true only
	// while it is positive, so that mochi does not copy every outbound packet
	// through this hook for a rare need.
	connackAuth atomic.Int64
	// ackReasons counts clients whose next PUBACK/PUBREC 0x87 carries the
	// reason code a module gave instead (policyhook_authz.go); like
	// connackAuth it keeps OnPacketEncode off while no client needs it.
	ackReasons atomic.Int64

	// reqs recycles delivery requests: Decider.Authorize takes a pointer that
	// escapes through the Authorizer interface, and deliveries for one client
	// run on many goroutines at once.
	reqs sync.Pool

	// authTimeout bounds a whole enhanced-authentication exchange.
	authTimeout time.Duration
	// authnTimeout bounds one run of the authentication chain ([auth]
	// timeout); 0 leaves it to each module's own timeout.
	authnTimeout time.Duration

	// keepCredentials makes OnConnect keep each client's credentials for
	// re-authentication on reload. Atomic because a reload may turn it on
	// or off while clients connect (Broker.SetReauthenticate, recheck.go).
	keepCredentials atomic.Bool

	// queuedRefused counts the waiting messages dropped because their
	// receiver may no longer read them (session.go).
	queuedRefused atomic.Int64
	// store is the session store, nil without persistence: refuseQueued
	// removes what it drops from it (store.go sets it).
	store atomic.Pointer[boltStore]

	// offline maps a client id to the *mqtt.Client of its session that
	// went offline last, so that OnSessionEstablished can forget it when
	// mochi replaced it behind OnSessionEstablish's back.
	offline sync.Map
	// v3Disconnect disconnects an MQTT 3.1.1 client whose QoS 1/2 PUBLISH
	// the policy refuses, instead of acknowledging and dropping it
	// ([mqtt] v3_denied_publish); v3Dropped counts the drops.
	v3Disconnect bool
	v3Dropped    atomic.Int64
}

var _ mqtt.Hook = (*policyHook)(nil)

// Limits of MQTT 5 enhanced authentication (AUTH exchanges during CONNECT).
const (
	// defaultAuthTimeout is the time a client has to complete every round;
	// mochi has not yet applied the keepalive deadline at that point.
	defaultAuthTimeout = 30 * time.Second
	// maxAuthRounds bounds the AUTH packets a client may send during CONNECT,
	// so that a module that always continues cannot hold a connection.
	maxAuthRounds = 10
)

// clientState is what the hook knows of one connection.
//
// Lock order: clientState.mu is a leaf; no other lock is taken under it.
type clientState struct {
	session   *policy.Session
	superuser bool
	// restored marks the state of a session restored from the store
	// without a persisted identity (written by an older moat), before its
	// client reconnected: only the client id and username are known (no
	// attributes, never superuser).
	restored bool
	// authn holds the CONNECT's credentials when the broker re-authenticates
	// clients on reload ([reload] reauthenticate); nil otherwise, so that
	// passwords are not kept in memory without a reason.
	authn *policy.AuthnRequest

	// connackMethod and connackData go into the success CONNACK of a client
	// that used enhanced authentication; OnPacketEncode takes them once.
	connackMethod  string
	connackData    []byte
	connackPending atomic.Bool

	// ackReason is the packet id (high 16 bits) and module reason code (low
	// 8 bits) of the denied PUBLISH whose PUBACK/PUBREC mochi is about to
	// write; 0 when none (see setAckReason).
	ackReason atomic.Uint32

	// expiresAt is when the credentials expire (zero for never), persisted
	// with the session (identity.go). Set before the state is stored, then
	// read-only.
	expiresAt time.Time

	// willDecided is set by Recheck when it decided the will of a client
	// that re-authentication disconnects, for the identity the new policy
	// gives; OnWill then does not decide it again (session.go).
	willDecided atomic.Bool

	// pub is the PUBLISH being processed. Only the client's read goroutine
	// touches it: mochi reads a packet (OnPacketRead) and processes it
	// (OnACLCheck) on that goroutine before it reads the next one
	// (mqtt.Client.Read). pubSet says it is current.
	pub    policy.AuthzRequest
	pubSet bool
	pubID  uint16 // the PUBLISH's packet id, for setAckReason
	// dropPub marks pub as refused but to be acknowledged (policyhook_v3.go);
	// like pub, only the client's read goroutine touches it.
	dropPub bool

	// subscribing is true between OnSubscribe and OnSubscribed, while mochi
	// calls OnACLCheck(read) with subscription filters rather than topics.
	subscribing atomic.Bool

	mu sync.Mutex
	// expiry disconnects the client when its credentials expire.
	expiry *time.Timer
	// subAllowed holds the wildcard and shared filters of the SUBSCRIBE in
	// progress that the policy allowed; OnACLCheck consumes each once.
	subAllowed []string
}

// stopExpiry cancels the expiry timer, if any.
func (st *clientState) stopExpiry() {
	st.mu.Lock()
	if st.expiry != nil {
		st.expiry.Stop()
		st.expiry = nil
	}
	st.mu.Unlock()
}

func newPolicyHook(srv *mqtt.Server, d *policy.Decider, log *slog.Logger) *policyHook {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var nonce [16]byte
	_, _ = rand.Read(nonce[:]) // crypto/rand.Read never fails (Go 1.24+)
	ctx, cancel := context.WithCancel(context.Background())
	h := &policyHook{
		srv:          srv,
		decider:      d,
		log:          log,
		ctx:          ctx,
		cancel:       cancel,
		deniedFilter: "$moat/denied/" + hex.EncodeToString(nonce[:]),
		authTimeout:  defaultAuthTimeout,
		refusals:     newRefusalLog(log),
	}
	h.reqs.New = func() any { return new(policy.AuthzRequest) }
	return h
}

// ID implements mqtt.Hook.
func (h *policyHook) ID() string { return "moat-policy" }

// Provides implements mqtt.Hook. mochi asks it on every event, so the
// answer for OnPacketEncode may change at run time.
func (h *policyHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect,
		mqtt.OnConnectAuthenticate,
		mqtt.OnSessionEstablish,
		mqtt.OnSessionEstablished,
		mqtt.OnDisconnect,
		mqtt.OnClientExpired,
		mqtt.OnAuthPacket,
		mqtt.OnPacketRead,
		mqtt.OnACLCheck,
		mqtt.OnSubscribe,
		mqtt.OnSubscribed,
		mqtt.OnWill,
		mqtt.OnStopped:
		return true
	case mqtt.OnPublish: // policyhook_v3.go: only acknowledged drops need it
		return !h.v3Disconnect
	case mqtt.OnPacketEncode:
		return h.connackAuth.Load() > 0 || h.ackReasons.Load() > 0
	}
	return false
}

// restoredState returns the policy state of a session that mochi restored
// from the store and whose client has not reconnected since the restart,
// creating it on first use. Messages published meanwhile are authorized
// for delivery to it as the identity persisted with the session
// (identity.go). A session stored without one (by an older moat) is known
// only by its client id and username: rules that need attributes or a
// superuser flag then fail closed until the client reconnects.
func (h *policyHook) restoredState(cl *mqtt.Client) *clientState {
	v, _ := h.clients.LoadOrStore(cl, h.newRestoredState(cl))
	return v.(*clientState)
}

// newRestoredState builds what restoredState stores, without storing it.
func (h *policyHook) newRestoredState(cl *mqtt.Client) *clientState {
	if id, ok := h.storedIdentity(cl); ok {
		client := id.client(cl)
		return &clientState{session: h.decider.NewSession(client), superuser: client.Superuser}
	}
	client := &policy.Client{
		ClientID:        cl.ID,
		Username:        string(cl.Properties.Username),
		Listener:        cl.Net.Listener,
		ProtocolVersion: cl.Properties.ProtocolVersion,
	}
	return &clientState{session: h.decider.NewSession(client), restored: true}
}

// state returns the state of an authenticated client, or nil.
func (h *policyHook) state(cl *mqtt.Client) *clientState {
	v, ok := h.clients.Load(cl)
	if !ok {
		return nil
	}
	return v.(*clientState)
}

// forget drops the state of cl, stopping its timer. It returns the state
// dropped, or nil.
func (h *policyHook) forget(cl *mqtt.Client) *clientState {
	v, ok := h.clients.LoadAndDelete(cl)
	if !ok {
		return nil
	}
	st := v.(*clientState)
	h.offline.CompareAndDelete(cl.ID, cl)
	st.stopExpiry()
	if st.connackPending.Swap(false) {
		h.connackAuth.Add(-1)
	}
	if st.ackReason.Swap(0) != 0 {
		h.ackReasons.Add(-1)
	}
	return st
}

// OnConnectAuthenticate implements mqtt.Hook. OnConnect has decided already
// and refused (with its own CONNACK) any client it did not allow, so this
// only reports that decision: true for a client OnConnect allowed, never for
// one it did not see.
func (h *policyHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return h.state(cl) != nil
}

// OnSessionEstablish implements mqtt.Hook. mochi calls it after
// authentication and just before a new connection inherits the session of
// an older one with the same client id, then resends every message waiting
// in it without any ACL check.
//
// A client that authenticates as someone else under the same client id
// (sameIdentity: username, listener, client certificate, attributes,
// superuser flag) must not inherit what was queued for, or subscribed by,
// the old identity: the old session is discarded, subscriptions and
// messages. The CONNACK still says "session present" (mochi decides that
// flag), but the session is empty. A session restored from the store
// carries the identity that was persisted with it (store.go); one stored
// without it (by an older moat) is compared by username only.
//
// The same identity inherits the session, but each waiting message is
// decided again as a delivery to it under the policy in force, and dropped
// if refused (session.go).
func (h *policyHook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	old, ok := h.srv.Clients.Get(cl.ID)
	if !ok || old == cl {
		return
	}
	prev := h.forget(old) // the old connection is being replaced either way
	if prev != nil && !old.Closed() {
		h.decideWillOnTakeover(old, prev) // mochi disconnects it next
	}
	st := h.state(cl)
	if st == nil || pk.Connect.Clean {
		return // not ours to admit, or mochi discards the old session itself
	}
	if prev == nil {
		prev = h.newRestoredState(old)
	}
	same := sameIdentity(prev.session.Client(), st.session.Client())
	if prev.restored { // restored without a persisted identity
		same = prev.session.Client().Username == st.session.Client().Username
	}
	if !same {
		h.log.Info("session of another identity discarded", "client_id", cl.ID)
		h.srv.UnsubscribeClient(old)
		old.ClearInflights()
		return
	}
	h.refuseQueued(old, st, false)
}

// OnDisconnect implements mqtt.Hook. The state of a client whose session
// outlives the connection (clean start off, or an MQTT 5 session expiry) is
// kept: mochi still queues messages for it, and each is authorized for
// delivery with that session until mochi expires it (OnClientExpired) or a
// new connection takes it over (OnSessionEstablish).
func (h *policyHook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	st := h.state(cl)
	if st == nil {
		return
	}
	if expire || cl.IsTakenOver() || !h.current(cl) {
		h.forget(cl)
		return
	}
	st.stopExpiry()
	h.offline.Store(cl.ID, cl)
}

// OnSessionEstablished implements mqtt.Hook. mochi has made cl the one
// session of its client id. A connection with that id that went offline
// while still mochi's current one, and that mochi then replaced by cl
// without cl's OnSessionEstablish seeing it (two connections with one id
// at once), left a state nobody would forget: it is forgotten here.
func (h *policyHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if v, ok := h.offline.Load(cl.ID); ok && v != cl && !h.current(v.(*mqtt.Client)) {
		h.forget(v.(*mqtt.Client))
	}
}

// current reports whether cl is the client mochi holds for its client id.
// Two connections with one id may take over the same session at once; mochi
// then keeps the last one, and the other's session, which receives nothing,
// need not be kept.
func (h *policyHook) current(cl *mqtt.Client) bool {
	c, ok := h.srv.Clients.Get(cl.ID)
	return ok && c == cl
}

// OnClientExpired implements mqtt.Hook: the session is gone.
func (h *policyHook) OnClientExpired(cl *mqtt.Client) {
	h.forget(cl)
}

// OnStopped implements mqtt.Hook. It cancels the context of policy calls
// still running and stops every expiry timer.
func (h *policyHook) OnStopped() {
	h.cancel()
	h.refusals.close()
	h.clients.Range(func(k, _ any) bool {
		h.forget(k.(*mqtt.Client))
		return true
	})
}
