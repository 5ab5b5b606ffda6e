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
// knows. Fields it does not know are never looked at. The checks are
// written to be inlined into request, and headerError says what failed.
func header(b []byte, kind uint8) (int, bool) {
	if len(b) < headerSize {
		return 0, false
	}
	h := (*[headerSize]byte)(b)
	nf := int(h[6]) | int(h[7])<<8
	total := u64(&h[8]) >> 32
	if h[0] != kind || total != uint64(len(b)) || headerSize+8*nf > len(b) {
		return 0, false
	}
	return min(nf, numFields), true
}

// headerError returns the error for a request header refuses.
func headerError(b []byte, kind uint8) error {
	switch {
	case len(b) < headerSize:
		return requestError("shorter than its header", uint64(len(b)))
	case b[0] != kind:
		return requestError("wrong kind", uint64(b[0]))
	case uint64(le32(b[12:])) != uint64(len(b)):
		return requestError("total does not match the length passed", uint64(le32(b[12:])))
	}
	return requestError("descriptors beyond the request", uint64(le16(b[6:])))
}

// The decoders below are written for Go's wasm code generator, in which
// every function call, and every jump that is not a fall-through (a loop's
// back edge, the taken side of an if), goes through a dispatch table at the
// top of the function: each reads the descriptors of its kind's fields in
// straight-line code, checks them all with one comparison, and calls
// helpers only for lists, certificates and errors. (A loop over the
// descriptors with a switch per field cost three times as much.)

// kindFields is nfields for each kind as the broker sends it: one more
// than the highest field id the kind defines (sdk/ABI.md §3).
var kindFields = [...]int{kindAuthn: fieldAuthState + 1, kindAuthz: fieldCertSHA256 + 1, kindPayload: fieldMode + 1}

// descTable is the descriptor table of a request with every field of its
// kind, as an array, so that indexing it needs no bounds check. A kind
// reads only the descriptors of its own fields, which may be fewer.
type descTable = [8 * numFields]byte

// span returns the bounds of field id from descriptor table t: (0, 0) when
// the field is absent, in which case b[off:end] is empty. end is not
// checked; the callers compare the largest end with the request's length.
func span(t *descTable, id int) (off, end uint64) {
	v := desc(t, 8*id)
	off, n := v&0xffffffff, v>>32
	if off == 0 {
		n = 0 // absent, whatever its length says
	}
	return off, off + n
}

// str returns b[off:end] as a string sharing b's memory; off and end have
// been checked.
func str(b []byte, off, end uint64) string {
	s := b[off:end]
	return unsafe.String(unsafe.SliceData(s), len(s))
}

