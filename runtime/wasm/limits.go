package wasm

import "github.com/moat-mqtt/moat/runtime/wasm/internal/meter"

// Load limits: the largest module shapes Load accepts, checked while the
// meter parses the binary, before wazero compiles it. wazero's compile time
// and memory grow with some shapes much faster than with the binary's size
// (80,000 nested blocks in 240 KB compiled for minutes; 64,000 sequential
// ifs for 180 s; 16,000 memory.fill took 520 MiB), and a reload compiles
// inside the running broker, so each is bounded. The defaults admit every
// module in this repository with ample headroom: Go's wasip1 modules, the
// largest real guests, are 3-6 MB, with function bodies of up to 46 KB,
// blocks nested 550 deep and 58,334 data segments (see runtime/RATIONALE.md,
// "What the meter keeps to itself, bulk instructions, load limits, tables").
const (
	MaxModuleSize   = 32 << 20  // bytes of the binary
	MaxFunctions    = 100_000   // imported and defined
	MaxBodySize     = 2 << 20   // bytes of one function body
	MaxDepth        = 2048      // nesting of blocks in one function
	MaxBlocks       = 4096      // weighted blocks of one function: loops count 4, bulk instructions 6
	MaxBlockCost    = 1 << 26   // the sum over functions of their weighted blocks squared
	MaxLocals       = 10_000    // parameters and locals of one function
	MaxDataSize     = 256 << 20 // bytes in all data segments
	MaxDataSegments = 500_000
	MaxElemSegments = 10_000
	MaxTables       = 16 // imported and defined
	MaxMemories     = 1  // wazero supports one
	MaxGlobals      = 100_000
	MaxTypes        = 100_000
	MaxImports      = 10_000
	MaxExports      = 10_000

	// tableElementBytes is what wazero v1.12.0 allocates per table
	// element: a reference is a uintptr (internal/wasm/table.go).
	tableElementBytes = 8
	// tableShare is the fraction of memory_limit that tables may use
	// together: memory_limit/tableShare bytes, on top of linear memory.
	tableShare = 8

	// stackShare is the fraction of memory_limit that the engine stack
	// of one call may use, as the meter estimates it (meter.Limits.Stack),
	// within [MinStack, MaxStack].
	stackShare = 4
	// MinStack is the least stack budget of a call, whatever
	// memory_limit: room for some 1,300 frames of this repository's Go
	// modules (charged 770-800 bytes a frame at the median, up to 34 KB
	// for the largest runtime functions), many times what they nest.
	MinStack = 1 << 20
	// MaxStack is the most: some 10,000 such frames.
	MaxStack = 8 << 20
)

// stackBudget is the engine stack, in bytes as the meter estimates it,
// that one call of a plugin with this memory_limit may use: a quarter of
// memory_limit, within [MinStack, MaxStack]. A call that would go deeper
// traps (a plugin error). See sdk/ABI.md §7, "Memory budget and deadlines".
func stackBudget(memoryLimit int64) uint64 {
	return min(max(uint64(memoryLimit)/stackShare, MinStack), MaxStack)
}

// loadLimits returns the limits for a plugin whose linear memory is capped
// at memoryLimit bytes. Tables together may hold memoryLimit/tableShare
// bytes of elements, at least 1024 elements.
func loadLimits(memoryLimit int64) meter.Limits {
	elems := uint64(memoryLimit) / tableShare / tableElementBytes
	elems = max(elems, 1024)
	return meter.Limits{
		ModuleSize:    MaxModuleSize,
		Functions:     MaxFunctions,
		BodySize:      MaxBodySize,
		Depth:         MaxDepth,
		Blocks:        MaxBlocks,
		BlockCost:     MaxBlockCost,
		Locals:        MaxLocals,
		DataSize:      MaxDataSize,
		DataSegments:  MaxDataSegments,
		ElemSegments:  MaxElemSegments,
		Tables:        MaxTables,
		TableElements: elems,
		Memories:      MaxMemories,
		Globals:       MaxGlobals,
		Types:         MaxTypes,
		Imports:       MaxImports,
		Exports:       MaxExports,
		Stack:         stackBudget(memoryLimit),
	}
}
