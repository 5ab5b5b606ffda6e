package wasm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// Host functions of sdk/ABI.md §6, module "moat". Each finds its instance
// through the call's context (instanceKey) and its per-call state in
// instance.st, never in a global. They must not allocate on the authz path:
// they read and write guest memory through views, and return status codes.
//
// A pointer and length outside memory panic with a *hostFault: wazero
// recovers it and fails the call, which is then a plugin error.

// hostFunc is one host function and its type.
type hostFunc struct {
	name string
	fn   api.GoModuleFunc
	sig  sig
}

var hostFuncs = []hostFunc{
	{HostLog, hostLog, sig{[]api.ValueType{i32, i32, i32}, nil}},
	{HostTimeNow, hostTimeNow, sig{nil, []api.ValueType{i64}}},
	{HostTimeMonotonic, hostTimeMonotonic, sig{nil, []api.ValueType{i64}}},
	{HostRandom, hostRandom, sig{[]api.ValueType{i32, i32}, []api.ValueType{i32}}},
	{HostSetMessage, hostSetMessage, sig{[]api.ValueType{i32, i32}, []api.ValueType{i32}}},
	{HostAddAttribute, hostAddAttribute, sig{[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}}},
	{HostSetExpiry, hostSetExpiry, sig{[]api.ValueType{i64}, []api.ValueType{i32}}},
	{HostSetAuthData, hostSetAuthData, sig{[]api.ValueType{i32, i32}, []api.ValueType{i32}}},
	{HostSetAuthState, hostSetAuthState, sig{[]api.ValueType{i32, i32}, []api.ValueType{i32}}},
	{HostSetKeyID, hostSetKeyID, sig{[]api.ValueType{i32, i32}, []api.ValueType{i32}}},
	{HostPayloadRead, hostPayloadRead, sig{[]api.ValueType{i32, i32, i32}, []api.ValueType{i32}}},
	{HostFileSize, hostFileSize, sig{[]api.ValueType{i32, i32}, []api.ValueType{i64}}},
	{HostFileRead, hostFileRead, sig{[]api.ValueType{i32, i32, i64, i32, i32}, []api.ValueType{i64}}},
	{HostPBKDF2, hostPBKDF2, sig{[]api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}}},
	{HostArgon2id, hostArgon2id, sig{[]api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{i32}}},
	{HostBcryptCompare, hostBcryptCompare, sig{[]api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}}},
}

func (m *Module) hostModule() wazero.HostModuleBuilder {
	b := m.rt.NewHostModuleBuilder(HostModule)
	for _, h := range hostFuncs {
		b.NewFunctionBuilder().WithGoModuleFunction(h.fn, h.sig.params, h.sig.results).Export(h.name)
	}
	return b
}

func caller(ctx context.Context) *instance {
	in, _ := ctx.Value(instanceKey{}).(*instance)
	if in == nil {
		// Only reachable if wazero called a host function with a context
		// other than the instance's own: a bug in moat, not in the guest.
		panic(errors.New("wasm: host function called outside a moat instance"))
	}
	return in
}

// view returns guest memory [ptr, ptr+n) or panics with a hostFault. ptr
// and n are i32 arguments as wazero passes them: only the low 32 bits are
// defined.
func (in *instance) view(fn string, ptr, n uint64) []byte {
	b, ok := in.mem.Read(uint32(ptr), uint32(n))
	if !ok {
		panic(&hostFault{fn: fn, ptr: uint32(ptr), len: uint32(n), memSize: in.mem.Size()})
	}
	return b
}

func status(v int32) uint64 { return api.EncodeI32(v) }

var logLevels = [...]slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}

// hostLog: log(level, ptr, len). Levels outside 0-3 are clamped. The check
// of the level comes before any allocation, so a guest's debug lines cost
// nothing when debug is off; the rest go through guestLog.
func hostLog(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	in.checkDeadline()
	b := in.view(HostLog, stack[1], stack[2])
	lvl := int32(stack[0])
	lvl = max(LogDebug, min(LogError, lvl))
	level := logLevels[lvl]
	if !in.m.log.Enabled(ctx, level) {
		return
	}
	in.m.guestLog(ctx, level, b, "guest")
}

