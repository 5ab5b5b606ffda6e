package meter

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Names under which Instrument exports what it adds. The host looks them up
// with api.Module.ExportedGlobal and api.Module.ExportedFunction.
const (
	// ExportEpoch is a mutable i64 global, initially 0, that the host
	// advances. The guest traps once it reaches ExportDeadline.
	ExportEpoch = "moat.epoch"
	// ExportDeadline is a mutable i64 global, initially the maximum unsigned
	// value (all ones) so that nothing traps until the host sets it.
	// Comparisons are unsigned.
	ExportDeadline = "moat.deadline"
	// ExportDepth is a mutable i32 global, initially 0, exported only when
	// Limits.Stack is set: the engine stack, in estimated bytes, of the
	// guest frames live in the current call (see frameBytes). The guest
	// traps when it would exceed Limits.Stack, leaving it above the limit,
	// which is how the host tells that trap from others. The host resets
	// it to 0 before each call: a frame that an exception unwinds is never
	// counted out.
	ExportDepth = "moat.depth"
	// ExportStart is the module's former start function, exported only if
	// the module had a start section. The host calls it, under a deadline,
	// after instantiation.
	ExportStart = "moat.start"
)

// Section ids, from the binary format.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

// sectionRank gives each known section id its position in the binary order.
// The tag section (13) sits between memory and global, and data count (12)
// between element and code, so ids alone do not give the order. Zero means
// custom or unknown.
var sectionRank = [...]int{
	secType:      1,
	secImport:    2,
	secFunction:  3,
	secTable:     4,
	secMemory:    5,
	secTag:       6,
	secGlobal:    7,
	secExport:    8,
	secStart:     9,
	secElement:   10,
	secDataCount: 11,
	secCode:      12,
	secData:      13,
}

var sectionNames = [...]string{
	secCustom:    "custom",
	secType:      "type",
	secImport:    "import",
	secFunction:  "function",
	secTable:     "table",
	secMemory:    "memory",
	secGlobal:    "global",
	secExport:    "export",
	secStart:     "start",
	secElement:   "element",
	secCode:      "code",
	secData:      "data",
	secDataCount: "data count",
	secTag:       "tag",
}

// Extern kinds of imports and exports.
const (
	kindFunc   = 0x00
	kindTable  = 0x01
	kindMemory = 0x02
	kindGlobal = 0x03
	kindTag    = 0x04
)

// header is the magic number and version 1 of the core binary format.
var header = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// section is one section of the input, pointing into it.
type section struct {
	id      byte
	name    string // custom sections only
	raw     []byte // id, size and content, as in the input
	content []byte
	offset  int // offset of content in the input, for error messages
}

// module is what Instrument needs to know about its input.
type module struct {
	sections        []section
	importedFuncs   uint32
	importedTables  uint32
	importedGlobals uint32
	definedTables   uint32
	definedGlobals  uint32
	types           uint32 // entries in the type section
	hasStart        bool
	startFunc       uint32

	// The module's own index spaces, as its author wrote them (see
	// validate.go), and what limits.go needs.
	typeParams   []uint32 // parameters of each type
	typeResults  []uint32 // results of each type
	funcTypes    []uint32 // type of each function, imported first
	memories     uint32
	tags         uint32
	elems        uint32
	dataCount    uint32
	hasDataCount bool
	tableMax     []tableLimits // of each defined table
	lim          Limits
	cost         uint64 // of the bodies so far, for Limits.BlockCost
}

// tableLimits are a defined table's limits, where they are in its section,
// for Instrument to rewrite the maximum (see Instrument).
type tableLimits struct {
	min, max   uint32
	hasMax     bool
	start, end int // limits bytes in the table section's content
}

