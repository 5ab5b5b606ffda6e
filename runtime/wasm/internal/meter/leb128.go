package meter

import (
	"errors"
	"fmt"
)

var (
	errTruncated = errors.New("unexpected end of input")
	errLEB       = errors.New("LEB128 number too long")
)

// readU32 decodes an unsigned LEB128 number of at most 5 bytes starting at
// b[pos] and returns it with the position after it.
func readU32(b []byte, pos int) (uint32, int, error) {
	var v uint32
	for n := 0; n < 5; n++ {
		if pos+n >= len(b) {
			return 0, pos, errTruncated
		}
		c := b[pos+n]
		if n == 4 && c > 0x0f {
			// Continuation bit or bits beyond 32.
			return 0, pos, errLEB
		}
		v |= uint32(c&0x7f) << (7 * n)
		if c < 0x80 {
			return v, pos + n + 1, nil
		}
	}
	panic("unreachable")
}

// readS33 decodes a signed LEB128 number of at most 5 bytes (a block type or
// heap type). It reports false if the input is truncated or too long. It
// does not check the unused bits of a fifth byte; wazero does.
func readS33(b []byte, pos int) (int64, int, bool) {
	var v int64
	for n := 0; n < 5; n++ {
		if pos+n >= len(b) {
			return 0, pos, false
		}
		c := b[pos+n]
		v |= int64(c&0x7f) << (7 * n)
		if c < 0x80 {
			if c&0x40 != 0 {
				v |= -1 << (7 * (n + 1))
			}
			return v, pos + n + 1, true
		}
	}
	return 0, pos, false
}

// skipLEB returns the position after an LEB128 number of at most max bytes
// starting at b[pos], or -1 if it is truncated or longer. The value is not
// needed: the length depends only on the continuation bits.
func skipLEB(b []byte, pos, max int) int {
	for n := 0; n < max; n++ {
		if pos+n >= len(b) {
			return -1
		}
		if b[pos+n] < 0x80 {
			return pos + n + 1
		}
	}
	return -1
}

// skipBytes returns pos+n if b holds n more bytes.
func skipBytes(b []byte, pos, n int) (int, error) {
	if n > len(b)-pos {
		return pos, errTruncated
	}
	return pos + n, nil
}

// skipName skips a length-prefixed name.
func skipName(b []byte, pos int) (int, error) {
	n, pos, err := readU32(b, pos)
	if err != nil {
		return pos, err
	}
	if uint64(n) > uint64(len(b)-pos) {
		return pos, errTruncated
	}
	return pos + int(n), nil
}

// skipValType skips a value type: one byte, or a reference type prefix
// (0x63 nullable, 0x64 non-nullable) followed by a heap type.
func skipValType(b []byte, pos int) (int, error) {
	if pos >= len(b) {
		return pos, errTruncated
	}
	switch c := b[pos]; c {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, // i32 i64 f32 f64 v128
		0x70, 0x6f, 0x69: // funcref externref exnref
		return pos + 1, nil
	case 0x63, 0x64:
		if _, next, ok := readS33(b, pos+1); ok {
			return next, nil
		}
		return pos, errTruncated
	default:
		return pos, fmt.Errorf("unknown value type %#x", c)
	}
}

// skipLimits skips the limits of a table or memory type. Flags 2 and 3 mark
// shared memories (threads); 64-bit limits are not supported by wazero.
func skipLimits(b []byte, pos int) (int, error) {
	if pos >= len(b) {
		return pos, errTruncated
	}
	flags := b[pos]
	if flags > 0x03 {
		return pos, fmt.Errorf("unsupported limits flags %#x", flags)
	}
	_, pos, err := readU32(b, pos+1)
	if err == nil && flags&0x01 != 0 {
		_, pos, err = readU32(b, pos)
	}
	return pos, err
}

// appendU32 appends v as a minimal unsigned LEB128 number.
func appendU32(dst []byte, v uint32) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// appendS32 appends v as a minimal signed LEB128 number.
func appendS32(dst []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(dst, c)
		}
		dst = append(dst, c|0x80)
	}
}
