package broker

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// errAuthAborted ends a CONNECT whose enhanced authentication could not be
// completed on the wire (the client closed, timed out or sent garbage): no
// CONNACK can be delivered, mochi just closes the connection.
var errAuthAborted = errors.New("broker: enhanced authentication aborted")

// refusal is a CONNECT refused by the hook: the MQTT 5 reason code and the
// reason string sent to the client (and logged).
type refusal struct {
	reason  byte
	message string
	module  string
}

// OnConnect implements mqtt.Hook. mochi calls it after validating the
// CONNECT and before OnConnectAuthenticate, on the connection's own
// goroutine, with nothing else reading from the connection and nothing
// queued for writing (the client is not yet in mochi's client list). That
// makes it the one place where the hook can run an AUTH exchange and send a
// CONNACK with the policy's own reason code: mochi's refusal after
// OnConnectAuthenticate is always 0x86 without a reason string.
//
// On refusal it sends the CONNACK and returns an error, so mochi closes the
// connection without a second CONNACK.
func (h *policyHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	client := newPolicyClient(cl, pk)
	req := newAuthnRequest(cl, pk, client)
	p0, res, ref, err := h.authenticateConnect(cl, req)
	if err != nil {
		if h.refusals.allow(addrOf(remoteAddr(cl)), time.Now()) {
			h.log.Info("connection refused", "audit", "deny", "decision", "authn", "client_id", cl.ID,
				"username", client.Username, "remote", client.RemoteAddr, "listener", client.Listener, "err", err)
		}
		h.countRefused()
		return err
	}
	if ref != nil {
		// Every failed authentication takes a token of its address's
		// authn_failure_rate_per_ip bucket (authnrate.go).
		h.failures.failed(addrOf(remoteAddr(cl)), time.Now())
		return h.refuse(cl, *ref)
	}

	// The Client is complete now and read-only from here on.
	client.Attributes = res.Attributes
	client.Superuser = res.Superuser
	st := &clientState{session: h.decider.NewSession(client), superuser: res.Superuser, expiresAt: res.Expiry}

	if pk.Connect.WillFlag {
		if ref := h.authorizeWill(cl, st, pk); ref != nil {
			return h.refuse(cl, *ref)
		}
	}
	if !res.Expiry.IsZero() && time.Until(res.Expiry) <= 0 {
		return h.refuse(cl, refusal{reason: policy.ReasonNotAuthorized, message: "credentials expired", module: res.Module})
	}
	if err := h.admit(cl, st, req, res, p0); err != nil {
		return err
	}

	if h.sampleAllow() {
		h.log.Info("client authenticated", "audit", "allow", "decision", "authn", "client_id", cl.ID, "username", client.Username,
			"remote", client.RemoteAddr, "listener", client.Listener, "module", res.Module,
			"superuser", res.Superuser, "expiry", res.Expiry)
	} else if h.log.Enabled(h.ctx, slog.LevelDebug) {
		h.log.Debug("client authenticated", "client_id", cl.ID, "username", client.Username,
			"remote", client.RemoteAddr, "listener", client.Listener, "module", res.Module,
			"superuser", res.Superuser, "expiry", res.Expiry)
	}
	return nil
}

// newAuthnRequest describes the CONNECT for the authentication chain.
func newAuthnRequest(cl *mqtt.Client, pk packets.Packet, client *policy.Client) *policy.AuthnRequest {
	req := &policy.AuthnRequest{Client: client}
	if pk.Connect.PasswordFlag || pk.Connect.Password != nil { // empty: see protocolHook
		req.Password = pk.Connect.Password
	}
	if cl.Properties.ProtocolVersion >= 5 {
		req.AuthMethod = pk.Properties.AuthenticationMethod
		req.AuthData = pk.Properties.AuthenticationData
		if n := len(pk.Properties.User); n > 0 {
			req.UserProperties = make([]policy.Property, n)
			for i, p := range pk.Properties.User {
				req.UserProperties[i] = policy.Property{Key: p.Key, Value: p.Val}
			}
		}
	}
	return req
}

