package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The hostile-module suite (issue 9): one module per attack class, written
// from sdk/ABI.md as an author with bad intent would, each loaded through
// an ordinary [[plugin]] entry with limits into a live broker while a
// well-behaved client publishes and receives QoS 1 on another topic. For
// every case it checks that
//
//   - the broker neither crashes nor hangs: each case runs in a child
//     process (this test binary, re-run for one case), so that a crash or
//     a frozen broker is reported for its class and the suite goes on;
//   - every hostile decision ends as the plugin's on_error (the evil client
//     is refused), or a hostile module is refused at load;
//   - the good client's round trips (publish QoS 1, wait for the PUBACK
//     and for its subscriber's copy, then the next) have a p99 under
//     goodP99 (or loadFactor times the same client's p99 without the
//     attack, when the machine alone makes that slower), computed over
//     every sample taken while the attack ran (nearest rank: with fewer
//     than 100 samples, the slowest). A stalled broker shows as few, long
//     samples. The p99 of the same client
//     without an attack, measured first, is reported beside it, to tell a
//     loaded machine from an attack;
//   - the process's memory (peak RSS and peak Go heap, sampled every few
//     milliseconds, against a baseline taken before the broker started)
//     stays within the plugin's configured budget (memory_limit ×
//     instances) plus memorySlack (RSS: rssPerBudget times the budget,
//     for the race detector's shadow memory);
//   - the broker's log grows by at most logRate bytes and guestLineRate
//     lines of the module per second of the case.
//
// Hostile requests come from clients whose username starts with "evil":
// every module below ignores (verdict 3) all other requests, which
// [auth] no_match = "allow" then admits.

// goodP99 is issue 9's bound on the good client's p99 round trip.
const goodP99 = 100 * time.Millisecond

// loadFactor scales the bound when the machine itself is slow: the same
// client's p99 without the attack, measured first in the same child, times
// loadFactor. On a quiet machine that baseline is a few milliseconds and
// the bound is goodP99; under the race detector on a loaded 2-core
// machine (go test runs packages side by side) a baseline of 30-600 ms was
// seen, where a fixed 100 ms would fail for the machine's sake. An attack
// that stalls the broker (seconds, as on main) fails either way.
const loadFactor = 4

// p99Bound is the p99 a case's good traffic must stay under.
func p99Bound(baseline time.Duration) time.Duration {
	return max(goodP99, loadFactor*baseline)
}

// memorySlack is what the process may grow beyond the plugins' budgets
// during a case: the broker itself, the compiled modules, the clients and
// the garbage the good traffic makes. A broker with a well-behaved plugin
// stays well under it (see the "trap" case), and every memory attack of
// issue 9 exceeds it by far.
const memorySlack = 96 << 20

// logRate bounds the bytes per second the broker may log during a case
// (at debug level, the most it logs; a broker serving the good client
// alone logs some 300 KiB/s): the log of a broker under attack must not
// grow at the rate a guest can write it.
const logRate = 2 << 20

// guestLineRate bounds the lines per second a module may have logged
// during a case (the host's limit on main is none; the limit of issue 9's
// work allows 100 a second after a burst of 200).
const guestLineRate = 500

// baselineWindow is how long the good client publishes before the
// attack, for its baseline p99.
const baselineWindow = 300 * time.Millisecond

// goodWindow is how long the good client publishes while the attack runs;
// MOAT_SOAK lengthens it.
const goodWindow = time.Second

// lateAllow is how soon an allow of a late-result case must reach the
// client to count as decided within the plugin's 50ms timeout: ten times
// that, for a loaded machine; on main these allows come after 1-4 s.
const lateAllow = 500 * time.Millisecond

// childLimit bounds one case's child process: a case that has not ended
// by then has hung the broker.
const childLimit = 25 * time.Second

// attack says how the evil client reaches the hostile module.
type attack int

const (
	// publishEvil: an evil client publishes QoS 1 to evil/<n>, one request
	// after the other; each PUBACK must carry a refusal (on_error deny).
	publishEvil attack = iota
	// connectEvil: evil clients connect one after the other; each must be
	// refused.
	connectEvil
	// deliverEvil: ten evil subscribers subscribe to "#", so that every
	// good publish asks the module about them; they must receive nothing.
	deliverEvil
	// enhancedAuthEvil: evil clients start MQTT 5 enhanced authentication.
	enhancedAuthEvil
	// reloadEvil: the broker starts without the module and a reload loads
	// it while the good client publishes; the reload must be refused.
	reloadEvil
	// reloadBomb: as reloadEvil, but the reload may also succeed: what
	// counts is that it ends in bounded time and memory.
	reloadBomb
)

