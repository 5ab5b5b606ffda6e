package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/fsnotify/fsnotify"

	"github.com/moat-mqtt/moat/runtime/config"
)

// WatchOptions configure a Watcher. The zero value is the default.
type WatchOptions struct {
	// Quiet is how long the watched files must stay unchanged before a
	// reload; default 250ms. An editor's save (a write, or a rename and a
	// create) and a copy of a large module arrive as bursts of events: one
	// reload follows each burst, with the files as they are at its end.
	Quiet time.Duration
	// MaxDelay bounds the wait from the first event of a burst, so that a
	// file written without pause is still reloaded; default 1s.
	MaxDelay time.Duration
	// Reloaded, if set, is called after each reload the Watcher triggers,
	// on the Watcher's goroutine.
	Reloaded func(ReloadResult)
}

const (
	defaultQuiet    = 250 * time.Millisecond
	defaultMaxDelay = time.Second
)

// Watcher reloads the server when the config file, a module or a file
// granted to a plugin changes. It watches the directories that hold these
// files, not the files: editors replace a file by writing a new one and
// renaming it over the old (or by removing and creating it), which ends a
// watch on the file itself. Events are filtered by name, debounced
// (WatchOptions.Quiet), and a burst leads to a reload only when the content
// of some watched file differs from what the last reload saw, so that a
// save without changes, a touch or a chmod reloads nothing.
//
// The watched set is the files of the version in force and of the last
// version a reload tried (so that creating a missing module fixes a
// refused reload); it is re-evaluated after every burst. A symbolic link is
// followed, and its target's directory watched too (Kubernetes mounts
// ConfigMaps through a symlinked directory that is swapped atomically). A
// directory that does not exist yet is watched through its nearest
// existing ancestor, so that creating it is noticed.
type Watcher struct {
	s      *Server
	fsw    *fsnotify.Watcher
	log    *slog.Logger
	opts   WatchOptions
	config string // absolute path of the config file
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// reloaded is signalled by every reload, whoever triggered it, so that
	// the watched set follows a config applied through SIGHUP or the admin
	// endpoint too.
	reloaded chan struct{}

	// Owned by the run goroutine (and by Watch before it starts).
	files   map[string]bool   // watched files, symlink targets included
	path    map[string]bool   // every ancestor directory of a watched file
	dirs    map[string]bool   // directories added to fsw
	digests map[string]string // file -> SHA-256 when the last reload began; absent: unknown
}

// Watch starts a Watcher on the server's files. Close it before closing
// the server.
func (s *Server) Watch(opts WatchOptions) (*Watcher, error) {
	if s.cfg.Path == "" {
		return nil, errors.New("server: watch: the config was not loaded from a file")
	}
	if opts.Quiet <= 0 {
		opts.Quiet = defaultQuiet
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = defaultMaxDelay
	}
	config, err := filepath.Abs(s.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("server: watch: %w", err)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("server: watch: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Watcher{
		s: s, fsw: fsw, log: s.log, opts: opts, config: config,
		ctx: ctx, cancel: cancel, done: make(chan struct{}), reloaded: make(chan struct{}, 1),
		dirs: map[string]bool{}, digests: map[string]string{},
	}
	w.refresh()
	if len(w.dirs) == 0 {
		cancel()
		return nil, errors.Join(fmt.Errorf("server: watch: cannot watch the directory of %s", config), fsw.Close())
	}
	s.reloadMu.Lock()
	s.watchers = append(s.watchers, w.reloaded)
	s.reloadMu.Unlock()
	go w.run()
	return w, nil
}

// Close stops the Watcher, cancelling a reload it is running.
func (w *Watcher) Close() error {
	w.cancel()
	err := w.fsw.Close()
	<-w.done
	w.s.reloadMu.Lock()
	w.s.watchers = slices.DeleteFunc(w.s.watchers, func(c chan struct{}) bool { return c == w.reloaded })
	w.s.reloadMu.Unlock()
	return err
}

// notifyWatchers tells every Watcher that a reload read a config. The
// caller holds reloadMu.
func (s *Server) notifyWatchers() {
	for _, c := range s.watchers {
		select {
		case c <- struct{}{}:
		default: // one pending notice is enough
		}
	}
}

func (w *Watcher) run() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time // of the burst in progress; zero when none
	for {
		select {
		case <-w.ctx.Done():
			timer.Stop()
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if !w.relevant(ev) {
				continue
			}
			w.log.Debug("watched file changed", "path", ev.Name, "op", ev.Op.String())
			now := time.Now()
			if first.IsZero() {
				first = now
			}
			wait := min(w.opts.Quiet, max(first.Add(w.opts.MaxDelay).Sub(now), 0))
			timer.Reset(wait)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			w.log.Warn("file watcher", "err", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: compare every file.
				if first.IsZero() {
					first = time.Now()
				}
				timer.Reset(w.opts.Quiet)
			}
		case <-timer.C:
			first = time.Time{}
			w.fire()
		case <-w.reloaded:
			w.refresh()
		}
	}
}

