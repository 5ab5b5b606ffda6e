package wasm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm/internal/meter"
)

// phase is what an instance is doing; host functions check it, so that a
// setter called outside its decision returns -1 (sdk/ABI.md §6).
type phase uint8

const (
	phaseIdle      phase = iota
	phaseInit            // start function, _initialize
	phaseBuffer          // moat_buffer
	phaseConfigure       // moat_configure
	phaseAuthn
	phaseAuthz
	phasePayload
)

// instanceKey finds the calling instance from a host function: every call
// into an instance passes that instance's own long-lived context, so the
// lookup costs one context.Value and no allocation.
type instanceKey struct{}

// instance is one wazero module instance and its per-call state. It is
// used by one goroutine at a time: whoever holds its pool slot. Only the
// ticker touches it concurrently, and only its epoch global.
type instance struct {
	m   *Module
	ctx context.Context // carries instanceKey → this instance; never cancelled

	mod      api.Module
	mem      api.Memory
	epoch    api.MutableGlobal // written by the Engine's ticker only
	deadline api.MutableGlobal // written by the calling goroutine only
	// depth is the meter's stack guard (meter.ExportDepth), reset before
	// each call; nil when the module was instrumented without one.
	depth api.MutableGlobal
	// until is the deadline the host enforces, in epoch ticks: the value
	// last written to deadline, kept on the host side so that a check
	// after a call or inside a host function reads no guest state.
	until uint64
	// initializing is set while init runs, so that a deadline error
	// names the init timeout.
	initializing bool
	decide       [KindPayload + 1]api.Function
	buffer       api.Function
	configure    api.Function

	// fnType and stackField (an offset) locate the engine stack in
	// wazero's function type, for trimStack; stackField is -1 when this
	// wazero has no such field.
	fnType     reflect.Type
	stackField int

	stack   [1]uint64 // params and results of every export have at most one value
	buf     uint32    // guest buffer from moat_buffer
	bufSize uint32

	st             callState
	prefix         clientPrefix // the last authz client's encoded part
	stdout, stderr guestWriter
	rand           randReader
}

// callState is what the guest sets during one call through the result
// setters. Buffers are reused from call to call; fields that are handed
// to a result are replaced, not reused.
type callState struct {
	phase      phase
	message    []byte
	hasMessage bool
	attrs      []policy.Attribute
	attrBytes  int
	expiry     int64
	authData   []byte
	authState  []byte
	keyID      []byte
	hasKeyID   bool
	payload    []byte // the payload of a payload decision, for payload_read
}

func (s *callState) reset(p phase) {
	s.phase = p
	s.message = s.message[:0]
	s.hasMessage = false
	s.attrs = nil
	s.attrBytes = 0
	s.expiry = 0
	s.authData, s.authState = nil, nil
	s.keyID = s.keyID[:0]
	s.hasKeyID = false
	s.payload = nil
}

// newInstance instantiates the module and initialises it: start function,
// _initialize, moat_buffer and moat_configure, all under one deadline.
func (m *Module) newInstance(ctx context.Context) (*instance, error) {
	in := &instance{m: m}
	in.ctx = context.WithValue(context.Background(), instanceKey{}, in)
	in.stdout = guestWriter{in: in, stream: "stdout"}
	in.stderr = guestWriter{in: in, stream: "stderr"}
	in.rand = randReader{in: in}
	cfg := m.modCfg.WithStdout(&in.stdout).WithStderr(&in.stderr).WithRandSource(&in.rand)
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	in.mod = mod
	in.mem = mod.ExportedMemory(ExportMemory)
	epoch, ok1 := mod.ExportedGlobal(meter.ExportEpoch).(api.MutableGlobal)
	deadline, ok2 := mod.ExportedGlobal(meter.ExportDeadline).(api.MutableGlobal)
	if !ok1 || !ok2 || in.mem == nil {
		_ = mod.Close(ctx)
		return nil, errors.New("instantiate: instrumented globals or memory missing")
	}
	in.epoch, in.deadline = epoch, deadline
	if m.stackLimit != 0 {
		if in.depth, _ = mod.ExportedGlobal(meter.ExportDepth).(api.MutableGlobal); in.depth == nil {
			_ = mod.Close(ctx)
			return nil, errors.New("instantiate: instrumented depth global missing")
		}
	}
	for k := KindAuthn; k <= KindPayload; k++ {
		in.decide[k] = mod.ExportedFunction(decisionEx[k])
	}
	in.buffer = mod.ExportedFunction(ExportBuffer)
	in.configure = mod.ExportedFunction(ExportConfigure)
	in.fnType, in.stackField = reflect.TypeOf(in.buffer), stackField(in.buffer)
	if err := m.e.register(in); err != nil {
		_ = mod.Close(ctx)
		return nil, err
	}
	if err := in.init(ctx); err != nil {
		m.closeInstance(in)
		return nil, err
	}
	return in, nil
}

