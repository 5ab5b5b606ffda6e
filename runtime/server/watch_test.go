package server

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// watching starts a Watcher on e with the quiet period given (default
// 100ms) and returns the channel its reloads are reported on.
func watching(t *testing.T, e *env, quiet ...time.Duration) <-chan ReloadResult {
	t.Helper()
	ch := make(chan ReloadResult, 16)
	opts := WatchOptions{Quiet: 100 * time.Millisecond, Reloaded: func(r ReloadResult) { ch <- r }}
	if len(quiet) > 0 {
		opts.Quiet = quiet[0]
	}
	w, err := e.s.Watch(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return ch
}

// nextReload waits for the watcher's next reload.
func nextReload(t *testing.T, ch <-chan ReloadResult) ReloadResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no reload within 10s")
		return ReloadResult{}
	}
}

// noReload fails if the watcher reloads within d.
func noReload(t *testing.T, ch <-chan ReloadResult, d time.Duration) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("unexpected reload: %+v", r)
	case <-time.After(d):
	}
}

// TestWatch changes the watched files in the ways editors and deployment
// tools do, and checks that each change leads to one reload with the new
// policy in force.
func TestWatch(t *testing.T) {
	allow, deny := wat(t, "allow"), wat(t, "deny")
	e := startEnv(t, map[string][]byte{"gate.wasm": allow, "users.txt": []byte("v1")},
		anonymous+gate("gate", "gate.wasm")+"[plugin.files]\nusers = \"users.txt\"\n")
	ch := watching(t, e)
	path := func(name string) string { return filepath.Join(e.dir, name) }
	expect := func(t *testing.T, changed string, allowed bool) ReloadResult {
		t.Helper()
		r := nextReload(t, ch)
		if !r.Applied || r.Trigger.Source != TriggerFile || !slices.Contains(r.Trigger.Paths, path(changed)) {
			t.Fatalf("reload = %+v, want applied, triggered by a change of %s", r, changed)
		}
		if subscribes(t, e, "x") != allowed {
			t.Fatalf("subscription allowed = %v after the reload, want %v", !allowed, allowed)
		}
		return r
	}

	t.Run("write in place", func(t *testing.T) {
		e.write("gate.wasm", deny)
		expect(t, "gate.wasm", false)
	})
	t.Run("rename over", func(t *testing.T) {
		e.replace("gate.wasm", allow)
		expect(t, "gate.wasm", true)
	})
	t.Run("remove and create", func(t *testing.T) {
		if err := os.Remove(path("gate.wasm")); err != nil {
			t.Fatal(err)
		}
		e.write("gate.wasm", deny)
		expect(t, "gate.wasm", false)
	})
	t.Run("granted file", func(t *testing.T) {
		e.replace("users.txt", []byte("v2"))
		r := expect(t, "users.txt", false)
		if r.Modules[0].Reused {
			t.Error("the module was reused after a change of its granted file")
		}
	})
	t.Run("config", func(t *testing.T) {
		e.config(anonymous + gate("gate", "allow.wasm"))
		e.write("allow.wasm", allow) // a new file, named by the new config
		r := expect(t, "moat.toml", true)
		if len(r.Modules) != 1 || r.Modules[0].Digest != digest(allow) {
			t.Errorf("modules = %+v, want allow.wasm", r.Modules)
		}
	})
	t.Run("unchanged", func(t *testing.T) {
		// A file the watcher has not yet seen reloaded (allow.wasm is new
		// to it) reloads on any event; once seen, a save without a
		// change, a touch or a chmod reloads nothing.
		e.replace("allow.wasm", withSection(allow, 1))
		expect(t, "allow.wasm", true)
		e.replace("allow.wasm", withSection(allow, 1))
		now := time.Now()
		if err := os.Chtimes(path("moat.toml"), now, now); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path("moat.toml"), 0o600); err != nil {
			t.Fatal(err)
		}
		noReload(t, ch, 400*time.Millisecond)
	})
	t.Run("unrelated files", func(t *testing.T) {
		e.write("notes.txt", []byte("x"))
		e.write("gate.wasm", allow) // no longer named by the config
		noReload(t, ch, 400*time.Millisecond)
	})
	t.Run("broken then fixed", func(t *testing.T) {
		// A config naming a module in a directory that does not exist yet
		// is refused; creating it is watched through the parent.
		e.config(anonymous + gate("gate", "plugins/new.wasm"))
		r := nextReload(t, ch)
		if r.Applied || !strings.Contains(strings.Join(r.Errors, "\n"), "plugins/new.wasm") {
			t.Fatalf("reload = %+v, want refused for the missing module", r)
		}
		if !subscribes(t, e, "x") {
			t.Fatal("the refused version changed the policy")
		}
		if err := os.Mkdir(path("plugins"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, path("plugins/.new.wasm"), deny)
		if err := os.Rename(path("plugins/.new.wasm"), path("plugins/new.wasm")); err != nil {
			t.Fatal(err)
		}
		expect(t, "plugins/new.wasm", false)
	})
}

