package broker

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// BenchmarkIdleRSS is the footprint goal of "Lean first-party modules": a
// broker with the passwd and acl plugins idles within 2x of bare mochi's
// resident memory. Each side runs as its own process at GOMAXPROCS=2 and
// 16, in the same run: bare mochi (this test binary re-executed, an
// allow-all hook, one TCP listener) and `bin/moat serve` (built by make)
// with bin/plugins/passwd.wasm and bin/plugins/acl.wasm. Each serves one
// client that authenticates, subscribes and publishes, and then idles;
// VmRSS is read from /proc after 3 s of idleness. Metrics: bare-MiB,
// moat-MiB and moat/bare. Run with -benchtime=1x:
//
//	go test -run='^$' -bench=IdleRSS -benchtime=1x -count=3 ./runtime/broker/
func BenchmarkIdleRSS(b *testing.B) {
	root := testutil.RepoRoot(b)
	moatBin := filepath.Join(root, "bin", "moat")
	for _, p := range []string{moatBin, filepath.Join(root, "bin", "plugins", "passwd.wasm"), filepath.Join(root, "bin", "plugins", "acl.wasm")} {
		if _, err := os.Stat(p); err != nil {
			b.Skipf("no %s: run make build", p) // a benchmark: nothing is measured without it
		}
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		b.Skip("no /proc: RSS is read from /proc/<pid>/status")
	}
	dir := b.TempDir()
	hash, err := passwdfile.HashWith([]byte("secret"), passwdfile.FormatSHA512PBKDF2, passwdfile.HashOptions{Iterations: 1000})
	if err != nil {
		b.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			b.Fatal(err)
		}
		return p
	}
	pwFile := write("passwords", "alice:"+hash+"\n")
	aclFile := write("acl", "user alice\ntopic readwrite alice/#\n")
	// "rust" is what make build ships; "go" the Go modules of plugins/passwd
	// and plugins/acl (bin/plugins/*-go.wasm), for comparison.
	for _, procs := range []int{2, 16} {
		for _, lang := range []string{"rust", "go"} {
			suffix := ""
			if lang == "go" {
				suffix = "-go"
				if _, err := os.Stat(filepath.Join(root, "bin", "plugins", "passwd-go.wasm")); err != nil {
					continue
				}
			}
			b.Run(fmt.Sprintf("GOMAXPROCS=%d/%s", procs, lang), func(b *testing.B) {
				var bare, moat float64
				for b.Loop() {
					addr := freeAddr(b)
					cmd := exec.Command(os.Args[0], "-test.run=^TestBareMochiProcess$")
					cmd.Env = append(os.Environ(), "MOAT_BARE_MOCHI="+addr, "GOMAXPROCS="+strconv.Itoa(procs))
					bare += idleRSS(b, cmd, addr)

					addr = freeAddr(b)
					cfg := write("moat.toml", fmt.Sprintf(`
[[listener]]
name = "mqtt"
type = "tcp"
address = %q

[auth]
allow_anonymous = false
no_match = "deny"

[wasm]
cache_dir = %q

[[plugin]]
name = "passwd"
module = %q
decisions = ["authn"]
timeout = "5s"
[plugin.files]
passwords = %q

[[plugin]]
name = "acl"
module = %q
decisions = ["authz"]
[plugin.files]
acl = %q
`, addr, filepath.Join(dir, "cache"), filepath.Join(root, "bin", "plugins", "passwd"+suffix+".wasm"), pwFile,
						filepath.Join(root, "bin", "plugins", "acl"+suffix+".wasm"), aclFile))
					cmd = exec.Command(moatBin, "serve", "-c", cfg)
					cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(procs))
					moat += idleRSS(b, cmd, addr)
				}
				n := float64(b.N)
				b.ReportMetric(bare/n/(1<<20), "bare-MiB")
				b.ReportMetric(moat/n/(1<<20), "moat-MiB")
				b.ReportMetric(moat/bare, "moat/bare")
			})
		}
	}
}

// TestBareMochiProcess is BenchmarkIdleRSS's bare mochi: it serves on
// $MOAT_BARE_MOCHI until killed, and does nothing without it.
func TestBareMochiProcess(t *testing.T) {
	addr := os.Getenv("MOAT_BARE_MOCHI")
	if addr == "" {
		return
	}
	srv := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	for _, ev := range []byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck} {
		if err := srv.AddHook(&allowHook{provides: ev}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "bare", Address: addr})); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	select {}
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// idleRSS starts cmd, waits until it accepts on addr, has one client
// connect as alice, subscribe and publish, lets the process idle 3 s and
// returns its VmRSS in bytes; the process is killed before it returns.
func idleRSS(b *testing.B, cmd *exec.Cmd, addr string) float64 {
	b.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s never listened on %s: %v\n%s", cmd.Path, addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, code, err := testutil.ConnectV3(b, "tcp://"+addr, testutil.V3Options{ClientID: "rss", Username: "alice", Password: "secret"})
	if err != nil || code != 0 {
		b.Fatalf("%s: connect: code %d, %v\n%s", cmd.Path, code, err, stderr.String())
	}
	c.Subscribe(b, "alice/#", 1)
	c.Publish(b, "alice/x", 1, false, "hello")
	time.Sleep(3 * time.Second)
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) * 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
