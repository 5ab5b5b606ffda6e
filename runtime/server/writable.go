package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/config"
)

// CheckWritable verifies that the user moat runs as can write where the
// broker writes: the wasm compilation cache ([wasm] cache_dir), the
// directory of the admin socket ([admin] socket) and the session store
// ([persistence] path, its directory and the file if it exists). `moat
// check` runs it, and `moat serve` before it opens any listener, so that a
// broker started as a service user learns it cannot write its state
// before it accepts a client rather than on the first persistent session.
//
// Each place is probed the way the broker will use it: a file is created
// and removed in a directory, an existing store is opened for writing.
// Probing, rather than reading mode bits, also catches read-only mounts,
// ACLs and a ProtectSystem=strict unit without a StateDirectory. A missing
// cache directory is fine when it could be created (the engine creates
// it); a missing socket or store directory is not (neither is created).
// Every problem is reported, each naming its key.
func CheckWritable(cfg *config.Config) error {
	who := "uid " + strconv.Itoa(os.Geteuid())
	if u, err := user.Current(); err == nil {
		who = fmt.Sprintf("user %s (uid %s)", u.Username, u.Uid)
	}
	var errs []error
	add := func(key, path string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %s is not writable by %s: %w", cfg.Path, key, path, who, err))
		}
	}
	if dir := cacheDir(cfg.Wasm.CacheDir); dir != "" {
		add("wasm.cache_dir", dir, probeDir(dir, true))
	}
	if sock := cfg.AdminSocket(); sock != "" {
		add("admin.socket", filepath.Dir(sock), probeDir(filepath.Dir(sock), false))
	}
	if store := broker.StorePath(cfg); store != "" {
		err := probeDir(filepath.Dir(store), false)
		if err == nil {
			err = probeFile(store)
		}
		add("persistence.path", store, err)
	}
	return errors.Join(errs...)
}

// probeDir creates and removes a file in dir. With create, a missing dir
// passes when its nearest existing ancestor passes: it can be created.
func probeDir(dir string, create bool) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		parent := filepath.Dir(dir)
		if parent == dir {
			return err
		}
		return probeDir(parent, true)
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".moat-check-*")
	if err != nil {
		return err
	}
	return errors.Join(f.Close(), os.Remove(f.Name()))
}

// probeFile opens an existing file for writing, as the store will; a
// missing one is created by the store in its (checked) directory.
func probeFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return f.Close()
}