// Guest log limits, per plugin (sdk/ABI.md §7): a token bucket of lines
// and one of bytes, each refilled at its rate up to its burst. A line that
// finds either bucket empty is dropped and counted; the first line let
// through after drops is preceded by one summary line, "plugin X: dropped
// N log lines" (and so is Close, for drops at the end). One module wrote
// 88-135 MB/s of log before these limits.
const (
	LogLinesPerSecond = 100
	LogLineBurst      = 200
	LogBytesPerSecond = 64 << 10
	LogBytesBurst     = 256 << 10
	LogSummaryEvery   = time.Second
)

// logLimiter is a plugin's guest-log budget, shared by its instances.
type logLimiter struct {
	mu      sync.Mutex
	last    time.Time
	lines   float64 // tokens
	bytes   float64
	dropped int       // lines dropped since the last summary
	since   time.Time // first of those drops
}

func (l *logLimiter) init() {
	l.last = time.Now()
	l.lines, l.bytes = LogLineBurst, LogBytesBurst
}

// take spends one line of n bytes; it reports whether the line may be
// logged and, if so, how many lines were dropped before it.
func (l *logLimiter) take(n int) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	dt := now.Sub(l.last).Seconds()
	l.last = now
	l.lines = min(LogLineBurst, l.lines+dt*LogLinesPerSecond)
	l.bytes = min(LogBytesBurst, l.bytes+dt*LogBytesPerSecond)
	if l.lines < 1 || l.bytes < float64(n) {
		if l.dropped == 0 {
			l.since = now
		}
		l.dropped++
		return false, 0
	}
	l.lines--
	l.bytes -= float64(n)
	if l.dropped == 0 || now.Sub(l.since) < LogSummaryEvery {
		return true, 0
	}
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}

// flush returns and clears the count of lines dropped since the last
// summary.
func (l *logLimiter) flush() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.dropped
	l.dropped = 0
	return n
}

// guestLog writes one line from the guest, already cut to MaxLogLine
// bytes, if the plugin's log budget allows it; source is "guest",
// "stdout" or "stderr".
//
// The budget is charged the line's length as the guest wrote it (cut at
// MaxLogLine), before it is cleaned, so that a dropped line costs no copy.
func (m *Module) guestLog(ctx context.Context, level slog.Level, b []byte, source string) {
	ok, dropped := m.logLimit.take(min(len(b), MaxLogLine))
	if !ok {
		return
	}
	if dropped > 0 {
		m.logDropped(dropped)
	}
	m.log.Log(ctx, level, sanitizeLine(b), "source", source)
}

// logDropped writes the summary of a run of dropped guest lines.
func (m *Module) logDropped(n int) {
	m.log.Warn(fmt.Sprintf("plugin %q: dropped %d log lines", m.name, n), "source", "host")
}

