package meter

import (
	"context"
	"fmt"
	"io/fs"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzInstrument checks that Instrument never panics and that, whenever
// wazero accepts its input, wazero accepts its output too, with and
// without the stack guard. It validates
// with the interpreter, which decodes and validates exactly as the
// compiler does but compiles much faster.
func FuzzInstrument(f *testing.F) {
	files, err := fs.Glob(testdata, "testdata/*.wasm")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		bin, err := fs.ReadFile(testdata, file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bin)
	}
	f.Add(tryTableModule())
	f.Add(funcModule(0xfd, 0x80, 0x01, 0x03, 0x40, 0x0b, 0x0b))

	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(features))
	defer r.Close(ctx)

	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Instrument(in, Limits{})
		if err != nil {
			if out != nil {
				t.Fatal("output with error")
			}
			return
		}
		if err := compile(ctx, r, in); err != nil {
			return // invalid input: nothing to keep valid
		}
		if err := compile(ctx, r, out); err != nil {
			t.Fatalf("wazero accepts the input but not the output: %v", err)
		}
		guarded, err := Instrument(in, Limits{Stack: 1 << 20})
		if err != nil {
			t.Fatalf("Instrument with a stack guard fails where it succeeds without: %v", err)
		}
		if err := compile(ctx, r, guarded); err != nil {
			t.Fatalf("wazero accepts the input but not the output with a stack guard: %v", err)
		}
	})
}

// compile compiles bin and releases it. It turns a panic into an error:
// wazero v1.12.0 panics on some invalid modules, and an input wazero
// rejects, however it does, is not our concern.
func compile(ctx context.Context, r wazero.Runtime, bin []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wazero panicked: %v", p)
		}
	}()
	compiled, err := r.CompileModule(ctx, bin)
	if err != nil {
		return err
	}
	return compiled.Close(ctx)
}