func (in *instance) init(ctx context.Context) error {
	m := in.m
	d, ok := ctx.Deadline()
	in.until = m.e.deadline(m.initTicks, d, ok)
	in.deadline.Set(in.until)
	in.initializing = true
	defer func() { in.initializing = false }()
	in.st.reset(phaseInit)
	defer func() { in.st.phase = phaseIdle }()
	if m.hasStart {
		if _, err := in.call(in.mod.ExportedFunction(meter.ExportStart), 0); err != nil {
			return fmt.Errorf("start function: %w", err)
		}
	}
	if m.hasInit {
		if _, err := in.call(in.mod.ExportedFunction(ExportInitialize), 0); err != nil {
			return fmt.Errorf("%s: %w", ExportInitialize, err)
		}
	}
	if _, err := in.room(InitialBuffer); err != nil {
		return err
	}
	if !m.hasConf {
		return nil
	}
	b, err := in.room(len(m.config))
	if err != nil {
		return err
	}
	copy(b, m.config)
	in.st.reset(phaseConfigure)
	r, err := in.call(in.configure, uint32(len(m.config)))
	in.configure = nil // called once: its stack goes with it
	if err != nil {
		return fmt.Errorf("%s: %w", ExportConfigure, err)
	}
	if r != 0 {
		msg := "no message"
		if in.st.hasMessage {
			msg = string(in.st.message)
		}
		return fmt.Errorf("config refused (%s returned %d): %s", ExportConfigure, int32(r), msg)
	}
	return nil
}

// closeInstance takes an instance out of the ticker's set and closes it.
func (m *Module) closeInstance(in *instance) {
	m.e.unregister(in)
	in.stdout.flush()
	in.stderr.flush()
	_ = in.mod.Close(context.Background())
}

// setDeadline starts the clock of a call: the guest traps at its next
// function entry or loop header once the epoch reaches the deadline. The
// deadline is the plugin's timeout or ctx's deadline, whichever is sooner.
func (in *instance) setDeadline(ctx context.Context) {
	d, ok := ctx.Deadline()
	in.until = in.m.e.deadline(in.m.ticks, d, ok)
	in.deadline.Set(in.until)
}

// call runs fn with one argument; the result is 0 for a function without
// one. Errors are plugin errors, classified by fault.
//
// A call that returns after its deadline failed, whatever it returns: the
// guest's checks sit at function entries and loop headers, so straight-line
// code or a long host function can carry a call past its deadline, and a
// result that late must not be used (the caller has given up on it, and
// the decision it would make is the one a slower module could force). The
// check is one atomic load.
//
// The stack guard's depth starts at 0: a call that caught an exception
// leaves the frames it unwound counted (see meter.ExportDepth).
func (in *instance) call(fn api.Function, arg uint32) (uint32, error) {
	in.stack[0] = uint64(arg)
	if in.depth != nil {
		in.depth.Set(0)
	}
	if err := fn.CallWithStack(in.ctx, in.stack[:]); err != nil {
		return 0, in.fault(err)
	}
	if in.m.e.expired(in) {
		return 0, in.deadlineErr()
	}
	return uint32(in.stack[0]), nil
}

// room returns a view of the guest buffer with at least n bytes, asking
// the guest for a larger one when needed. The view is valid until the
// next call into the guest.
func (in *instance) room(n int) ([]byte, error) {
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("request of %d bytes exceeds the 2 GiB a guest can address", n)
	}
	if uint32(n) > in.bufSize {
		size := uint32(n)
		if size < InitialBuffer {
			size = InitialBuffer
		}
		saved := in.st.phase
		in.st.phase = phaseBuffer
		ptr, err := in.call(in.buffer, size)
		in.st.phase = saved
		if err != nil {
			return nil, fmt.Errorf("%s(%d): %w", ExportBuffer, size, err)
		}
		in.trimStack(&in.buffer, ExportBuffer)
		if ptr == 0 {
			// Address 0 is addressable, but no allocator hands it out:
			// 0 is how a guest says it has no memory left.
			return nil, fmt.Errorf("%s(%d) returned 0, no buffer: the module is out of memory or its allocator failed", ExportBuffer, size)
		}
		if uint64(ptr)+uint64(size) > uint64(in.mem.Size()) {
			return nil, fmt.Errorf("%s(%d) returned %#x: [%#x, %#x) is outside memory (%d bytes)",
				ExportBuffer, size, ptr, ptr, uint64(ptr)+uint64(size), in.mem.Size())
		}
		in.buf, in.bufSize = ptr, size
	}
	b, ok := in.mem.Read(in.buf, uint32(n))
	if !ok { // memory never shrinks; kept as a guard
		return nil, fmt.Errorf("guest buffer [%#x, +%d) is outside memory", in.buf, n)
	}
	return b, nil
}