// TestWatchBurst writes a module twenty times 10ms apart, well within the
// quiet period of each other: one reload follows, of the last version.
func TestWatchBurst(t *testing.T) {
	allow, deny := wat(t, "allow"), wat(t, "deny")
	e := startEnv(t, map[string][]byte{"gate.wasm": allow}, anonymous+gate("gate", "gate.wasm"))
	ch := watching(t, e, 500*time.Millisecond)
	for i := range 20 {
		data := withSection(deny, i)
		if i%2 == 1 {
			data = withSection(allow, i)
		}
		e.write("gate.wasm", data)
		time.Sleep(10 * time.Millisecond)
	}
	r := nextReload(t, ch)
	if !r.Applied || r.Modules[0].Digest != digest(withSection(allow, 19)) {
		t.Errorf("reload %+v, want the last version written", r)
	}
	noReload(t, ch, time.Second)
}

// TestWatchSymlink follows a config that is a symbolic link, as Kubernetes
// mounts a ConfigMap: the link's target is replaced by swapping a
// directory link.
func TestWatchSymlink(t *testing.T) {
	allow, deny := wat(t, "allow"), wat(t, "deny")
	e := startEnv(t, map[string][]byte{"allow.wasm": allow, "deny.wasm": deny}, anonymous+gate("gate", "allow.wasm"))
	// Move moat.toml to data-1/ and link it through ..data, then serve
	// the link: a new server on the same directory.
	link := func(dir string, doc string) {
		if err := os.MkdirAll(filepath.Join(e.dir, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(e.dir, dir, "moat.toml"), []byte(header()+doc))
		tmp := filepath.Join(e.dir, "..data_tmp")
		if err := os.Symlink(dir, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(e.dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	link("data-1", anonymous+gate("gate", "allow.wasm"))
	if err := os.Remove(filepath.Join(e.dir, "moat.toml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/moat.toml", filepath.Join(e.dir, "moat.toml")); err != nil {
		t.Fatal(err)
	}
	e.reload(true)
	ch := watching(t, e)

	// The swap alone must be noticed (Kubernetes removes the old
	// directory only afterwards).
	link("data-2", anonymous+gate("gate", "deny.wasm"))
	r := nextReload(t, ch)
	if !r.Applied || r.Modules[0].Digest != digest(deny) {
		t.Fatalf("reload = %+v, want the deny module through the new link", r)
	}
	if err := os.RemoveAll(filepath.Join(e.dir, "data-1")); err != nil {
		t.Fatal(err)
	}
	link("data-3", anonymous+gate("gate", "allow.wasm"))
	if r := nextReload(t, ch); !r.Applied || r.Modules[0].Digest != digest(allow) {
		t.Fatalf("reload = %+v, want the allow module through the third link", r)
	}
}
