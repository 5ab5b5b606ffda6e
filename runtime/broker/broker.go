// Package broker runs moat's MQTT broker: mochi-mqtt with moat's listeners,
// capabilities, persistence and policy.
//
// It is the only package that imports mochi. Nothing of mochi appears in its
// API: callers hand it a validated config.Config and a policy.Decider and get
// a Broker with Start, Addr and Close. Every authentication and
// authorization decision goes through the Decider, by way of exactly one
// mochi hook (policyHook); see checkAuthHooks for why only one.
//
// Lifecycle: New builds the server without touching the network or the
// disk; Start binds every listener, opens the session store and serves;
// Close stops accepting, lets in-flight QoS 1/2 exchanges finish within its
// context, disconnects clients and closes the store. A Broker is started at
// most once; to restart, Close it and build a new one (the store file is
// released by Close).
package broker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"go.etcd.io/bbolt"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/crypto"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// Options are what New needs.
type Options struct {
	// Config supplies [[listener]], [mqtt] and [persistence]. It has been
	// loaded and validated (config.Load or config.Parse), so that its
	// defaults are filled in; the Broker reads it and never modifies it.
	Config *config.Config
	// Decider takes every authentication and authorization decision.
	// Required. The caller owns it and closes it after Close.
	Decider *policy.Decider
	// Logger receives the broker's and mochi's log lines (the caller builds
	// it from [log]); nil discards them.
	Logger *slog.Logger
	// Ring holds the payload key ring (payload.go); nil or empty when no
	// [[key]] is configured. The caller may swap the ring at any time to
	// rotate keys.
	Ring *crypto.RingHolder
	// Version is moat's version, reported in $SYS/broker/version as
	// "moat version <Version>"; "" reports "dev".
	Version string
	// Stats turns on the traffic counters of Broker.Stats (stats.go): set
	// when metrics are served.
	Stats bool
}

// Broker is a running (or runnable) MQTT broker. Its methods are safe for
// concurrent use.
type Broker struct {
	log *slog.Logger
	cfg *config.Config
	srv *mqtt.Server

	// hooks lists every hook registered with srv, in order; addHook is the
	// only way one is added, so the list is complete.
	hooks    []mqtt.Hook
	policy   *policyHook
	payload  *payloadHook // payload.go
	protocol *protocolHook
	sys      *sysPublisher // sys.go
	sysStop  context.CancelFunc
	sysDone  chan struct{}
	stats    *statsHook  // stats.go; nil without Options.Stats
	admin    *adminHook  // admin.go
	limits   *limitsHook // limits.go
	gate     *gate       // gate.go
	bans     *banList    // bans.go
	// overload applies the slow-subscriber rule (overload.go).
	overload *overloadHook

	mu        sync.Mutex
	state     state
	listeners []*listener // config order; set by Start
	store     *boltStore  // nil without persistence
}

type state uint8

const (
	stateNew state = iota
	stateStarted
	stateClosed
)

// mochiSysOff is mochi's $SYS interval, in seconds: about 34 years, so
// never. moat publishes $SYS itself (sys.go), under Mosquitto's names and
// with moat's version; mochi's ticker would also write its counters to the
// store, an fsync, that nothing reads (RestoreSysInfoOnRestart is off).
const mochiSysOff = 1 << 30

// disconnectWriteTimeout bounds the DISCONNECT writes of Close once its
// grace period is over. A reading client takes microseconds.
const disconnectWriteTimeout = 250 * time.Millisecond

// drainPoll is how often Close checks whether in-flight messages are done.
const drainPoll = 10 * time.Millisecond

