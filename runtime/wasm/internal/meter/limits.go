package meter

import "fmt"

// Limits bound the shape of a module that Instrument accepts. wazero's
// compile time and memory grow with some of these faster than with the
// module's size (80,000 nested blocks in 240 KB compile for minutes), so
// they are checked while Instrument parses, before wazero sees the module.
// A zero field means no limit.
type Limits struct {
	ModuleSize    uint64 // bytes of the binary
	Functions     uint64 // imported and defined
	BodySize      uint64 // bytes of one function body
	Depth         uint64 // nesting of blocks in one function, its own body counted
	Blocks        uint64 // weighted blocks of one function (see blockWeight)
	BlockCost     uint64 // the sum over all functions of their weighted blocks squared
	Locals        uint64 // parameters and locals of one function
	DataSize      uint64 // bytes in all data segments
	DataSegments  uint64
	ElemSegments  uint64
	Tables        uint64 // imported and defined
	TableElements uint64 // the sum of every table's maximum size (see Instrument)
	Memories      uint64 // imported and defined
	Globals       uint64 // imported and defined
	Types         uint64
	Imports       uint64
	Exports       uint64
	// Stack is the engine stack, in bytes, that one call into the module
	// may use, as the meter estimates it (see frameBytes); a call that
	// would go deeper traps. Zero adds no guard.
	Stack uint64
}

// Weights of control instructions in Limits.Blocks. wazero v1.12.0's
// compiler takes time quadratic in the number of blocks of a function
// (2,000 sequential ifs compile in 0.5 s, 5,000 in 1.4 s, 20,000 in 70 s),
// and the meter adds two ifs at every loop header and bulk instruction.
// The weights are fitted to measured compile times: a loop costs about
// four ifs, a bulk instruction, which wazero also expands inline, six.
const (
	weightBlock = 1 // block, if, try_table
	weightLoop  = 4
	weightBulk  = 6
	weightEntry = 2 // the check at function entry
)

// LimitError is a module over one of its Limits.
type LimitError struct {
	What  string // what is over, such as "function 12 nests blocks"
	Value uint64 // how much the module has or asks for
	Unit  string // such as "deep" or "bytes"
	Limit uint64
}

func (e *LimitError) Error() string {
	unit := ""
	if e.Unit != "" {
		unit = " " + e.Unit
	}
	return fmt.Sprintf("%s %d%s, limit %d", e.What, e.Value, unit, e.Limit)
}

// over reports a LimitError if v exceeds limit (and limit is set).
func over(limit, v uint64, what, unit string) error {
	if limit != 0 && v > limit {
		return &LimitError{What: what, Value: v, Unit: unit, Limit: limit}
	}
	return nil
}