// hostileCase is one attack. The zero values of the limits are those the
// suite uses for every plugin: timeout 50ms, memory_limit 64KiB, two
// instances, on_error deny.
type hostileCase struct {
	// class is the attack class of issue 9, as the test output names it.
	class string
	// name is the case within its class.
	name string
	// wasm is a module in testdata/hostile (without .wasm); gen builds one
	// at test time instead (hostile_gen_test.go).
	wasm string
	gen  func() []byte
	// decisions is the plugin's decisions list, as TOML.
	decisions   string
	timeout     string // default 50ms
	memoryLimit string
	instances   int
	attack      attack
	// maxLoad bounds a reload (reloadEvil, reloadBomb).
	maxLoad time.Duration
	// refusable: the module is invalid as written, so a broker may refuse
	// it at load instead of meeting the attack at run time.
	refusable bool
	// allowWithin, when set, admits an allow that arrives within it: a
	// host that bounds a slow call's work (rather than failing it) lets
	// the module decide in time. An allow after it is a result that came
	// after the deadline.
	allowWithin time.Duration
}

var hostileCases = []hostileCase{
	// Cases that hold on main.
	{class: "trap", name: "unreachable", wasm: "trap", decisions: `["authz"]`, attack: publishEvil},
	{class: "infinite-loop", name: "decision", wasm: "loop", decisions: `["authz"]`, attack: publishEvil},
	{class: "infinite-loop", name: "payload decision", wasm: "payload_loop", decisions: `["payload"]`, attack: publishEvil},
	{class: "infinite-loop", name: "moat_configure", wasm: "configure_loop", decisions: `["authz"]`, attack: reloadEvil, maxLoad: 10 * time.Second},
	{class: "memory-grab", name: "memory.grow", wasm: "memory_grab", decisions: `["authz"]`, memoryLimit: "1MiB", attack: publishEvil},
	{class: "wild-pointers", name: "host calls and loads", wasm: "wild_pointers", decisions: `["authz"]`, attack: publishEvil},

	// Deadline and the garbage collector.
	{class: "meter-globals", name: "deadline reset", wasm: "meter_deadline", decisions: `["authz"]`, attack: publishEvil, refusable: true},
	{class: "meter-globals", name: "countdown reset", wasm: "meter_countdown", decisions: `["authz"]`, attack: publishEvil, refusable: true},
	{class: "meter-globals", name: "deadline reset in moat_configure", wasm: "meter_configure", decisions: `["authz"]`, attack: reloadEvil, maxLoad: 7 * time.Second},
	{class: "late-result", name: "argon2id", wasm: "late_argon2", decisions: `["authn"]`, memoryLimit: "64MiB", attack: connectEvil, allowWithin: lateAllow},
	{class: "late-result", name: "random_get 40x16MiB", wasm: "late_random", decisions: `["authn"]`, memoryLimit: "16MiB", attack: connectEvil, allowWithin: lateAllow},
	{class: "late-result", name: "fd_write 8x8MiB", wasm: "late_fd_write", decisions: `["authz"]`, memoryLimit: "8MiB", attack: publishEvil, allowWithin: lateAllow},
	{class: "bulk-memory", name: "memory.fill", gen: genBulk(bulkFill), decisions: `["authz"]`, memoryLimit: "16MiB", attack: publishEvil},
	{class: "bulk-memory", name: "memory.copy", gen: genBulk(bulkCopy), decisions: `["authz"]`, memoryLimit: "16MiB", attack: publishEvil},
	// Tables are capped to memory_limit/8 bytes, so 600 fills of all of
	// them may finish within the deadline: an allow in time is the
	// module's own, and only a late one is the attack.
	{class: "bulk-memory", name: "table.fill", gen: genBulk(bulkTableFill), decisions: `["authz"]`, memoryLimit: "16MiB", attack: publishEvil, allowWithin: lateAllow},

	// Memory outside memory_limit.
	{class: "tables", name: "table.grow 128MiB", wasm: "table_grow", decisions: `["authz"]`, attack: publishEvil},
	{class: "tables", name: "table.grow 32GiB", wasm: "table_grow_max", decisions: `["authz"]`, attack: publishEvil},
	{class: "tables", name: "huge minimum filled in start", wasm: "table_min_fill", decisions: `["authz"]`, attack: reloadEvil, maxLoad: 10 * time.Second},
	// The recursion takes ~150 ms under the race detector: a 50ms timeout
	// would stop it before the stack is kept.
	{class: "stacks", name: "deep recursion kept", wasm: "stack_recursion", decisions: `["authz"]`, timeout: "1s", instances: 4, attack: publishEvil},

	// Load time.
	{class: "compile-bomb", name: "80000 nested blocks", gen: genNestedBlocks, decisions: `["authz"]`, attack: reloadBomb, maxLoad: 10 * time.Second},
	{class: "compile-bomb", name: "64000 sequential ifs", gen: genSequentialIfs, decisions: `["authz"]`, attack: reloadBomb, maxLoad: 10 * time.Second},
	{class: "compile-bomb", name: "16000 memory.fill", gen: genManyFills, decisions: `["authz"]`, attack: reloadBomb, maxLoad: 10 * time.Second},
	{class: "reserved-names", name: "export moat.yield", wasm: "reserved_export", decisions: `["authz"]`, attack: reloadEvil, maxLoad: 10 * time.Second},

	// Availability through the policy.
	{class: "slow-deliver", name: "ten subscribers time out", wasm: "slow_deliver", decisions: `["authz"]`, attack: deliverEvil},
	// Each call floods for its whole 500ms timeout.
	{class: "log-flood", name: "NUL lines", wasm: "log_flood", decisions: `["authz"]`, timeout: "500ms", attack: publishEvil},
	{class: "enhanced-auth", name: "64KiB data and state", wasm: "auth_data", decisions: `["authn"]`, memoryLimit: "192KiB", attack: enhancedAuthEvil},
}

