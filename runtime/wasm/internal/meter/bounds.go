package meter

import (
	"fmt"
)

// The checks in this file bound what wazero allocates when it decodes
// Instrument's output. wazero v1.12.0 sizes many buffers from counts it
// reads before it reads what they count, so a module of a few hundred bytes
// can make it allocate gigabytes (a type with 500 million parameters, a
// data segment of 4 GiB) and kill the process, which no recover stops.
// Instrument rejects a count larger than the bytes that could hold what it
// counts (every entry takes at least a byte), so wazero's allocations stay
// proportional to the input. Only locals need a limit of their own.

// maxLocals caps the locals a function may declare. Their run-length
// encoding lets a few bytes declare four billion, and wazero allocates a
// byte for each. V8 has the same limit.
const maxLocals = 50000

// readVecLen reads a vector's length, which must not exceed the bytes left
// in b.
func readVecLen(b []byte, pos int) (uint32, int, error) {
	n, next, err := readU32(b, pos)
	if err != nil {
		return 0, pos, err
	}
	if uint64(n) > uint64(len(b)-next) {
		return 0, pos, fmt.Errorf("%d entries in %d bytes: %w", n, len(b)-next, errTruncated)
	}
	return n, next, nil
}

// checkSectionBounds checks the counts in a section that wazero decodes,
// and for the type, element and data sections also the limits and indices
// (see validate.go), recording what m needs of them.
func checkSectionBounds(s *section, m *module) error {
	switch s.id {
	case secType:
		return checkTypes(s, m)
	case secData:
		return checkData(s, m)
	case secElement:
		return checkElements(s, m)
	case secCustom:
		if s.name == "name" {
			return checkNames(s)
		}
		return nil
	case secStart, secDataCount:
		return nil
	default:
		// The other sections start with a vector; what they hold is
		// checked as they are read, or has no counts.
		_, _, err := readCount(s)
		return err
	}
}

// checkTypes checks the type section: function types (0x60), possibly in
// recursion groups (0x4e), each with vectors of parameters and results.
func checkTypes(s *section, m *module) error {
	b := s.content
	count, pos, err := readVecLen(b, 0)
	if err != nil {
		return s.errorf(0, "read count: %w", err)
	}
	var types uint64
	funcType := func() error {
		if pos >= len(b) {
			return errTruncated
		}
		if b[pos] != 0x60 {
			return fmt.Errorf("unknown type form %#x", b[pos])
		}
		pos++
		for k := range 2 { // parameters, results
			var n uint32
			if n, pos, err = readVecLen(b, pos); err != nil {
				return err
			}
			if k == 0 {
				m.typeParams = append(m.typeParams, n)
			} else {
				m.typeResults = append(m.typeResults, n)
			}
			for j := uint32(0); j < n; j++ {
				if pos, err = skipValType(b, pos); err != nil {
					return err
				}
			}
		}
		types++
		return nil
	}
	for i := uint32(0); i < count; i++ {
		start := pos
		if pos < len(b) && b[pos] == 0x4e { // recursion group
			var n uint32
			if n, pos, err = readVecLen(b, pos+1); err != nil {
				return s.errorf(start, "type %d: %w", types, err)
			}
			for j := uint32(0); j < n; j++ {
				if err := funcType(); err != nil {
					return s.errorf(start, "type %d: %w", types, err)
				}
			}
			continue
		}
		if err := funcType(); err != nil {
			return s.errorf(start, "type %d: %w", types, err)
		}
	}
	if pos != len(b) {
		return s.errorf(pos, "%d bytes after the last type", len(b)-pos)
	}
	if types > uint64(^uint32(0)) {
		return s.errorf(0, "too many types")
	}
	m.types = uint32(types)
	return over(m.lim.Types, types, "module has", "types")
}

// checkData checks the data section's segments: flags, memory index,
// offset and bytes.
func checkData(s *section, m *module) error {
	b := s.content
	count, pos, err := readVecLen(b, 0)
	if err != nil {
		return s.errorf(0, "read count: %w", err)
	}
	if err := over(m.lim.DataSegments, uint64(count), "module has", "data segments"); err != nil {
		return err
	}
	if m.hasDataCount && m.dataCount != count {
		return s.errorf(0, "%d data segments, but the data count section says %d", count, m.dataCount)
	}
	var size uint64
	for i := uint32(0); i < count; i++ {
		start := pos
		var flags uint32
		if flags, pos, err = readU32(b, pos); err != nil {
			return s.errorf(start, "data segment %d: %w", i, err)
		}
		switch flags {
		case 0: // active, memory 0
			if err = checkIndex("memory", 0, uint64(m.memories)); err == nil {
				pos, err = checkConstExpr(b, pos, m, m.globals())
			}
		case 1: // passive
		case 2: // active, with a memory index
			var mem uint32
			if mem, pos, err = readU32(b, pos); err == nil {
				if err = checkIndex("memory", mem, uint64(m.memories)); err == nil {
					pos, err = checkConstExpr(b, pos, m, m.globals())
				}
			}
		default:
			return s.errorf(start, "data segment %d: unknown flags %d", i, flags)
		}
		if err == nil {
			var n uint32
			if n, pos, err = readVecLen(b, pos); err == nil {
				pos += int(n)
				size += uint64(n)
			}
		}
		if err != nil {
			return s.errorf(start, "data segment %d: %w", i, err)
		}
	}
	if pos != len(b) {
		return s.errorf(pos, "%d bytes after the last data segment", len(b)-pos)
	}
	return over(m.lim.DataSize, size, "data segments hold", "bytes")
}

