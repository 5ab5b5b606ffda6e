package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// modules shares loaded wasm modules between policy versions. A reload that
// leaves a plugin unchanged (same binary, same settings) reuses its compiled
// code and warm instance pool; a module is closed when the last version that
// uses it is closed.
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
// the binary's digest and every setting the engine applies.
func pluginKey(pc config.Plugin) (key, digest string, err error) {
	bin, err := os.ReadFile(pc.Module)
	if err != nil {
		return "", "", err
	}
	sum := sha256.Sum256(bin)
	digest = hex.EncodeToString(sum[:])
	settings, err := json.Marshal(ModuleConfig(pc))
	if err != nil {
		return "", "", err
	}
	h := sha256.New()
	h.Write(sum[:])
	h.Write(settings)
	return hex.EncodeToString(h.Sum(nil)), digest, nil
}

// acquire returns a handle on the module for pc, loading it unless an
// identical one is loaded already. reused reports which.
func (ms *modules) acquire(ctx context.Context, engine *wasm.Engine, pc config.Plugin) (h *handle, reused bool, err error) {
	key, digest, err := pluginKey(pc)
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
	m, err := engine.Load(ctx, ModuleConfig(pc))
	if err != nil {
		return nil, false, err
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ref, ok := ms.byKey[key]; ok { // loaded concurrently by someone else
		ref.refs++
		go m.Close()
		return &handle{ref: ref}, true, nil
	}
	ref := &moduleRef{key: key, digest: digest, mod: m, refs: 1, owner: ms}
	ms.byKey[key] = ref
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