// caseEnv names the case a child process runs.
const caseEnv = "MOAT_HOSTILE_CASE"

func (hc hostileCase) id() string { return hc.class + "/" + hc.name }

// TestHostileModules runs each case of hostileCases in a child process and
// reports, per class, what failed.
func TestHostileModules(t *testing.T) {
	if os.Getenv(caseEnv) != "" {
		t.Skip("in a child process")
	}
	if testing.Short() {
		t.Skip("the hostile-module suite takes about a minute")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, hc := range hostileCases {
		t.Run(hc.id(), func(t *testing.T) {
			runChild(t, exe, hc)
		})
	}
}

// measuredLine picks the figures out of a child's output.
var measuredLine = regexp.MustCompile(`(?m)^\s+hostile\w*_test\.go:\d+: measured: .*$`)

// errLine picks the failures out of a child's `go test -v` output.
var errLine = regexp.MustCompile(`(?m)^\s+hostile\w*_test\.go:\d+: .*$`)

// runChild runs one case in a child process, bounded by childLimit, and
// turns its end into a verdict: pass, fail (with the child's messages),
// crash or hang.
func runChild(t *testing.T, exe string, hc hostileCase) {
	ctx, cancel := context.WithTimeout(context.Background(), childLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^TestHostileChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), caseEnv+"="+hc.id())
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	text := out.String()
	switch {
	case ctx.Err() != nil:
		t.Errorf("%s: hang: the case did not end within %v (killed)\n%s", hc.class, childLimit, tail(text, 40))
	case crashed.MatchString(text):
		i := crashed.FindStringIndex(text)[0]
		t.Errorf("%s: crash: the broker process died:\n%s", hc.class, head(text[i:], 12))
	case err != nil:
		var msgs []string
		for _, m := range errLine.FindAllString(text, -1) {
			if !strings.Contains(m, ": measured: ") && !strings.Contains(m, ": moat log (first") {
				msgs = append(msgs, m)
			}
		}
		if len(msgs) == 0 {
			t.Errorf("%s: child failed: %v\n%s", hc.class, err, tail(text, 40))
			return
		}
		for _, m := range msgs {
			t.Errorf("%s: %s", hc.class, strings.TrimSpace(m))
		}
		if testing.Verbose() {
			t.Logf("child output:\n%s", tail(text, 60))
		}
	default:
		if !strings.Contains(text, "--- PASS: TestHostileChild") {
			t.Errorf("%s: the child ran no case\n%s", hc.class, tail(text, 20))
		}
	}
	for _, l := range measuredLine.FindAllString(text, -1) {
		t.Log(strings.TrimSpace(l))
	}
	t.Logf("took %v", took.Round(time.Millisecond))
}

// crashed finds the start of a Go runtime crash in a child's output.
var crashed = regexp.MustCompile(`(?m)^(fatal error:|panic:|SIGSEGV|SIGBUS)`)

