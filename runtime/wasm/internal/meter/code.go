package meter

import (
	"fmt"
	"math"
)

// yieldInterval is how many checks a guest runs between two exits to Go.
//
// The epoch check alone is not enough. Go cannot preempt a goroutine while
// it runs wazero's compiled code (the preemption signal finds no Go code to
// stop at), so while a guest loops, a stop-the-world, which every garbage
// collection needs, waits for it, and every other goroutine waits for the
// stop-the-world, including the one that would move the epoch: the process
// freezes for good. So every yieldInterval checks the guest runs table.grow
// by zero on an empty table of its own, which wazero's compiler implements
// as an exit to Go code that calls (*TableInstance).Grow; that call is a
// preemption point, so a pending stop-the-world proceeds. An exit costs
// about 150 ns and a tight loop iteration about 1 ns, so at 4096 the exits
// add some 0.04 ns per check, and delay a stop-the-world by a few µs (more
// for loops with heavier bodies, in proportion).
const yieldInterval = 1 << 12

// indices are the indices of what Instrument adds, and the stack budget.
type indices struct {
	epoch, deadline, countdown uint32 // globals
	depth                      uint32 // global, when stack is set
	table                      uint32 // the yield table
	stack                      uint64 // Limits.Stack: 0 for no guard
}

// Engine stack estimate. wazero's compiler (v1.12.0, wazevo) gives each
// wasm function a native frame on its engine stack: return address and
// caller's frame pointer (16 bytes), a stack-bounds check slot (16), the
// callee-saved registers the function uses (16 bytes each, up to 5
// general and 8 vector registers on amd64: 208), the argument and result
// area of the calls it makes, and one spill slot (8 bytes, 16 for a v128)
// per value the register allocator spills. frameBytes charges the fixed
// part in full and 16 bytes per parameter and local, each of which is a
// value that may be spilled, for arguments passed on the stack and for
// the copies a merge of control flow makes, and as much per other value
// the compiler may spill (spillValues). TestStackEstimate measures real
// frames against it.
const (
	frameBase     = 256
	framePerValue = 16
	// maxStack caps Limits.Stack so that depth plus one frame never
	// overflows an i32: a frame is charged at most frameBase +
	// framePerValue times the locals (maxLocals) and the operand stack
	// (fewer values than the body has bytes, Limits.BodySize), and a
	// function whose frame is charged more than maxStack is refused.
	maxStack = 1 << 30
)

// frameBytes is the engine stack charged for one frame of a function
// that may spill the given number of values: parameters, locals and
// spillValues.
func frameBytes(values uint64) uint64 {
	return frameBase + framePerValue*values
}

// appendEnter appends the code that runs at function entry when the stack
// is guarded, after the check:
//
//	global.get $depth
//	i32.const frame
//	i32.add
//	local.tee $scratch    ;; saves reading the global again
//	global.set $depth
//	local.get $scratch
//	i32.const stack
//	i32.gt_u
//	if
//	  unreachable
//	end
//
// A trap leaves depth above the limit, which tells the host why it
// trapped: no call that runs the guest's own code has depth above it.
func appendEnter(dst []byte, ix indices, frame uint64, scratch uint32) []byte {
	const (
		unreachable = 0x00
		ifOp        = 0x04
		end         = 0x0b
		localGet    = 0x20
		localTee    = 0x22
		globalGet   = 0x23
		globalSet   = 0x24
		i32Const    = 0x41
		i32GtU      = 0x4b
		i32Add      = 0x6a
		emptyBlock  = 0x40
	)
	dst = append(dst, globalGet)
	dst = appendU32(dst, ix.depth)
	dst = append(dst, i32Const)
	dst = appendS32(dst, int32(frame))
	dst = append(dst, i32Add, localTee)
	dst = appendU32(dst, scratch)
	dst = append(dst, globalSet)
	dst = appendU32(dst, ix.depth)
	dst = append(dst, localGet)
	dst = appendU32(dst, scratch)
	dst = append(dst, i32Const)
	dst = appendS32(dst, int32(min(ix.stack, maxStack)))
	return append(dst, i32GtU, ifOp, emptyBlock, unreachable, end)
}