// checkElements checks the element section's segments. Flags bit 0 marks a
// passive or declarative segment, bit 1 a table index (if active) or
// declarative (if not) and an element kind or type, bit 2 expressions
// rather than function indices.
func checkElements(s *section, m *module) error {
	b := s.content
	count, pos, err := readVecLen(b, 0)
	if err != nil {
		return s.errorf(0, "read count: %w", err)
	}
	if err := over(m.lim.ElemSegments, uint64(count), "module has", "element segments"); err != nil {
		return err
	}
	m.elems = count
	for i := uint32(0); i < count; i++ {
		start := pos
		if err := func() error {
			flags, next, err := readU32(b, pos)
			if err != nil {
				return err
			}
			pos = next
			if flags > 7 {
				return fmt.Errorf("unknown flags %d", flags)
			}
			active, explicit, exprs := flags&1 == 0, flags&2 != 0, flags&4 != 0
			table := uint32(0)
			if active && explicit { // table index
				if table, pos, err = readU32(b, pos); err != nil {
					return err
				}
			}
			if active {
				if err := checkIndex("table", table, m.tables()); err != nil {
					return err
				}
				if pos, err = checkConstExpr(b, pos, m, m.globals()); err != nil {
					return err
				}
			}
			if !active || explicit { // element kind (0x00) or reference type
				if exprs {
					pos, err = skipValType(b, pos)
				} else {
					pos, err = skipBytes(b, pos, 1)
				}
				if err != nil {
					return err
				}
			}
			n, next, err := readVecLen(b, pos)
			if err != nil {
				return err
			}
			pos = next
			for j := uint32(0); j < n; j++ {
				if exprs {
					pos, err = checkConstExpr(b, pos, m, m.globals())
				} else {
					var fn uint32
					if fn, pos, err = readU32(b, pos); err == nil {
						err = checkIndex("function", fn, m.funcs())
					}
				}
				if err != nil {
					return err
				}
			}
			return nil
		}(); err != nil {
			return s.errorf(start, "element segment %d: %w", i, err)
		}
	}
	if pos != len(b) {
		return s.errorf(pos, "%d bytes after the last element segment", len(b)-pos)
	}
	return nil
}

// checkNames checks the subsections of the "name" custom section that
// wazero decodes: module name (0), function names (1) and local names (2).
// Each must hold exactly what its size says: wazero v1.12.0 decodes them
// without checking their sizes, and one that says more or less than it
// holds makes it read on into the following sections, as name subsections,
// until the end of the module. An input with such a name section as its
// last section passes, but not once Instrument has added sections after it.
func checkNames(s *section) error {
	b := s.content
	n, pos, _ := readU32(b, 0) // readModule checked the section's name.
	pos += int(n)
	for pos < len(b) {
		start := pos
		id := b[pos]
		size, next, err := readU32(b, pos+1)
		if err == nil && uint64(size) > uint64(len(b)-next) {
			err = errTruncated
		}
		if err != nil {
			return s.errorf(start, "name subsection %d: %w", id, err)
		}
		sub := b[next : next+int(size)]
		pos = next + int(size)
		end := len(sub)
		switch id {
		case 0:
			end, err = skipName(sub, 0)
		case 1:
			end, err = checkNameMap(sub, 0)
		case 2:
			var n uint32
			if n, end, err = readVecLen(sub, 0); err == nil {
				for i := uint32(0); i < n && err == nil; i++ {
					if _, end, err = readU32(sub, end); err == nil {
						end, err = checkNameMap(sub, end)
					}
				}
			}
		}
		if err == nil && end != len(sub) {
			err = fmt.Errorf("%d bytes left after its content", len(sub)-end)
		}
		if err != nil {
			return s.errorf(start, "name subsection %d: %w", id, err)
		}
	}
	return nil
}

// checkNameMap checks a vector of (index, name) and returns the position
// after it.
func checkNameMap(b []byte, pos int) (int, error) {
	n, pos, err := readVecLen(b, pos)
	if err != nil {
		return pos, err
	}
	for i := uint32(0); i < n; i++ {
		if _, pos, err = readU32(b, pos); err != nil {
			return pos, err
		}
		if pos, err = skipName(b, pos); err != nil {
			return pos, err
		}
	}
	return pos, nil
}
