package policy

import "sync/atomic"

// atomicCounter is a monotonic counter safe for concurrent use.
type atomicCounter struct{ v atomic.Uint64 }

// Load returns the count.
func (c *atomicCounter) Load() uint64 { return c.v.Load() }

func (c *atomicCounter) add() { c.v.Add(1) }