// appendLeave appends the code that runs on every way out of a function
// that does not unwind it (the end of its body, which every return and
// branch to the function's label now reaches, and before a tail call):
//
//	global.get $depth
//	i32.const frame
//	i32.sub
//	global.set $depth
func appendLeave(dst []byte, ix indices, frame uint64) []byte {
	const (
		globalGet = 0x23
		globalSet = 0x24
		i32Const  = 0x41
		i32Sub    = 0x6b
	)
	dst = append(dst, globalGet)
	dst = appendU32(dst, ix.depth)
	dst = append(dst, i32Const)
	dst = appendS32(dst, int32(frame))
	dst = append(dst, i32Sub, globalSet)
	return appendU32(dst, ix.depth)
}

// appendWrap appends, after appendEnter, the start of the block that
// wraps the original body when the stack is guarded:
//
//	local.get 0 ... local.get params-1
//	block (type typ)  ;; the function's own type: params -> results
//	  drop ... drop   ;; params times
//
// The body's instructions follow unchanged but for return (see
// instrumentBody), and the block is closed before appendLeave and the
// function's end. So every branch to the function's label, which acts as
// a return, reaches appendLeave: it now targets this block, whose label
// takes its place, and all other labels keep their indices. The block
// takes the function's own type so that it yields the function's results
// whatever they are; that type also takes the parameters, which the
// block receives and drops at once (the compiler emits nothing for it).
func appendWrap(dst []byte, typ, params uint32) []byte {
	const (
		block    = 0x02
		drop     = 0x1a
		localGet = 0x20
	)
	for i := uint32(0); i < params; i++ {
		dst = append(dst, localGet)
		dst = appendU32(dst, i)
	}
	dst = append(dst, block)
	dst = appendS32(dst, int32(typ)) // a type index is an s33: positive here
	for i := uint32(0); i < params; i++ {
		dst = append(dst, drop)
	}
	return dst
}

// appendCheck appends the code that runs at every function entry and loop
// header:
//
//	;; trap once the epoch reaches the deadline
//	global.get $epoch
//	global.get $deadline
//	i64.ge_u
//	if
//	  unreachable
//	end
//	;; every yieldInterval checks, let Go stop the world (see yieldInterval)
//	global.get $countdown
//	i32.const 1
//	i32.sub
//	global.set $countdown
//	global.get $countdown
//	i32.const 0
//	i32.le_s
//	if
//	  ref.null func
//	  i32.const 0
//	  table.grow $yield
//	  drop
//	  i32.const yieldInterval
//	  global.set $countdown
//	end
//
// The countdown is compared with <= 0 rather than == 0 because a bulk
// instruction charges it by more than one (see appendBulkCharge).
//
// Each if has the empty block type and is closed before the next original
// instruction, so the code changes neither the operand stack nor the depth
// of any original branch.
func appendCheck(dst []byte, ix indices) []byte {
	const (
		unreachable = 0x00
		ifOp        = 0x04
		end         = 0x0b
		drop        = 0x1a
		globalGet   = 0x23
		globalSet   = 0x24
		i32Const    = 0x41
		i32LeS      = 0x4c
		i64GeU      = 0x5a
		i32Sub      = 0x6b
		refNull     = 0xd0
		funcref     = 0x70
		emptyBlock  = 0x40
		miscPrefix  = 0xfc
		tableGrow   = 0x0f
	)
	dst = append(dst, globalGet)
	dst = appendU32(dst, ix.epoch)
	dst = append(dst, globalGet)
	dst = appendU32(dst, ix.deadline)
	dst = append(dst, i64GeU, ifOp, emptyBlock, unreachable, end)

	dst = append(dst, globalGet)
	dst = appendU32(dst, ix.countdown)
	dst = append(dst, i32Const, 0x01, i32Sub, globalSet)
	dst = appendU32(dst, ix.countdown)
	dst = append(dst, globalGet)
	dst = appendU32(dst, ix.countdown)
	dst = append(dst, i32Const, 0x00, i32LeS, ifOp, emptyBlock)
	dst = append(dst, refNull, funcref, i32Const, 0x00, miscPrefix, tableGrow)
	dst = appendU32(dst, ix.table)
	dst = append(dst, drop, i32Const)
	dst = appendS32(dst, yieldInterval)
	dst = append(dst, globalSet)
	dst = appendU32(dst, ix.countdown)
	return append(dst, end)
}

