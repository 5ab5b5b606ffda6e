package meter

import (
	"fmt"
	"strings"
)

// The checks in this file keep guest code away from what Instrument adds.
//
// Instrument appends globals and a table after the module's own, at indices
// the module could name: a binary assembled without validation (wat2wasm
// --no-check) that runs global.set on the index after its last global would
// write the deadline. wazero validates only the output, where those indices
// are in range. So every index the module uses, in every instruction and
// every section, is checked against the index spaces of the module as its
// author wrote it, before anything is added. These are range checks only:
// types, stack shapes and the rest are wazero's to validate, and it sees
// exactly the instructions we checked.

// ReservedPrefix starts every name the host uses in a module's exports and
// imports. A module may neither export nor import a name with it.
const ReservedPrefix = "moat."

// errRange formats an out-of-range index.
func errRange(what string, idx uint32, n uint64) error {
	return fmt.Errorf("%s index %d out of range (%d in the module)", what, idx, n)
}

// checkReservedName refuses a name in the host's namespace.
func checkReservedName(name string) error {
	if strings.HasPrefix(name, ReservedPrefix) {
		return fmt.Errorf("name %q is in the reserved %q namespace", name, ReservedPrefix)
	}
	return nil
}

// funcs is the size of the function index space.
func (m *module) funcs() uint64 { return uint64(len(m.funcTypes)) }

// tables is the size of the table index space, before the yield table.
func (m *module) tables() uint64 { return uint64(m.importedTables) + uint64(m.definedTables) }

// globals is the size of the global index space, before the meter's.
func (m *module) globals() uint64 { return uint64(m.importedGlobals) + uint64(m.definedGlobals) }

// checkIndex checks idx against an index space of n entries.
func checkIndex(what string, idx uint32, n uint64) error {
	if uint64(idx) >= n {
		return errRange(what, idx, n)
	}
	return nil
}

// checkConstExpr checks a constant expression, such as a data segment's
// offset or a global's initialiser, up to and including its end, and
// returns the position after it. globals is how many globals it may name:
// for a global's initialiser those before it, elsewhere all the module's
// (which of them a constant may read, wazero validates). Only constant
// instructions are accepted; wazero accepts no others.
func checkConstExpr(b []byte, pos int, m *module, globals uint64) (int, error) {
	for pos < len(b) {
		start := pos
		kind, next, err := skipInstruction(b, pos)
		if err != nil {
			return pos, err
		}
		switch op := b[start]; {
		case kind == immEnd:
			return next, nil
		case kind == immBlock || kind == immLoop || kind == immTryTable:
			return pos, fmt.Errorf("block in a constant expression")
		case op == 0x23: // global.get
			idx, _, _ := readU32(b, start+1)
			if err := checkIndex("global", idx, globals); err != nil {
				return pos, err
			}
		case op == 0xd2: // ref.func
			idx, _, _ := readU32(b, start+1)
			if err := checkIndex("function", idx, m.funcs()); err != nil {
				return pos, err
			}
		case op == 0xd0: // ref.null
			if err := checkHeapType(b, start+1, m); err != nil {
				return pos, err
			}
		case op == 0xfd: // only v128.const
			if b[start+1] != 0x0c {
				return pos, fmt.Errorf("opcode 0xfd 0x%02x in a constant expression", b[start+1])
			}
		case op >= 0x41 && op <= 0x44: // i32, i64, f32, f64 .const
		case kind == immNone && op >= 0x45 && op <= 0xc4: // extended constants
		default:
			return pos, fmt.Errorf("opcode 0x%02x in a constant expression", op)
		}
		pos = next
	}
	return pos, errTruncated
}

// checkHeapType checks the heap type at b[pos]: an abstract type (negative)
// or a type index.
func checkHeapType(b []byte, pos int, m *module) error {
	v, _, ok := readS33(b, pos)
	if ok && v >= 0 {
		if v > int64(^uint32(0)) {
			return errRange("type", ^uint32(0), uint64(m.types))
		}
		return checkIndex("type", uint32(v), uint64(m.types))
	}
	return nil
}

// checkBlockType checks the block type at b[pos]: a type index if it is
// non-negative.
func checkBlockType(b []byte, pos int, m *module) error {
	return checkHeapType(b, pos, m)
}

// fnScope is what the instructions of one function body may name.
type fnScope struct {
	m      *module
	fn     uint64 // index in the function index space, for errors
	locals uint64 // parameters and declared locals
}

