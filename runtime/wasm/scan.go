package wasm

import (
	"errors"
	"fmt"
)

// moduleInfo is what load-time checks need from a binary that wazero's
// CompiledModule does not expose: imports of every kind (it lists only
// functions and memories) and the minimum of a defined memory, which must
// be checked before compiling because wazero refuses it with a message that
// names no export.
type moduleInfo struct {
	imports   []importInfo
	exports   []exportInfo // as the author wrote them, before instrumentation
	memoryMin uint64       // pages of the first defined memory; 0 when none
	hasMemory bool
}

// exportInfo is one export: its name and kind (externFunc...).
type exportInfo struct {
	name string
	kind byte
}

func (e exportInfo) kindName() string { return importInfo{kind: e.kind}.kindName() }

type importInfo struct {
	module, name string
	kind         byte // externFunc, externTable, externMemory, externGlobal, externTag
}

const (
	externFunc   = 0
	externTable  = 1
	externMemory = 2
	externGlobal = 3
	externTag    = 4
)

var externNames = [...]string{"func", "table", "memory", "global", "tag"}

func (i importInfo) kindName() string {
	if int(i.kind) < len(externNames) {
		return externNames[i.kind]
	}
	return fmt.Sprintf("kind %d", i.kind)
}

var errTruncated = errors.New("truncated")

// scanModule reads the import, export and memory sections of a wasm binary. It
// checks only what it reads; wazero validates the rest when compiling.
func scanModule(bin []byte) (moduleInfo, error) {
	var info moduleInfo
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return info, errors.New("not a WebAssembly binary (no \\0asm magic)")
	}
	if bin[4] != 1 || bin[5] != 0 || bin[6] != 0 || bin[7] != 0 {
		return info, fmt.Errorf("unsupported binary format version %x (want 1; components are not modules)", bin[4:8])
	}
	r := reader{b: bin, pos: 8}
	for r.pos < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return info, err
		}
		size, err := r.u32()
		if err != nil {
			return info, err
		}
		if uint64(r.pos)+uint64(size) > uint64(len(r.b)) {
			return info, fmt.Errorf("section %d at offset %d: %w", id, r.pos, errTruncated)
		}
		sec := reader{b: r.b[:r.pos+int(size)], pos: r.pos}
		r.pos += int(size)
		switch id {
		case 2:
			if info.imports, err = scanImports(&sec); err != nil {
				return info, fmt.Errorf("import section: %w", err)
			}
		case 7:
			if info.exports, err = scanExports(&sec); err != nil {
				return info, fmt.Errorf("export section: %w", err)
			}
		case 5:
			n, err := sec.u32()
			if err != nil {
				return info, fmt.Errorf("memory section: %w", err)
			}
			if n > 0 {
				min, _, err := sec.limits()
				if err != nil {
					return info, fmt.Errorf("memory section: %w", err)
				}
				info.memoryMin, info.hasMemory = min, true
			}
		}
	}
	return info, nil
}

func scanImports(r *reader) ([]importInfo, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(r.b)) {
		return nil, errTruncated
	}
	out := make([]importInfo, 0, n)
	for range n {
		var im importInfo
		if im.module, err = r.name(); err != nil {
			return nil, err
		}
		if im.name, err = r.name(); err != nil {
			return nil, err
		}
		if im.kind, err = r.byte(); err != nil {
			return nil, err
		}
		switch im.kind {
		case externFunc:
			_, err = r.u32()
		case externTable:
			if _, err = r.byte(); err == nil {
				_, _, err = r.limits()
			}
		case externMemory:
			_, _, err = r.limits()
		case externGlobal:
			if _, err = r.byte(); err == nil {
				_, err = r.byte()
			}
		case externTag:
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		default:
			return nil, fmt.Errorf("import %s.%s: unknown kind %d", im.module, im.name, im.kind)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, nil
}

func scanExports(r *reader) ([]exportInfo, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if uint64(n) > uint64(len(r.b)) {
		return nil, errTruncated
	}
	out := make([]exportInfo, 0, n)
	for range n {
		var ex exportInfo
		if ex.name, err = r.name(); err != nil {
			return nil, err
		}
		if ex.kind, err = r.byte(); err != nil {
			return nil, err
		}
		if _, err = r.u32(); err != nil {
			return nil, err
		}
		out = append(out, ex)
	}
	return out, nil
}

type reader struct {
	b   []byte
	pos int
}

func (r *reader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.pos]
	r.pos++
	return c, nil
}

// uleb reads an unsigned LEB128 of at most bits bits.
func (r *reader) uleb(bits uint) (uint64, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if shift >= bits+7 {
			return 0, errors.New("LEB128 too long")
		}
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if bits < 64 && v>>bits != 0 {
				return 0, errors.New("LEB128 overflows")
			}
			return v, nil
		}
	}
}

func (r *reader) u32() (uint32, error) {
	v, err := r.uleb(32)
	return uint32(v), err
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	if uint64(r.pos)+uint64(n) > uint64(len(r.b)) {
		return "", errTruncated
	}
	s := string(r.b[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s, nil
}

// limits reads a limits type: flags (bit 0 max present, bit 1 shared, bit 2
// 64-bit), min, and max when present.
func (r *reader) limits() (min uint64, max *uint64, err error) {
	flags, err := r.byte()
	if err != nil {
		return 0, nil, err
	}
	bits := uint(32)
	if flags&4 != 0 {
		bits = 64
	}
	if min, err = r.uleb(bits); err != nil {
		return 0, nil, err
	}
	if flags&1 != 0 {
		m, err := r.uleb(bits)
		if err != nil {
			return 0, nil, err
		}
		max = &m
	}
	return min, max, nil
}
