package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// pwOpenPTY opens a pseudo-terminal pair: what the test writes to master, the
// command reads from slave as typed on a terminal, and what the terminal
// echoes comes back on master.
func pwOpenPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock int32
	var n uint32
	rc, err := m.SyscallConn() // not m.Fd(): it would make master blocking
	if err != nil {
		t.Fatal(err)
	}
	var ioctlErr error
	rc.Control(func(fd uintptr) {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
			ioctlErr = e
			return
		}
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
			ioctlErr = e
		}
	})
	if ioctlErr != nil {
		t.Skipf("pseudo-terminal ioctl: %v", ioctlErr)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// pwEchoed reads what the terminal sent back, for up to d.
func pwEchoed(t *testing.T, master *os.File, d time.Duration) string {
	t.Helper()
	master.SetReadDeadline(time.Now().Add(d))
	var out bytes.Buffer
	buf := make([]byte, 256)
	for {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, io.EOF) {
				t.Fatalf("read master: %v", err)
			}
			return out.String()
		}
	}
}

// pwPromptWriter is stderr for the command: it passes each prompt to the test,
// which types the answer only once the prompt is out, that is once echo is
// off.
type pwPromptWriter struct{ prompts chan string }

func (w pwPromptWriter) Write(b []byte) (int, error) {
	w.prompts <- string(b)
	return len(b), nil
}

func pwWaitPrompt(t *testing.T, prompts <-chan string, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p := <-prompts:
			if p == want {
				return
			}
		case <-timeout:
			t.Fatalf("no prompt %q", want)
		}
	}
}

// TestPasswdTerminal types passwords on a real pseudo-terminal: the
// command asks twice, the terminal shows nothing of what was typed, echo is
// back on afterwards, and a mismatch is refused.
func TestPasswdTerminal(t *testing.T) {
	master, slave := pwOpenPTY(t)
	path := filepath.Join(t.TempDir(), "users.txt")

	// Control: with echo on (the terminal's default), typed text comes
	// back, so the checks below can see an echo if there is one.
	master.Write([]byte("probe\n"))
	if got := pwEchoed(t, master, 500*time.Millisecond); !strings.Contains(got, "probe") {
		t.Fatalf("control: echo %q does not show the typed text", got)
	}
	drain := make([]byte, 64)
	if n, err := slave.Read(drain); err != nil || !strings.Contains(string(drain[:n]), "probe") {
		t.Fatalf("control: slave read %q, %v", drain[:n], err)
	}

	type result struct {
		code   int
		stderr string
	}
	run := func(first, second string) result {
		prompts := make(chan string, 16)
		done := make(chan int, 1)
		go func() {
			done <- runPasswd([]string{"-c", "-H", "sha512", path, "alice"}, slave, io.Discard, pwPromptWriter{prompts})
		}()
		pwWaitPrompt(t, prompts, "Password: ")
		master.Write([]byte(first + "\n"))
		pwWaitPrompt(t, prompts, "Reenter password: ")
		master.Write([]byte(second + "\r\n"[1:])) // a terminal sends \n or \r (ICRNL maps it)
		code := <-done
		var rest strings.Builder
		for len(prompts) > 0 {
			rest.WriteString(<-prompts)
		}
		return result{code, rest.String()}
	}

	r := run("tty secret", "tty secret")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := pwEchoed(t, master, 300*time.Millisecond); strings.Contains(got, "tty secret") || strings.Contains(got, "secret") {
		t.Fatalf("the terminal pwEchoed the password: %q", got)
	}
	if f := pwLoadFile(t, path); !f.Verify("alice", []byte("tty secret")) {
		t.Fatal("password typed on the terminal not stored")
	}
	st, err := tcget(slave.Fd())
	if err != nil {
		t.Fatal(err)
	}
	if st.Lflag&syscall.ECHO == 0 {
		t.Fatal("echo left off after the command")
	}

	before, _ := os.ReadFile(path)
	r = run("one", "two")
	if r.code != exitFail || !strings.Contains(r.stderr, "passwords do not match") {
		t.Fatalf("mismatch: exit %d, %q", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "one") || strings.Contains(r.stderr, "two") {
		t.Fatalf("stderr shows a password: %q", r.stderr)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("mismatch changed the file")
	}
}