// bytesAt returns b[off:end] with its capacity cut, or nil when the field
// is absent (off 0).
func bytesAt(b []byte, off, end uint64) []byte {
	if off == 0 {
		return nil
	}
	return b[off:end:end]
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

// request checks the header of b, a whole request of the given kind, and
// returns a private copy of it whose descriptor table holds every field of
// the kind, with the table, having decoded into c the fields every kind
// shares. A request from the broker has every descriptor and is copied as
// it is; one with fewer (an older host, a test) is copied behind a full
// table, its fields' offsets moved by the table's growth.
func (d *decoder) request(b []byte, kind uint8, c *Client) ([]byte, *descTable, error) {
	nf, ok := header(b, kind)
	if !ok {
		return nil, nil, headerError(b, kind)
	}
	var t *descTable
	var err error
	if nf >= kindFields[kind] {
		// The table type covers every kind's fields: a request shorter
		// than it gets zeroed room behind it, never read as its fields.
		const base = headerSize + 8*numFields
		n := len(b)
		cp := d.bytes.take(max(n, base), bytesChunk)
		copy(cp, b)
		b, t = cp[:n:n], (*descTable)(cp[headerSize:base:base])
	} else if b, t, err = d.widen(b, nf); err != nil {
		return nil, nil, err
	}

	// The fields of Client, assigned one by one: assigning a whole struct
	// makes Go call into the runtime for write barriers.
	cid, cide := span(t, fieldClientID)
	usr, usre := span(t, fieldUsername)
	ra, rae := span(t, fieldRemoteAddr)
	ls, lse := span(t, fieldListener)
	if max(cide, usre, rae, lse) > uint64(len(b)) {
		return nil, nil, beyond(b, t, fieldClientID, fieldUsername, fieldRemoteAddr, fieldListener)
	}
	c.ClientID, c.Username, c.RemoteAddr, c.Listener = str(b, cid, cide), str(b, usr, usre), str(b, ra, rae), str(b, ls, lse)
	c.Protocol = b[4]
	c.Superuser = b[3]&flagSuperuser != 0
	c.Attributes = nil
	c.Cert = nil
	if b[3]&flagCert != 0 {
		if err := d.cert(c, b, t); err != nil {
			return nil, nil, err
		}
	}
	return b, t, nil
}

// widen copies a request b of nf < its kind's descriptors:
// the copy is a header, a full descriptor table, then the whole of b, so
// that a present field's offset moves by the length of the first two.
func (d *decoder) widen(b []byte, nf int) ([]byte, *descTable, error) {
	const base = headerSize + 8*numFields
	c := d.bytes.take(base+len(b), bytesChunk)
	copy(c, b[:headerSize])
	copy(c[base:], b)
	for id := 0; id < nf; id++ {
		off, end, present, err := field(b, id)
		if err != nil {
			return nil, nil, err
		}
		if present {
			p := headerSize + 8*id
			putLE32(c[p:], uint32(base+off))
			putLE32(c[p+4:], uint32(end-off))
		}
	}
	return c, (*descTable)(c[headerSize:base:base]), nil
}

func putLE32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

// beyond returns the error for a request whose largest field end, among
// those just read, lies past its end: the first field that does.
func beyond(b []byte, t *descTable, ids ...int) error {
	for _, id := range ids {
		if off, end := span(t, id); end > uint64(len(b)) {
			return fieldError(id, "beyond the request", end-off)
		}
	}
	return requestError("field beyond the request", uint64(len(b)))
}

// decodeAuthn decodes b, a whole authn request (sdk/ABI.md §3). It never
// panics. The request is reused by the next call of d; its fields share no
// memory with b or with any other request.
func (d *decoder) decodeAuthn(b []byte) (*AuthnRequest, error) {
	req := &d.authn
	b, t, err := d.request(b, kindAuthn, &req.Client)
	if err != nil {
		return nil, err
	}
	pw, pwe := span(t, fieldPassword)
	up, upe := span(t, fieldUserProperties)
	am, ame := span(t, fieldAuthMethod)
	ad, ade := span(t, fieldAuthData)
	as, ase := span(t, fieldAuthState)
	if max(pwe, upe, ame, ade, ase) > uint64(len(b)) {
		return nil, beyond(b, t, fieldPassword, fieldUserProperties, fieldAuthMethod, fieldAuthData, fieldAuthState)
	}
	req.Password, req.AuthMethod = bytesAt(b, pw, pwe), str(b, am, ame)
	req.AuthData, req.AuthState = bytesAt(b, ad, ade), bytesAt(b, as, ase)
	req.Round = le32(b[8:])
	req.UserProperties = nil
	if up != 0 {
		props, err := d.pairList(b[up:upe], fieldUserProperties)
		if err != nil {
			return nil, err
		}
		req.UserProperties = asProperties(props)
	}
	return req, nil
}

// decodeAuthz decodes b, a whole authz request, as decodeAuthn does.
func (d *decoder) decodeAuthz(b []byte) (*AuthzRequest, error) {
	req := &d.authz
	b, t, err := d.request(b, kindAuthz, &req.Client)
	if err != nil {
		return nil, err
	}
	tp, tpe := span(t, fieldTopic)
	sg, sge := span(t, fieldShareGroup)
	at, ate := span(t, fieldAttributes)
	if max(tpe, sge, ate) > uint64(len(b)) {
		return nil, beyond(b, t, fieldTopic, fieldShareGroup, fieldAttributes)
	}
	req.Action, req.QoS, req.Retain = Action(b[1]), b[2], b[3]&flagRetain != 0
	req.Topic, req.ShareGroup = str(b, tp, tpe), str(b, sg, sge)
	if at != 0 {
		if req.Attributes, err = d.pairList(b[at:ate], fieldAttributes); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// decodePayload decodes b, a whole payload request, as decodeAuthn does.
func (d *decoder) decodePayload(b []byte) (*PayloadRequest, error) {
	req := &d.payload
	b, t, err := d.request(b, kindPayload, &req.Client)
	if err != nil {
		return nil, err
	}
	tp, tpe := span(t, fieldTopic)
	at, ate := span(t, fieldAttributes)
	up, upe := span(t, fieldUserProperties)
	ct, cte := span(t, fieldContentType)
	ek, eke := span(t, fieldEnvelopeKeyID)
	md, mde := span(t, fieldMode)
	if max(tpe, ate, upe, cte, eke, mde) > uint64(len(b)) {
		return nil, beyond(b, t, fieldTopic, fieldAttributes, fieldUserProperties, fieldContentType, fieldEnvelopeKeyID, fieldMode)
	}
	req.Action, req.QoS, req.Retain = Action(b[1]), b[2], b[3]&flagRetain != 0
	req.Topic, req.ContentType, req.EnvelopeKeyID = str(b, tp, tpe), str(b, ct, cte), str(b, ek, eke)
	req.PayloadSize = le32(b[8:])
	req.PublishedMode, req.UserProperties = 0, nil
	if md != 0 {
		if mde-md != 1 {
			return nil, fieldError(fieldMode, "not 1 byte", mde-md)
		}
		req.PublishedMode = Mode(b[md])
	}
	if at != 0 {
		if req.Attributes, err = d.pairList(b[at:ate], fieldAttributes); err != nil {
			return nil, err
		}
	}
	if up != 0 {
		props, err := d.pairList(b[up:upe], fieldUserProperties)
		if err != nil {
			return nil, err
		}
		req.UserProperties = asProperties(props)
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

// cert decodes the certificate fields into a new c.Cert; the header's
// certificate flag is set.
func (d *decoder) cert(c *Client, b []byte, t *descTable) error {
	cn, cne := span(t, fieldCertCN)
	sa, sae := span(t, fieldCertSANs)
	fp, fpe := span(t, fieldCertSHA256)
	if max(cne, sae, fpe) > uint64(len(b)) {
		return beyond(b, t, fieldCertCN, fieldCertSANs, fieldCertSHA256)
	}
	cert := &d.certs.take(1, certChunk)[0]
	cert.CommonName = str(b, cn, cne)
	if sa != 0 {
		sans, err := d.stringList(b[sa:sae], fieldCertSANs)
		if err != nil {
			return err
		}
		cert.SANs = sans
	}
	if fp != 0 {
		if fpe-fp != uint64(len(cert.SHA256)) {
			return fieldError(fieldCertSHA256, "not 32 bytes", fpe-fp)
		}
		copy(cert.SHA256[:], b[fp:fpe])
	}
	c.Cert = cert
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
