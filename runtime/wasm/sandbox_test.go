package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// Tests of issue 9, "Seal the sandbox": each hostile module below breaks a
// promise of the sandbox on a host without the fix, and each test ends
// with a good call that proves the plugin recovered.

// wantRecovers asserts that m still decides: the failed instance was
// replaced, or another serves.
func wantRecovers(t *testing.T, m *Module) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := m.Authorize(context.Background(), authz("ok"))
		if err == nil && res.Verdict == policy.Allow {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin does not recover: %+v, %v", res, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLateResult: a result that arrives after the deadline is a deadline
// error, and host functions stop their own work at the deadline, whether
// moat's (argon2id) or WASI's as wazero runs them (random_get, fd_write).
func TestLateResult(t *testing.T) {
	log, _ := debugLogger() // debug on: fd_write's lines are logged, the costly case
	e := newEngine(t, log)
	// 10ms: each case takes well over 100ms natively when run to the end
	// (256 MiB of random, 4.7 GiB of output, 0.3 s of argon2id).
	m := testModule(t, e, "late", ModuleConfig{Timeout: 10 * time.Millisecond})
	for _, tc := range []struct{ name, topic string }{
		{"argon2id", "a"},
		{"random_get", "r"},
		{"fd_write", "w"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res, err := m.Authorize(context.Background(), authz(tc.topic))
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %+v, %v after %v; want a deadline error", res, err, took)
			}
			wantErr(t, err, "deadline exceeded (timeout 10ms)")
			t.Logf("%v after %v", err, took)
			wantRecovers(t, m)
		})
	}
}

