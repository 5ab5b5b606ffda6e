package wasm

import "time"

// PoolObserver is told of the calls that found every instance of a module
// busy and had to wait for one (spinning, then blocking): the sign that a
// plugin's `instances` is too small for its load. It is called on that
// slow path only, never on a call that found a free instance, so an
// implementation may look its metric up by module name. It must be safe
// for concurrent use; outsiders may implement it.
type PoolObserver interface {
	// PoolWait reports one wait for an instance of module (the plugin's
	// name): how long it took and, when it gave up (timeout, cancelled,
	// module closed), why.
	PoolWait(module string, waited time.Duration, err error)
}
