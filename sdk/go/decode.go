package moat

import (
	"errors"
	"strconv"
	"unsafe"
)

// Request kinds, header byte 0 (sdk/ABI.md §3).
const (
	kindAuthn   = 1
	kindAuthz   = 2
	kindPayload = 3
)

// Header flag bits, header byte 3.
const (
	flagRetain    = 1 << 0
	flagSuperuser = 1 << 1
	flagCert      = 1 << 2
)

// Field ids of sdk/ABI.md §3 that this SDK reads. Fields it does not read,
// including ids a newer v1 host may add, are never looked at.
const (
	fieldClientID       = 0
	fieldUsername       = 1
	fieldPassword       = 2
	fieldRemoteAddr     = 3
	fieldListener       = 4
	fieldTopic          = 5
	fieldShareGroup     = 6
	fieldAttributes     = 7
	fieldCertCN         = 8
	fieldCertSANs       = 9
	fieldCertSHA256     = 10
	fieldUserProperties = 11
	fieldAuthMethod     = 12
	fieldAuthData       = 13
	fieldAuthState      = 14
	fieldContentType    = 15
	fieldEnvelopeKeyID  = 16
	fieldMode           = 17
	numFields           = 18
)

const headerSize = 16

// le16 and le32 read little-endian integers; encoding/binary would do, but
// it links reflect into every module.
func le16(b []byte) uint16 { _ = b[1]; return uint16(b[0]) | uint16(b[1])<<8 }

func le32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// errRequest is the root of every decoding error. A request that does not
// decode is a host bug: the export answers it with a malformed result, so
// that the host logs a plugin error instead of taking a decision.
var errRequest = errors.New("moat: malformed request")

type decodeError struct {
	what string
	n    uint64
}

func (e *decodeError) Error() string {
	return errRequest.Error() + ": " + e.what + " (" + strconv.FormatUint(e.n, 10) + ")"
}

func (e *decodeError) Unwrap() error { return errRequest }

func requestError(what string, n uint64) error { return &decodeError{what: what, n: n} }

func fieldError(id int, what string, n uint64) error {
	return requestError("field "+strconv.Itoa(id)+": "+what, n)
}

// header checks the header of b, a whole request of the given kind, and
// returns the number of descriptors to read: those of fields this SDK
// knows. Fields it does not know are never looked at.
func header(b []byte, kind uint8) (int, error) {
	if len(b) < headerSize {
		return 0, requestError("shorter than its header", uint64(len(b)))
	}
	if b[0] != kind {
		return 0, requestError("wrong kind", uint64(b[0]))
	}
	if total := le32(b[12:]); uint64(total) != uint64(len(b)) {
		return 0, requestError("total does not match the length passed", uint64(total))
	}
	nf := int(le16(b[6:]))
	if headerSize+8*nf > len(b) {
		return 0, requestError("descriptors beyond the request", uint64(nf))
	}
	return min(nf, numFields), nil
}

// The decoders below are written for Go's wasm code generator, where
// every function call costs about as much as a whole call into a no-op
// export: each walks the descriptors in one loop with the field accesses
// written out, and calls helpers only for lists and certificates.

// str returns b[off:end] as a string sharing b's memory.
func str(b []byte, off, end uint64) string {
	if end == off {
		return ""
	}
	return unsafe.String(&b[off], end-off)
}

// slab hands out memory in chunks and never hands out the same memory
// twice: a request built from it stays as it was for as long as anyone
// references it, while a decision allocates only once every few dozen
// calls. In a Go wasm module a heap allocation costs about as much as a
// whole decision; a chunk that no request references any more is freed by
// the garbage collector like any other object.
type slab[T any] struct{ free []T }

// take returns n zeroed items, allocating a new chunk of at least chunk
// items when the current one is used up.
func (s *slab[T]) take(n, chunk int) []T {
	if n > len(s.free) {
		s.free = make([]T, max(n, chunk))
	}
	out := s.free[:n:n]
	s.free = s.free[n:]
	return out
}

// Chunk sizes, in items: about 4 KiB each.
const (
	bytesChunk   = 4096
	certChunk    = 32
	pairsChunk   = 128
	stringsChunk = 256
)

// decoder decodes requests into memory of its own: the strings, byte
// slices, lists and certificate of a request come from slabs, so that a
// handler may keep any of them, while the request structs themselves are
// reused from call to call (a fresh struct a call doubled the garbage and
// made decisions measurably slower).
type decoder struct {
	authn   AuthnRequest
	authz   AuthzRequest
	payload PayloadRequest

	bytes slab[byte]
	certs slab[Cert]
	pairs slab[Attribute]
	strs  slab[string]
}

// copyOf returns a private copy of the request bytes b.
func (d *decoder) copyOf(b []byte) []byte {
	c := d.bytes.take(len(b), bytesChunk)
	copy(c, b)
	return c
}

