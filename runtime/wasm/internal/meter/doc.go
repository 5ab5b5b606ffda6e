// Package meter rewrites a WebAssembly binary so that a running guest can be
// stopped from another goroutine at almost no cost per call.
//
// # Why
//
// wazero stops a looping guest only when the runtime is built with
// WithCloseOnContextDone(true). That option starts a watchdog goroutine for
// every call: about 1 µs and 3 allocations per call, twenty times what a
// typical policy decision costs. Without it, a guest stuck in an infinite
// loop never returns and takes a goroutine (and, through locks the caller
// holds, eventually the broker) with it.
//
// # Epoch interruption
//
// Instead we use the scheme wasmtime calls epoch interruption. Instrument
// appends two mutable i64 globals to the module and exports them as
// [ExportEpoch] and [ExportDeadline]. At every function entry and at every
// loop header the guest runs
//
//	global.get $epoch
//	global.get $deadline
//	i64.ge_u
//	if
//	  unreachable
//	end
//
// The host sets the deadline before each call (api.MutableGlobal.Set), and a
// ticker goroutine advances the epoch of every instance. Once epoch >=
// deadline the guest traps at its next function entry or loop header, and
// the call returns an error. Every path that can run forever passes a loop
// header or a function entry (recursion), so the check is enough. It costs
// two loads, a compare and a not-taken branch, with no goroutine and no
// allocation per call.
//
// # Letting Go stop the world
//
// Go cannot preempt a goroutine that runs wazero's compiled code. While a
// guest loops, a garbage collection's stop-the-world waits for it, every
// other goroutine waits for the stop-the-world, and so the ticker never
// moves the epoch: the whole process hangs. So the check also counts down a
// third, unexported global, and every 4096 checks the guest makes a call
// that wazero runs in Go, where the goroutine can stop (see yieldInterval).
// This costs about 2 ns per loop iteration, against about 0.5 ns for the
// epoch check alone; wazero's WithCloseOnContextDone costs some 50 ns per
// iteration, as it exits to Go at every loop back-edge.
//
// The deadline starts at the maximum unsigned value, so an instance never
// traps before the host has set a deadline.
//
// # Bulk instructions
//
// memory.fill, memory.copy, memory.init and their table counterparts run
// in native code (memmove) for as long as their length asks, with no loop
// header to check at: 300 fills of 64 MiB in straight-line code ran for
// seconds past the deadline and held the garbage collector as long. Before
// each, the guest saves the length in a scratch local, subtracts
// length>>bulkShift from the countdown and runs the check; the countdown
// test is "<= 0", so a large instruction makes the guest exit to Go before
// it starts.
//
// # Stack guard
//
// wazero has no stack limit of its own below a ceiling of about 100 MB:
// each call into an instance runs on an engine stack that doubles as
// calls nest deeper, so one recursive guest could take that much per call
// in flight, whatever its memory limit. With Limits.Stack set, Instrument
// appends a mutable i32 global, exported as [ExportDepth], that counts the
// estimated engine stack of the frames live in the call (frameBytes: a
// fixed part and 16 bytes per parameter and local). Each function adds its
// frame at entry and traps if the total would pass Limits.Stack; its body
// is wrapped in a block of the function's own type, so that the end of the
// body, every return (rewritten as a branch to that block) and every
// branch to the function's label reach one place that takes the frame
// off again, and a tail call takes it off just before it goes. A frame
// that an exception unwinds is not taken off: the host resets the global
// to 0 before each call.
//
// # Sealing what Instrument adds
//
// The globals and table Instrument appends sit at indices the module could
// name. Instrument checks every index in the module against its own index
// spaces before adding anything, and refuses names in the "moat."
// namespace, so no guest code can read or write the meter's state (see
// validate.go). It also enforces Limits on the module's shape, which bound
// what wazero's compiler spends on it, and caps its tables (capTables).
//
// A start section would run inside wazero's InstantiateModule, where nothing
// can stop it, so Instrument removes it and exports the start function as
// [ExportStart]; the host calls it under a deadline after instantiation.
//
// # Notes
//
// The check relies on the engine re-reading a mutable global at each loop
// header, not hoisting the load out of the loop, and the yield relies on
// wazero running table.grow in Go. wazero's optimizing compiler (wazevo,
// v1.12.0) does both, and the tests in this package fail if that changes.
//
// The output needs the reference types feature (core 2.0, wazero's
// default) for the yield table, as a second table and table.grow need it.
//
// With wazero's interpreter the guest reads the global from Go code, so
// setting it from another goroutine while a call runs is a data race in the
// Go memory model; use the compiler for preemption.
package meter