// bulkShift converts the length operand of a bulk instruction into units
// charged to the countdown: one per 1<<bulkShift bytes (or table
// elements). A check stands for one loop iteration, a nanosecond or two of
// work; memset and memmove move some 16-64 bytes in that time, so 64 bytes
// per unit keeps the time between two exits to Go, in a guest that runs
// bulk instructions, within a few times what it is in a tight loop, and
// the exits cost under 1% of a large copy (one ~150 ns exit per
// 4096 << 6 = 256 KiB).
const bulkShift = 6

// appendBulkCharge appends the code that runs before every bulk
// instruction, whose length operand is on top of the stack:
//
//	local.tee $scratch    ;; the length stays on the stack
//	global.get $countdown
//	local.get $scratch
//	i32.const bulkShift
//	i32.shr_u
//	i32.sub
//	global.set $countdown
//
// followed by the check (appendCheck), which traps if the deadline has
// passed and exits to Go once the countdown is spent. So a long series of
// large fills stops at the deadline and lets a stop-the-world in before
// each fill; a single instruction still runs to its end, which bounds the
// wait by the time to fill or copy the module's largest memory or table
// (memory_limit, and the table budget).
func appendBulkCharge(dst []byte, ix indices, scratch uint32) []byte {
	const (
		localGet  = 0x20
		localTee  = 0x22
		globalGet = 0x23
		globalSet = 0x24
		i32Const  = 0x41
		i32Sub    = 0x6b
		i32ShrU   = 0x76
	)
	dst = append(dst, localTee)
	dst = appendU32(dst, scratch)
	dst = append(dst, globalGet)
	dst = appendU32(dst, ix.countdown)
	dst = append(dst, localGet)
	dst = appendU32(dst, scratch)
	dst = append(dst, i32Const, bulkShift, i32ShrU, i32Sub, globalSet)
	return appendU32(dst, ix.countdown)
}

// instrumentCode returns the code section's content with the check
// inserted at the start of every body and after every loop's block type,
// and a charge before every bulk instruction. Function indices in errors
// count imported functions first, as in the module's function index space.
func instrumentCode(s *section, m *module, ix indices) ([]byte, error) {
	b := s.content
	count, pos, err := readVecLen(b, 0)
	if err != nil {
		return nil, s.errorf(0, "read count: %w", err)
	}
	if defined := uint64(len(m.funcTypes)) - uint64(m.importedFuncs); uint64(count) != defined {
		return nil, s.errorf(0, "%d function bodies for %d defined functions", count, defined)
	}
	check := appendCheck(nil, ix)
	out := make([]byte, 0, len(b)+len(b)/8+16)
	out = append(out, b[:pos]...)
	var body []byte // reused across functions
	for i := uint32(0); i < count; i++ {
		fn := uint64(m.importedFuncs) + uint64(i)
		size, next, err := readU32(b, pos)
		if err != nil {
			return nil, fmt.Errorf("meter: function %d at offset %#x: read body size: %w", fn, s.offset+pos, err)
		}
		if uint64(size) > uint64(len(b)-next) {
			return nil, fmt.Errorf("meter: function %d at offset %#x: body size %d exceeds the %d bytes left in the code section", fn, s.offset+pos, size, len(b)-next)
		}
		if err := over(m.lim.BodySize, uint64(size), fmt.Sprintf("function %d is", fn), "bytes"); err != nil {
			return nil, err
		}
		end := next + int(size)
		f := fnScope{m: m, fn: fn, locals: uint64(m.typeParams[m.funcTypes[fn]])}
		body, err = f.instrumentBody(body[:0], b[next:end], check, ix, s.offset+next)
		if err != nil {
			return nil, err
		}
		if uint64(len(body)) > math.MaxUint32 {
			return nil, fmt.Errorf("meter: function %d: instrumented body exceeds 4 GiB", fn)
		}
		out = appendU32(out, uint32(len(body)))
		out = append(out, body...)
		pos = end
	}
	if pos != len(b) {
		return nil, s.errorf(pos, "%d bytes after the last function body", len(b)-pos)
	}
	return out, nil
}

