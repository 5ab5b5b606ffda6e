package moat

import (
	"errors"
	"io"
)

// ErrPayloadNotReadable is returned by PayloadRequest.ReadAt and Payload
// when the host refuses to hand out the payload: the plugin lacks
// allow_payload = true in moat.toml, or the call is not a payload decision
// in progress (a request kept past its handler, or a native test).
var ErrPayloadNotReadable = errors.New("moat: payload not readable: set allow_payload = true for the plugin in moat.toml")

// ReadAt reads payload bytes from offset off, as io.ReaderAt does; it
// returns io.EOF at the end of the payload. Each call crosses into the
// host; read in large chunks.
func (r *PayloadRequest) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("moat: PayloadRequest.ReadAt: negative offset")
	}
	if off >= int64(r.PayloadSize) {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) {
		c := payloadRead(int(off)+n, p[n:])
		switch {
		case c < 0:
			return n, ErrPayloadNotReadable
		case c == 0:
			return n, io.EOF
		}
		n += int(c)
	}
	return n, nil
}

// Payload returns a copy of the whole payload.
func (r *PayloadRequest) Payload() ([]byte, error) {
	b := make([]byte, r.PayloadSize)
	n, err := r.ReadAt(b, 0)
	if n == len(b) {
		return b, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}
