package broker

import (
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// Limits of one MQTT 5 enhanced-authentication exchange (AUTH packets
// during CONNECT). What the broker holds for a pending exchange is the
// module's state between rounds and the data going either way; the wasm
// host caps each at 64 KiB (wasm.MaxAuthData), which lets a 30-byte CONNECT
// make the broker send 64 KiB and hold four times that until the client
// answers. The mechanisms in use (SCRAM, Kerberos tokens, challenge and
// response) fit well within these:
const (
	// maxAuthState bounds the state a module keeps between rounds
	// (set_auth_state).
	maxAuthState = 4 << 10
	// maxAuthData bounds the data of one round, from the module (AUTH
	// packet or final CONNACK) and from the client (its AUTH packet).
	maxAuthData = 16 << 10
)

// checkAuthResult refuses a module's authentication result that exceeds
// the exchange's limits. It is a plugin error, logged at error level with
// the module's name; the client gets CONNACK 0x87 and nothing of the
// oversized data.
func (h *policyHook) checkAuthResult(cl *mqtt.Client, res policy.AuthnResult) *refusal {
	var what string
	switch {
	case len(res.AuthState) > maxAuthState:
		what = fmt.Sprintf("authentication state of %d bytes exceeds the limit of %d", len(res.AuthState), maxAuthState)
	case len(res.AuthData) > maxAuthData:
		what = fmt.Sprintf("authentication data of %d bytes exceeds the limit of %d", len(res.AuthData), maxAuthData)
	default:
		return nil
	}
	h.log.Log(h.ctx, slog.LevelError, "plugin error", "audit", "plugin_error", "decision", "authn", "module", res.Module, "client_id", cl.ID, "err", what)
	return &refusal{reason: policy.ReasonNotAuthorized, module: res.Module, message: "authentication plugin error"}
}

// checkAuthData refuses a client's AUTH data beyond maxAuthData.
func checkAuthData(data []byte) *refusal {
	if len(data) <= maxAuthData {
		return nil
	}
	return &refusal{reason: policy.ReasonNotAuthorized,
		message: fmt.Sprintf("authentication data of %d bytes exceeds the limit of %d", len(data), maxAuthData)}
}
