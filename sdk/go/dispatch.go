package moat

import (
	"strconv"
)

// host is what a decision call needs from the broker: the setters and the
// log of sdk/ABI.md §6. The wasip1 build implements it with host imports;
// tests implement it natively, so that the whole call path below the
// exports is tested without wasm. Each setter returns the ABI status (0 or
// a negative code).
type host interface {
	log(level Level, msg string)
	setMessage(msg string) int32
	addAttribute(key, value string) int32
	setExpiry(unixNano int64) int32
	setAuthData(data []byte) int32
	setAuthState(state []byte) int32
	setKeyID(id string) int32
}

// A decision export returns 0, a malformed result, whenever the SDK cannot
// produce a valid one: the host counts a plugin error and applies the
// plugin's on_error, and the log line says why.
const malformed = 0

// runAuthn serves one moat_authenticate call with request b.
func runAuthn(h host, d *decoder, fn func(*AuthnRequest) AuthnResult, b []byte) (res uint32) {
	if fn == nil {
		return noHandler(h, "authn", "HandleAuthn")
	}
	req, err := d.decodeAuthn(b)
	if err != nil {
		return fail(h, err)
	}
	defer func() {
		// recover works only when called by the deferred function itself.
		if v := recover(); v != nil {
			res = panicked(h, "authn", v)
		}
	}()
	r := fn(req)
	v, err := packAuthn(r, req.AuthMethod != "")
	if err != nil {
		return fail(h, err)
	}
	if err := setMessage(h, r.message); err != nil {
		return fail(h, err)
	}
	switch r.verdict {
	case VerdictAllow:
		for _, a := range r.Attributes {
			if st := h.addAttribute(a.Key, a.Value); st < 0 {
				return fail(h, setterError("add_attribute", st, "at most 64 attributes and 4096 bytes in all"))
			}
		}
		if !r.Expiry.IsZero() {
			if st := h.setExpiry(unixNano(r.Expiry)); st < 0 {
				return fail(h, setterError("set_expiry", st, ""))
			}
		}
		if r.AuthData != nil {
			if st := h.setAuthData(r.AuthData); st < 0 {
				return fail(h, setterError("set_auth_data", st, "at most 65535 bytes"))
			}
		}
	case VerdictContinue:
		if st := h.setAuthData(r.AuthData); st < 0 {
			return fail(h, setterError("set_auth_data", st, "at most 65535 bytes"))
		}
		if r.AuthState != nil {
			if st := h.setAuthState(r.AuthState); st < 0 {
				return fail(h, setterError("set_auth_state", st, "at most 65535 bytes"))
			}
		}
	}
	return v
}

// runAuthz serves one moat_authorize call with request b.
func runAuthz(h host, d *decoder, fn func(*AuthzRequest) Result, b []byte) (res uint32) {
	if fn == nil {
		return noHandler(h, "authz", "HandleAuthz")
	}
	req, err := d.decodeAuthz(b)
	if err != nil {
		return fail(h, err)
	}
	defer func() {
		// recover works only when called by the deferred function itself.
		if v := recover(); v != nil {
			res = panicked(h, "authz", v)
		}
	}()
	r := fn(req)
	v, ok := r.packed()
	if !ok {
		if v, err = pack(r, kindAuthz, false); err != nil {
			return fail(h, err)
		}
	}
	if r.message != "" {
		if err := setMessage(h, r.message); err != nil {
			return fail(h, err)
		}
	}
	return v
}

// runPayload serves one moat_payload call with request b.
func runPayload(h host, d *decoder, fn func(*PayloadRequest) PayloadResult, b []byte) (res uint32) {
	if fn == nil {
		return noHandler(h, "payload", "HandlePayload")
	}
	req, err := d.decodePayload(b)
	if err != nil {
		return fail(h, err)
	}
	defer func() {
		// recover works only when called by the deferred function itself.
		if v := recover(); v != nil {
			res = panicked(h, "payload", v)
		}
	}()
	r := fn(req)
	v, err := packPayload(r)
	if err != nil {
		return fail(h, err)
	}
	if err := setMessage(h, r.message); err != nil {
		return fail(h, err)
	}
	if r.verdict == VerdictAllow && r.KeyID != "" {
		if len(r.KeyID) > 255 {
			return fail(h, resultError("key id longer than 255 bytes"))
		}
		if st := h.setKeyID(r.KeyID); st < 0 {
			return fail(h, setterError("set_key_id", st, ""))
		}
	}
	return v
}

// runConfigure serves one moat_configure call with configuration b and
// returns 0 to accept it or 1 to refuse it.
func runConfigure(h host, fn func([]byte) error, b []byte) (res uint32) {
	if fn == nil {
		if isEmptyObject(b) {
			return 0
		}
		h.setMessage("the module takes no configuration (it registers no moat.HandleConfig)")
		return 1
	}
	cfg := make([]byte, len(b))
	copy(cfg, b)
	defer func() {
		if v := recover(); v != nil {
			h.setMessage(truncate("configuration handler panicked: "+panicString(v), maxMessage))
			res = 1
		}
	}()
	if err := fn(cfg); err != nil {
		msg := err.Error()
		if msg == "" {
			msg = "refused"
		}
		h.setMessage(truncate(msg, maxMessage))
		return 1
	}
	return 0
}

func setMessage(h host, msg string) error {
	if msg == "" {
		return nil
	}
	return setMessageSlow(h, msg)
}

func setMessageSlow(h host, msg string) error {
	if st := h.setMessage(truncate(msg, maxMessage)); st < 0 {
		return setterError("set_message", st, "")
	}
	return nil
}

func noHandler(h host, decision, register string) uint32 {
	h.log(LevelError, "moat: no "+decision+" handler: call moat."+register+
		" from an init function, or remove \""+decision+"\" from the plugin's decisions in moat.toml")
	return malformed
}

func fail(h host, err error) uint32 {
	h.log(LevelError, err.Error())
	return malformed
}

// panicked turns the panic v of a handler into a malformed result and an
// error line, instead of the exit (and a stack trace at debug level) that
// an unrecovered panic in a wasm module produces. The host discards the
// instance after any plugin error, so state the panic left half-updated
// does not survive.
func panicked(h host, decision string, v any) uint32 {
	h.log(LevelError, "moat: "+decision+" handler panicked: "+panicString(v))
	return malformed
}

func panicString(v any) string {
	switch v := v.(type) {
	case error:
		return v.Error()
	case string:
		return v
	case interface{ String() string }:
		return v.String()
	}
	return "(a value that is neither an error nor a string)"
}

func setterError(name string, status int32, limit string) error {
	s := "moat: host refused " + name + " (" + strconv.Itoa(int(status)) + ")"
	if limit != "" {
		s += ": " + limit
	}
	return &sdkError{s}
}

// isEmptyObject reports whether b is the JSON "{}", allowing whitespace.
func isEmptyObject(b []byte) bool {
	var n int
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		if (n == 0 && c != '{') || (n == 1 && c != '}') || n > 1 {
			return false
		}
		n++
	}
	return n == 2
}