// Instrument returns a copy of the wasm binary bin with preemption checks at
// every function entry and loop header, so that the host can stop a running
// guest by moving the exported epoch to or past the exported deadline (see
// the package documentation for why).
//
// Instrument also
//
//   - appends, after all existing globals (imported and defined), so that no
//     index moves: the epoch and deadline globals, exported as ExportEpoch
//     and ExportDeadline, and an unexported i32 countdown;
//
//   - appends an empty funcref table, which the checks grow by zero so that
//     the garbage collector can stop the world (see yieldInterval);
//
//   - when lim.Stack is set, appends an i32 depth global, exported as
//     ExportDepth, and guards every function's entry and exits with it
//     (see appendEnter, appendWrap and the package documentation);
//
//   - removes the start section, if any, and exports its function as
//     ExportStart;
//
//   - drops custom sections that describe code offsets, which the rewrite
//     invalidates: ".debug_*", "sourceMappingURL", "external_debug_info" and
//     "metadata.code.*". Others, such as "name" and "producers", are kept
//     unchanged; function indices do not change. Label names in "name"
//     (subsection 3) do not count the inserted blocks.
//
//   - charges every bulk memory and table instruction (memory.fill, copy
//     and init, table.fill, copy and init) by its length to the yield
//     countdown, and runs the check before it (see appendBulkCharge);
//
//   - when lim.TableElements is set, lowers each defined table's maximum
//     so that all tables together can never hold more elements than that
//     (see capTables).
//
// It fails if the module exports or imports a name in the reserved "moat."
// namespace (so a module cannot be instrumented twice, nor pass a function
// off as its start function); if any index in any instruction or section
// is outside the module's own index spaces, so that no guest code can reach
// what Instrument adds (see validate.go); if the module exceeds lim, with a
// *LimitError; if bin is truncated or malformed, or declares more entries
// than it has bytes for (see bounds.go); or if a function body holds an
// opcode wazero v1.12.0 does not accept. Instrument checks structure and
// indices, not types: whenever wazero (with reference types, which core 2.0
// and wazero's default include) accepts the input, it accepts the output.
//
// Instrument does not modify bin and is safe for concurrent use. It runs in
// time linear in len(bin).
func Instrument(bin []byte, lim Limits) ([]byte, error) {
	m, err := readModule(bin, lim)
	if err != nil {
		return nil, err
	}

	// New globals and the yield table go after all existing ones, imported
	// and defined, so that no existing index moves.
	firstGlobal := uint64(m.importedGlobals) + uint64(m.definedGlobals)
	if firstGlobal+4 > math.MaxUint32 {
		return nil, fmt.Errorf("meter: too many globals (%d) to add four", firstGlobal)
	}
	table := uint64(m.importedTables) + uint64(m.definedTables)
	if table+1 > math.MaxUint32 {
		return nil, fmt.Errorf("meter: too many tables (%d) to add one", table)
	}
	ix := indices{
		epoch:     uint32(firstGlobal),
		deadline:  uint32(firstGlobal + 1),
		countdown: uint32(firstGlobal + 2),
		depth:     uint32(firstGlobal + 3),
		table:     uint32(table),
		stack:     lim.Stack,
	}

	// Instrumenting adds a few dozen bytes per loop; leave room for that.
	out := make([]byte, 0, len(bin)+len(bin)/8+128)
	out = append(out, header...)
	var tablesDone, globalsDone, exportsDone bool
	// addMissing adds the sections we need that the module lacks, before
	// the first section that follows them in binary order (rank), or at
	// the end (rank 0).
	addMissing := func(rank int) error {
		if !tablesDone && (rank == 0 || rank > sectionRank[secTable]) {
			out = appendSection(out, secTable, appendTables(nil, 0, nil))
			tablesDone = true
		}
		if !globalsDone && (rank == 0 || rank > sectionRank[secGlobal]) {
			out = appendSection(out, secGlobal, appendGlobals(nil, 0, nil, ix))
			globalsDone = true
		}
		if !exportsDone && (rank == 0 || rank > sectionRank[secExport]) {
			content, err := appendExports(nil, 0, nil, ix, m)
			if err != nil {
				return err
			}
			out = appendSection(out, secExport, content)
			exportsDone = true
		}
		return nil
	}
	for i := range m.sections {
		s := &m.sections[i]
		if s.id != secCustom {
			if err := addMissing(sectionRank[s.id]); err != nil {
				return nil, err
			}
		}

		switch s.id {
		case secCustom:
			if !dropCustom(s.name) {
				out = append(out, s.raw...)
			}
		case secTable:
			content, err := capTables(s, m)
			if err != nil {
				return nil, err
			}
			count, rest, err := readCount(&section{id: secTable, content: content})
			if err != nil {
				return nil, err
			}
			out = appendSection(out, secTable, appendTables(nil, count, rest))
			tablesDone = true
		case secGlobal:
			count, rest, err := readCount(s)
			if err != nil {
				return nil, err
			}
			out = appendSection(out, secGlobal, appendGlobals(nil, count, rest, ix))
			globalsDone = true
		case secExport:
			count, rest, err := readCount(s)
			if err != nil {
				return nil, err
			}
			content, err := appendExports(nil, count, rest, ix, m)
			if err != nil {
				return nil, err
			}
			out = appendSection(out, secExport, content)
			exportsDone = true
		case secStart:
			// Replaced by the ExportStart export.
		case secCode:
			content, err := instrumentCode(s, m, ix)
			if err != nil {
				return nil, err
			}
			if uint64(len(content)) > math.MaxUint32 {
				return nil, errors.New("meter: instrumented code section exceeds 4 GiB")
			}
			out = appendSection(out, secCode, content)
		default:
			out = append(out, s.raw...)
		}
	}
	if err := addMissing(0); err != nil {
		return nil, err
	}
	return out, nil
}