// TestLateInit: an initialiser that returns after the init deadline fails
// the load with a deadline error naming the init timeout; the engine goes
// on loading good modules.
func TestLateInit(t *testing.T) {
	e := newEngine(t, nil)
	m, err := e.Load(context.Background(), moduleConfig(t, "late_init", ModuleConfig{Timeout: 5 * time.Millisecond, InitTimeout: 10 * time.Millisecond}))
	if err == nil {
		m.Close()
		t.Fatal("a late initialiser loaded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	wantErr(t, err, "_initialize: deadline exceeded (timeout 10ms)")
	wantRecovers(t, testModule(t, e, "late", ModuleConfig{}))
}

// TestLogFlood: a plugin's guest log is rate-limited, what is dropped is
// counted in one summary line, and control characters and NULs are
// replaced, not escaped into lines four times their size.
func TestLogFlood(t *testing.T) {
	log, lb := debugLogger()
	e := newEngine(t, log)
	m := testModule(t, e, "logflood", ModuleConfig{Timeout: 10 * time.Second})
	start := time.Now()
	if res, err := m.Authorize(context.Background(), authz("flood")); err != nil || res.Verdict != policy.Allow {
		t.Fatalf("flood: %+v, %v", res, err)
	}
	took := time.Since(start)                          // the buckets refill meanwhile: a loaded machine lets more through
	time.Sleep(LogSummaryEvery + 100*time.Millisecond) // refills lines; ends the episode
	if res, err := m.Authorize(context.Background(), authz("o")); err != nil || res.Verdict != policy.Allow {
		t.Fatalf("after the flood: %+v, %v", res, err)
	}
	out := lb.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	flood, dropped, summaries := 0, 0, 0
	for _, l := range lines {
		if strings.Contains(l, "flood???") {
			flood++
		}
		if _, rest, ok := strings.Cut(l, `plugin \"logflood\": dropped `); ok {
			n, err := strconv.Atoi(strings.Fields(rest)[0])
			if err != nil {
				t.Fatalf("summary %q: %v", l, err)
			}
			dropped += n
			summaries++
		}
	}
	// One summary per LogSummaryEvery at most.
	if most := 2 + int(took/LogSummaryEvery); summaries < 1 || summaries > most {
		t.Errorf("%d summary lines after a flood of %v, want 1 to %d", summaries, took, most)
	}
	// The flood ran for a while, during which the bucket refilled a little.
	most := LogLineBurst + int(took.Seconds()*LogLinesPerSecond) + 10
	if flood < 1 || flood > most {
		t.Errorf("%d of 20000 flood lines logged in %v, want at most %d", flood, took, most)
	}
	if flood+dropped != 20000 {
		t.Errorf("summary says %d dropped, %d logged; want them to add up to 20000", dropped, flood)
	}
	if !strings.Contains(out, "after the flood") {
		t.Error("the line after the flood is missing")
	}
	var stdout string
	for _, l := range lines {
		if strings.Contains(l, "source=stdout") {
			stdout = l
		}
	}
	if !strings.Contains(stdout, strings.Repeat("?", 100)) || len(stdout) > MaxLogLine+200 {
		t.Errorf("stdout line of %d bytes, want its NULs as '?' and at most %d bytes: %.200q", len(stdout), MaxLogLine, stdout)
	}
	for _, bad := range []string{`\x00`, `\u0000`, "\x00"} {
		if strings.Contains(out, bad) {
			t.Errorf("log contains %q", bad)
		}
	}
	wantRecovers(t, m)
}

func TestSanitizeLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain line", "plain line"},
		{"a\x00b\nc\x1b[31m", "a?b?c?[31m"},
		{"tab\there", "tab?here"},
		{"ünï\u2028cödé", "ünï?cödé"},
		{"bad \xff\xfe utf8", "bad \ufffd\ufffd utf8"},
		{"del\x7f", "del?"},
	} {
		if got := sanitizeLine([]byte(tc.in)); got != tc.want {
			t.Errorf("sanitizeLine(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := sanitizeLine(bytes.Repeat([]byte{0xff}, 2*MaxLogLine)); len(got) > MaxLogLine {
		t.Errorf("line of %d bytes, want at most %d", len(got), MaxLogLine)
	}
}

// engineStack reads the length of wazero's engine stack of fn, as
// stackSize does but on its own, so that the test does not trust the code
// it tests.
func engineStack(t *testing.T, fn api.Function) int {
	t.Helper()
	v := reflect.ValueOf(fn).Elem().FieldByName("stack")
	if !v.IsValid() {
		t.Fatalf("%T has no field stack: see stackField", fn)
	}
	return v.Len()
}

// TestStackRetained: a call that recursed deeply leaves no large engine
// stack behind in the instance (main kept tens of megabytes per function).
func TestStackRetained(t *testing.T) {
	e := newEngine(t, nil)
	m := testModule(t, e, "deep", ModuleConfig{Instances: 1, Timeout: 10 * time.Second})
	ctx := context.Background()
	if res, err := m.Authorize(ctx, authz("deep")); err != nil || res.Verdict != policy.Allow {
		t.Fatalf("deep: %+v, %v", res, err)
	}
	s, err := m.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := engineStack(t, s.in.decide[KindAuthz])
	m.pool.release(s)
	if n > StackRetain {
		t.Errorf("instance keeps a stack of %d bytes after the call, want at most %d", n, StackRetain)
	}
	wantRecovers(t, m)
}

// TestStackBound: recursion past the stack budget (sdk/ABI.md §7) ends
// as a plugin error naming the limit, the engine stack it grew on the way
// stays within twice the budget (wazero doubles it) however small
// memory_limit is, and the next call works. On main the call recursed
// 400,000 deep and grew the stack to tens of megabytes.
func TestStackBound(t *testing.T) {
	e := newEngine(t, nil)
	for _, limit := range []int64{64 << 10, 8 << 20, DefaultMemoryLimit} {
		t.Run(fmt.Sprint(limit>>10, "KiB"), func(t *testing.T) {
			m := testModule(t, e, "deep", ModuleConfig{Instances: 1, Timeout: 10 * time.Second, MemoryLimit: limit})
			budget := stackBudget(limit)
			ctx := context.Background()
			s, err := m.acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			in := s.in
			in.setDeadline(ctx)
			in.st.reset(phaseAuthz)
			_, err = in.run(KindAuthz, request{authz: authz("Deep")})
			in.st.phase = phaseIdle
			// The stack the call grew is still there: the function has not
			// been trimmed, and the engine never shrinks a stack.
			peak := engineStack(t, in.decide[KindAuthz])
			m.fail(s) // as decide does after an error
			var se *StackError
			if !errors.As(err, &se) || se.Limit != budget {
				t.Fatalf("Deep: %v, want a *StackError with limit %d", err, budget)
			}
			wantErr(t, m.callErr("authorize", err), fmt.Sprintf("call depth exceeded (stack limit %d KiB)", budget>>10))
			t.Logf("memory_limit %d KiB: stack budget %d KiB, engine stack %d KiB at the trap", limit>>10, budget>>10, peak>>10)
			if bound := 2*budget + 64<<10; uint64(peak) > bound {
				t.Errorf("engine stack %d bytes at the trap, want at most %d (twice the budget and the initial stack)", peak, bound)
			}
			wantRecovers(t, m)
		})
	}
}

// TestStackProbe: stackSize reads wazero's stack (a wazero upgrade that
// moves it fails here, not silently), the deep module does grow it, and
// trimStack replaces the function.
func TestStackProbe(t *testing.T) {
	e := newEngine(t, nil)
	m := testModule(t, e, "deep", ModuleConfig{Instances: 1, Timeout: 10 * time.Second})
	ctx := context.Background()
	s, err := m.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer m.pool.release(s)
	in := s.in
	if in.stackField < 0 {
		t.Fatalf("stackField found no engine stack in %T", in.buffer)
	}
	if got, want := in.stackSize(in.decide[KindAuthz]), engineStack(t, in.decide[KindAuthz]); got != want || got <= 0 {
		t.Fatalf("stackSize %d, want %d", got, want)
	}
	in.setDeadline(ctx)
	in.st.reset(phaseAuthz)
	defer func() { in.st.phase = phaseIdle }()
	if _, err := in.run(KindAuthz, request{authz: authz("deep")}); err != nil {
		t.Fatal(err)
	}
	if n := in.stackSize(in.decide[KindAuthz]); n <= StackRetain {
		t.Fatalf("deep recursion left a stack of %d bytes; the test needs more than %d", n, StackRetain)
	} else {
		t.Logf("stack after deep recursion: %d bytes", n)
	}
	in.trimStack(&in.decide[KindAuthz], ExportAuthorize)
	if n := in.stackSize(in.decide[KindAuthz]); n > StackRetain {
		t.Errorf("after trimStack: %d bytes", n)
	}
	if _, err := in.run(KindAuthz, request{authz: authz("ok")}); err != nil {
		t.Errorf("the fresh function fails: %v", err)
	}
}

// TestExportNames: exports of the host's reserved prefix and command-model
// modules are refused at load, naming what to do; a misspelt moat_ export
// is logged; the engine goes on loading good modules.
func TestExportNames(t *testing.T) {
	log, lb := debugLogger()
	e := newEngine(t, log)
	for _, tc := range []struct {
		file string
		want []string
	}{
		// The meter may refuse these first, with its own words.
		{"reserved_names", []string{`moat.`, `reserved`}},
		{"command", []string{"exports _start without _initialize", "build a reactor", "-buildmode=c-shared"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			m, err := e.Load(context.Background(), moduleConfig(t, tc.file, ModuleConfig{}))
			if err == nil {
				m.Close()
			}
			t.Log(err)
			wantErr(t, err, append([]string{`wasm: plugin "` + tc.file + `" (testdata/` + tc.file + `.wasm)`}, tc.want...)...)
		})
	}
	m := testModule(t, e, "misspelt", ModuleConfig{})
	if !strings.Contains(lb.String(), "export=func[moat_authorise]") {
		t.Errorf("no warning about moat_authorise in %q", lb.String())
	}
	wantRecovers(t, m)
}

// TestBufferZero: moat_buffer returning 0 is a plugin error that says so,
// not a buffer at address 0.
func TestBufferZero(t *testing.T) {
	e := newEngine(t, nil)
	m := testModule(t, e, "buffer_zero", ModuleConfig{})
	_, err := m.Authorize(context.Background(), authz(strings.Repeat("t", 5000)))
	wantErr(t, err, `moat_buffer(`, `returned 0, no buffer`)
	wantRecovers(t, m)
}

// FuzzScanModule: the load-time scanner (imports, exports, memory) never
// panics on any input, and what it returns fits in the input.
func FuzzScanModule(f *testing.F) {
	entries, err := testdata.ReadDir("testdata")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		b, err := testdata.ReadFile("testdata/" + e.Name())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, bin []byte) {
		info, err := scanModule(bin)
		if err != nil {
			return
		}
		names := 0
		for _, ex := range info.exports {
			names += len(ex.name)
		}
		if names > len(bin) || len(info.exports) > len(bin) || len(info.imports) > len(bin) {
			t.Fatalf("scanned more than the input holds: %d exports (%d bytes of names), %d imports from %d bytes",
				len(info.exports), names, len(info.imports), len(bin))
		}
	})
}

