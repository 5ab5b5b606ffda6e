package wasm

import (
	"encoding/binary"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// Request encoding, sdk/ABI.md §3. The encoder writes straight into the
// guest's buffer (a view of its memory): a size pass, then one write pass,
// with no allocation. Which fields are present:
//   - client_id, username and, for authz, topic: always (possibly empty);
//   - password, auth_data, auth_state: when not nil;
//   - other strings and lists: when not empty; cert fields with a Cert.

// pairSize is the encoded size of a pair list of the given pairs.
func pairSize[T ~struct{ Key, Value string }](ps []T) int {
	n := 4
	for _, p := range ps {
		kv := struct{ Key, Value string }(p)
		n += 8 + len(kv.Key) + len(kv.Value)
	}
	return n
}

func stringsSize(ss []string) int {
	n := 4
	for _, s := range ss {
		n += 4 + len(s)
	}
	return n
}

func clientSize(c *policy.Client, kind byte) int {
	n := HeaderSize + DescriptorSize*int(fieldCount[kind]) +
		len(c.ClientID) + len(c.Username) + len(c.RemoteAddr) + len(c.Listener)
	if c.Cert != nil {
		n += len(c.Cert.SubjectCN) + 32
		if len(c.Cert.SANs) > 0 {
			n += stringsSize(c.Cert.SANs)
		}
	}
	return n
}

// authzSize is the length of the encoded authz request.
func authzSize(req *policy.AuthzRequest) int {
	c := req.Client
	n := clientSize(c, KindAuthz) + len(req.Topic) + len(req.ShareGroup)
	if len(c.Attributes) > 0 {
		n += pairSize(c.Attributes)
	}
	return n
}

// authnSize is the length of the encoded authn request.
func authnSize(req *policy.AuthnRequest) int {
	n := clientSize(req.Client, KindAuthn) + len(req.Password) + len(req.AuthMethod) +
		len(req.AuthData) + len(req.AuthState)
	if len(req.UserProperties) > 0 {
		n += pairSize(req.UserProperties)
	}
	return n
}

// The write pass works on a slice and a position held in locals, with
// small functions the compiler inlines, and writes every descriptor of the
// kind exactly once (a present field as one 8-byte store of offset and
// length, an absent one as zero): BenchmarkRequestEncoding.

// put writes string field id at pos and returns the next position.
func put(b []byte, id int, pos uint32, s string) uint32 {
	binary.LittleEndian.PutUint64(b[HeaderSize+DescriptorSize*id:], uint64(pos)|uint64(len(s))<<32)
	return pos + uint32(copy(b[pos:], s))
}

// putOpt writes s, or marks the field absent when s is empty.
func putOpt(b []byte, id int, pos uint32, s string) uint32 {
	if s == "" {
		return absent(b, id, pos)
	}
	return put(b, id, pos, s)
}

// putBytes writes v, or marks the field absent when v is nil.
func putBytes(b []byte, id int, pos uint32, v []byte) uint32 {
	if v == nil {
		return absent(b, id, pos)
	}
	binary.LittleEndian.PutUint64(b[HeaderSize+DescriptorSize*id:], uint64(pos)|uint64(len(v))<<32)
	return pos + uint32(copy(b[pos:], v))
}

func absent(b []byte, id int, pos uint32) uint32 {
	binary.LittleEndian.PutUint64(b[HeaderSize+DescriptorSize*id:], 0)
	return pos
}

// putPairs writes a pair list, or marks the field absent when empty.
func putPairs[T ~struct{ Key, Value string }](b []byte, id int, pos uint32, ps []T) uint32 {
	if len(ps) == 0 {
		return absent(b, id, pos)
	}
	start := pos
	binary.LittleEndian.PutUint32(b[pos:], uint32(len(ps)))
	pos += 4
	for _, p := range ps {
		kv := struct{ Key, Value string }(p)
		binary.LittleEndian.PutUint32(b[pos:], uint32(len(kv.Key)))
		pos += 4 + uint32(copy(b[pos+4:], kv.Key))
		binary.LittleEndian.PutUint32(b[pos:], uint32(len(kv.Value)))
		pos += 4 + uint32(copy(b[pos+4:], kv.Value))
	}
	binary.LittleEndian.PutUint64(b[HeaderSize+DescriptorSize*id:], uint64(start)|uint64(pos-start)<<32)
	return pos
}

// putClient writes the fields of the client, which every kind carries at
// the same ids. The caller has written the header.
func putClient(b []byte, pos uint32, c *policy.Client) uint32 {
	pos = put(b, FieldClientID, pos, c.ClientID)
	pos = put(b, FieldUsername, pos, c.Username)
	pos = putOpt(b, FieldRemoteAddr, pos, c.RemoteAddr)
	pos = putOpt(b, FieldListener, pos, c.Listener)
	if c.Cert == nil {
		absent(b, FieldCertCN, pos)
		absent(b, FieldCertSANs, pos)
		return absent(b, FieldCertSHA256, pos)
	}
	pos = putOpt(b, FieldCertCN, pos, c.Cert.SubjectCN)
	if len(c.Cert.SANs) == 0 {
		absent(b, FieldCertSANs, pos)
	} else {
		start := pos
		binary.LittleEndian.PutUint32(b[pos:], uint32(len(c.Cert.SANs)))
		pos += 4
		for _, s := range c.Cert.SANs {
			binary.LittleEndian.PutUint32(b[pos:], uint32(len(s)))
			pos += 4 + uint32(copy(b[pos+4:], s))
		}
		binary.LittleEndian.PutUint64(b[HeaderSize+DescriptorSize*FieldCertSANs:], uint64(start)|uint64(pos-start)<<32)
	}
	return putBytes(b, FieldCertSHA256, pos, c.Cert.Fingerprint[:])
}

// header writes the 16-byte header and returns where the data starts.
func header(b []byte, kind, action, qos, flags, protocol byte, number uint32, size int) uint32 {
	n := fieldCount[kind]
	_ = b[HeaderSize-1]
	b[offKind], b[offAction], b[offQoS], b[offFlags], b[offProtocol], b[5] = kind, action, qos, flags, protocol, 0
	binary.LittleEndian.PutUint16(b[offNFields:], n)
	binary.LittleEndian.PutUint32(b[offNumber:], number)
	binary.LittleEndian.PutUint32(b[offTotal:], uint32(size))
	return HeaderSize + DescriptorSize*uint32(n)
}

func clientFlags(c *policy.Client) byte {
	var f byte
	if c.Superuser {
		f |= FlagSuperuser
	}
	if c.Cert != nil {
		f |= FlagCert
	}
	return f
}

// clientPrefix caches the part of an authz request that depends only on
// the client: everything after the header up to the request's own fields
// (the descriptor table, with topic and share_group absent, then the
// client's data and attributes). A connection publishes again and again
// with the same *policy.Client, which is immutable after authentication,
// and the pool tends to give one goroutine the same instance, so most
// calls copy this prefix in one move instead of encoding a dozen fields.
// One belongs to one instance; holding the pointer keeps the Client alive,
// so a pointer match is never a different client at a reused address.
type clientPrefix struct {
	client *policy.Client
	b      []byte // header (unused) + prefix
}

func (p *clientPrefix) build(c *policy.Client) {
	n := clientSize(c, KindAuthz)
	if len(c.Attributes) > 0 {
		n += pairSize(c.Attributes)
	}
	if cap(p.b) < n {
		p.b = make([]byte, n)
	}
	b := p.b[:n]
	pos := uint32(HeaderSize + DescriptorSize*int(fieldCount[KindAuthz]))
	absent(b, FieldPassword, pos)
	absent(b, FieldTopic, pos)
	absent(b, FieldShareGroup, pos)
	pos = putClient(b, pos, c)
	pos = putPairs(b, FieldAttributes, pos, c.Attributes)
	p.b, p.client = b[:pos], c
}

// encodeAuthz writes req into b; size is authzSize(req), and b must hold
// that many bytes. It returns the length written, equal to size. p caches
// the client's part from call to call.
func encodeAuthz(b []byte, req *policy.AuthzRequest, size int, p *clientPrefix) uint32 {
	b = b[:size]
	c := req.Client
	if p.client != c {
		p.build(c)
	}
	flags := clientFlags(c)
	if req.Retain {
		flags |= FlagRetain
	}
	header(b, KindAuthz, byte(req.Action), req.QoS, flags, c.ProtocolVersion, 0, size)
	pos := uint32(HeaderSize + copy(b[HeaderSize:], p.b[HeaderSize:]))
	pos = put(b, FieldTopic, pos, req.Topic)
	return putOpt(b, FieldShareGroup, pos, req.ShareGroup)
}

// encodeAuthn writes req into b; size is authnSize(req), and b must hold
// that many bytes. It returns the length written, equal to size.
func encodeAuthn(b []byte, req *policy.AuthnRequest, size int) uint32 {
	b = b[:size]
	c := req.Client
	flags := clientFlags(c) &^ FlagSuperuser // not known before authn decides
	if req.Password != nil {
		flags |= FlagPassword
	}
	pos := header(b, KindAuthn, 0, 0, flags, c.ProtocolVersion, uint32(req.Round), size)
	for _, id := range [...]int{FieldTopic, FieldShareGroup, FieldAttributes} {
		absent(b, id, pos)
	}
	pos = putClient(b, pos, c)
	pos = putBytes(b, FieldPassword, pos, req.Password)
	pos = putPairs(b, FieldUserProperties, pos, req.UserProperties)
	pos = putOpt(b, FieldAuthMethod, pos, req.AuthMethod)
	pos = putBytes(b, FieldAuthData, pos, req.AuthData)
	return putBytes(b, FieldAuthState, pos, req.AuthState)
}