// client resets c for request b: the header's fields are set, the others
// cleared for the callers' loops to set. Fields are assigned one by one:
// assigning a whole struct makes Go call into the runtime for write
// barriers.
func (d *decoder) client(c *Client, b []byte) {
	c.ClientID, c.Username, c.RemoteAddr, c.Listener = "", "", "", ""
	c.Protocol = b[4]
	c.Superuser = b[3]&flagSuperuser != 0
	c.Attributes = nil
	c.Cert = nil
	if b[3]&flagCert != 0 {
		c.Cert = &d.certs.take(1, certChunk)[0]
	}
}

// decodeAuthn decodes b, a whole authn request (sdk/ABI.md §3). It never
// panics. The request is reused by the next call of d; its fields share no
// memory with b or with any other request.
func (d *decoder) decodeAuthn(b []byte) (*AuthnRequest, error) {
	nf, err := header(b, kindAuthn)
	if err != nil {
		return nil, err
	}
	b = d.copyOf(b)
	req := &d.authn
	d.client(&req.Client, b)
	req.Password, req.UserProperties, req.AuthMethod, req.AuthData, req.AuthState = nil, nil, "", nil, nil
	req.Round = le32(b[8:])
	for id := 0; id < nf; id++ {
		off, end, present, err := field(b, id)
		if err != nil {
			return nil, err
		}
		if !present {
			continue
		}
		if d.clientField(&req.Client, id, b, off, end, &err) {
			if err != nil {
				return nil, err
			}
			continue
		}
		switch id {
		case fieldPassword:
			req.Password = b[off:end:end]
		case fieldUserProperties:
			var props []Attribute
			props, err = d.pairList(b[off:end], id)
			req.UserProperties = asProperties(props)
		case fieldAuthMethod:
			req.AuthMethod = str(b, off, end)
		case fieldAuthData:
			req.AuthData = b[off:end:end]
		case fieldAuthState:
			req.AuthState = b[off:end:end]
		}
		if err != nil {
			return nil, err
		}
	}
	return req, nil
}

// decodeAuthz decodes b, a whole authz request, as decodeAuthn does.
func (d *decoder) decodeAuthz(b []byte) (*AuthzRequest, error) {
	nf, err := header(b, kindAuthz)
	if err != nil {
		return nil, err
	}
	b = d.copyOf(b)
	req := &d.authz
	d.client(&req.Client, b)
	req.Action, req.QoS, req.Retain = Action(b[1]), b[2], b[3]&flagRetain != 0
	req.Topic, req.ShareGroup = "", ""
	for id := 0; id < nf; id++ {
		off, end, present, err := field(b, id)
		if err != nil {
			return nil, err
		}
		if !present {
			continue
		}
		if d.clientField(&req.Client, id, b, off, end, &err) {
			if err != nil {
				return nil, err
			}
			continue
		}
		switch id {
		case fieldTopic:
			req.Topic = str(b, off, end)
		case fieldShareGroup:
			req.ShareGroup = str(b, off, end)
		case fieldAttributes:
			req.Attributes, err = d.pairList(b[off:end], id)
		}
		if err != nil {
			return nil, err
		}
	}
	return req, nil
}

// decodePayload decodes b, a whole payload request, as decodeAuthn does.
func (d *decoder) decodePayload(b []byte) (*PayloadRequest, error) {
	nf, err := header(b, kindPayload)
	if err != nil {
		return nil, err
	}
	b = d.copyOf(b)
	req := &d.payload
	d.client(&req.Client, b)
	req.Action, req.QoS, req.Retain = Action(b[1]), b[2], b[3]&flagRetain != 0
	req.Topic, req.UserProperties, req.ContentType, req.EnvelopeKeyID = "", nil, "", ""
	req.PublishedMode, req.PayloadSize = 0, le32(b[8:])
	for id := 0; id < nf; id++ {
		off, end, present, err := field(b, id)
		if err != nil {
			return nil, err
		}
		if !present {
			continue
		}
		if d.clientField(&req.Client, id, b, off, end, &err) {
			if err != nil {
				return nil, err
			}
			continue
		}
		switch id {
		case fieldTopic:
			req.Topic = str(b, off, end)
		case fieldAttributes:
			req.Attributes, err = d.pairList(b[off:end], id)
		case fieldUserProperties:
			var props []Attribute
			props, err = d.pairList(b[off:end], id)
			req.UserProperties = asProperties(props)
		case fieldContentType:
			req.ContentType = str(b, off, end)
		case fieldEnvelopeKeyID:
			req.EnvelopeKeyID = str(b, off, end)
		case fieldMode:
			if end-off != 1 {
				err = fieldError(id, "not 1 byte", end-off)
				break
			}
			req.PublishedMode = Mode(b[off])
		}
		if err != nil {
			return nil, err
		}
	}
	return req, nil
}

// field returns the bounds of field id of request b, and whether it is
// present; a field that runs past the request is an error.
func field(b []byte, id int) (off, end uint64, present bool, err error) {
	p := headerSize + 8*id
	off = uint64(le32(b[p:]))
	end = off + uint64(le32(b[p+4:]))
	if off == 0 {
		return 0, 0, false, nil
	}
	if end > uint64(len(b)) {
		return 0, 0, false, fieldError(id, "beyond the request", end)
	}
	return off, end, true, nil
}

