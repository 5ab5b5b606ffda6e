package meter

// spillValues estimates, for the stack guard's frame charge, how many
// values of a function body, code (its instructions after the locals),
// beyond its parameters and locals, the compiler may give a spill slot.
// wazero's register allocator gives each spilled SSA value a slot of its
// own for the whole function, and spills what is live across a call and
// what does not fit in registers, so the estimate is the sum of
//
//   - the operand stack's maximum height (register pressure);
//   - at every call, the values on the operand stack below its arguments,
//     which are live across it;
//   - one per local.set and local.tee, each a new value of a local that
//     may be live across a later call.
//
// The height is an upper bound: each instruction's pushes and at most its
// pops, reset to what the enclosing block declares at else and end, never
// below the block's entry (code after a branch is unreachable, and its
// stack polymorphic). Values that merge at the end of a block or a loop
// header (phis) are not counted apart: they replace values counted here.
// It does not validate: malformed code yields some number, and
// instrumentBody reports the error.
func (m *module) spillValues(code []byte) uint64 {
	type frame struct{ entry, params, results int64 }
	ctl := []frame{{}}
	var h, peak, across, sets int64
	pop := func(n int64) {
		h -= n
		if e := ctl[len(ctl)-1].entry; h < e {
			h = e
		}
	}
	push := func(n int64) {
		h += n
		peak = max(peak, h)
	}
	typ := func(idx uint32) (params, results int64) {
		if uint64(idx) < uint64(len(m.typeParams)) {
			return int64(m.typeParams[idx]), int64(m.typeResults[idx])
		}
		return 0, 0
	}
	// blockType reads the block type at code[pos]: its params and results.
	blockType := func(pos int) (params, results int64) {
		if pos >= len(code) {
			return 0, 0
		}
		if code[pos] == 0x40 {
			return 0, 0
		}
		v, _, ok := readS33(code, pos)
		if ok && v >= 0 && v <= int64(^uint32(0)) {
			return typ(uint32(v))
		}
		return 0, 1
	}
	u32 := func(pos int) uint32 {
		v, _, _ := readU32(code, pos)
		return v
	}
	for pos := 0; pos < len(code); {
		start := pos
		_, next, err := skipInstruction(code, pos)
		if err != nil {
			break
		}
		pos = next
		switch op := code[start]; {
		case op == 0x02 || op == 0x03 || op == 0x04 || op == 0x1f: // block, loop, if, try_table
			if op == 0x04 {
				pop(1)
			}
			params, results := blockType(start + 1)
			pop(params)
			ctl = append(ctl, frame{entry: h, params: params, results: results})
			push(params)
		case op == 0x05: // else
			f := ctl[len(ctl)-1]
			h = f.entry
			push(f.params)
		case op == 0x0b: // end
			f := ctl[len(ctl)-1]
			if len(ctl) > 1 {
				ctl = ctl[:len(ctl)-1]
			}
			h = f.entry
			push(f.results)
		case op == 0x00, op == 0x08, op == 0x0a, op == 0x0c, op == 0x0f, op == 0x12, op == 0x13, op == 0x15:
			// unreachable, throw, throw_ref, br, return, tail calls:
			// what follows is unreachable.
			h = ctl[len(ctl)-1].entry
		case op == 0x0e: // br_table
			h = ctl[len(ctl)-1].entry
		case op == 0x10: // call
			f := u32(start + 1)
			if uint64(f) < uint64(len(m.funcTypes)) {
				params, results := typ(m.funcTypes[f])
				pop(params)
				across += h
				push(results)
			}
		case op == 0x11 || op == 0x14: // call_indirect, call_ref
			params, results := typ(u32(start + 1))
			pop(params + 1)
			across += h
			push(results)
		case op == 0x01: // nop
		case op == 0x21: // local.set: a new value of the local
			pop(1)
			sets++
		case op == 0x1a || op == 0x24 || op == 0x0d || op == 0xd6:
			// drop, local.set, global.set, br_if, br_on_non_null (at least one)
			pop(1)
		case op == 0x1b || op == 0x1c: // select
			pop(3)
			push(1)
		case op == 0x22: // local.tee
			pop(1)
			push(1)
			sets++
		case op == 0x20 || op == 0x23 || op == 0x3f || (op >= 0x41 && op <= 0x44) || op == 0xd0 || op == 0xd2:
			// local.get, global.get, memory.size, constants, ref.null, ref.func
			push(1)
		case op == 0x26 || (op >= 0x36 && op <= 0x3e): // table.set, stores
			pop(2)
		case op == 0xfc:
			sub := u32(start + 1)
			switch {
			case sub <= 0x07: // saturating truncations
				pop(1)
				push(1)
			case sub == 0x09 || sub == 0x0d: // data.drop, elem.drop
			case sub == 0x0f: // table.grow
				pop(2)
				push(1)
			case sub == 0x10: // table.size
				push(1)
			default: // memory and table init, copy, fill
				pop(3)
			}
		case op == 0xfd && start+1 < len(code) && code[start+1] == 0x0c: // v128.const
			push(1)
		case op == 0xfe && start+1 < len(code) && code[start+1] == 0x03: // atomic.fence
		case op >= 0x46 && op <= 0xa6 && !isUnary(op):
			// binary numeric operators and comparisons
			pop(2)
			push(1)
		default:
			// Unary operators, conversions, loads, local.tee, table.get,
			// memory.grow, ref tests, and the SIMD and atomic
			// instructions, which all pop at least one value and push at
			// most one.
			pop(1)
			push(1)
		}
	}
	return uint64(peak + across + sets)
}

// isUnary reports whether the numeric opcode op, in 0x45-0xc4, takes one
// operand: the tests (eqz), clz/ctz/popcnt and the float unary operators.
func isUnary(op byte) bool {
	switch {
	case op == 0x45, op == 0x50: // eqz
		return true
	case op >= 0x67 && op <= 0x69, op >= 0x79 && op <= 0x7b: // clz, ctz, popcnt
		return true
	case op >= 0x8b && op <= 0x91, op >= 0x99 && op <= 0x9f: // abs ... sqrt
		return true
	}
	return op >= 0xa7 // conversions
}
