package moat

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Verdict is a module's answer (sdk/ABI.md §4). Zero is not a verdict: a
// handler that returns a zero Result gives the host a malformed result,
// which it treats as a plugin error.
type Verdict uint8

const (
	VerdictAllow  Verdict = 1
	VerdictDeny   Verdict = 2
	VerdictIgnore Verdict = 3
	// VerdictContinue asks for another round of MQTT 5 enhanced
	// authentication; see Continue.
	VerdictContinue Verdict = 4
)

// String returns the verdict's name.
func (v Verdict) String() string {
	switch v {
	case VerdictAllow:
		return "allow"
	case VerdictDeny:
		return "deny"
	case VerdictIgnore:
		return "ignore"
	case VerdictContinue:
		return "continue"
	}
	return "invalid"
}

// MQTT 5 reason codes for Deny. Any code from 0x80 up is accepted; the
// broker maps them to MQTT 3.1.1 CONNACK return codes for older clients.
const (
	ReasonUnspecified           byte = 0x80
	ReasonBadUsernameOrPassword byte = 0x86 // the default for authn
	ReasonNotAuthorized         byte = 0x87 // the default otherwise
	ReasonServerUnavailable     byte = 0x88
	ReasonBanned                byte = 0x8A
	ReasonBadAuthMethod         byte = 0x8C
	ReasonQuotaExceeded         byte = 0x97
	ReasonPayloadFormatInvalid  byte = 0x99
)

// maxMessage is the host's limit for set_message; longer messages are cut
// at a rune boundary rather than refused.
const maxMessage = 1024

// Result is a decision: build it with Allow, Deny or Ignore. Authorization
// handlers return it as is; AuthnResult and PayloadResult embed it.
type Result struct {
	verdict Verdict
	reason  byte
	message string
}

// Allow grants the request and ends the chain.
func Allow() Result { return Result{verdict: VerdictAllow} }

// Deny refuses the request and ends the chain. reason is an MQTT 5 reason
// code of 0x80 or more, or 0 for the default (ReasonBadUsernameOrPassword
// for authn, ReasonNotAuthorized otherwise); any other value makes the
// result malformed. msg, which may be empty, is logged by the broker and
// sent to MQTT 5 clients as the reason string, so it must not contain
// secrets.
func Deny(reason byte, msg string) Result {
	return Result{verdict: VerdictDeny, reason: reason, message: msg}
}

// Ignore passes the request to the next module of the chain; when every
// module ignores it, moat.toml's [auth] no_match decides.
func Ignore() Result { return Result{verdict: VerdictIgnore} }

// Verdict returns the result's verdict; useful in tests of handlers.
func (r Result) Verdict() Verdict { return r.verdict }

// Reason returns the reason code given to Deny.
func (r Result) Reason() byte { return r.reason }

// Message returns the message given to Deny.
func (r Result) Message() string { return r.message }

// AuthnResult is an authentication decision: a Result, and for Allow what
// the broker attaches to the client. The fields after Result are used only
// with the verdicts their comments name and are dropped otherwise.
type AuthnResult struct {
	Result
	// Superuser (Allow): the client skips authorization.
	Superuser bool
	// Attributes (Allow) reach every later authz and payload request of the
	// client. At most 64 pairs and 4096 bytes in all; more makes the result
	// malformed.
	Attributes Attributes
	// Expiry (Allow), when not zero, is when the broker disconnects the
	// client, such as a token's expiry.
	Expiry time.Time
	// AuthData (Allow, Continue) is the MQTT 5 authentication data sent to
	// the client: in the AUTH packet of a Continue, or in the CONNACK.
	AuthData []byte
	// AuthState (Continue) comes back as AuthnRequest.AuthState in the next
	// round; a module keeps no per-connection state of its own because the
	// next round may reach another instance.
	AuthState []byte
}

// Continue asks the client for another round of MQTT 5 enhanced
// authentication: the broker sends authData in an AUTH packet and calls the
// authn handler again with the client's answer and state. It is valid only
// for a request with an AuthMethod.
func Continue(authData, state []byte) AuthnResult {
	return AuthnResult{Result: Result{verdict: VerdictContinue}, AuthData: authData, AuthState: state}
}

// PayloadResult is a payload decision: a Result and, with Allow, the mode
// for a publish or the key to encrypt under.
type PayloadResult struct {
	Result
	// Mode (Allow, ActionPublish) is the payload mode of the message.
	Mode Mode
	// KeyID (Allow) names the key to encrypt under: for ModeAtRest instead
	// of the ring's active key, for ActionDeliver the subscriber's key. At
	// most 255 bytes.
	KeyID string
}

// Result bits, sdk/ABI.md §4.
const (
	bitSuperuser = 1 << 16
	shiftReason  = 8
	shiftMode    = 24
)

// pack packs r into the i32 a decision export returns, for a request of
// the given kind; canContinue says whether the request allows Continue
// (an authn request with an auth method). It refuses what the host would
// call a malformed result, so that the SDK can say why in the log.
func pack(r Result, kind uint8, canContinue bool) (uint32, error) {
	if v, ok := r.packed(); ok {
		return v, nil
	}
	switch r.verdict {
	case VerdictAllow, VerdictIgnore:
	case VerdictDeny:
		if r.reason != 0 && r.reason < 0x80 {
			return 0, resultError("deny reason 0x" + strconv.FormatUint(uint64(r.reason), 16) + " is not an MQTT 5 error code (0x80 or more)")
		}
	case VerdictContinue:
		if kind != kindAuthn || !canContinue {
			return 0, resultError("continue is valid only for an authn request with an auth method")
		}
	default:
		return 0, resultError("no verdict: build results with Allow, Deny, Ignore or Continue")
	}
	return uint32(r.verdict) | uint32(r.reason)<<shiftReason, nil
}

// packed packs allow, ignore, and deny with a valid reason, the common
// results, without a call once inlined; ok is false for the others, which
// pack checks.
func (r Result) packed() (v uint32, ok bool) {
	if r.verdict-VerdictAllow <= VerdictIgnore-VerdictAllow && (r.reason == 0 || r.reason >= 0x80) {
		return uint32(r.verdict) | uint32(r.reason)<<shiftReason, true
	}
	return 0, false
}

// packAuthn packs an authentication result.
func packAuthn(r AuthnResult, canContinue bool) (uint32, error) {
	v, err := pack(r.Result, kindAuthn, canContinue)
	if err == nil && r.Superuser && r.verdict == VerdictAllow {
		v |= bitSuperuser
	}
	return v, err
}

// packPayload packs a payload result.
func packPayload(r PayloadResult) (uint32, error) {
	v, err := pack(r.Result, kindPayload, false)
	if err != nil || r.Mode == 0 {
		return v, err
	}
	if r.Mode > ModeReencrypt {
		return 0, resultError("unknown payload mode " + strconv.Itoa(int(r.Mode)))
	}
	if r.verdict != VerdictAllow {
		return 0, resultError("payload mode with verdict " + r.verdict.String())
	}
	return v | uint32(r.Mode)<<shiftMode, nil
}

func resultError(what string) error { return &sdkError{"moat: malformed result: " + what} }

type sdkError struct{ s string }

func (e *sdkError) Error() string { return e.s }

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// unixNano converts an expiry to the i64 set_expiry takes, clamping times
// beyond what int64 nanoseconds can hold (year 2262) instead of wrapping.
func unixNano(t time.Time) int64 {
	const maxSec = math.MaxInt64 / int64(time.Second)
	switch s := t.Unix(); {
	case s >= maxSec:
		return math.MaxInt64
	case s < 0:
		return 0
	}
	return t.UnixNano()
}