// clientField decodes the fields every kind of request shares into c and
// reports whether id was one of them; a decoding error goes to *err.
func (d *decoder) clientField(c *Client, id int, b []byte, off, end uint64, err *error) bool {
	switch id {
	case fieldClientID:
		c.ClientID = str(b, off, end)
	case fieldUsername:
		c.Username = str(b, off, end)
	case fieldRemoteAddr:
		c.RemoteAddr = str(b, off, end)
	case fieldListener:
		c.Listener = str(b, off, end)
	case fieldCertCN, fieldCertSANs, fieldCertSHA256:
		*err = d.certField(c, id, b, off, end)
	default:
		return false
	}
	return true
}

// certField decodes a certificate field into c.Cert; the fields count
// only when the header's certificate flag is set.
func (d *decoder) certField(c *Client, id int, b []byte, off, end uint64) error {
	if c.Cert == nil {
		return nil // the header says there is no certificate
	}
	switch id {
	case fieldCertCN:
		c.Cert.CommonName = str(b, off, end)
	case fieldCertSANs:
		sans, err := d.stringList(b[off:end], id)
		if err != nil {
			return err
		}
		c.Cert.SANs = sans
	case fieldCertSHA256:
		if end-off != uint64(len(c.Cert.SHA256)) {
			return fieldError(id, "not 32 bytes", end-off)
		}
		copy(c.Cert.SHA256[:], b[off:end])
	}
	return nil
}

// pairList decodes pair list f (u32 count, then count times u32 klen,
// key, u32 vlen, value; the whole field must be consumed). An empty list
// is nil.
func (d *decoder) pairList(f []byte, id int) ([]Attribute, error) {
	if len(f) < 4 {
		return nil, fieldError(id, "list shorter than its count", uint64(len(f)))
	}
	count := uint64(le32(f))
	if count*8 > uint64(len(f)-4) {
		return nil, fieldError(id, "list count beyond the field", count)
	}
	var dst []Attribute
	if count > 0 {
		dst = d.pairs.take(int(count), pairsChunk)
	}
	// One loop iteration per pair, with both strings read in its body: a
	// loop iteration costs about 10 ns in Go's wasm code.
	p := uint64(4)
	size := uint64(len(f))
	for i := range dst {
		if size-p < 4 {
			return nil, fieldError(id, "list item truncated", size-p)
		}
		kp := p + 4
		ke := kp + uint64(le32(f[p:]))
		if ke+4 > size {
			return nil, fieldError(id, "list item beyond the field", ke)
		}
		vp := ke + 4
		ve := vp + uint64(le32(f[ke:]))
		if ve > size {
			return nil, fieldError(id, "list item beyond the field", ve)
		}
		dst[i] = Attribute{Key: str(f, kp, ke), Value: str(f, vp, ve)}
		p = ve
	}
	if p != size {
		return nil, fieldError(id, "bytes after the list", size-p)
	}
	return dst, nil
}

// stringList decodes string list f (u32 count, then count times u32 len,
// bytes); an empty list is nil.
func (d *decoder) stringList(f []byte, id int) ([]string, error) {
	count, err := listCount(f, 4, id)
	if err != nil || count == 0 {
		return nil, err
	}
	out := d.strs.take(count, stringsChunk)
	p := 4
	for i := range out {
		if len(f)-p < 4 {
			return nil, fieldError(id, "list item truncated", uint64(len(f)-p))
		}
		n := int(le32(f[p:]))
		p += 4
		if n > len(f)-p || n < 0 {
			return nil, fieldError(id, "list item beyond the field", uint64(n))
		}
		if n > 0 {
			out[i] = unsafe.String(&f[p], n)
		}
		p += n
	}
	if p != len(f) {
		return nil, fieldError(id, "bytes after the list", uint64(len(f)-p))
	}
	return out, nil
}

// listCount reads a list's count and checks it against the bytes left, at
// least minItem bytes an item, before anything is allocated; a count of 0
// must be the whole field.
func listCount(f []byte, minItem int, id int) (int, error) {
	if len(f) < 4 {
		return 0, fieldError(id, "list shorter than its count", uint64(len(f)))
	}
	count := uint64(le32(f))
	if count*uint64(minItem) > uint64(len(f)-4) {
		return 0, fieldError(id, "list count beyond the field", count)
	}
	if count == 0 && len(f) != 4 {
		return 0, fieldError(id, "bytes after the list", uint64(len(f)-4))
	}
	return int(count), nil
}

// asProperties views a pair list as user properties (identical layout);
// an empty list is nil.
func asProperties(a []Attribute) Properties {
	if len(a) == 0 {
		return nil
	}
	return unsafe.Slice((*Property)(unsafe.SliceData(a)), len(a))
}
