package wasm

import (
	"context"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// Payload runs the module's moat_payload on req (sdk/ABI.md §4, payload
// modes). It implements policy.Payloader, with the same error rules as
// Authorize. The payload bytes are never copied into the guest: a module
// granted allow_payload pulls them with payload_read during this call, and
// the instance forgets them when it returns. The module learns key ids,
// never keys: set_key_id names one.
func (m *Module) Payload(ctx context.Context, req *policy.PayloadRequest) (policy.PayloadResult, error) {
	s, res, err := m.decide(ctx, KindPayload, request{payload: req})
	if err != nil {
		return policy.PayloadResult{}, err
	}
	st := &s.in.st
	out := policy.PayloadResult{Verdict: policy.Verdict(res.verdict), Reason: res.reason, Mode: policy.Mode(res.mode)}
	if st.hasKeyID && res.verdict == VerdictAllow {
		out.KeyID = string(st.keyID)
	}
	if st.hasMessage {
		out.Message = string(st.message)
	}
	m.done(s)
	return out, nil
}

// payloadSize is the length of the encoded payload request.
func payloadSize(req *policy.PayloadRequest) int {
	c := req.Client
	n := clientSize(c, KindPayload) + len(req.Topic) + len(req.ContentType) + len(req.EnvelopeKeyID)
	if len(c.Attributes) > 0 {
		n += pairSize(c.Attributes)
	}
	if len(req.UserProperties) > 0 {
		n += pairSize(req.UserProperties)
	}
	if req.Mode != 0 {
		n++
	}
	return n
}

// encodePayload writes req into b; size is payloadSize(req), and b must
// hold that many bytes. It returns the length written, equal to size. The
// header's number is the payload's length (§3); the payload itself is not
// in the request.
func encodePayload(b []byte, req *policy.PayloadRequest, size int) uint32 {
	b = b[:size]
	c := req.Client
	flags := clientFlags(c)
	if req.Retain {
		flags |= FlagRetain
	}
	pos := header(b, KindPayload, byte(req.Action), req.QoS, flags, c.ProtocolVersion, uint32(len(req.Payload)), size)
	for _, id := range [...]int{FieldPassword, FieldShareGroup, FieldAuthMethod, FieldAuthData, FieldAuthState} {
		absent(b, id, pos)
	}
	pos = putClient(b, pos, c)
	pos = put(b, FieldTopic, pos, req.Topic)
	pos = putPairs(b, FieldAttributes, pos, c.Attributes)
	pos = putPairs(b, FieldUserProperties, pos, req.UserProperties)
	pos = putOpt(b, FieldContentType, pos, req.ContentType)
	pos = putOpt(b, FieldEnvelopeKeyID, pos, req.EnvelopeKeyID)
	if req.Mode == 0 {
		return absent(b, FieldMode, pos)
	}
	b[pos] = byte(req.Mode)
	return putBytes(b, FieldMode, pos, b[pos:pos+1])
}

var _ policy.Payloader = (*Module)(nil)
