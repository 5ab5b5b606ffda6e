package main

import (
	"bufio"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The packaging: `make install` and the systemd unit in deploy/.

// repoRoot is the repository, from cmd/moat.
const repoRoot = "../.."

// TestMakeInstall installs into a temporary DESTDIR with PREFIX=/usr, lists
// what was installed, runs the installed binary's `check` on the installed
// config (its paths moved under DESTDIR), and installs again over a
// changed config, which must be kept.
func TestMakeInstall(t *testing.T) {
	plugins, _ := filepath.Glob(filepath.Join(repoRoot, "bin/plugins/*.wasm"))
	if _, err := os.Stat(filepath.Join(repoRoot, "bin/moat")); err != nil || len(plugins) == 0 {
		t.Fatalf("make install copies bin/: run `make build` first (bin/moat: %v, %d modules)", err, len(plugins))
	}
	dest := t.TempDir()
	install := func() {
		t.Helper()
		// -o build: bin/ is built already; only the install recipe runs.
		cmd := exec.Command("make", "-o", "build", "install", "DESTDIR="+dest, "PREFIX=/usr")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
	}
	install()

	want := map[string]fs.FileMode{
		"etc/moat/acl":                        0o644,
		"etc/moat/moat.toml":                  0o644,
		"etc/moat/moat.toml.example":          0o644,
		"etc/moat/passwd":                     0o640,
		"usr/bin/moat":                        0o755,
		"usr/lib/systemd/system/moat.service": 0o644,
		"usr/lib/sysusers.d/moat.conf":        0o644,
	}
	for _, p := range plugins {
		// bin/plugins/<name>-go.wasm are the Go builds of modules shipped in
		// Rust (acl, passwd), kept for cross-checks and benchmarks only.
		if strings.HasSuffix(p, "-go.wasm") {
			continue
		}
		want["usr/lib/moat/plugins/"+filepath.Base(p)] = 0o644
	}
	got := map[string]fs.FileMode{}
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		got[rel] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range want {
		if m, ok := got[name]; !ok || m != mode {
			t.Errorf("%s: mode %v, present %v; want %v", name, m, ok, mode)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected file installed: %s", name)
		}
	}

	unit := read(t, filepath.Join(dest, "usr/lib/systemd/system/moat.service"))
	if !strings.Contains(unit, "\nExecStart=/usr/bin/moat serve -c /etc/moat/moat.toml\n") || strings.Contains(unit, "/usr/local") {
		t.Errorf("installed unit's paths are not those of PREFIX=/usr:\n%s", unit)
	}
	cfg := read(t, filepath.Join(dest, "etc/moat/moat.toml"))
	if strings.Contains(cfg, "/usr/local/") || !strings.Contains(cfg, `module = "/usr/lib/moat/plugins/passwd.wasm"`) {
		t.Errorf("installed config's paths are not those of PREFIX=/usr:\n%s", cfg)
	}

	// The installed config, with its paths under DESTDIR and the systemd
	// directories in a temporary state directory, passes `moat check`.
	state := t.TempDir()
	moved := strings.NewReplacer(`"/usr/`, `"`+dest+`/usr/`, `"/etc/`, `"`+dest+`/etc/`,
		`"/var/lib/moat`, `"`+state, `"/var/cache/moat`, `"`+state, `"/run/moat`, `"`+state).Replace(cfg)
	check := filepath.Join(state, "moat.toml")
	if err := os.WriteFile(check, []byte(moved), 0o644); err != nil {
		t.Fatal(err)
	}
	r := moat(t, state, "check", "-c", check)
	if r.code != 0 {
		t.Errorf("moat check on the installed config: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Installing again keeps the operator's config.
	if err := os.WriteFile(filepath.Join(dest, "etc/moat/moat.toml"), []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	install()
	if c := read(t, filepath.Join(dest, "etc/moat/moat.toml")); c != "# mine\n" {
		t.Errorf("make install overwrote moat.toml:\n%s", c)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unitSettings parses a systemd unit file into section.key -> values.
func unitSettings(t *testing.T, text string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("moat.service:%d: not a setting: %q", n, line)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

// TestSystemdUnit checks deploy/moat.service with `systemd-analyze
// verify` (its ExecStart pointed at the test's binary, which verify wants
// to exist), then checks the settings the service depends on.
func TestSystemdUnit(t *testing.T) {
	text := read(t, filepath.Join(repoRoot, "deploy/moat.service"))
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatal("systemd-analyze is needed to verify deploy/moat.service: install Debian's systemd package (.ci/run does)")
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "moat.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(text, "/usr/local/bin/moat", moatBin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	s := unitSettings(t, text)
	for key, want := range map[string]string{
		"Service.Type":                   "notify",
		"Service.User":                   "moat",
		"Service.AmbientCapabilities":    "CAP_NET_BIND_SERVICE",
		"Service.CapabilityBoundingSet":  "CAP_NET_BIND_SERVICE",
		"Service.NoNewPrivileges":        "yes",
		"Service.ProtectSystem":          "strict",
		"Service.ProtectHome":            "yes",
		"Service.PrivateTmp":             "yes",
		"Service.StateDirectory":         "moat",
		"Service.CacheDirectory":         "moat",
		"Service.RuntimeDirectory":       "moat",
		"Service.MemoryDenyWriteExecute": "no", // wazero writes the code it runs
		"Service.ExecStart":              "/usr/local/bin/moat serve -c /usr/local/etc/moat/moat.toml",
		"Service.ExecReload":             "/bin/kill -HUP $MAINPID",
		"Install.WantedBy":               "multi-user.target",
	} {
		if got := s[key]; !slices.Equal(got, []string{want}) {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	// The installed config writes where the unit lets it.
	cfg := read(t, filepath.Join(repoRoot, "deploy/moat.toml"))
	for _, p := range []string{`"/var/lib/moat/`, `"/var/cache/moat/`, `"/run/moat/`, `"/usr/local/etc/moat/`, `"/usr/local/lib/moat/plugins/`} {
		if !strings.Contains(cfg, p) {
			t.Errorf("deploy/moat.toml names no path under %s", p)
		}
	}
	users := read(t, filepath.Join(repoRoot, "deploy/moat.sysusers"))
	if !strings.Contains(users, "\nu moat - ") {
		t.Errorf("deploy/moat.sysusers creates no moat user:\n%s", users)
	}
}

// TestDockerfile checks what can be checked of deploy/Dockerfile without
// docker (which these tests do not run): the files it copies from the
// build context exist, and the strings its sed rewrites are in
// deploy/moat.toml.
func TestDockerfile(t *testing.T) {
	text := read(t, filepath.Join(repoRoot, "deploy/Dockerfile"))
	n := 0
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "COPY" || strings.HasPrefix(f[1], "--") {
			continue
		}
		for _, src := range f[1 : len(f)-1] {
			if src == "." {
				continue
			}
			n++
			if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
				t.Errorf("Dockerfile copies %s: %v", src, err)
			}
		}
	}
	if n == 0 {
		t.Error("no COPY from the build context found")
	}
	cfg := read(t, filepath.Join(repoRoot, "deploy/moat.toml"))
	for _, s := range []string{`"127.0.0.1:1883"`, "/usr/local/lib", "/usr/local/etc"} {
		if !strings.Contains(text, "'s|"+s+"|") || !strings.Contains(cfg, s) {
			t.Errorf("the Dockerfile's sed must rewrite %s, and deploy/moat.toml hold it", s)
		}
	}
}
