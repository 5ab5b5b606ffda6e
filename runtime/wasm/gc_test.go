package wasm

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// TestLoopDuringGC runs a looping guest while the garbage collector stops
// the world. The ticker goroutine is parked during stop-the-world, but the
// goroutine running wasm machine code cannot be, so the world waits for
// the guest: unless the instrumented guest yields to Go now and then, it
// never stops and the process hangs. It runs in a child process, which the
// test kills if it hangs.
func TestLoopDuringGC(t *testing.T) {
	if os.Getenv("MOAT_WASM_GC_CHILD") == "1" {
		loopDuringGC(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoopDuringGC$", "-test.count=1")
	cmd.Env = append(os.Environ(), "MOAT_WASM_GC_CHILD=1")
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = cmd.CombinedOutput()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("a guest looping during a GC hung the process: the meter must make guests yield to Go " +
			"(see runtime/RATIONALE.md, \"Wasm engine\")")
	}
}

func loopDuringGC(t *testing.T) {
	e := newEngine(t, nil)
	m := testModule(t, e, "hostile", ModuleConfig{Instances: 1, Timeout: 20 * time.Millisecond})
	for range 3 {
		gc := make(chan struct{})
		go func() {
			defer close(gc)
			time.Sleep(5 * time.Millisecond) // the guest is looping by now
			runtime.GC()
		}()
		_, err := m.Authorize(context.Background(), authz("loop"))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("loop: %v", err)
		}
		<-gc
	}
}