// New builds a broker from opts without opening sockets or files.
func New(opts Options) (*Broker, error) {
	if opts.Config == nil {
		return nil, errors.New("broker: no config")
	}
	if opts.Decider == nil {
		return nil, errors.New("broker: no policy decider")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := opts.Config
	seen := make(map[string]bool, len(cfg.Listeners))
	for i, lc := range cfg.Listeners {
		name := listenerName(lc, i)
		if seen[name] {
			return nil, fmt.Errorf("broker: listener[%d]: duplicate name %q", i, name)
		}
		seen[name] = true
	}
	switch cfg.Persistence.Type {
	case "", "none", "bolt":
	default:
		return nil, fmt.Errorf("broker: persistence.type %q: want \"none\" or \"bolt\"", cfg.Persistence.Type)
	}

	caps := capabilities(cfg.MQTT)
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 newMochiLogger(log),
		SysTopicResendInterval: mochiSysOff,
		// The inline client publishes and subscribes around every hook,
		// policy included; moat has no use for it.
		InlineClient: false,
	})
	b := &Broker{log: log, cfg: cfg, srv: srv}
	srv.Info.Version = sysVersion(opts.Version) // what mochi's start-up $SYS says

	// Limits go first, so that a refused CONNECT costs no module call.
	b.bans = newBanList(cfg.BanPath())
	b.gate = newGate(cfg.Limits, b.bans, log)
	b.limits = newLimitsHook(srv, b.gate, log)
	if err := b.addHook(b.limits, nil); err != nil {
		return nil, err
	}
	// Order matters where hooks transform packets: protocol fixes come
	// first (protocol.go), and capabilities refuse filters before policy
	// sees them.
	b.protocol = newProtocolHook(srv, log)
	if err := b.addHook(b.protocol, nil); err != nil {
		return nil, err
	}
	if err := b.addHook(newCapsHook(srv, caps, cfg.MQTT.MaximumKeepalive.Duration), nil); err != nil {
		return nil, err
	}
	b.policy = newPolicyHook(srv, opts.Decider, log)
	// [auth] timeout is applied by the policy version in force
	// (policy.Options.AuthnTimeout), so that a reload changes it.
	b.policy.failures = b.gate.fails
	b.limits.refusals = b.policy.refusals
	b.policy.keepCredentials.Store(cfg.Reload.Reauthenticate)
	b.policy.v3Disconnect = cfg.MQTT.V3DeniedPublish == config.V3DeniedDisconnect
	b.policy.auditAllow = cfg.Log.AuditAllowSample
	if err := b.addHook(b.policy, nil); err != nil {
		return nil, err
	}
	// After the policy hook, whose sessions and verdicts it builds on.
	b.payload = newPayloadHook(srv, b.policy, opts.Ring, cfg.Payload.RequireE2EDisconnect, log)
	if err := b.addHook(b.payload, nil); err != nil {
		return nil, err
	}
	if opts.Stats {
		names := make([]string, len(cfg.Listeners))
		for i, lc := range cfg.Listeners {
			names[i] = listenerName(lc, i)
		}
		b.stats = newStatsHook(names)
		b.policy.stats = b.stats
		if err := b.addHook(b.stats, nil); err != nil {
			return nil, err
		}
	}
	b.admin = newAdminHook()
	if err := b.addHook(b.admin, nil); err != nil {
		return nil, err
	}
	b.overload = newOverloadHook(srv, log)
	if err := b.addHook(b.overload, nil); err != nil {
		return nil, err
	}
	if err := checkAuthHooks(b.hooks, b.policy); err != nil {
		return nil, err
	}
	b.sys = newSysPublisher(srv, opts.Version, b.policy.v3Dropped.Load, b.protocol.connects.Load)
	return b, nil
}

func listenerName(lc config.Listener, i int) string {
	if lc.Name != "" {
		return lc.Name
	}
	return fmt.Sprintf("%s-%d", lc.Type, i)
}

// addHook registers h with mochi and records it for checkAuthHooks.
func (b *Broker) addHook(h mqtt.Hook, cfg any) error {
	if err := b.srv.AddHook(h, cfg); err != nil {
		return fmt.Errorf("broker: hook %s: %w", h.ID(), err)
	}
	b.hooks = append(b.hooks, h)
	return nil
}

// checkAuthHooks fails unless policy is the only hook that provides
// OnConnectAuthenticate or OnACLCheck. mochi v2.7.9 allows a CONNECT or an
// ACL check as soon as ANY hook says yes (hooks.go, Hooks.OnConnectAuthenticate
// and Hooks.OnACLCheck), so one more auth-providing hook, such as mochi's
// allow-all, would bypass every policy.
func checkAuthHooks(hooks []mqtt.Hook, policy mqtt.Hook) error {
	for _, h := range hooks {
		if h == policy {
			continue
		}
		if h.Provides(mqtt.OnConnectAuthenticate) || h.Provides(mqtt.OnACLCheck) {
			return fmt.Errorf("broker: hook %s provides authentication or ACL checks; only the policy hook may", h.ID())
		}
	}
	return nil
}

// Start binds every listener, opens the session store, restores what it
// holds and starts serving in the background. It is all or nothing: on
// error every socket opened is closed, the store is closed, and the Broker
// cannot be started again (Close is still safe). ctx bounds nothing that
// blocks for long; it is checked before serving.
func (b *Broker) Start(ctx context.Context) (err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != stateNew {
		return errors.New("broker: start: already started or closed")
	}
	b.state = stateClosed // until everything below succeeds

	var lns []*listener
	defer func() {
		if err != nil {
			for _, l := range lns {
				l.closeUnserved()
			}
			// Stops the hooks, which closes the store if it was opened.
			_ = b.srv.Close()
		}
	}()
	for i, lc := range b.cfg.Listeners {
		lc.Name = listenerName(lc, i)
		l, err := bind(lc, b.log)
		if err != nil {
			return err
		}
		lns = append(lns, l)
		l.applyLimits(b.gate, lc, b.cfg.Limits) // limits.go
	}
	if err := b.bans.load(); err != nil {
		return err
	}

	if b.cfg.Persistence.Type == "bolt" {
		store := newBoltStore()
		b.policy.attachStore(store)
		path := boltPath(b.cfg)
		if err := b.addHook(store, boltOptions(path)); err != nil {
			return fmt.Errorf("broker: persistence: open %s: %w", path, storeOpenErr(err, store.initErr))
		}
		b.store = store
		if err := checkAuthHooks(b.hooks, b.policy); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("broker: start: %w", err)
	}

	for _, l := range lns {
		if err := b.srv.AddListener(l); err != nil {
			return fmt.Errorf("broker: listener %q: %w", l.name, err)
		}
	}
	// Serve restores the store (clients, subscriptions, inflight, retained),
	// then starts one goroutine per listener.
	if err := b.srv.Serve(); err != nil {
		return fmt.Errorf("broker: persistence: restore: %w", err)
	}
	b.listeners = lns
	b.state = stateStarted
	sysCtx, stop := context.WithCancel(context.Background())
	b.sysStop, b.sysDone = stop, make(chan struct{})
	go func() {
		defer close(b.sysDone)
		b.sys.run(sysCtx)
	}()
	for _, l := range lns {
		b.log.Info("listening", "listener", l.name, "type", l.typ, "address", l.Address())
	}
	return nil
}