// authenticateConnect runs authenticate and returns, with its result, the
// policy version that decided it.
//
// A reload that swapped the policy while this CONNECT was being decided may
// have re-checked the connected clients before this one was among them
// (recheck.go): it is decided again on the version now in force. Only
// plain CONNECTs can be replayed; a swap during enhanced authentication is
// not looked at.
func (h *policyHook) authenticateConnect(cl *mqtt.Client, req *policy.AuthnRequest) (*policy.Policy, policy.AuthnResult, *refusal, error) {
	p0 := h.decider.Policy()
	res, ref, err := h.authenticate(cl, req)
	for retry := 0; retry < 3 && err == nil && ref == nil && req.AuthMethod == "" && h.decider.Policy() != p0; retry++ {
		p0 = h.decider.Policy()
		res, ref, err = h.authenticate(cl, req)
	}
	return p0, res, ref, err
}

// admit records the state of an allowed client, from which
// OnConnectAuthenticate says yes, and starts its expiry timer. p0 is the
// policy version that authenticated it.
func (h *policyHook) admit(cl *mqtt.Client, st *clientState, req *policy.AuthnRequest, res policy.AuthnResult, p0 *policy.Policy) error {
	if req.AuthMethod != "" {
		// The CONNACK of an enhanced authentication carries its method and
		// the module's final data, if any (MQTT 5 §3.2.2.3.17-18, §4.12).
		st.connackMethod = req.AuthMethod
		st.connackData = res.AuthData
		st.connackPending.Store(true)
		h.connackAuth.Add(1)
	}
	if h.keepCredentials.Load() && req.AuthMethod == "" {
		// Enhanced authentication cannot be replayed without the client,
		// so only CONNECT credentials are kept for re-authentication.
		st.authn = req
	}
	h.clients.Store(cl, st)
	if st.authn != nil && h.decider.Policy() != p0 {
		// Swapped between the last check and Store: the reload's recheck
		// may not have seen this client. Rare; the client may retry.
		h.forget(cl)
		return h.refuse(cl, refusal{reason: 0x89, message: "policy reloaded during CONNECT, retry"})
	}
	if !res.Expiry.IsZero() {
		st.mu.Lock()
		st.expiry = time.AfterFunc(time.Until(res.Expiry), func() { h.expire(cl) })
		st.mu.Unlock()
	}
	return nil
}

// authn runs the authentication chain once, bounded by [auth] timeout for
// all its modules together. Only CONNECT pays for the context: publishes are
// bounded per module by each plugin's timeout, inside the wasm engine.
func (h *policyHook) authn(req *policy.AuthnRequest) policy.AuthnResult {
	if h.authnTimeout <= 0 {
		return h.decider.Authenticate(h.ctx, req)
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.authnTimeout)
	defer cancel()
	return h.decider.Authenticate(ctx, req)
}

// authenticate runs the authentication chain, with as many MQTT 5 AUTH
// rounds as the modules ask for. It returns the allowing result, or a
// refusal to answer with a CONNACK, or an error when the exchange broke
// down and no CONNACK can be sent.
func (h *policyHook) authenticate(cl *mqtt.Client, req *policy.AuthnRequest) (policy.AuthnResult, *refusal, error) {
	if ref := checkAuthData(req.AuthData); ref != nil {
		return policy.AuthnResult{}, ref, nil
	}
	res := h.authn(req)
	if res.Verdict == policy.Continue && req.AuthMethod != "" && cl.Net.Conn != nil {
		// The whole exchange gets one deadline; mochi replaces it with the
		// keepalive deadline once OnConnect returns.
		_ = cl.Net.Conn.SetDeadline(time.Now().Add(h.authTimeout))
	}
	for round := 1; res.Verdict == policy.Continue; round++ {
		if req.AuthMethod == "" {
			return res, &refusal{reason: policy.ReasonNotAuthorized, module: res.Module,
				message: "enhanced authentication needs an authentication method"}, nil
		}
		if round > maxAuthRounds {
			return res, &refusal{reason: policy.ReasonNotAuthorized, module: res.Module,
				message: "too many authentication rounds"}, nil
		}
		if ref := h.checkAuthResult(cl, res); ref != nil {
			return res, ref, nil
		}
		data, ref, err := h.authRound(cl, req.AuthMethod, res.AuthData)
		if err == nil && ref == nil {
			ref = checkAuthData(data)
		}
		if err != nil || ref != nil {
			return res, ref, err
		}
		req.Round = round
		req.AuthData = data
		req.AuthState = res.AuthState
		res = h.authn(req)
	}
	switch res.Verdict {
	case policy.Allow:
		if ref := h.checkAuthResult(cl, res); ref != nil {
			return res, ref, nil
		}
		return res, nil, nil
	case policy.Deny:
		return res, &refusal{reason: res.Reason, message: res.Message, module: res.Module}, nil
	}
	return res, &refusal{reason: policy.ReasonNotAuthorized, module: res.Module,
		message: "authentication returned " + res.Verdict.String()}, nil
}

