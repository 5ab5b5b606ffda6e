package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moat-mqtt/moat/runtime/wasm"
)

// wasmInfo is what inspect reads from a binary: its imports, exports and
// memory. The broker's own checks live in runtime/wasm; this reader only
// describes, so that a module the broker would refuse can still be shown.
type wasmInfo struct {
	imports  []wasmImport
	exports  []wasmExport
	memMin   uint64
	memMax   *uint64
	memory   bool
	hasStart bool
}

type wasmImport struct {
	module, name string
	kind         byte
}

type wasmExport struct {
	name string
	kind byte
}

var externKinds = [...]string{"func", "table", "memory", "global", "tag"}

func kindName(k byte) string {
	if int(k) < len(externKinds) {
		return externKinds[k]
	}
	return fmt.Sprintf("kind %d", k)
}

type binReader struct {
	b   []byte
	pos int
}

var errShort = errors.New("truncated")

func (r *binReader) byte() (byte, error) {
	if r.pos >= len(r.b) {
		return 0, errShort
	}
	r.pos++
	return r.b[r.pos-1], nil
}

func (r *binReader) uleb() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("bad LEB128")
}

func (r *binReader) name() (string, error) {
	n, err := r.uleb()
	if err != nil {
		return "", err
	}
	if uint64(len(r.b)-r.pos) < n {
		return "", errShort
	}
	s := string(r.b[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s, nil
}

func (r *binReader) limits() (uint64, *uint64, error) {
	flags, err := r.byte()
	if err != nil {
		return 0, nil, err
	}
	min, err := r.uleb()
	if err != nil {
		return 0, nil, err
	}
	if flags&1 == 0 {
		return min, nil, nil
	}
	max, err := r.uleb()
	return min, &max, err
}

// readWasm reads the import, memory, export and start sections.
func readWasm(bin []byte) (*wasmInfo, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly binary (no \\0asm magic)")
	}
	if bin[4] != 1 || bin[5]|bin[6]|bin[7] != 0 {
		return nil, fmt.Errorf("unsupported binary format version %x", bin[4:8])
	}
	info := &wasmInfo{}
	r := &binReader{b: bin, pos: 8}
	for r.pos < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.uleb()
		if err != nil {
			return nil, err
		}
		if uint64(len(r.b)-r.pos) < size {
			return nil, fmt.Errorf("section %d: %w", id, errShort)
		}
		s := &binReader{b: r.b[:r.pos+int(size)], pos: r.pos}
		r.pos += int(size)
		if err := info.section(id, s); err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
	}
	return info, nil
}

func (info *wasmInfo) section(id byte, s *binReader) error {
	switch id {
	case 2: // imports
		n, err := s.uleb()
		if err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			var im wasmImport
			if im.module, err = s.name(); err != nil {
				return err
			}
			if im.name, err = s.name(); err != nil {
				return err
			}
			if im.kind, err = s.byte(); err != nil {
				return err
			}
			switch im.kind {
			case 0, 4: // func: type index; tag: attribute, type index
				if im.kind == 4 {
					if _, err = s.byte(); err != nil {
						return err
					}
				}
				_, err = s.uleb()
			case 1: // table: reference type, limits
				if _, err = s.byte(); err == nil {
					_, _, err = s.limits()
				}
			case 2:
				_, _, err = s.limits()
			case 3: // global: value type, mutability
				if _, err = s.byte(); err == nil {
					_, err = s.byte()
				}
			default:
				return fmt.Errorf("import %s.%s: unknown kind %d", im.module, im.name, im.kind)
			}
			if err != nil {
				return err
			}
			info.imports = append(info.imports, im)
		}
	case 5: // memories
		n, err := s.uleb()
		if err != nil || n == 0 {
			return err
		}
		info.memory = true
		info.memMin, info.memMax, err = s.limits()
		return err
	case 7: // exports
		n, err := s.uleb()
		if err != nil {
			return err
		}
		for i := uint64(0); i < n; i++ {
			var ex wasmExport
			if ex.name, err = s.name(); err != nil {
				return err
			}
			if ex.kind, err = s.byte(); err != nil {
				return err
			}
			if _, err = s.uleb(); err != nil {
				return err
			}
			info.exports = append(info.exports, ex)
		}
	case 8:
		info.hasStart = true
	}
	return nil
}

func (info *wasmInfo) exportsFunc(name string) bool {
	return slices.ContainsFunc(info.exports, func(e wasmExport) bool { return e.kind == 0 && e.name == name })
}

func (info *wasmInfo) imports1(module, name string) bool {
	return slices.ContainsFunc(info.imports, func(i wasmImport) bool { return i.module == module && i.name == name })
}

func runPluginInspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin inspect", "moat plugin inspect MODULE.wasm",
		`Inspect describes a policy module: the ABI it declares, the decisions it
exports, what it imports and which grants those imports need, its size and
memory, and the [[plugin]] lines of moat.toml that would load it. Then it
loads the module as the broker would (with an empty config) and says
whether that works.

It exits with status 1 when the module is not a valid moat module.
`, stderr)
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "moat plugin inspect: want one MODULE.wasm\nRun 'moat plugin inspect -h' for usage.")
		return exitUsage
	}
	path := pos[0]
	bin, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "moat plugin inspect: %v\n", err)
		return exitFail
	}
	info, err := readWasm(bin)
	if err != nil {
		fmt.Fprintf(stderr, "moat plugin inspect: %s: %v\n", path, err)
		return exitFail
	}
	sum := sha256.Sum256(bin)
	w := stdout

	fmt.Fprintf(w, "module:    %s\n", path)
	fmt.Fprintf(w, "size:      %d bytes\n", len(bin))
	fmt.Fprintf(w, "sha256:    %s\n", hex.EncodeToString(sum[:]))
	var abis []string
	for _, e := range info.exports {
		if v, ok := strings.CutPrefix(e.name, wasm.ExportABIPrefix); ok && e.kind == 0 {
			abis = append(abis, "v"+v)
		}
	}
	abi := "none (not a moat module: no moat_abi_v* export)"
	if len(abis) > 0 {
		abi = strings.Join(abis, ", ")
		if !info.exportsFunc(wasm.ExportABIVersion) {
			abi += fmt.Sprintf(" (this broker speaks v%d)", wasm.ABIVersion)
		}
	}
	fmt.Fprintf(w, "abi:       %s\n", abi)

	var decisions []string
	for _, d := range []struct{ name, export string }{
		{wasm.DecisionAuthn, wasm.ExportAuthenticate},
		{wasm.DecisionAuthz, wasm.ExportAuthorize},
		{wasm.DecisionPayload, wasm.ExportPayload},
	} {
		if info.exportsFunc(d.export) {
			decisions = append(decisions, d.name)
		}
	}
	fmt.Fprintf(w, "decisions: %s\n", orNone(strings.Join(decisions, ", ")))
	var model []string
	if info.exportsFunc(wasm.ExportConfigure) {
		model = append(model, "moat_configure (takes [plugin.config])")
	}
	if info.exportsFunc(wasm.ExportInitialize) {
		model = append(model, "_initialize (WASI reactor)")
	}
	if info.exportsFunc("_start") {
		model = append(model, "_start (a WASI command: never called; constructors may not run as expected)")
	}
	if info.hasStart {
		model = append(model, "a start function (runs once per instance)")
	}
	fmt.Fprintf(w, "lifecycle: %s\n", orNone(strings.Join(model, "; ")))
	if info.memory {
		max := "no maximum"
		if info.memMax != nil {
			max = fmt.Sprintf("maximum %d KiB", *info.memMax*64)
		}
		fmt.Fprintf(w, "memory:    %d KiB initial, %s\n", info.memMin*64, max)
	}

	fmt.Fprintln(w, "imports:")
	if len(info.imports) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	wasi := 0
	for _, im := range info.imports {
		if im.module == wasm.WASIModule {
			wasi++
			continue
		}
		note := ""
		switch {
		case im.kind != 0:
			note = "  refused: moat provides only functions"
		case im.module != wasm.HostModule:
			note = fmt.Sprintf("  refused: moat provides only %q and %q", wasm.HostModule, wasm.WASIModule)
		case im.name == wasm.HostFileSize || im.name == wasm.HostFileRead:
			note = "  needs a [plugin.files] grant"
		case im.name == wasm.HostPayloadRead:
			note = "  reads payloads only with allow_payload = true"
		}
		fmt.Fprintf(w, "  %s %s.%s%s\n", kindName(im.kind), im.module, im.name, note)
	}
	if wasi > 0 {
		fmt.Fprintf(w, "  %d functions of %s (sandboxed: no files, no environment)\n", wasi, wasm.WASIModule)
	}

	files := info.imports1(wasm.HostModule, wasm.HostFileSize) || info.imports1(wasm.HostModule, wasm.HostFileRead)
	payload := info.imports1(wasm.HostModule, wasm.HostPayloadRead)
	var caps []string
	if files {
		caps = append(caps, "[plugin.files] (reads granted files)")
	}
	if payload {
		caps = append(caps, "allow_payload = true (reads message payloads)")
	}
	fmt.Fprintf(w, "capabilities: %s\n", orNone(strings.Join(caps, ", ")))

	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	fmt.Fprintln(w, "\nmoat.toml:")
	fmt.Fprintln(w, "  [[plugin]]")
	fmt.Fprintf(w, "  name = %q\n", name)
	fmt.Fprintf(w, "  module = %q\n", path)
	quoted := make([]string, len(decisions))
	for i, d := range decisions {
		quoted[i] = fmt.Sprintf("%q", d)
	}
	fmt.Fprintf(w, "  decisions = [%s]\n", strings.Join(quoted, ", "))
	fmt.Fprintf(w, "  sha256 = %q\n", hex.EncodeToString(sum[:]))
	if payload {
		fmt.Fprintln(w, "  allow_payload = true")
	}
	if files {
		fmt.Fprintln(w, "  [plugin.files]")
		fmt.Fprintln(w, `  # name = "/host/path"   (the names the module asks for)`)
	}
	if info.exportsFunc(wasm.ExportConfigure) {
		fmt.Fprintln(w, "  [plugin.config]")
		fmt.Fprintln(w, "  # the module's own keys")
	}

	// Load it as the broker would, with an empty config and a file grant
	// when it needs one, to report what the broker would say.
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	defer e.Close(ctx)
	cfg := wasm.ModuleConfig{Name: name, Path: path, Binary: bin, Decisions: decisions, Instances: 1, AllowPayload: payload}
	if files {
		cfg.Files = map[string]string{"inspect": os.DevNull}
	}
	m, err := e.Load(ctx, cfg)
	if err != nil {
		fmt.Fprintf(w, "\nload: FAILED: %v\n", err)
		if len(decisions) == 0 || !info.exportsFunc(wasm.ExportABIVersion) {
			return exitFail
		}
		// A refusal of the empty config is the module's right: it is a
		// module, only one that needs its config.
		if !strings.Contains(err.Error(), "config refused") {
			return exitFail
		}
		return exitOK
	}
	m.Close()
	fmt.Fprintln(w, "\nload: ok (with an empty config)")
	return exitOK
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
