package e2e

import "bytes"

// The modules of this file are too large to commit (up to 700 KB each) and
// simple to describe, so the suite builds them at test time with a minimal
// WebAssembly binary encoder: one memory, the three exports every moat
// module needs, and a moat_authorize whose body is generated.

// bulkOp is the instruction a bulk-memory bomb repeats.
type bulkOp int

const (
	bulkFill bulkOp = iota
	bulkCopy
	bulkTableFill
)

// wasm opcodes used below.
const (
	opBlock    = 0x02
	opIf       = 0x04
	opEnd      = 0x0b
	opLocalGet = 0x20
	opLocalSet = 0x21
	opI32Load  = 0x28
	opI32Const = 0x41
	opI32Eqz   = 0x45
	opI32And   = 0x71
	opI32Eq    = 0x46
	opI32GeU   = 0x4f
	opI32Add   = 0x6a
	opPrefixFC = 0xfc
	opMemFill  = 0x0b // after 0xfc
	opMemCopy  = 0x0a // after 0xfc
	opTabFill  = 0x11 // after 0xfc
	opRefNull  = 0xd0
	funcref    = 0x70
	blockVoid  = 0x40
)

func uleb(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func sleb(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func i32Const(b []byte, v int32) []byte { return sleb(append(b, opI32Const), int64(v)) }

func section(out []byte, id byte, content []byte) []byte {
	out = append(out, id)
	out = uleb(out, uint64(len(content)))
	return append(out, content...)
}

func name(b []byte, s string) []byte { return append(uleb(b, uint64(len(s))), s...) }

// genModule returns a moat authz module with pages of memory whose
// moat_authorize (one i32 parameter, the request length, and one i32 local)
// runs body, which must leave an i32 verdict on the stack.
func genModule(pages int, body []byte) []byte { return genModuleTable(pages, 0, body) }

// genModuleTable is genModule with a funcref table of tableMin elements
// (none when 0).
func genModuleTable(pages, tableMin int, body []byte) []byte {
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	// types: 0 () -> (), 1 (i32) -> i32
	out = section(out, 1, []byte{0x02, 0x60, 0x00, 0x00, 0x60, 0x01, 0x7f, 0x01, 0x7f})
	// functions: abi, buffer, authorize
	out = section(out, 3, []byte{0x03, 0x00, 0x01, 0x01})
	if tableMin > 0 {
		out = section(out, 4, uleb([]byte{0x01, funcref, 0x00}, uint64(tableMin)))
	}
	// memory: min pages, no maximum
	out = section(out, 5, uleb([]byte{0x01, 0x00}, uint64(pages)))
	var exp []byte
	exp = append(exp, 0x04)
	exp = append(name(exp, "memory"), 0x02, 0x00)
	exp = append(name(exp, "moat_abi_v1"), 0x00, 0x00)
	exp = append(name(exp, "moat_buffer"), 0x00, 0x01)
	exp = append(name(exp, "moat_authorize"), 0x00, 0x02)
	out = section(out, 7, exp)

	var code []byte
	code = append(code, 0x03)
	fn := func(f []byte) { code = append(uleb(code, uint64(len(f))), f...) }
	fn([]byte{0x00, opEnd})                                      // moat_abi_v1
	fn(append(i32Const([]byte{0x00}, 1024), opEnd))              // moat_buffer
	fn(append(append([]byte{0x01, 0x01, 0x7f}, body...), opEnd)) // moat_authorize: one i32 local
	return section(out, 10, code)
}

// evilPrefix is the body of `(if (i32.eqz $evil) (then (return ignore)))`:
// requests of users whose name does not start with "evil" are ignored
// (field 1, username: descriptor at 1024 + 16 + 8).
func evilPrefix() []byte {
	var b []byte
	b = i32Const(b, 1052)
	b = append(b, opI32Load, 0x02, 0x00)
	b = i32Const(b, 4)
	b = append(b, opI32GeU)
	b = i32Const(b, 1024)
	b = i32Const(b, 1048)
	b = append(b, opI32Load, 0x02, 0x00, opI32Add, opI32Load, 0x02, 0x00)
	b = i32Const(b, 0x6c697665) // "evil"
	b = append(b, opI32Eq, opI32And, opI32Eqz, opIf, blockVoid)
	b = i32Const(b, 3)
	b = append(b, 0x0f, opEnd) // return
	return b
}

// genBulk: for an evil request, 200 bulk instructions over the whole
// 16 MiB memory (memory.copy: half of it), or 600 over a table of 256Ki
// elements (2 MiB, all that a 16MiB memory_limit allows for tables),
// in straight-line code (no loop, no call: no point where the meter checks
// the deadline or lets Go stop the world): 3.2 GB of memset, 1.6 GB of
// memmove or 150Mi table elements: a second or more (the table: a tenth
// of that, still well past the deadline), then allow.
func genBulk(op bulkOp) func() []byte {
	return func() []byte {
		// elems is all a 16MiB memory_limit allows tables (limit/64).
		const pages, elems = 256, 1 << 18
		n := 200
		if op == bulkTableFill {
			n = 600 // within the load limit of 4,096 weighted blocks (6 each)
		}
		b := evilPrefix()
		for range n {
			switch op {
			case bulkFill:
				b = i32Const(b, 0)
				b = i32Const(b, 0x5a)
				b = i32Const(b, pages*65536)
				b = append(b, opPrefixFC, opMemFill, 0x00)
			case bulkCopy:
				b = i32Const(b, 0)
				b = i32Const(b, 8*65536)
				b = i32Const(b, pages/2*65536)
				b = append(b, opPrefixFC, opMemCopy, 0x00, 0x00)
			case bulkTableFill:
				b = i32Const(b, 0)
				b = append(b, opRefNull, funcref)
				b = i32Const(b, elems)
				b = append(b, opPrefixFC, opTabFill, 0x00)
			}
		}
		b = i32Const(b, 1)
		if op == bulkTableFill {
			return genModuleTable(pages, elems, b)
		}
		return genModule(pages, b)
	}
}

// genNestedBlocks: 80,000 nested blocks (issue 9: still compiling after
// 30 s).
func genNestedBlocks() []byte {
	const n = 80000
	b := bytes.Repeat([]byte{opBlock, blockVoid}, n)
	b = append(b, bytes.Repeat([]byte{opEnd}, n)...)
	b = i32Const(b, 3)
	return genModule(1, b)
}

// genSequentialIfs: 64,000 ifs one after the other, each incrementing the
// local (issue 9: 696 KB, 180 s to compile).
func genSequentialIfs() []byte {
	var b []byte
	for range 64000 {
		b = append(b, opLocalGet, 0x00, opIf, blockVoid, opLocalGet, 0x01)
		b = i32Const(b, 1)
		b = append(b, opI32Add, opLocalSet, 0x01, opEnd)
	}
	b = i32Const(b, 3)
	return genModule(1, b)
}

// genManyFills: 16,000 memory.fill instructions (issue 9: 144 KB, 9 s and
// 520 MiB to compile).
func genManyFills() []byte {
	var b []byte
	for range 16000 {
		b = i32Const(b, 0)
		b = i32Const(b, 0)
		b = i32Const(b, 65536)
		b = append(b, opPrefixFC, opMemFill, 0x00)
	}
	b = i32Const(b, 3)
	return genModule(1, b)
}