// sanitizeLine makes a guest's bytes one printable log line of at most
// MaxLogLine bytes: control characters (NUL, newlines, escapes) and other
// unprintable runes become '?', and invalid UTF-8 becomes U+FFFD, so that
// no handler has to escape them (slog's text handler writes a NUL as four
// bytes) and no guest can forge a line break. A line of printable ASCII,
// the usual case, is checked in one pass and copied once.
func sanitizeLine(b []byte) string {
	if len(b) > MaxLogLine {
		b = b[:MaxLogLine]
	}
	clean := true
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		// An invalid byte decodes as U+FFFD, which is printable.
		if r < 0x20 || r == 0x7f || (r >= 0x80 && !unicode.IsPrint(r)) {
			r = '?'
		}
		if sb.Len()+utf8.RuneLen(r) > MaxLogLine {
			break
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

func hostTimeNow(_ context.Context, _ api.Module, stack []uint64) {
	stack[0] = uint64(time.Now().UnixNano())
}

func hostTimeMonotonic(ctx context.Context, _ api.Module, stack []uint64) {
	stack[0] = uint64(time.Since(caller(ctx).m.e.start))
}

func hostRandom(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	in.checkDeadline()
	if uint32(stack[1]) > MaxRandom {
		stack[0] = status(StatusTooLarge)
		return
	}
	b := in.view(HostRandom, stack[0], stack[1])
	_, _ = rand.Read(b) // never fails since Go 1.24
	stack[0] = status(int32(len(b)))
}

// decisionPhase tells whether set_message is valid now: in any decision
// and in moat_configure.
func (p phase) decision() bool { return p >= phaseConfigure }

// setBytes is the common body of the setters that keep a byte string: it
// checks the phase and the size, then copies guest bytes into dst.
func (in *instance) setBytes(fn string, ok bool, limit uint32, stack []uint64, dst *[]byte) bool {
	if !ok {
		stack[0] = status(StatusUnavailable)
		return false
	}
	if uint32(stack[1]) > limit {
		in.view(fn, stack[0], stack[1]) // a wild length traps before it is "too large"
		stack[0] = status(StatusTooLarge)
		return false
	}
	b := in.view(fn, stack[0], stack[1])
	*dst = append((*dst)[:0], b...)
	stack[0] = 0
	return true
}

func hostSetMessage(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	if in.setBytes(HostSetMessage, in.st.phase.decision(), MaxMessage, stack, &in.st.message) {
		in.st.hasMessage = true
	}
}

func hostAddAttribute(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	if in.st.phase != phaseAuthn {
		stack[0] = status(StatusUnavailable)
		return
	}
	k := in.view(HostAddAttribute, stack[0], stack[1])
	v := in.view(HostAddAttribute, stack[2], stack[3])
	if len(in.st.attrs) >= MaxAttributes || in.st.attrBytes+len(k)+len(v) > MaxAttributeSize {
		stack[0] = status(StatusTooLarge)
		return
	}
	in.st.attrs = append(in.st.attrs, policy.Attribute{Key: string(k), Value: string(v)})
	in.st.attrBytes += len(k) + len(v)
	stack[0] = 0
}

func hostSetExpiry(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	switch ns := int64(stack[0]); {
	case in.st.phase != phaseAuthn:
		stack[0] = status(StatusUnavailable)
	case ns <= 0:
		stack[0] = status(StatusTooLarge)
	default:
		in.st.expiry = ns
		stack[0] = 0
	}
}

func hostSetAuthData(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	var b []byte
	if in.setBytes(HostSetAuthData, in.st.phase == phaseAuthn, MaxAuthData, stack, &b) {
		in.st.authData = nonNil(b)
	}
}

func hostSetAuthState(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	var b []byte
	if in.setBytes(HostSetAuthState, in.st.phase == phaseAuthn, MaxAuthData, stack, &b) {
		in.st.authState = nonNil(b)
	}
}

// nonNil keeps "set to empty" distinct from "not set".
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func hostSetKeyID(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	if in.setBytes(HostSetKeyID, in.st.phase == phasePayload, MaxKeyID, stack, &in.st.keyID) {
		in.st.hasKeyID = true
	}
}

// hostPayloadRead: payload_read(offset, ptr, len). It answers -1 outside a
// payload decision and to a plugin without allow_payload (st.payload is
// set by decide only then); otherwise it copies from offset and returns
// the count, 0 at the end.
func hostPayloadRead(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	if !in.m.payload || in.st.phase != phasePayload || in.st.payload == nil {
		stack[0] = status(StatusUnavailable)
		return
	}
	off := int64(int32(stack[0]))
	dst := in.view(HostPayloadRead, stack[1], stack[2])
	if off < 0 {
		stack[0] = status(StatusTooLarge)
		return
	}
	n := 0
	if off < int64(len(in.st.payload)) {
		n = copy(dst, in.st.payload[off:])
	}
	stack[0] = status(int32(n))
}

// grantedFile returns the host path granted under the guest's name.
func (in *instance) grantedFile(fn string, ptr, n uint64) (string, bool) {
	name := in.view(fn, ptr, n)
	path, ok := in.m.files[string(name)]
	return path, ok
}

func hostFileSize(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	path, ok := in.grantedFile(HostFileSize, stack[0], stack[1])
	if !ok {
		stack[0] = api.EncodeI64(StatusUnavailable)
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		in.m.log.Warn("granted file unreadable", "path", path, "err", err)
		stack[0] = api.EncodeI64(StatusIOError)
		return
	}
	stack[0] = api.EncodeI64(fi.Size())
}

// hostFileRead: file_read(name_ptr, name_len, offset, ptr, len). The file
// is opened at each call, so a changed file is seen at once; reads are cut
// at MaxFileRead, and a guest loops until 0 as with read(2).
func hostFileRead(ctx context.Context, _ api.Module, stack []uint64) {
	in := caller(ctx)
	path, ok := in.grantedFile(HostFileRead, stack[0], stack[1])
	off := int64(stack[2])
	dst := in.view(HostFileRead, stack[3], stack[4])
	switch {
	case !ok:
		stack[0] = api.EncodeI64(StatusUnavailable)
		return
	case off < 0:
		stack[0] = api.EncodeI64(StatusTooLarge)
		return
	}
	if len(dst) > MaxFileRead {
		dst = dst[:MaxFileRead]
	}
	in.checkDeadline()
	f, err := os.Open(path)
	if err != nil {
		in.m.log.Warn("granted file unreadable", "path", path, "err", err)
		stack[0] = api.EncodeI64(StatusIOError)
		return
	}
	defer f.Close()
	n, err := f.ReadAt(dst, off)
	in.checkDeadline() // a slow disk is the plugin's time too
	if err != nil && !errors.Is(err, io.EOF) {
		in.m.log.Warn("granted file unreadable", "path", path, "err", err)
		stack[0] = api.EncodeI64(StatusIOError)
		return
	}
	stack[0] = api.EncodeI64(int64(n))
}

// guestWriter turns a guest's stdout or stderr (WASI fd_write) into debug
// log lines. One belongs to one instance, so it is never written
// concurrently. Lines are cut at MaxLogLine.
//
// wazero's fd_write calls Write once per iovec, on the guest's call, so
// Write is where the work of a write is bounded: it fails the call once
// the deadline has passed (one write of hundreds of large iovecs would
// otherwise run on for seconds), and it drops what the plugin's log rate
// does not let through without looking at it.
type guestWriter struct {
	in     *instance
	stream string
	line   []byte
}

func (w *guestWriter) Write(p []byte) (int, error) {
	in := w.in
	if in.st.phase != phaseIdle {
		in.checkDeadline()
	}
	if !in.m.log.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	for i := 0; i < len(p); {
		j := bytes.IndexByte(p[i:], '\n')
		end := len(p)
		if j >= 0 {
			end = i + j
		}
		if room := MaxLogLine - len(w.line); room > 0 {
			w.line = append(w.line, p[i:min(end, i+room)]...)
		}
		if j < 0 {
			break
		}
		w.flush()
		i = end + 1
		if in.st.phase != phaseIdle {
			in.checkDeadline()
		}
	}
	return len(p), nil
}

func (w *guestWriter) flush() {
	if len(w.line) > 0 {
		w.in.m.guestLog(context.Background(), slog.LevelDebug, w.line, w.stream)
		w.line = w.line[:0]
	}
}

// randReader is an instance's source for WASI random_get. wazero fills the
// guest's whole buffer in one read, so the reader does it in chunks and
// fails the call between them once the deadline has passed: 16 MiB of
// randomness takes tens of milliseconds.
type randReader struct{ in *instance }

// randChunk is what randReader reads between deadline checks.
const randChunk = 64 << 10

func (r *randReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if r.in.st.phase != phaseIdle {
			r.in.checkDeadline()
		}
		k, _ := rand.Read(p[n:min(len(p), n+randChunk)]) // never fails since Go 1.24
		n += k
	}
	return n, nil
}
