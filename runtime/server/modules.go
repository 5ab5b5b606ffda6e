package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// modules shares loaded wasm modules between policy versions. A reload that
// leaves a plugin unchanged (same binary, same settings, same content of
// every granted file) reuses its compiled code and warm instance pool; a
// module is closed when the last version that uses it is closed.
//
// Granted files are part of what makes a module "the same" because a
// plugin may read them once, when it is configured (plugins/acl parses its
// ACL file in moat_configure): an edited ACL file must give fresh,
// freshly configured instances, or the edit would never take effect.
//
// Lock order: Server.reloadMu, then modules.mu.
type modules struct {
	mu    sync.Mutex
	byKey map[string]*moduleRef
}

type moduleRef struct {
	key    string
	digest string
	mod    *wasm.Module
	refs   int
	owner  *modules
}

// handle is one policy version's use of a module; closing it releases
// that use.
type handle struct {
	ref  *moduleRef
	once sync.Once
}

func (h *handle) Close() error {
	var err error
	h.once.Do(func() { err = h.ref.owner.release(h.ref) })
	return err
}

func newModules() *modules { return &modules{byKey: make(map[string]*moduleRef)} }

// pluginKey identifies everything that makes a loaded module what it is:
// the binary's digest, every setting the engine applies, and the content
// of every granted file. digest is the binary's SHA-256 in hex.
func pluginKey(pc config.Plugin, bin []byte) (key, digest string, err error) {
	sum := sha256.Sum256(bin)
	digest = hex.EncodeToString(sum[:])
	settings, err := json.Marshal(ModuleConfig(pc))
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	h.Write(sum[:])
	h.Write(settings)
	names := make([]string, 0, len(pc.Files))
	for name := range pc.Files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		data, err := os.ReadFile(pc.Files[name])
		if err != nil {
			return "", "", fmt.Errorf("files.%s: %w", name, err)
		}
		fsum := sha256.Sum256(data)
		h.Write([]byte(name))
		h.Write([]byte{0})
		h.Write(fsum[:])
	}
	return hex.EncodeToString(h.Sum(nil)), digest, nil
}

// acquire returns a handle on the module for pc, loading it unless an
// identical one is loaded already. reused reports which. The binary is
// read once and handed to the engine, so that the digest in the key (and
// in the audit record) is the digest of what runs, even when the file is
// being replaced at the same time.
func (ms *modules) acquire(ctx context.Context, engine *wasm.Engine, pc config.Plugin) (h *handle, reused bool, err error) {
	bin, err := os.ReadFile(pc.Module)
	if err != nil {
		return nil, false, fmt.Errorf("wasm: plugin %q: %w", pc.Name, err)
	}
	key, digest, err := pluginKey(pc, bin)
	if err != nil {
		return nil, false, fmt.Errorf("wasm: plugin %q (%s): %w", pc.Name, pc.Module, err)
	}
	ms.mu.Lock()
	if ref, ok := ms.byKey[key]; ok {
		ref.refs++
		ms.mu.Unlock()
		return &handle{ref: ref}, true, nil
	}
	ms.mu.Unlock()

	// Loading compiles and instantiates: do it without the lock.
	mc := ModuleConfig(pc)
	mc.Binary = bin
	m, err := engine.Load(ctx, mc)
	if err != nil {
		return nil, false, withRealPaths(err, pc.Files) // realpath.go
	}
	ms.mu.Lock()
	if ref, ok := ms.byKey[key]; ok { // loaded concurrently by someone else
		ref.refs++
		ms.mu.Unlock()
		_ = m.Close() // fresh and never called: nothing can fail
		return &handle{ref: ref}, true, nil
	}
	ref := &moduleRef{key: key, digest: digest, mod: m, refs: 1, owner: ms}
	ms.byKey[key] = ref
	ms.mu.Unlock()
	return &handle{ref: ref}, false, nil
}

func (ms *modules) release(ref *moduleRef) error {
	ms.mu.Lock()
	ref.refs--
	last := ref.refs == 0
	if last {
		delete(ms.byKey, ref.key)
	}
	ms.mu.Unlock()
	if last {
		return ref.mod.Close()
	}
	return nil
}

// loaded returns how many distinct modules are open.
func (ms *modules) loaded() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return len(ms.byKey)
}
