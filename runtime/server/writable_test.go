package server

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/moat-mqtt/moat/runtime/config"
)

// writableConfig writes a moat.toml in dir whose cache, socket and store
// are at the given paths (relative to dir) and loads it.
func writableConfig(t *testing.T, dir, cache, socket, store string) *config.Config {
	t.Helper()
	doc := fmt.Sprintf(`
[[listener]]
type = "tcp"
address = "127.0.0.1:0"
[wasm]
cache_dir = %q
[admin]
socket = %q
[persistence]
type = "bolt"
path = %q
`, filepath.Join(dir, cache), filepath.Join(dir, socket), filepath.Join(dir, store))
	path := filepath.Join(dir, "moat.toml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestCheckWritable(t *testing.T) {
	tests := []struct {
		name                 string
		cache, socket, store string
		prepare              func(t *testing.T, dir string)
		want                 []string // substrings of the error, in order; none when nil
	}{
		{name: "all writable", cache: "cache", socket: "run/moat.sock", store: "state/moat.db",
			prepare: func(t *testing.T, dir string) { mkdirs(t, dir, "cache", "run", "state") }},
		{name: "cache created on demand", cache: "new/cache/wasm", socket: "moat.sock", store: "moat.db"},
		{name: "existing store", cache: "c", socket: "moat.sock", store: "moat.db",
			prepare: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "moat.db"), nil) }},
		{name: "missing directories", cache: "c", socket: "run/moat.sock", store: "state/moat.db",
			want: []string{"admin.socket: ", "/run is not writable by ", "no such file or directory",
				"persistence.path: ", "/state/moat.db is not writable by ", "no such file or directory"}},
		{name: "a file where a directory should be", cache: "f/wasm", socket: "moat.sock", store: "moat.db",
			prepare: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "f"), nil) },
			want:    []string{"wasm.cache_dir: ", "/f/wasm is not writable by ", "not a directory"}},
		{name: "store is a directory", cache: "c", socket: "moat.sock", store: "db",
			prepare: func(t *testing.T, dir string) { mkdirs(t, dir, "db") },
			want:    []string{"persistence.path: ", "/db is not writable by ", "is a directory"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.prepare != nil {
				tc.prepare(t, dir)
			}
			err := CheckWritable(writableConfig(t, dir, tc.cache, tc.socket, tc.store))
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckWritable: %v", err)
				}
				_ = filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error {
					if strings.HasPrefix(filepath.Base(p), ".moat-check") {
						t.Errorf("the check left %s", p)
					}
					return nil
				})
				return
			}
			if err == nil {
				t.Fatal("CheckWritable passed")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, filepath.Join(dir, "moat.toml")+": ") {
				t.Errorf("the error does not start with the config file: %v", err)
			}
			for _, w := range tc.want {
				i := strings.Index(msg, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q (in order)", err, w)
				}
				msg = msg[i+len(w):]
			}
		})
	}
}

func mkdirs(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckWritableOtherUser: directories the broker's user may read but
// not write are refused. Root writes everywhere, so as root the check runs
// in a copy of this test binary as user nobody (uid 65534).
func TestCheckWritableOtherUser(t *testing.T) {
	if os.Getenv("MOAT_WRITABLE_CHILD") != "" {
		cfg, err := config.Load(filepath.Join(os.Getenv("MOAT_WRITABLE_CHILD"), "moat.toml"))
		if err != nil {
			t.Fatal(err)
		}
		err = CheckWritable(cfg)
		fmt.Printf("uid %d: %v\n", os.Geteuid(), err)
		return
	}
	dir := t.TempDir()
	mkdirs(t, dir, "cache", "run", "state")
	if os.Geteuid() != 0 {
		for _, d := range []string{"cache", "run", "state"} {
			if err := os.Chmod(filepath.Join(dir, d), 0o555); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { mkdirs(t, dir); chmodAll(dir) })
		err := CheckWritable(writableConfig(t, dir, "cache", "run/moat.sock", "state/moat.db"))
		wantDenied(t, fmt.Sprint(err))
		return
	}
	// As root: dir and the binary's copy must be reachable by nobody; the
	// three directories stay root's, mode 0755.
	bin := filepath.Join(dir, "server.test")
	copyFile(t, os.Args[0], bin)
	writableConfig(t, dir, "cache", "run/moat.sock", "state/moat.db")
	// t.TempDir is <TMPDIR>/<test><random>/001, both made 0700: open those
	// two, nothing above them.
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, "-test.run=^TestCheckWritableOtherUser$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MOAT_WRITABLE_CHILD="+dir, "HOME=/nonexistent")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "uid 65534: ") {
		t.Fatalf("the child did not run as nobody:\n%s", out)
	}
	wantDenied(t, string(out))
}

func wantDenied(t *testing.T, out string) {
	t.Helper()
	for _, key := range []string{"wasm.cache_dir: ", "admin.socket: ", "persistence.path: "} {
		if !strings.Contains(out, key) {
			t.Errorf("no problem reported for %s:\n%s", key, out)
		}
	}
	if strings.Count(out, "permission denied") != 3 {
		t.Errorf("want three permission denied:\n%s", out)
	}
}

func chmodAll(dir string) {
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
