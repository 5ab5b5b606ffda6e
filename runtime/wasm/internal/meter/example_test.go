package meter_test

import (
	"context"
	"fmt"
	"os"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/moat-mqtt/moat/runtime/wasm/internal/meter"
)

// This example instruments a module, then sets a deadline as the host does
// before each call.
func ExampleInstrument() {
	bin, err := os.ReadFile("testdata/loops.wasm")
	if err != nil {
		panic(err)
	}
	bin, err = meter.Instrument(bin, meter.Limits{})
	if err != nil {
		panic(err)
	}

	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	// No start functions: the host calls meter.ExportStart, if exported,
	// under a deadline.
	mod, err := r.InstantiateWithConfig(ctx, bin, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		panic(err)
	}

	epoch := mod.ExportedGlobal(meter.ExportEpoch).(api.MutableGlobal)
	deadline := mod.ExportedGlobal(meter.ExportDeadline).(api.MutableGlobal)
	fmt.Printf("epoch %d, deadline %#x\n", epoch.Get(), deadline.Get())

	// Allow the call to run until the epoch ticks twice.
	deadline.Set(epoch.Get() + 2)
	res, err := mod.ExportedFunction("sum").Call(ctx, 100)
	fmt.Println(res, err)

	// Once the epoch reaches the deadline, the guest traps.
	epoch.Set(epoch.Get() + 2)
	_, err = mod.ExportedFunction("sum").Call(ctx, 100)
	fmt.Println(err != nil)
	// Output:
	// epoch 0, deadline 0xffffffffffffffff
	// [5050] <nil>
	// true
}