// readModule splits bin into sections, checks their order and reads the
// counts and indices Instrument needs.
func readModule(bin []byte, lim Limits) (*module, error) {
	if len(bin) < len(header) || !bytes.Equal(bin[:4], header[:4]) {
		return nil, errors.New("meter: not a wasm binary: bad magic number")
	}
	if !bytes.Equal(bin[4:8], header[4:8]) {
		return nil, fmt.Errorf("meter: unsupported wasm binary version % x", bin[4:8])
	}

	m := &module{lim: lim}
	if err := over(lim.ModuleSize, uint64(len(bin)), "module is", "bytes"); err != nil {
		return nil, err
	}
	lastRank := 0
	for pos := len(header); pos < len(bin); {
		start := pos
		id := bin[pos]
		if int(id) >= len(sectionRank) {
			return nil, fmt.Errorf("meter: unknown section id %d at offset %#x", id, start)
		}
		size, next, err := readU32(bin, pos+1)
		if err != nil {
			return nil, fmt.Errorf("meter: section %s at offset %#x: read size: %w", sectionNames[id], start, err)
		}
		if uint64(size) > uint64(len(bin)-next) {
			return nil, fmt.Errorf("meter: section %s at offset %#x: size %d exceeds the %d bytes left", sectionNames[id], start, size, len(bin)-next)
		}
		end := next + int(size)
		s := section{id: id, raw: bin[start:end], content: bin[next:end], offset: next}
		pos = end

		if id == secCustom {
			n, after, err := readU32(s.content, 0)
			if err != nil {
				return nil, fmt.Errorf("meter: custom section at offset %#x: read name: %w", start, err)
			}
			if uint64(n) > uint64(len(s.content)-after) {
				return nil, fmt.Errorf("meter: custom section at offset %#x: name overruns the section", start)
			}
			s.name = string(s.content[after : after+int(n)])
			if err := checkSectionBounds(&s, m); err != nil {
				return nil, err
			}
			m.sections = append(m.sections, s)
			continue
		}

		rank := sectionRank[id]
		if rank <= lastRank {
			return nil, fmt.Errorf("meter: section %s at offset %#x is duplicated or out of order", sectionNames[id], start)
		}
		lastRank = rank

		if err := checkSectionBounds(&s, m); err != nil {
			return nil, err
		}
		switch id {
		case secImport:
			err = readImports(&s, m)
		case secFunction:
			err = checkFunctionTypes(&s, m)
		case secTable:
			err = readTables(&s, m)
		case secMemory:
			err = readMemories(&s, m)
		case secTag:
			err = readTags(&s, m)
		case secGlobal:
			err = readGlobals(&s, m)
		case secExport:
			err = checkExports(&s, m)
		case secStart:
			m.hasStart = true
			if m.startFunc, err = readIndex(&s, "function index"); err == nil {
				if err = checkIndex("function", m.startFunc, m.funcs()); err != nil {
					err = s.errorf(0, "%w", err)
				}
			}
		case secDataCount:
			m.hasDataCount = true
			m.dataCount, err = readIndex(&s, "data count")
		}
		if err != nil {
			return nil, err
		}
		m.sections = append(m.sections, s)
	}
	if err := m.checkTotals(); err != nil {
		return nil, err
	}
	return m, nil
}