// instrumentBody appends to dst the function body with check inserted after
// the locals and after each loop's block type, and a charge before each
// bulk instruction. base is the offset of body in the input, for errors.
//
// It decodes every instruction, because immediates vary in length and a
// byte 0x03 inside one is not a loop, and checks every index in it against
// the module's own index spaces (see validate.go). It checks structure
// (every opcode known, immediates complete, blocks balanced) and indices;
// types are left to wazero's validator.
func (f *fnScope) instrumentBody(dst, body, check []byte, ix indices, base int) ([]byte, error) {
	fn, lim := f.fn, f.m.lim
	fail := func(pos int, err error) error {
		return fmt.Errorf("meter: function %d: %w at offset %#x", fn, err, base+pos)
	}

	// Locals: a vector of (count, value type).
	groups, pos, err := readVecLen(body, 0)
	if err != nil {
		return nil, fail(0, fmt.Errorf("read locals: %w", err))
	}
	for i := uint32(0); i < groups; i++ {
		n, next, err := readU32(body, pos)
		if err != nil {
			return nil, fail(pos, fmt.Errorf("read locals: %w", err))
		}
		f.locals += uint64(n)
		if err := over(lim.Locals, f.locals, fmt.Sprintf("function %d has", fn), "locals"); err != nil {
			return nil, err
		}
		if f.locals > maxLocals {
			return nil, fail(pos, fmt.Errorf("more than %d locals", maxLocals))
		}
		if pos, err = skipValType(body, next); err != nil {
			return nil, fail(next, fmt.Errorf("read locals: %w", err))
		}
	}
	start0 := len(dst)
	dst = append(dst, body[:pos]...)
	localsEnd := len(dst)
	dst = append(dst, check...)
	guard := ix.stack != 0
	var frame uint64
	if guard {
		frame = frameBytes(f.locals + f.m.spillValues(body[pos:]))
		if frame > maxStack {
			return nil, fail(0, fmt.Errorf("frame of %d bytes is too large", frame))
		}
		typ := f.m.funcTypes[fn]
		if typ > math.MaxInt32 {
			return nil, fail(0, fmt.Errorf("type index %d too large", typ))
		}
		dst = appendEnter(dst, ix, frame, uint32(f.locals))
		dst = appendWrap(dst, typ, f.m.typeParams[typ])
	}

	// scratch is the local that a bulk instruction's length, and the
	// stack guard's new depth at entry, are saved in: an i32 added after
	// the function's own locals when either needs it.
	scratch := uint32(f.locals)
	weight, bulk := uint64(weightEntry), uint64(0)
	copied := pos // body[:copied] is in dst
	depth := 1    // the function body is a block closed by the final end
	for pos < len(body) {
		start := pos
		kind, next, err := skipInstruction(body, pos)
		if err != nil {
			return nil, fail(start, err)
		}
		if err := f.checkInstruction(body, start, depth); err != nil {
			return nil, fail(start, err)
		}
		pos = next
		if guard {
			switch body[start] {
			case 0x0f: // return: to the wrapping block, at label depth-1
				const br = 0x0c
				dst = append(dst, body[copied:start]...)
				dst = append(dst, br)
				dst = appendU32(dst, uint32(depth-1))
				copied = pos
			case 0x12, 0x13, 0x15: // return_call, return_call_indirect, return_call_ref
				dst = append(dst, body[copied:start]...)
				dst = appendLeave(dst, ix, frame)
				copied = start
			}
		}
		switch kind {
		case immBlock, immTryTable, immLoop:
			if kind == immLoop {
				dst = append(dst, body[copied:pos]...)
				dst = append(dst, check...)
				copied = pos
			}
			depth++
			if err := over(lim.Depth, uint64(depth), fmt.Sprintf("function %d nests blocks", fn), "deep"); err != nil {
				return nil, err
			}
			if kind == immLoop {
				weight += weightLoop
			} else {
				weight += weightBlock
			}
			if err := f.checkWeight(weight); err != nil {
				return nil, err
			}
		case immMisc:
			if !isBulk(body, start) {
				break
			}
			bulk++
			weight += weightBulk
			if err := f.checkWeight(weight); err != nil {
				return nil, err
			}
			dst = append(dst, body[copied:start]...)
			dst = appendBulkCharge(dst, ix, scratch)
			dst = append(dst, check...)
			copied = start
		case immEnd:
			depth--
			if depth == 0 {
				if pos != len(body) {
					return nil, fail(start, fmt.Errorf("function ends with %d bytes left in its body", len(body)-pos))
				}
				if guard {
					const end = 0x0b
					dst = append(dst, body[copied:start]...)
					dst = append(dst, end) // the wrapping block
					dst = appendLeave(dst, ix, frame)
					dst = append(dst, end)
				} else {
					dst = append(dst, body[copied:]...)
				}
				if bulk > 0 || guard {
					dst = addScratchLocal(dst, start0, localsEnd, groups)
				}
				f.m.cost += weight * weight
				if err := over(lim.BlockCost, f.m.cost, "functions have a compile cost (blocks squared) of", ""); err != nil {
					return nil, err
				}
				return dst, nil
			}
		}
	}
	return nil, fail(len(body), fmt.Errorf("body ends inside %d unclosed blocks", depth))
}