// relevant tells whether an event may change a watched file: it names a
// watched file, or a directory on the path to one (created, removed or
// renamed). A chmod alone changes no content.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	name := filepath.Clean(ev.Name)
	if w.dirs[name] && ev.Op.Has(fsnotify.Remove|fsnotify.Rename) {
		delete(w.dirs, name) // the watch went with it; refresh adds it again
		_ = w.fsw.Remove(name)
	}
	return w.files[name] || w.path[name]
}

// fire ends a burst: it reloads if some watched file's content changed
// since the last reload began, then re-evaluates the watched set.
func (w *Watcher) fire() {
	var changed []string
	now := make(map[string]string, len(w.files))
	for f := range w.files {
		d := digestFile(f)
		now[f] = d
		if old, known := w.digests[f]; !known || old != d {
			changed = append(changed, f)
		}
	}
	if len(changed) == 0 {
		w.log.Debug("watched files unchanged; no reload")
		w.refresh()
		return
	}
	slices.Sort(changed)
	// Recorded before the reload reads the files: a change made while it
	// runs differs from this record and reloads again.
	w.digests = now
	res := w.s.Reload(w.ctx, Trigger{Source: TriggerFile, Paths: changed})
	w.refresh()
	if w.opts.Reloaded != nil {
		w.opts.Reloaded(res)
	}
}

// digestFile returns the SHA-256 of a file, or "-" when it cannot be read.
func digestFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "-"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "-"
	}
	return hex.EncodeToString(h.Sum(nil))
}

// refresh re-evaluates the watched files and directories from the server.
func (w *Watcher) refresh() {
	files := map[string]bool{}
	for _, f := range append(w.s.watchFiles(), w.config) {
		f = filepath.Clean(f)
		files[f] = true
		for _, l := range linkChain(f) {
			files[l] = true
		}
	}
	path := map[string]bool{}
	want := map[string]bool{}
	for f := range files {
		for d := filepath.Dir(f); !path[d]; d = filepath.Dir(d) {
			path[d] = true
			if filepath.Dir(d) == d {
				break
			}
		}
		want[existingDir(filepath.Dir(f))] = true
	}
	for d := range w.dirs {
		if !want[d] {
			_ = w.fsw.Remove(d)
			delete(w.dirs, d)
		}
	}
	for d := range want {
		if w.dirs[d] {
			continue
		}
		if err := w.fsw.Add(d); err != nil {
			w.log.Warn("cannot watch directory", "path", d, "err", err)
			continue
		}
		w.dirs[d] = true
	}
	for f := range w.digests {
		if !files[f] {
			delete(w.digests, f)
		}
	}
	w.files, w.path = files, path
}

// linkChain returns the paths a symbolic link at f leads through, one hop
// at a time, and its final target: a change at any of them changes f.
func linkChain(f string) []string {
	var out []string
	for p, hops := f, 0; hops < 16; hops++ {
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			break
		}
		t, err := os.Readlink(p)
		if err != nil {
			break
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = filepath.Clean(t)
		out = append(out, p)
	}
	if t, err := filepath.EvalSymlinks(f); err == nil && t != f {
		out = append(out, t)
	}
	return out
}

// existingDir returns dir, or its nearest ancestor that exists.
func existingDir(dir string) string {
	for {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir
		}
		dir = parent
	}
}

// watchFiles lists the files a Watcher watches besides the config: the
// modules and granted files of the version in force and of the version
// the last reload tried.
func (s *Server) watchFiles() []string {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	files := append(pluginFiles(s.cfg.Plugins), s.attempted...)
	return append(files, s.broker.CertFiles()...) // listener certificates (certs.go)
}

// pluginFiles lists the module and granted files of plugins.
func pluginFiles(plugins []config.Plugin) []string {
	var out []string
	for _, pl := range plugins {
		out = append(out, pl.Module)
		for _, f := range pl.Files {
			out = append(out, f)
		}
	}
	return out
}

// namedFiles returns the module and granted files a config file names, as
// absolute paths, reading no more of it than that: it serves the watcher
// when the file has other problems (a module that does not exist yet is
// one). A file that does not parse names nothing.
func namedFiles(path string) []string {
	var raw struct {
		Plugin []struct {
			Module string            `toml:"module"`
			Files  map[string]string `toml:"files"`
		} `toml:"plugin"`
	}
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		return nil
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	var out []string
	for _, pl := range raw.Plugin {
		if pl.Module != "" {
			out = append(out, abs(pl.Module))
		}
		for _, f := range pl.Files {
			if f != "" {
				out = append(out, abs(f))
			}
		}
	}
	return out
}
