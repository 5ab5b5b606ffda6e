package wasm

import (
	"fmt"
)

// result is a decision's i32 unpacked (sdk/ABI.md §4).
type result struct {
	verdict   uint8
	reason    uint8
	superuser bool
	mode      uint8
}

var verdictNames = [...]string{"invalid", "allow", "deny", "ignore", "continue"}

// malformedError is a result that breaks §4: a plugin error that names the
// offending bits, so the plugin's author can see what went wrong.
type malformedError struct {
	bits uint32
	what string
}

func (e *malformedError) Error() string {
	return fmt.Sprintf("malformed result %#08x: %s", e.bits, e.what)
}

func malformed(bits uint32, format string, args ...any) error {
	return &malformedError{bits: bits, what: fmt.Sprintf(format, args...)}
}

// decodeResult checks and unpacks the result r of a decision of the given
// kind. enhanced tells whether the authn request carried an auth_method,
// the only case where continue is valid. Validation is strict: every bit
// must mean what §4 says for this kind and verdict, because a guest whose
// result is ambiguous is broken and fails closed rather than guessed at.
func decodeResult(kind byte, r uint32, enhanced bool) (result, error) {
	res := result{
		verdict:   uint8(r & ResultVerdictMask),
		reason:    uint8((r & ResultReasonMask) >> ResultReasonShift),
		superuser: r&ResultSuperuser != 0,
		mode:      uint8(r >> ResultModeShift),
	}
	if r&ResultReservedMask != 0 {
		return res, malformed(r, "reserved bits %#08x set (bits 17-23 must be 0)", r&ResultReservedMask)
	}
	if res.verdict < VerdictAllow || res.verdict > VerdictContinue {
		return res, malformed(r, "verdict %d (bits 0-7) is not allow (1), deny (2), ignore (3) or continue (4)", res.verdict)
	}
	name := verdictNames[res.verdict]
	if res.verdict == VerdictContinue && (kind != KindAuthn || !enhanced) {
		return res, malformed(r, "continue (4) is valid only from moat_authenticate for a request with an auth_method")
	}
	switch {
	case res.verdict == VerdictDeny && res.reason != 0 && res.reason < 0x80:
		return res, malformed(r, "deny reason code %#02x (bits 8-15) is below 0x80", res.reason)
	case res.verdict != VerdictDeny && res.reason != 0:
		return res, malformed(r, "reason code %#02x (bits 8-15) with verdict %s; only deny carries one", res.reason, name)
	}
	if res.superuser && (kind != KindAuthn || res.verdict != VerdictAllow) {
		return res, malformed(r, "superuser bit (16) with verdict %s of %s; only an authn allow carries it", name, kindNames[kind])
	}
	if res.mode != 0 {
		switch {
		case kind != KindPayload:
			return res, malformed(r, "payload mode %d (bits 24-31) in a result of %s", res.mode, kindNames[kind])
		case res.verdict != VerdictAllow:
			return res, malformed(r, "payload mode %d (bits 24-31) with verdict %s; only allow carries one", res.mode, name)
		case res.mode > ModeReencrypt:
			return res, malformed(r, "payload mode %d (bits 24-31) is not 1-4", res.mode)
		}
	}
	return res, nil
}

var kindNames = [...]string{"kind 0", "moat_authenticate", "moat_authorize", "moat_payload"}