// checkWeight checks the weighted blocks of the function so far against
// Limits.Blocks.
func (f *fnScope) checkWeight(weight uint64) error {
	return over(f.m.lim.Blocks, weight, fmt.Sprintf("function %d has", f.fn), "weighted blocks (loops count 4, bulk instructions 6)")
}

// isBulk reports whether the 0xfc instruction at b[pos] is a bulk memory
// or table instruction whose cost grows with its length operand:
// memory.init, memory.copy, memory.fill, table.init, table.copy or
// table.fill.
func isBulk(b []byte, pos int) bool {
	sub, _, err := readU32(b, pos+1)
	if err != nil {
		return false
	}
	switch sub {
	case 0x08, 0x0a, 0x0b, 0x0c, 0x0e, 0x11:
		return true
	}
	return false
}

// addScratchLocal rewrites the body at dst[start:] to declare one more
// local, an i32, after the function's own: dst[start:localsEnd] is the
// original locals vector, of groups groups.
func addScratchLocal(dst []byte, start, localsEnd int, groups uint32) []byte {
	const i32 = 0x7f
	_, after, _ := readU32(dst, start) // the groups count, as read before
	head := appendU32(nil, groups+1)
	head = append(head, dst[after:localsEnd]...)
	head = append(head, 0x01, i32)
	rest := dst[localsEnd:]
	out := make([]byte, 0, len(dst)-start+len(head))
	out = append(out, head...)
	out = append(out, rest...)
	return append(dst[:start], out...)
}

