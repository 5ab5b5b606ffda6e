package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// listenNotify opens a Unix datagram socket as systemd does for a
// Type=notify service, and returns a function that reads the next
// message.
func listenNotify(t *testing.T, addr string) func() string {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}
}

func TestNotify(t *testing.T) {
	t.Run("abstract socket", func(t *testing.T) {
		addr := fmt.Sprintf("@moat-notify-test-%d", os.Getpid())
		next := listenNotify(t, addr)
		t.Setenv("NOTIFY_SOCKET", addr)
		if err := notify("READY=1"); err != nil {
			t.Fatal(err)
		}
		if m := next(); m != "READY=1" {
			t.Errorf("got %q", m)
		}
	})
	t.Run("unset", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		if err := notify("READY=1"); err != nil {
			t.Error(err)
		}
	})
	t.Run("relative", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "notify.sock")
		if err := notify("READY=1"); err == nil || !strings.Contains(err.Error(), "want an absolute path") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "none.sock"))
		if err := notify("READY=1"); err == nil || !strings.HasPrefix(err.Error(), "sd_notify: ") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestServeNotify runs `moat serve` as systemd runs a Type=notify service:
// READY=1 comes once the listener accepts connections, STOPPING=1 when
// SIGTERM starts the shutdown.
func TestServeNotify(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, demoTOML)
	sock := filepath.Join(dir, "notify.sock")
	next := listenNotify(t, sock)
	cmd := moatCmd(dir, "serve", "-c", "moat.toml")
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+sock)
	stderr := new(lockedBuffer)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	done := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
			<-done
		}
	})

	ready := next()
	if !strings.HasPrefix(ready, "READY=1\n") || !strings.Contains(ready, fmt.Sprintf("MAINPID=%d", cmd.Process.Pid)) {
		t.Fatalf("first notification %q, want READY=1 and the pid", ready)
	}
	// Ready means accepting: the listener's address is in the log by now.
	var addr string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, `"msg":"listening"`) {
			i := strings.Index(l, `"address":"`)
			addr = l[i+len(`"address":"`):]
			addr = addr[:strings.IndexByte(addr, '"')]
		}
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("READY=1 but the listener %q does not accept: %v", addr, err)
	}
	c.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if m := next(); !strings.HasPrefix(m, "STOPPING=1") {
		t.Errorf("after SIGTERM: %q, want STOPPING=1", m)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("serve still running 30s after SIGTERM:\n%s", stderr.String())
	}
	if waitErr != nil {
		t.Errorf("serve: %v\n%s", waitErr, stderr.String())
	}
}

// lockedBuffer is a bytes.Buffer safe for a writing process and a reading
// test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