func head(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestHostileChild runs the one case named by MOAT_HOSTILE_CASE; it is
// skipped otherwise.
func TestHostileChild(t *testing.T) {
	id := os.Getenv(caseEnv)
	if id == "" {
		t.Skip("run by TestHostileModules")
	}
	for _, hc := range hostileCases {
		if hc.id() == id {
			runHostile(t, hc)
			return
		}
	}
	t.Fatalf("no hostile case %q", id)
}

// runHostile runs one case in this process.
func runHostile(t *testing.T, hc hostileCase) {
	dir := t.TempDir()
	module := filepath.Join("testdata", "hostile", hc.wasm+".wasm")
	if hc.gen != nil {
		module = filepath.Join(dir, "generated.wasm")
		if err := os.WriteFile(module, hc.gen(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	module, err := filepath.Abs(module)
	if err != nil {
		t.Fatal(err)
	}
	pl := hostilePlugin{module: module, decisions: hc.decisions, timeout: hc.timeout, memoryLimit: hc.memoryLimit, instances: hc.instances}
	if pl.timeout == "" {
		pl.timeout = "50ms"
	}
	if pl.memoryLimit == "" {
		pl.memoryLimit = "64KiB"
	}
	if pl.instances == 0 {
		pl.instances = 2
	}
	budget := pl.budget(t)

	mem := watchMemory(t, rssPerBudget*budget+memorySlack)
	caseStart := time.Now()
	loadLater := hc.attack == reloadEvil || hc.attack == reloadBomb
	b, err := startHostileBroker(t, dir, pl, loadLater)
	if err != nil {
		if !hc.refusable {
			t.Fatalf("server: %v", err)
		}
		// Refused at load: the attack cannot start.
		mem.stop()
		t.Logf("measured: refused at load: %v", err)
		return
	}

	good := startGood(t, b.addr)
	window := goodWindow
	if soak := os.Getenv("MOAT_SOAK"); soak != "" {
		if d, err := time.ParseDuration(soak); err == nil && d > window {
			window = d
		}
	}

	// The same client without an attack, for comparison.
	idle := make(chan struct{})
	close(idle)
	baseline := percentile(good.run(t, baselineWindow, idle), 0.99)

	ctx, stop := context.WithCancel(context.Background())
	results := make(chan evilResult, 1)
	// A reload is measured from start to end: the good client publishes
	// until it is over, and at least for the window.
	loaded := make(chan struct{})
	if !loadLater {
		close(loaded)
	}
	go func() { results <- runAttack(ctx, t, hc, b, pl, loaded) }()
	samples := good.run(t, window, loaded)
	stop()
	var res evilResult
	select {
	case res = <-results:
	case <-time.After(childLimit / 2):
		t.Fatalf("hang: the evil client's request has not returned %v after the attack ended", childLimit/2)
	}
	peak := mem.stop()

	// Every hostile decision ends as on_error.
	for _, e := range res.errs {
		t.Errorf("%s", e)
	}
	if res.requests == 0 && !loadLater {
		t.Errorf("the evil client made no request (nothing was tested)")
	}
	// The good client was served throughout.
	p99, slowest := percentile(samples, 0.99), percentile(samples, 1)
	t.Logf("measured: %d good round trips, p99 %v (%v without the attack), max %v; %d evil requests; peak RSS +%d MiB, peak Go heap +%d MiB (budget %.1f MiB + slack %d MiB); log %d KiB, %d module lines",
		len(samples), p99.Round(time.Microsecond), baseline.Round(time.Microsecond), slowest.Round(time.Microsecond), res.requests,
		peak.rss>>20, peak.heap>>20, float64(budget)/(1<<20), memorySlack>>20, b.logs.n.Load()>>10, b.logs.guest.Load())
	if bound := p99Bound(baseline); p99 >= bound {
		t.Errorf("the good client's p99 round trip is %v (max %v, %d samples; %v without the attack), want under %v",
			p99.Round(time.Microsecond), slowest.Round(time.Microsecond), len(samples), baseline.Round(time.Microsecond), bound)
	}
	if limit := rssPerBudget*budget + memorySlack; peak.rss > limit {
		t.Errorf("memory: peak RSS +%d MiB over the baseline, want at most %d × the plugin's budget of %.1f MiB + %d MiB",
			peak.rss>>20, rssPerBudget, float64(budget)/(1<<20), memorySlack>>20)
	}
	if limit := budget + memorySlack; peak.heap > limit {
		t.Errorf("memory: peak Go heap +%d MiB over the baseline, want at most the plugin's budget of %.1f MiB + %d MiB",
			peak.heap>>20, float64(budget)/(1<<20), memorySlack>>20)
	}
	took := time.Since(caseStart)
	if n, limit := b.logs.n.Load(), int64(logRate*max(1, took.Seconds())); n > limit {
		t.Errorf("the broker logged %d KiB in %v, want at most %d KiB (%d KiB/s)", n>>10, took.Round(time.Millisecond), limit>>10, logRate>>10)
	}
	if n, limit := b.logs.guest.Load(), int64(guestLineRate*max(1, took.Seconds())); n > limit {
		t.Errorf("the broker logged %d lines of the module in %v, want at most %d (%d a second)", n, took.Round(time.Millisecond), limit, guestLineRate)
	}
	if !b.alive(t) {
		t.Errorf("the broker no longer accepts connections")
	}
}

// errAllowed is how a hostile decision that the broker used ends.
var errAllowed = errors.New("the hostile decision was used: want the plugin's on_error (deny)")