// checkInstruction checks the indices of the instruction at b[start],
// which skipInstruction has decoded, so its immediates are complete.
// depth is the number of enclosing blocks, the function's own included:
// the labels in scope.
func (f *fnScope) checkInstruction(b []byte, start, depth int) error {
	m := f.m
	u32 := func(pos int) (uint32, int) {
		v, next, _ := readU32(b, pos)
		return v, next
	}
	label := func(l uint32) error {
		if uint64(l) >= uint64(depth) {
			return fmt.Errorf("branch depth %d out of range (%d enclosing blocks)", l, depth)
		}
		return nil
	}
	switch op := b[start]; op {
	case 0x02, 0x03, 0x04: // block, loop, if
		return checkBlockType(b, start+1, m)
	case 0x1f: // try_table: block type, then catch clauses, whose labels are outside it
		if err := checkBlockType(b, start+1, m); err != nil {
			return err
		}
		pos := skipBlockType(b, start+1)
		n, pos := u32(pos)
		for range n {
			kind := b[pos]
			pos++
			if kind <= 0x01 { // catch, catch_ref: tag
				var tag uint32
				tag, pos = u32(pos)
				if err := checkIndex("tag", tag, uint64(m.tags)); err != nil {
					return err
				}
			}
			var l uint32
			l, pos = u32(pos)
			if err := label(l); err != nil {
				return err
			}
		}
	case 0x08: // throw
		tag, _ := u32(start + 1)
		return checkIndex("tag", tag, uint64(m.tags))
	case 0x0c, 0x0d, 0xd5, 0xd6: // br, br_if, br_on_null, br_on_non_null
		l, _ := u32(start + 1)
		return label(l)
	case 0x0e: // br_table
		n, pos := u32(start + 1)
		for i := uint64(0); i <= uint64(n); i++ {
			var l uint32
			l, pos = u32(pos)
			if err := label(l); err != nil {
				return err
			}
		}
	case 0x10, 0x12, 0xd2: // call, return_call, ref.func
		fn, _ := u32(start + 1)
		return checkIndex("function", fn, m.funcs())
	case 0x11, 0x13: // call_indirect, return_call_indirect
		typ, pos := u32(start + 1)
		if err := checkIndex("type", typ, uint64(m.types)); err != nil {
			return err
		}
		table, _ := u32(pos)
		return checkIndex("table", table, m.tables())
	case 0x14, 0x15: // call_ref, return_call_ref
		typ, _ := u32(start + 1)
		return checkIndex("type", typ, uint64(m.types))
	case 0x1c: // select with types
		n, pos := u32(start + 1)
		for range n {
			if b[pos] == 0x63 || b[pos] == 0x64 {
				if err := checkHeapType(b, pos+1, m); err != nil {
					return err
				}
			}
			pos, _ = skipValType(b, pos)
		}
	case 0x20, 0x21, 0x22: // local.get, local.set, local.tee
		idx, _ := u32(start + 1)
		return checkIndex("local", idx, f.locals)
	case 0x23, 0x24: // global.get, global.set
		idx, _ := u32(start + 1)
		return checkIndex("global", idx, m.globals())
	case 0x25, 0x26: // table.get, table.set
		idx, _ := u32(start + 1)
		return checkIndex("table", idx, m.tables())
	case 0x3f, 0x40: // memory.size, memory.grow
		idx, _ := u32(start + 1)
		return checkIndex("memory", idx, uint64(m.memories))
	case 0xd0: // ref.null
		return checkHeapType(b, start+1, m)
	case 0xfc:
		return f.checkMisc(b, start+1)
	}
	return nil
}

// checkMisc checks the indices of a 0xfc instruction; pos is after the
// prefix.
func (f *fnScope) checkMisc(b []byte, pos int) error {
	m := f.m
	sub, pos, _ := readU32(b, pos)
	a, pos, _ := readU32(b, pos)
	c, _, _ := readU32(b, pos)
	datas := uint64(0)
	if m.hasDataCount {
		datas = uint64(m.dataCount)
	}
	switch sub {
	case 0x08: // memory.init data memory
		if err := checkIndex("data segment", a, datas); err != nil {
			return err
		}
		return checkIndex("memory", c, uint64(m.memories))
	case 0x09: // data.drop
		return checkIndex("data segment", a, datas)
	case 0x0a: // memory.copy
		if err := checkIndex("memory", a, uint64(m.memories)); err != nil {
			return err
		}
		return checkIndex("memory", c, uint64(m.memories))
	case 0x0b: // memory.fill
		return checkIndex("memory", a, uint64(m.memories))
	case 0x0c: // table.init elem table
		if err := checkIndex("element segment", a, uint64(m.elems)); err != nil {
			return err
		}
		return checkIndex("table", c, m.tables())
	case 0x0d: // elem.drop
		return checkIndex("element segment", a, uint64(m.elems))
	case 0x0e: // table.copy
		if err := checkIndex("table", a, m.tables()); err != nil {
			return err
		}
		return checkIndex("table", c, m.tables())
	case 0x0f, 0x10, 0x11: // table.grow, table.size, table.fill
		return checkIndex("table", a, m.tables())
	}
	return nil
}