// dropCustom reports whether a custom section refers to code offsets, which
// instrumenting moves.
func dropCustom(name string) bool {
	return strings.HasPrefix(name, ".debug_") ||
		strings.HasPrefix(name, "metadata.code.") ||
		name == "sourceMappingURL" ||
		name == "external_debug_info"
}

// readCount reads the vector length that starts most sections and returns
// it with the entries that follow.
func readCount(s *section) (uint32, []byte, error) {
	n, next, err := readVecLen(s.content, 0)
	if err != nil {
		return 0, nil, s.errorf(0, "read count: %w", err)
	}
	return n, s.content[next:], nil
}

// readImports reads the imports: functions, tables, memories, globals and
// tags come first in their index spaces.
func readImports(s *section, m *module) error {
	b := s.content
	count, pos, err := readVecLen(b, 0)
	if err != nil {
		return s.errorf(0, "read count: %w", err)
	}
	if err := over(m.lim.Imports, uint64(count), "module has", "imports"); err != nil {
		return err
	}
	for i := uint32(0); i < count; i++ {
		entry := pos
		// Module and field names.
		for range 2 {
			start := pos
			if pos, err = skipName(b, pos); err != nil {
				return s.errorf(entry, "import %d: read name: %w", i, err)
			}
			n, after, _ := readU32(b, start)
			if err := checkReservedName(string(b[after : after+int(n)])); err != nil {
				return s.errorf(entry, "import %d: %w", i, err)
			}
		}
		if pos >= len(b) {
			return s.errorf(entry, "import %d: read kind: %w", i, errTruncated)
		}
		kind := b[pos]
		pos++
		switch kind {
		case kindFunc:
			var typ uint32
			if typ, pos, err = readU32(b, pos); err == nil {
				err = checkIndex("type", typ, uint64(m.types))
			}
			m.funcTypes = append(m.funcTypes, typ)
			m.importedFuncs++
		case kindTable:
			if pos, err = skipValType(b, pos); err == nil {
				pos, err = skipLimits(b, pos)
			}
			m.importedTables++
		case kindMemory:
			pos, err = skipLimits(b, pos)
			m.memories++
		case kindGlobal:
			if pos, err = skipValType(b, pos); err == nil {
				pos, err = skipBytes(b, pos, 1) // mutability
			}
			m.importedGlobals++
		case kindTag:
			if pos, err = skipBytes(b, pos, 1); err == nil { // attribute
				var typ uint32
				if typ, pos, err = readU32(b, pos); err == nil {
					err = checkIndex("type", typ, uint64(m.types))
				}
			}
			m.tags++
		default:
			return s.errorf(entry, "import %d: unknown kind %#x", i, kind)
		}
		if err != nil {
			return s.errorf(entry, "import %d: %w", i, err)
		}
	}
	if pos != len(b) {
		return s.errorf(pos, "%d bytes after the last import", len(b)-pos)
	}
	return nil
}