// skipInstruction decodes the instruction at b[pos] and returns the kind of
// its immediates and the position after it.
func skipInstruction(b []byte, pos int) (kind uint8, next int, err error) {
	op := b[pos]
	kind = opImmediates[op]
	next = pos + 1
	switch kind {
	case immNone, immEnd:
	case immU32:
		next = skipLEB(b, next, 5)
	case immU32x2:
		if next = skipLEB(b, next, 5); next >= 0 {
			next = skipLEB(b, next, 5)
		}
	case immMemarg:
		next = skipMemarg(b, next)
	case immI64:
		next = skipLEB(b, next, 10)
	case immF32:
		next = skipFixed(b, next, 4)
	case immF64:
		next = skipFixed(b, next, 8)
	case immBlock, immLoop:
		next = skipBlockType(b, next)
	case immTryTable:
		next = skipTryTable(b, next)
	case immBrTable:
		next = skipBrTable(b, next)
	case immSelectT:
		next = skipSelectTypes(b, next)
	case immHeapType:
		next = skipLEB(b, next, 5)
	case immMisc:
		next, err = skipMisc(b, next)
	case immSIMD:
		next, err = skipSIMD(b, next)
	case immAtomic:
		next, err = skipAtomic(b, next)
	default:
		return kind, pos, fmt.Errorf("unknown opcode 0x%02x", op)
	}
	if err != nil {
		return kind, pos, err
	}
	if next < 0 {
		return kind, pos, fmt.Errorf("truncated or malformed immediate of opcode 0x%02x", op)
	}
	return kind, next, nil
}

// Immediate kinds of the one-byte opcodes.
const (
	immInvalid  = iota // not an opcode wazero v1.12.0 accepts
	immNone            // no immediate
	immU32             // one index or depth (LEB128)
	immU32x2           // two indices: call_indirect, return_call_indirect
	immMemarg          // align and offset
	immI64             // i64.const (i32.const uses immU32: same 5-byte limit)
	immF32             // 4 bytes
	immF64             // 8 bytes
	immBlock           // block, if: block type
	immLoop            // loop: block type, then the check goes in
	immTryTable        // block type and catch clauses
	immEnd             // end
	immBrTable         // vector of depths and a default
	immSelectT         // vector of value types
	immHeapType        // ref.null
	immMisc            // 0xfc prefix
	immSIMD            // 0xfd prefix
	immAtomic          // 0xfe prefix
)

// opImmediates maps each one-byte opcode to its immediate kind. The set is
// what wazero v1.12.0's validator accepts (internal/wasm/func_validation.go):
// MVP, sign extension, reference types, multi-value, tail calls, typed
// function references and exception handling (try_table, throw, throw_ref;
// not the legacy try/catch/delegate/rethrow, which wazero rejects).
var opImmediates = func() (t [256]uint8) {
	set := func(kind uint8, ops ...byte) {
		for _, op := range ops {
			t[op] = kind
		}
	}
	span := func(kind uint8, from, to byte) {
		for op := int(from); op <= int(to); op++ {
			t[op] = kind
		}
	}
	set(immNone,
		0x00, // unreachable
		0x01, // nop
		0x05, // else
		0x0a, // throw_ref
		0x0f, // return
		0x1a, // drop
		0x1b, // select
		0xd1, // ref.is_null
		0xd4, // ref.as_non_null
	)
	span(immNone, 0x45, 0xc4) // numeric, conversions, sign extension
	set(immBlock, 0x02, 0x04)
	set(immLoop, 0x03)
	set(immEnd, 0x0b)
	set(immTryTable, 0x1f)
	set(immU32,
		0x08,       // throw tag
		0x0c, 0x0d, // br, br_if
		0x10,       // call
		0x12,       // return_call
		0x14, 0x15, // call_ref, return_call_ref (type index)
		0x25, 0x26, // table.get, table.set
		0x3f, 0x40, // memory.size, memory.grow (memory index)
		0x41,       // i32.const: signed, but the length rule is the same
		0xd2,       // ref.func
		0xd5, 0xd6, // br_on_null, br_on_non_null
	)
	span(immU32, 0x20, 0x24) // local.get/set/tee, global.get/set
	set(immU32x2, 0x11, 0x13)
	span(immMemarg, 0x28, 0x3e)
	set(immI64, 0x42)
	set(immF32, 0x43)
	set(immF64, 0x44)
	set(immBrTable, 0x0e)
	set(immSelectT, 0x1c)
	set(immHeapType, 0xd0)
	set(immMisc, 0xfc)
	set(immSIMD, 0xfd)
	set(immAtomic, 0xfe)
	return t
}()