// TestArgon2Fits: the argon2id estimate refuses work that cannot end in
// time, learns a slower rate at once, and forgets a rate no call has
// confirmed lately, so that one slow spell does not refuse argon2id for
// good.
func TestArgon2Fits(t *testing.T) {
	e := newEngine(t, nil)
	const work = 19456 * 2 // moat passwd's default argon2id: m = 19 MiB, t = 2
	if !e.argon2Fits(work, time.Second) {
		t.Fatal("the initial rate refuses 38,912 KiB-passes in 1s")
	}
	if e.argon2Fits(work, time.Millisecond) {
		t.Fatal("the initial rate fits 38,912 KiB-passes in 1ms")
	}
	e.argon2Observe(work, 10*time.Second) // a very slow spell
	if e.argon2Fits(work, time.Second) {
		t.Fatal("a rate of 10s per run still fits in 1s")
	}
	e.argon2Seen.Store(int64(time.Since(e.start) - argon2Forget - time.Second))
	if !e.argon2Fits(work, time.Second) {
		t.Fatal("a rate unconfirmed for longer than argon2Forget is still applied")
	}
	e.argon2Observe(work, 10*time.Millisecond) // faster: lowered by an eighth of the difference
	if r := e.argon2Rate.Load(); r >= argon2InitialRate || r < argon2InitialRate*7/8 {
		t.Errorf("rate %d after a faster run, want just under %d", r, argon2InitialRate)
	}
}
