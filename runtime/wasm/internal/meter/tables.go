package meter

import "fmt"

// capTables returns the table section's content with every defined table's
// maximum lowered so that all tables together never hold more than
// m.lim.TableElements elements, or the content unchanged when that limit
// is zero. It refuses a module whose tables' minima alone exceed it.
//
// wazero allocates a table's elements (a Go slice of 8-byte references)
// up front for its minimum and again on every table.grow, outside the
// linear memory that memory_limit bounds: without a cap, a table.grow by
// 2^27 adds 1 GiB per call, and a huge minimum does so at instantiation.
// With the cap, table.grow past the maximum returns -1, as the core spec
// says for any grow past a table's maximum.
//
// The slack above the minima is shared equally: each table may grow by at
// most (limit - sum of minima) / tables, and never past the maximum it
// declared.
func capTables(s *section, m *module) ([]byte, error) {
	limit := m.lim.TableElements
	if limit == 0 || len(m.tableMax) == 0 {
		return s.content, nil
	}
	var sumMin uint64
	for _, t := range m.tableMax {
		sumMin += uint64(t.min)
	}
	if err := over(limit, sumMin, "tables need at least", "elements"); err != nil {
		return nil, err
	}
	share := (limit - sumMin) / uint64(len(m.tableMax))
	out := make([]byte, 0, len(s.content)+5*len(m.tableMax))
	prev := 0
	for _, t := range m.tableMax {
		max := uint64(t.min) + share
		if t.hasMax && uint64(t.max) < max {
			max = uint64(t.max)
		}
		if max > uint64(^uint32(0)) {
			max = uint64(^uint32(0))
		}
		if t.hasMax && uint64(t.max) < uint64(t.min) {
			return nil, s.errorf(t.start, "table maximum %d below its minimum %d", t.max, t.min)
		}
		out = append(out, s.content[prev:t.start]...)
		flags := s.content[t.start] | 0x01
		out = append(out, flags)
		out = appendU32(out, t.min)
		out = appendU32(out, uint32(max))
		prev = t.end
	}
	out = append(out, s.content[prev:]...)
	if uint64(len(out)) > uint64(^uint32(0)) {
		return nil, fmt.Errorf("meter: table section exceeds 4 GiB")
	}
	return out, nil
}