// checkFunctionTypes checks that every defined function's type index is in
// range, and records it. This is wazero's job, but wazero v1.12.0 checks it
// one function at a time while validating bodies, so a call to a later
// function with a bad type index panics (index out of range) inside
// CompileModule.
func checkFunctionTypes(s *section, m *module) error {
	b := s.content
	count, pos, err := readVecLen(b, 0)
	if err != nil {
		return s.errorf(0, "read count: %w", err)
	}
	if err := over(m.lim.Functions, uint64(m.importedFuncs)+uint64(count), "module has", "functions"); err != nil {
		return err
	}
	for i := uint32(0); i < count; i++ {
		start := pos
		var typ uint32
		if typ, pos, err = readU32(b, pos); err != nil {
			return s.errorf(start, "function %d: read type index: %w", uint64(m.importedFuncs)+uint64(i), err)
		}
		if typ >= m.types {
			return s.errorf(start, "function %d: type index %d out of range (%d types)", uint64(m.importedFuncs)+uint64(i), typ, m.types)
		}
		m.funcTypes = append(m.funcTypes, typ)
	}
	if pos != len(b) {
		return s.errorf(pos, "%d bytes after the last type index", len(b)-pos)
	}
	return nil
}

// readTables reads the defined tables and where their limits are, which
// Instrument may rewrite.
func readTables(s *section, m *module) error {
	b := s.content
	count, pos, err := readVecLen(b, 0)
	if err != nil {
		return s.errorf(0, "read count: %w", err)
	}
	m.definedTables = count
	for i := uint32(0); i < count; i++ {
		entry := pos
		init := false
		if pos < len(b) && b[pos] == 0x40 { // table with an initialiser
			if pos, err = skipBytes(b, pos, 2); err != nil {
				return s.errorf(entry, "table %d: %w", i, err)
			}
			init = true
		}
		if pos, err = skipValType(b, pos); err != nil {
			return s.errorf(entry, "table %d: %w", i, err)
		}
		t := tableLimits{start: pos}
		if pos, err = skipLimits(b, pos); err != nil {
			return s.errorf(entry, "table %d: %w", i, err)
		}
		t.end = pos
		t.hasMax = b[t.start]&0x01 != 0
		var next int
		t.min, next, _ = readU32(b, t.start+1)
		if t.hasMax {
			t.max, _, _ = readU32(b, next)
		}
		m.tableMax = append(m.tableMax, t)
		if init {
			if pos, err = checkConstExpr(b, pos, m, uint64(m.importedGlobals)); err != nil {
				return s.errorf(entry, "table %d: %w", i, err)
			}
		}
	}
	if pos != len(b) {
		return s.errorf(pos, "%d bytes after the last table", len(b)-pos)
	}
	return nil
}

// readVec reads a section that is one vector of entries: entry reads
// entry i from pos and returns where it ends, or an error that already
// names the entry. Bytes after the last entry are refused, naming what
// the entries are. It returns the number of entries.
func readVec(s *section, what string, entry func(i uint32, pos int) (int, error)) (uint32, error) {
	b := s.content
	count, pos, err := readVecLen(b, 0)
	if err != nil {
		return 0, s.errorf(0, "read count: %w", err)
	}
	for i := uint32(0); i < count; i++ {
		if pos, err = entry(i, pos); err != nil {
			return 0, err
		}
	}
	if pos != len(b) {
		return 0, s.errorf(pos, "%d bytes after the last %s", len(b)-pos, what)
	}
	return count, nil
}

// readMemories counts the defined memories.
func readMemories(s *section, m *module) error {
	count, err := readVec(s, "memory", func(i uint32, pos int) (int, error) {
		end, err := skipLimits(s.content, pos)
		if err != nil {
			return 0, s.errorf(end, "memory %d: %w", i, err)
		}
		return end, nil
	})
	m.memories += count
	return err
}

// readTags counts the defined tags and checks their types.
func readTags(s *section, m *module) error {
	b := s.content
	count, err := readVec(s, "tag", func(i uint32, entry int) (int, error) {
		pos, err := skipBytes(b, entry, 1) // attribute
		if err == nil {
			var typ uint32
			if typ, pos, err = readU32(b, pos); err == nil {
				err = checkIndex("type", typ, uint64(m.types))
			}
		}
		if err != nil {
			return 0, s.errorf(entry, "tag %d: %w", i, err)
		}
		return pos, nil
	})
	m.tags += count
	return err
}