// StackRetain is the most engine stack one exported function of an
// instance keeps between calls. wazero gives each api.Function its own
// stack, 10 KiB at first, which grows by doubling up to about 84 MB (its
// fixed ceiling; a call that needs more traps with a stack overflow) and
// is never shrunk, and moat keeps its functions for an instance's life: a
// module that recursed deeply once would hold that much for good (941 MiB
// resident for one plugin with memory_limit = 64 KiB). After each call, a
// function whose stack grew beyond StackRetain is replaced by a fresh one
// and the large stack goes to the garbage collector. How deep one call
// may go, and so how large the stack grows during it, is the meter's
// stack guard's to bound (stackBudget). See sdk/ABI.md §7, "Memory budget
// and deadlines".
const StackRetain = 256 << 10

// stackField finds the engine stack, a []byte field named "stack", in the
// type wazero implements api.Function with (internal/engine/wazevo's
// callEngine), and returns its offset; -1 when there is none. wazero
// exposes neither a stack limit nor the stack's size, so moat reads the
// field's length: TestStackProbe fails if a wazero upgrade moves it.
func stackField(fn api.Function) int {
	t := reflect.TypeOf(fn)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return -1
	}
	f, ok := t.Elem().FieldByName("stack")
	if !ok || len(f.Index) != 1 || f.Type != reflect.TypeFor[[]byte]() {
		return -1
	}
	return int(f.Offset)
}

// stackSize is the length of fn's engine stack; -1 when unknown. It runs
// after every call, so it reads the field through its offset (a
// nanosecond or two) rather than through reflect.Value (several, 10% of a
// decision); the type check makes the read safe: fn holds a pointer to the
// struct whose []byte field lies at that offset.
func (in *instance) stackSize(fn api.Function) int {
	if in.stackField < 0 || reflect.TypeOf(fn) != in.fnType {
		return -1
	}
	// An interface holding a pointer is (type word, pointer): the second
	// word is the *callEngine itself.
	p := (*[2]unsafe.Pointer)(unsafe.Pointer(&fn))[1]
	if p == nil {
		return -1
	}
	return len(*(*[]byte)(unsafe.Add(p, in.stackField)))
}

// trimStack replaces *fn, the function of export name, by a fresh one when
// its engine stack grew beyond StackRetain during the call that just
// returned.
func (in *instance) trimStack(fn *api.Function, name string) {
	if in.stackSize(*fn) > StackRetain {
		*fn = in.mod.ExportedFunction(name)
	}
}

// deadlineError is a call stopped at its deadline.
type deadlineError struct{ timeout time.Duration }

func (e *deadlineError) Error() string {
	return fmt.Sprintf("deadline exceeded (timeout %v)", e.timeout)
}

func (e *deadlineError) Is(target error) bool { return target == context.DeadlineExceeded }

// deadlineErr is the error of a call that ran out of time, naming the
// timeout that applied.
func (in *instance) deadlineErr() *deadlineError {
	if in.initializing {
		return &deadlineError{timeout: in.m.initTimeout}
	}
	return &deadlineError{timeout: in.m.timeout}
}

// hostFault is a host function refusing its arguments: a pointer or length
// outside memory. It panics with one; wazero recovers it and fails the
// call, and fault finds it again.
type hostFault struct {
	fn       string
	ptr, len uint32
	memSize  uint32
}

func (e *hostFault) Error() string {
	return fmt.Sprintf("%s.%s: [%#x, +%d) is outside memory (%d bytes)", HostModule, e.fn, e.ptr, e.len, e.memSize)
}

// fault classifies a failed call into a one-line plugin error.
func (in *instance) fault(err error) error {
	if in.m.e.expired(in) {
		return in.deadlineErr()
	}
	var hf *hostFault
	if errors.As(err, &hf) {
		return hf
	}
	var de *deadlineError // a host function that refused to start late work
	if errors.As(err, &de) {
		return de
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("proc_exit(%d)", exit.ExitCode())
	}
	// The guard traps with the depth above the limit, and no other trap
	// leaves it there.
	if in.depth != nil && in.depth.Get() > in.m.stackLimit {
		return &StackError{Limit: in.m.stackLimit}
	}
	return &trapError{err: err}
}

// StackError is a call stopped by the stack guard: its guest frames would
// have passed the plugin's stack budget (sdk/ABI.md §7).
type StackError struct {
	Limit uint64 // the budget, in bytes as the meter estimates them
}

func (e *StackError) Error() string {
	return fmt.Sprintf("call depth exceeded (stack limit %d KiB)", e.Limit>>10)
}

// trapError is a trap (unreachable, out of bounds, stack overflow...). Its
// message is wazero's first line and the innermost frame, which is enough
// to find the bug and fits a log line.
type trapError struct{ err error }

func (e *trapError) Error() string {
	s := e.err.Error()
	first, rest, _ := strings.Cut(s, "\n")
	if _, frames, ok := strings.Cut(rest, "wasm stack trace:\n\t"); ok {
		frame, _, _ := strings.Cut(frames, "\n")
		return first + " in " + frame
	}
	return first
}

func (e *trapError) Unwrap() error { return e.err }