// authRound sends an AUTH packet (continue authentication) with data and
// reads the client's answer, which must be an AUTH packet continuing the
// same method [MQTT-4.12.0-2] [MQTT-4.12.0-3]. It returns the client's data.
func (h *policyHook) authRound(cl *mqtt.Client, method string, data []byte) ([]byte, *refusal, error) {
	out := packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Auth},
		ReasonCode:  packets.CodeContinueAuthentication.Code,
		Properties:  packets.Properties{AuthenticationMethod: method, AuthenticationData: data},
	}
	if err := cl.WritePacket(out); err != nil {
		return nil, nil, fmt.Errorf("%w: client %q: send AUTH: %w", errAuthAborted, cl.ID, err)
	}
	var fh packets.FixedHeader
	if err := cl.ReadFixedHeader(&fh); err != nil {
		return nil, nil, fmt.Errorf("%w: client %q: read AUTH: %w", errAuthAborted, cl.ID, err)
	}
	switch fh.Type {
	case packets.Auth:
	case packets.Disconnect:
		return nil, nil, fmt.Errorf("%w: client %q disconnected", errAuthAborted, cl.ID)
	default:
		return nil, &refusal{reason: packets.ErrProtocolViolation.Code,
			message: "expected an AUTH packet during authentication"}, nil
	}
	in, err := cl.ReadPacket(&fh)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: client %q: read AUTH: %w", errAuthAborted, cl.ID, err)
	}
	if in.ReasonCode != packets.CodeContinueAuthentication.Code {
		return nil, &refusal{reason: packets.ErrProtocolViolation.Code,
			message: "AUTH during CONNECT must continue authentication (0x18)"}, nil
	}
	if in.Properties.AuthenticationMethod != method {
		return nil, &refusal{reason: policy.ReasonBadAuthMethod, message: "authentication method changed"}, nil
	}
	return in.Properties.AuthenticationData, nil, nil
}

// authorizeWill decides whether the client may publish its will, as if it
// published it now: mochi publishes and retains a will without any ACL
// check, so a client could otherwise publish through its will what it may
// not publish. It returns nil when the will is allowed.
func (h *policyHook) authorizeWill(cl *mqtt.Client, st *clientState, pk packets.Packet) *refusal {
	topic := pk.Connect.WillTopic
	// mochi does not validate will topics: refuse wildcards, $SYS and
	// $share/ names here as it refuses them for PUBLISH.
	if topic == "" || !mqtt.IsValidFilter(topic, true) || mqtt.IsSharedFilter(topic) {
		h.log.Info("not authorized", "audit", "deny", "decision", "authz", "client_id", cl.ID, "action", "publish", "topic", topic, "reason", "invalid will topic")
		return &refusal{reason: policy.ReasonNotAuthorized, message: "will topic is not a valid topic name"}
	}
	if st.superuser {
		return nil
	}
	req := &policy.AuthzRequest{Action: policy.ActionPublish, Topic: topic, QoS: pk.Connect.WillQos, Retain: pk.Connect.WillRetain}
	res := h.decider.Authorize(h.ctx, st.session, req)
	if h.verdict(cl, req, res) {
		return nil
	}
	return &refusal{reason: policy.ReasonNotAuthorized, message: "will: not authorized", module: res.Module}
}

// refuse sends the CONNACK of a refused CONNECT and returns the error that
// makes mochi close the connection.
//
// MQTT 5 gets the module's reason code (if it is one a CONNACK may carry)
// and its message as reason string; mochi drops the string when the client
// asked for no problem information [MQTT-3.1.2-29]. MQTT 3.1.1 gets the
// nearest return code.
func (h *policyHook) refuse(cl *mqtt.Client, r refusal) error {
	reason := connackReason(r.reason)
	msg := r.message
	if msg == "" {
		msg = reasonText(reason)
	}
	if h.refusals.allow(addrOf(remoteAddr(cl)), time.Now()) {
		h.log.Info("connection refused", "audit", "deny", "decision", "authn", "client_id", cl.ID, "username", string(cl.Properties.Username),
			"remote", cl.Net.Remote, "listener", cl.Net.Listener, "module", r.module, "reason", msg, "code", reason)
	}
	h.countRefused()

	var err error
	if cl.Properties.ProtocolVersion < 5 {
		err = cl.WritePacket(packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Connack},
			ReasonCode:  v3ReturnCode(reason),
		})
	} else {
		err = h.srv.SendConnack(cl, packets.Code{Code: reason, Reason: msg}, false, nil)
	}
	code := packets.Code{Code: reason, Reason: "connection refused: " + reasonText(reason)}
	if err != nil {
		return fmt.Errorf("broker: client %q: send CONNACK: %w", cl.ID, errors.Join(code, err))
	}
	return code
}