// readGlobals reads the defined globals. An initialiser may read the
// globals before its own.
func readGlobals(s *section, m *module) error {
	b := s.content
	count, err := readVec(s, "global", func(i uint32, entry int) (int, error) {
		n := uint64(m.importedGlobals) + uint64(i)
		pos, err := skipValType(b, entry)
		if err == nil {
			if pos, err = skipBytes(b, pos, 1); err == nil { // mutability
				pos, err = checkConstExpr(b, pos, m, n)
			}
		}
		if err != nil {
			return 0, s.errorf(entry, "global %d: %w", n, err)
		}
		return pos, nil
	})
	m.definedGlobals = count
	return err
}

// checkExports checks that every export names something the module has,
// not what Instrument adds, under a name outside the reserved namespace.
func checkExports(s *section, m *module) error {
	b := s.content
	count, pos, err := readVecLen(b, 0)
	if err != nil {
		return s.errorf(0, "read count: %w", err)
	}
	if err := over(m.lim.Exports, uint64(count), "module has", "exports"); err != nil {
		return err
	}
	for i := uint32(0); i < count; i++ {
		entry := pos
		var n uint32
		if n, pos, err = readU32(b, pos); err == nil && uint64(n) > uint64(len(b)-pos) {
			err = errTruncated
		}
		if err != nil {
			return s.errorf(entry, "export %d: read name: %w", i, err)
		}
		name := string(b[pos : pos+int(n)])
		pos += int(n)
		if err := checkReservedName(name); err != nil {
			return fmt.Errorf("meter: export %d: %w", i, err)
		}
		if pos >= len(b) {
			return s.errorf(entry, "export %d: read kind: %w", i, errTruncated)
		}
		kind := b[pos]
		var idx uint32
		if idx, pos, err = readU32(b, pos+1); err != nil {
			return s.errorf(entry, "export %d: %w", i, err)
		}
		switch kind {
		case kindFunc:
			err = checkIndex("function", idx, m.funcs())
		case kindTable:
			err = checkIndex("table", idx, m.tables())
		case kindMemory:
			err = checkIndex("memory", idx, uint64(m.memories))
		case kindGlobal:
			err = checkIndex("global", idx, m.globals())
		case kindTag:
			err = checkIndex("tag", idx, uint64(m.tags))
		default:
			err = fmt.Errorf("unknown kind %#x", kind)
		}
		if err != nil {
			return s.errorf(entry, "export %d %q: %w", i, name, err)
		}
	}
	if pos != len(b) {
		return s.errorf(pos, "%d bytes after the last export", len(b)-pos)
	}
	return nil
}

// checkTotals checks the limits on index spaces, which imports and
// definitions share.
func (m *module) checkTotals() error {
	if err := over(m.lim.Tables, m.tables(), "module has", "tables"); err != nil {
		return err
	}
	if err := over(m.lim.Memories, uint64(m.memories), "module has", "memories"); err != nil {
		return err
	}
	return over(m.lim.Globals, m.globals(), "module has", "globals")
}

// readIndex reads the one number that is the start or data count
// section.
func readIndex(s *section, what string) (uint32, error) {
	idx, pos, err := readU32(s.content, 0)
	if err != nil {
		return 0, s.errorf(0, "read %s: %w", what, err)
	}
	if pos != len(s.content) {
		return 0, s.errorf(pos, "%d bytes after the %s", len(s.content)-pos, what)
	}
	return idx, nil
}

// appendTables appends a table section's content: count existing entries
// (rest, unchanged) followed by the yield table, an empty funcref table that
// cannot grow. table.grow by zero on it is the cheapest way for a guest to
// run Go code (see yieldInterval).
func appendTables(dst []byte, count uint32, rest []byte) []byte {
	dst = appendU32(dst, count+1) // Instrument checked this does not overflow.
	dst = append(dst, rest...)
	const (
		funcref = 0x70
		minMax  = 0x01
	)
	return append(dst, funcref, minMax, 0x00, 0x00)
}

