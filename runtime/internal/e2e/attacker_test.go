package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// The attacker of the abuse suite runs in a child process: the test binary
// re-executed under `nice -n 19` (TestMain sees attackerEnv). A remote
// attacker costs the broker's machine only what the broker spends serving
// it; run inside the test process, the attack's own dialing, writing and
// reading would compete with the broker and the good client for the same
// cores (two, on the machine this was written on), and the good client's
// latency would measure the test rather than the broker. At the lowest
// priority the attacker gets the CPU the broker and the good client leave
// idle, so what is left of the good client's latency is the broker's own
// cost of serving the attack. (A control run, the niced child storming a
// server of its own at 10,000 connections/s, left the good client's p99
// unchanged.)

// attackerEnv carries the attackSpec, as JSON, to the child.
const attackerEnv = "MOAT_E2E_ATTACKER"

// attackSpec is what the child does.
type attackSpec struct {
	Addr string
	// Idle silent sockets are opened first, and checked at the end to
	// have been cut by connect_timeout.
	Idle           int
	ConnectTimeout time.Duration
	// Storm workers connect in a loop with a wrong password: even ones
	// repeat one attempt (the failed-login cache answers), odd ones
	// rotate client ids to dodge it (each costs a password hash).
	Storm int
	// Rate bounds the storm's CONNECTs per second, all workers together;
	// 0: as fast as the workers go.
	Rate int
}

// attackResult is what the child reports after each attack.
type attackResult struct {
	Storms, Refused int64  // wrong-password CONNECTs; those refused in CONNACK
	Cut, Open       int    // idle sockets cut by the broker; still open
	Dial            string // why an idle socket could not be opened, if one could not
}

// attacker is a running child. It attacks when told to, and calms down
// when told to, so that idle and attacked phases can alternate.
type attacker struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *logBuffer
}

// startAttacker starts the child, calm.
func startAttacker(t *testing.T, spec attackSpec) *attacker {
	t.Helper()
	nice, err := exec.LookPath("nice")
	if err != nil {
		t.Fatalf("the attacker runs under nice(1): %v", err)
	}
	js, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	a := &attacker{stderr: &logBuffer{}}
	a.cmd = exec.Command(nice, "-n", "19", os.Args[0], "-test.run=^$")
	a.cmd.Env = append(os.Environ(), attackerEnv+"="+string(js))
	a.cmd.Stderr = a.stderr
	if a.stdin, err = a.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	a.lines = bufio.NewScanner(out)
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = a.stdin.Close()
		done := make(chan struct{})
		go func() { _ = a.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = a.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("attacker stderr:\n%s", a.stderr.String())
		}
	})
	return a
}

// attack opens the idle sockets and starts the storm. It returns when the
// sockets are open: the broker cuts them connect_timeout after it
// accepted them, before the time returned plus connect_timeout.
func (a *attacker) attack(t *testing.T) time.Time {
	t.Helper()
	if _, err := io.WriteString(a.stdin, "attack\n"); err != nil {
		t.Fatal(err)
	}
	if line := a.next(t); line != "opened" {
		t.Fatalf("attacker: %q, want opened", line)
	}
	return time.Now()
}

// calm stops the storm, checks the idle sockets and returns the child's
// report of the attack.
func (a *attacker) calm(t *testing.T) attackResult {
	t.Helper()
	if _, err := io.WriteString(a.stdin, "calm\n"); err != nil {
		t.Fatal(err)
	}
	line := a.next(t)
	js, ok := strings.CutPrefix(line, "calm ")
	if !ok {
		t.Fatalf("attacker: %q, want calm", line)
	}
	var r attackResult
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("attacker result %q: %v", js, err)
	}
	return r
}

// next returns the next line of the child's stdout.
func (a *attacker) next(t *testing.T) string {
	t.Helper()
	if !a.lines.Scan() {
		t.Fatalf("attacker ended: %v\n%s", a.lines.Err(), a.stderr.String())
	}
	return a.lines.Text()
}

// runAttacker is the child: it reads commands from cmds (attack, calm)
// until EOF and answers on out. It returns the exit code.
func runAttacker(spec string, cmds io.Reader, out io.Writer) int {
	var s attackSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "attacker:", err)
		return 2
	}
	in := bufio.NewScanner(cmds)
	for in.Scan() {
		if in.Text() != "attack" {
			fmt.Fprintf(os.Stderr, "attacker: unknown command %q\n", in.Text())
			return 2
		}
		r := attackOnce(s, out, func() bool { return in.Scan() && in.Text() == "calm" })
		js, _ := json.Marshal(r)
		fmt.Fprintf(out, "calm %s\n", js)
	}
	return 0
}

// attackOnce opens the idle sockets, says "opened" on out, and storms until
// calm returns; then it checks that each idle socket was cut.
func attackOnce(s attackSpec, out io.Writer, calm func() bool) attackResult {
	var r attackResult
	idle := make([]net.Conn, 0, s.Idle)
	for range s.Idle {
		c, err := net.DialTimeout("tcp", s.Addr, testutil.Wait)
		if err != nil {
			r.Dial = fmt.Sprintf("idle socket %d: %v", len(idle), err)
			break
		}
		idle = append(idle, c)
	}
	opened := time.Now()
	fmt.Fprintln(out, "opened")

	done := make(chan struct{})
	var tick <-chan time.Time
	if s.Rate > 0 {
		tk := time.NewTicker(time.Second / time.Duration(s.Rate))
		defer tk.Stop()
		tick = tk.C
	}
	var wg sync.WaitGroup
	var storms, refused atomic.Int64
	for w := range s.Storm {
		wg.Go(func() {
			for i := 0; ; i++ {
				if tick != nil {
					select {
					case <-done:
						return
					case <-tick:
					}
				}
				select {
				case <-done:
					return
				default:
				}
				id := "storm"
				if w%2 == 1 {
					id = fmt.Sprintf("storm-%d-%d-%d", w, opened.UnixNano(), i)
				}
				got := rawAttackQuiet(s.Addr, connect311(id, 0xC2, "good", "wrong"))
				storms.Add(1)
				if len(got) >= 4 && got[0] == 0x20 && got[3] != 0 {
					refused.Add(1)
				}
			}
		})
	}
	calm()
	close(done)
	wg.Wait()
	r.Storms, r.Refused = storms.Load(), refused.Load()

	// Every idle socket must have been cut once connect_timeout passed.
	deadline := opened.Add(s.ConnectTimeout + testutil.Wait)
	buf := make([]byte, 1)
	for _, c := range idle {
		// A deadline already past fails a read at once, even one that
		// would see EOF: give each read a moment.
		d := deadline
		if soon := time.Now().Add(100 * time.Millisecond); soon.After(d) {
			d = soon
		}
		_ = c.SetReadDeadline(d)
		_, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			r.Open++
		} else {
			r.Cut++
		}
		_ = c.Close()
	}
	return r
}