// storeOpenErr reduces the error of opening the bolt file to its cause:
// mochi and the os package both repeat the path.
func storeOpenErr(err, initErr error) error {
	if initErr == nil {
		return err
	}
	var pe *fs.PathError
	switch {
	case errors.Is(initErr, bbolt.ErrTimeout):
		return fmt.Errorf("%w: locked by another process for %v", initErr, boltLockTimeout)
	case errors.As(initErr, &pe):
		return pe.Err
	}
	return initErr
}

// Addr returns the bound address of the named listener, with the real port
// when the config said port 0. It is nil before Start succeeds and for an
// unknown name; after Close it still reports the address that was bound.
func (b *Broker) Addr(listener string) net.Addr {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.listeners {
		if l.name == listener {
			return l.raw.Addr()
		}
	}
	return nil
}

// Close shuts the broker down gracefully:
//
//  1. every listener stops accepting; connected clients carry on;
//  2. Close waits until no connected client has a QoS 1 or 2 exchange in
//     flight (in either direction), or until ctx is done;
//  3. mochi disconnects every client (MQTT 5 clients get DISCONNECT 0x8B,
//     server shutting down) and stops its hooks, which closes the store.
//     Past ctx, a client that does not read gets disconnectWriteTimeout
//     before its socket is cut, so Close returns soon after ctx is done.
//
// Messages still in flight are kept in the session (and the store, with
// persistence) and resent when the client reconnects. Close returns an error
// wrapping ctx.Err() if the grace period ended with messages in flight, and
// any error from closing the store. It is safe to call more than once and
// before Start.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.state != stateStarted {
		b.state = stateClosed
		b.mu.Unlock()
		return nil
	}
	b.state = stateClosed
	lns := b.listeners
	b.mu.Unlock()

	for _, l := range lns {
		l.stopAccepting()
	}
	b.sysStop()
	<-b.sysDone
	var errs []error
	if n := b.drain(ctx); n > 0 {
		b.log.Warn("shutdown grace period over with messages in flight", "inflight", n)
		errs = append(errs, fmt.Errorf("broker: close: %d QoS 1/2 messages still in flight: %w", n, ctx.Err()))
	}

	b.disconnectAll(ctx, lns)
	if b.store != nil {
		if err := b.store.closeErr(); err != nil {
			errs = append(errs, fmt.Errorf("broker: close: persistence: %w", err))
		}
	}
	b.log.Info("broker stopped")
	return errors.Join(errs...)
}

// disconnectAll has mochi disconnect every client and stop its hooks. Once
// ctx is done, a client that does not read can no longer hold this up:
// mochi writes each DISCONNECT synchronously, so writes get a short
// deadline, and sockets still open after it are cut.
func (b *Broker) disconnectAll(ctx context.Context, lns []*listener) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.srv.Close() // always nil in mochi v2.7.9
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	cut := time.Now().Add(disconnectWriteTimeout)
	for _, l := range lns {
		l.conns.setWriteDeadline(cut)
	}
	select {
	case <-done:
		return
	case <-time.After(2 * disconnectWriteTimeout):
	}
	for _, l := range lns {
		l.closeConns()
	}
	<-done
}

// drain waits until no connected client has a message in flight, or until
// ctx is done, and returns how many remain. Sessions of disconnected clients
// hold messages too, but nothing can complete them before shutdown.
func (b *Broker) drain(ctx context.Context) int {
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		n := b.inflight()
		if n == 0 {
			return 0
		}
		select {
		case <-ctx.Done():
			return n
		case <-t.C:
		}
	}
}

// inflight counts the QoS 1/2 messages in flight on live connections.
func (b *Broker) inflight() int {
	n := 0
	for _, cl := range b.srv.Clients.GetAll() {
		if cl.Net.Inline || cl.Closed() {
			continue
		}
		n += cl.State.Inflight.Len()
	}
	return n
}
