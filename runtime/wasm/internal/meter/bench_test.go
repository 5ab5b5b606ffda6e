package meter

import (
	"context"
	"fmt"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// BenchmarkInstrument measures instrumentation throughput on the module
// the Go toolchain builds, which is about 1.8 MB.
func BenchmarkInstrument(b *testing.B) {
	bin := loadGoModule(b)
	b.SetBytes(int64(len(bin)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Instrument(bin, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// variants are the ways to run a guest that BenchmarkLoop and
// BenchmarkCall compare: as is, instrumented, and as is with wazero's own
// way to stop guests, which this package replaces.
func variants(b *testing.B, bin []byte) []struct {
	name   string
	bin    []byte
	config wazero.RuntimeConfig
} {
	return []struct {
		name   string
		bin    []byte
		config wazero.RuntimeConfig
	}{
		{"original", bin, wazero.NewRuntimeConfigCompiler()},
		{"instrumented", mustInstrument(b, bin), wazero.NewRuntimeConfigCompiler()},
		{"closeOnContextDone", bin, wazero.NewRuntimeConfigCompiler().WithCloseOnContextDone(true)},
	}
}

// benchmarkCall calls fn with args on each variant of bin and checks the
// first result.
func benchmarkCall(b *testing.B, bin []byte, fn string, args []uint64, want uint64) {
	for _, v := range variants(b, bin) {
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			f := instantiate(b, newRuntime(b, v.config), v.bin).ExportedFunction(fn)
			stack := make([]uint64, max(len(args), 1))
			b.ReportAllocs()
			for b.Loop() {
				copy(stack, args)
				if err := f.CallWithStack(ctx, stack); err != nil {
					b.Fatal(err)
				}
			}
			if stack[0] != want {
				b.Fatalf("%s%v = %d, want %d", fn, args, stack[0], want)
			}
		})
	}
}

// BenchmarkLoop measures what the checks cost a guest per loop iteration:
// one call of a loop of 1,000 iterations.
func BenchmarkLoop(b *testing.B) {
	benchmarkCall(b, load(b, "loops.wasm"), "sum", []uint64{1000}, 500500)
}

// BenchmarkCall measures what the checks cost per call: a call of a
// function that adds two numbers.
func BenchmarkCall(b *testing.B) {
	benchmarkCall(b, load(b, "noglobals.wasm"), "add", []uint64{api.EncodeI32(2), api.EncodeI32(3)}, 5)
}

// BenchmarkBulk measures what charging bulk instructions costs: one call
// of a loop of 100 memory.fill, of 64 bytes (where the charge is largest
// against the work) and of 64 KiB.
func BenchmarkBulk(b *testing.B) {
	for _, size := range []uint64{64, 64 << 10} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			benchmarkCall(b, load(b, "fill.wasm"), "fill", []uint64{100, size}, 100)
		})
	}
}