// connackReason returns r if a CONNACK may carry it (MQTT 5 §3.2.2.2), else
// 0x87 not authorized.
func connackReason(r byte) byte {
	switch r {
	case 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8C,
		0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F:
		return r
	}
	return policy.ReasonNotAuthorized
}

// v3ReturnCode maps an MQTT 5 CONNACK reason code to the MQTT 3.1.1 return
// code that means the same (MQTT 3.1.1 §3.2.2.3).
func v3ReturnCode(r byte) byte {
	switch r {
	case 0x84: // unsupported protocol version
		return 1
	case 0x85: // client identifier not valid
		return 2
	case 0x88, 0x89: // server unavailable, busy
		return 3
	case 0x86: // bad user name or password
		return 4
	}
	return 5 // not authorized
}

// reasonText is the default reason string of a CONNACK reason code.
func reasonText(r byte) string {
	switch r {
	case 0x86:
		return "bad username or password"
	case 0x87:
		return "not authorized"
	case 0x8A:
		return "banned"
	case 0x8C:
		return "bad authentication method"
	case 0x82:
		return "protocol error"
	case 0x81:
		return "malformed packet"
	case 0x88:
		return "server unavailable"
	}
	return fmt.Sprintf("reason code 0x%02X", r)
}

// expire disconnects a client whose credentials expired: with DISCONNECT
// 0xA0 (maximum connect time) for MQTT 5, by closing the connection for
// older protocols, which have no server DISCONNECT. mochi then publishes
// the will as for any connection lost.
func (h *policyHook) expire(cl *mqtt.Client) {
	if cl.Closed() {
		return
	}
	h.log.Info("credentials expired, disconnecting", "audit", "expiry_kick", "client_id", cl.ID,
		"username", string(cl.Properties.Username), "remote", cl.Net.Remote, "listener", cl.Net.Listener)
	if cl.Properties.ProtocolVersion >= 5 {
		_ = h.srv.DisconnectClient(cl, packets.ErrMaxConnectTime)
	}
	cl.Stop(packets.ErrMaxConnectTime) // even under PassiveClientDisconnect
}

// tlsConn is satisfied by *tls.Conn and by connection wrappers that expose
// the TLS state of the connection beneath.
type tlsConn interface {
	ConnectionState() tls.ConnectionState
}

// newPolicyClient describes the connecting client for the policy.
func newPolicyClient(cl *mqtt.Client, pk packets.Packet) *policy.Client {
	c := &policy.Client{
		ClientID:        cl.ID, // after mochi assigned one to an empty id
		Username:        string(pk.Connect.Username),
		RemoteAddr:      cl.Net.Remote,
		Listener:        cl.Net.Listener,
		ProtocolVersion: cl.Properties.ProtocolVersion,
	}
	if tc, ok := cl.Net.Conn.(tlsConn); ok {
		c.Cert = verifiedCert(tc.ConnectionState())
	}
	return c
}

// verifiedCert describes the client certificate of a TLS connection, or
// returns nil unless the certificate was verified against the listener's
// client CAs: a certificate merely presented proves nothing.
func verifiedCert(cs tls.ConnectionState) *policy.Cert {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	leaf := cs.VerifiedChains[0][0]
	sans := make([]string, 0, len(leaf.DNSNames)+len(leaf.EmailAddresses)+len(leaf.URIs)+len(leaf.IPAddresses))
	sans = append(sans, leaf.DNSNames...)
	sans = append(sans, leaf.EmailAddresses...)
	for _, u := range leaf.URIs {
		sans = append(sans, u.String())
	}
	for _, ip := range leaf.IPAddresses {
		sans = append(sans, ip.String())
	}
	return &policy.Cert{SubjectCN: leaf.Subject.CommonName, SANs: sans, Fingerprint: sha256.Sum256(leaf.Raw)}
}