// skipFixed skips n immediate bytes, or returns -1.
func skipFixed(b []byte, pos, n int) int {
	if n > len(b)-pos {
		return -1
	}
	return pos + n
}

// skipMemarg skips an alignment and an offset. wazero supports neither
// multiple memories nor 64-bit offsets, so both are u32.
func skipMemarg(b []byte, pos int) int {
	if pos = skipLEB(b, pos, 5); pos < 0 {
		return -1
	}
	return skipLEB(b, pos, 5)
}

// skipBlockType skips a block type: 0x40 (empty), a value type, or a
// type index as a signed 33-bit number. Reference types 0x63 and 0x64 (-29
// and -28) are followed by a heap type.
func skipBlockType(b []byte, pos int) int {
	if pos < len(b) {
		switch b[pos] {
		case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f, 0x69:
			return pos + 1 // the common cases, in one byte
		}
	}
	v, pos, ok := readS33(b, pos)
	if !ok {
		return -1
	}
	if v == -29 || v == -28 {
		return skipLEB(b, pos, 5)
	}
	return pos
}

// skipTryTable skips try_table's block type and catch clauses.
func skipTryTable(b []byte, pos int) int {
	if pos = skipBlockType(b, pos); pos < 0 {
		return -1
	}
	n, pos, err := readVecLen(b, pos)
	if err != nil {
		return -1
	}
	for i := uint32(0); i < n; i++ {
		if pos >= len(b) {
			return -1
		}
		kind := b[pos]
		pos++
		switch kind {
		case 0x00, 0x01: // catch, catch_ref: tag and label
			if pos = skipLEB(b, pos, 5); pos < 0 {
				return -1
			}
			pos = skipLEB(b, pos, 5)
		case 0x02, 0x03: // catch_all, catch_all_ref: label
			pos = skipLEB(b, pos, 5)
		default:
			return -1
		}
		if pos < 0 {
			return -1
		}
	}
	return pos
}

// skipBrTable skips br_table's vector of depths and its default depth.
func skipBrTable(b []byte, pos int) int {
	n, pos, err := readVecLen(b, pos)
	if err != nil {
		return -1
	}
	for i := uint64(0); i <= uint64(n); i++ {
		if pos = skipLEB(b, pos, 5); pos < 0 {
			return -1
		}
	}
	return pos
}

// skipSelectTypes skips typed select's vector of value types.
func skipSelectTypes(b []byte, pos int) int {
	n, pos, err := readVecLen(b, pos)
	if err != nil {
		return -1
	}
	for i := uint32(0); i < n; i++ {
		if pos, err = skipValType(b, pos); err != nil {
			return -1
		}
	}
	return pos
}

// skipMisc skips a 0xfc instruction after the prefix: saturating
// conversions (0-7), bulk memory (8-14) and table operations (15-17). The
// sub-opcode is an unsigned LEB128 number.
func skipMisc(b []byte, pos int) (int, error) {
	op, pos, err := readU32(b, pos)
	if err != nil {
		return -1, nil
	}
	switch {
	case op <= 0x07: // i32.trunc_sat_f32_s ... i64.trunc_sat_f64_u
		return pos, nil
	case op == 0x09, op == 0x0b, op == 0x0d, op >= 0x0f && op <= 0x11:
		// data.drop, memory.fill, elem.drop, table.grow/size/fill
		return skipLEB(b, pos, 5), nil
	case op == 0x08, op == 0x0a, op == 0x0c, op == 0x0e:
		// memory.init, memory.copy, table.init, table.copy
		if pos = skipLEB(b, pos, 5); pos < 0 {
			return -1, nil
		}
		return skipLEB(b, pos, 5), nil
	default:
		return -1, fmt.Errorf("unknown opcode 0xfc 0x%02x", op)
	}
}