// appendGlobals appends a global section's content: count existing entries
// (rest, unchanged) followed by the epoch, deadline and countdown globals,
// and the depth global if the stack is guarded.
func appendGlobals(dst []byte, count uint32, rest []byte, ix indices) []byte {
	added := uint32(3)
	if ix.stack != 0 {
		added++
	}
	dst = appendU32(dst, count+added) // Instrument checked this does not overflow.
	dst = append(dst, rest...)
	const (
		i32     = 0x7f
		i64     = 0x7e
		mutable = 0x01
		i32c    = 0x41
		i64c    = 0x42
		end     = 0x0b
	)
	dst = append(dst, i64, mutable, i64c, 0x00, end) // epoch: i64.const 0
	dst = append(dst, i64, mutable, i64c, 0x7f, end) // deadline: i64.const -1
	dst = append(dst, i32, mutable, i32c)            // countdown
	dst = appendS32(dst, yieldInterval)
	dst = append(dst, end)
	if ix.stack != 0 {
		dst = append(dst, i32, mutable, i32c, 0x00, end) // depth: i32.const 0
	}
	return dst
}

// appendExports appends an export section's content: count existing entries
// (rest, unchanged) and ours. checkExports has checked that no existing
// export has a name in our namespace.
func appendExports(dst []byte, count uint32, rest []byte, ix indices, m *module) ([]byte, error) {
	pos := 0
	for i := uint32(0); i < count; i++ {
		start := pos
		n, next, err := readU32(rest, pos)
		if err == nil && uint64(n) > uint64(len(rest)-next) {
			err = errTruncated
		}
		if err != nil {
			return nil, fmt.Errorf("meter: section export: export %d: read name: %w", i, err)
		}
		pos = next + int(n)
		if pos, err = skipBytes(rest, pos, 1); err == nil { // kind
			_, pos, err = readU32(rest, pos)
		}
		if err != nil {
			return nil, fmt.Errorf("meter: section export: export %d at entry offset %d: %w", i, start, err)
		}
	}
	if pos != len(rest) {
		return nil, fmt.Errorf("meter: section export: %d bytes after the last export", len(rest)-pos)
	}
	added := uint32(2)
	if m.hasStart {
		added++
	}
	if ix.stack != 0 {
		added++
	}
	if uint64(count)+uint64(added) > math.MaxUint32 {
		return nil, errors.New("meter: section export: too many exports")
	}

	dst = appendU32(dst, count+added)
	dst = append(dst, rest...)
	dst = appendExport(dst, ExportEpoch, kindGlobal, ix.epoch)
	dst = appendExport(dst, ExportDeadline, kindGlobal, ix.deadline)
	if ix.stack != 0 {
		dst = appendExport(dst, ExportDepth, kindGlobal, ix.depth)
	}
	if m.hasStart {
		dst = appendExport(dst, ExportStart, kindFunc, m.startFunc)
	}
	return dst, nil
}

func appendExport(dst []byte, name string, kind byte, idx uint32) []byte {
	dst = appendU32(dst, uint32(len(name)))
	dst = append(dst, name...)
	dst = append(dst, kind)
	return appendU32(dst, idx)
}

// appendSection appends a section with the given id and content. Callers
// ensure len(content) fits in a uint32.
func appendSection(dst []byte, id byte, content []byte) []byte {
	dst = append(dst, id)
	dst = appendU32(dst, uint32(len(content)))
	return append(dst, content...)
}

// errorf formats an error about this section; pos is an offset in its
// content.
func (s *section) errorf(pos int, format string, args ...any) error {
	return fmt.Errorf("meter: section %s at offset %#x: %w", sectionNames[s.id], s.offset+pos, fmt.Errorf(format, args...))
}