// SIMD immediate kinds.
const (
	simdInvalid    = iota
	simdNone       // no immediate
	simdMemarg     // loads and stores
	simdMemargLane // load and store lane: memarg, then a lane byte
	simdLane       // extract and replace lane: a lane byte
	simdBytes16    // v128.const, i8x16.shuffle
)

// simdImmediates maps each 0xfd sub-opcode to its immediate kind. The set
// is wazero v1.12.0's (internal/wasm/instruction.go): the final SIMD
// proposal, without relaxed SIMD. The gaps are opcodes the proposal
// reserved or dropped.
var simdImmediates = func() (t [256]uint8) {
	for op := 0x0e; op <= 0xff; op++ {
		t[op] = simdNone
	}
	for _, op := range []int{0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb,
		0xc2, 0xc5, 0xc6, 0xcf, 0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee} {
		t[op] = simdInvalid
	}
	for op := 0x00; op <= 0x0b; op++ { // v128.load* and v128.store
		t[op] = simdMemarg
	}
	t[0x5c], t[0x5d] = simdMemarg, simdMemarg // v128.load32_zero, v128.load64_zero
	for op := 0x54; op <= 0x5b; op++ {        // v128.load*_lane, v128.store*_lane
		t[op] = simdMemargLane
	}
	for op := 0x15; op <= 0x22; op++ { // *.extract_lane*, *.replace_lane
		t[op] = simdLane
	}
	t[0x0c], t[0x0d] = simdBytes16, simdBytes16 // v128.const, i8x16.shuffle
	return t
}()

// skipSIMD skips a 0xfd instruction after the prefix. The sub-opcode is an
// unsigned LEB128 number below 256, so it takes one byte, or two with 0x01
// second for 0x80 and up. wazero reads only the first byte and then takes
// that 0x01 for a nop, so we reject any other encoding to decode exactly
// the instructions wazero sees.
func skipSIMD(b []byte, pos int) (int, error) {
	if pos >= len(b) {
		return -1, nil
	}
	op := b[pos]
	pos++
	if op >= 0x80 {
		if pos >= len(b) {
			return -1, nil
		}
		if b[pos] != 0x01 {
			if v, _, err := readU32(b, pos-1); err == nil {
				return -1, fmt.Errorf("unknown opcode 0xfd 0x%02x", v)
			}
			return -1, nil
		}
		pos++
	}
	switch simdImmediates[op] {
	case simdNone:
		return pos, nil
	case simdMemarg:
		return skipMemarg(b, pos), nil
	case simdMemargLane:
		if pos = skipMemarg(b, pos); pos < 0 {
			return -1, nil
		}
		return skipFixed(b, pos, 1), nil
	case simdLane:
		return skipFixed(b, pos, 1), nil
	case simdBytes16:
		return skipFixed(b, pos, 16), nil
	default:
		return -1, fmt.Errorf("unknown opcode 0xfd 0x%02x", op)
	}
}

// skipAtomic skips a 0xfe instruction (threads) after the prefix. All take
// a memarg except atomic.fence, which takes one reserved byte. wazero reads
// the sub-opcode as one byte; all are below 0x80.
func skipAtomic(b []byte, pos int) (int, error) {
	if pos >= len(b) {
		return -1, nil
	}
	op := b[pos]
	pos++
	switch {
	case op == 0x03: // atomic.fence
		return skipFixed(b, pos, 1), nil
	case op <= 0x02, op >= 0x10 && op <= 0x4e: // notify, wait, loads, stores, rmw
		return skipMemarg(b, pos), nil
	default:
		return -1, fmt.Errorf("unknown opcode 0xfe 0x%02x", op)
	}
}
