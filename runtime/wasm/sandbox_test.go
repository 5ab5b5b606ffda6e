package wasm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/policy"
)

// Tests of issue 9, "Seal the sandbox": each hostile module below breaks a
// promise of the sandbox on a host without the fix, and each test ends
// with a good call that proves the plugin recovered.

// wantRecovers asserts that m still decides: the failed instance was
// replaced, or another serves.
func wantRecovers(t *testing.T, m *Module) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := m.Authorize(context.Background(), authz("ok"))
		if err == nil && res.Verdict == policy.Allow {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin does not recover: %+v, %v", res, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLateResult: a result that arrives after the deadline is a deadline
// error, and host functions stop their own work at the deadline, whether
// moat's (argon2id) or WASI's as wazero runs them (random_get, fd_write).
func TestLateResult(t *testing.T) {
	log, _ := debugLogger() // debug on: fd_write's lines are logged, the costly case
	e := newEngine(t, log)
	m := testModule(t, e, "late", ModuleConfig{Timeout: 50 * time.Millisecond})
	for _, tc := range []struct{ name, topic string }{
		{"argon2id", "a"},
		{"random_get", "r"},
		{"fd_write", "w"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res, err := m.Authorize(context.Background(), authz(tc.topic))
			took := time.Since(start)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("got %+v, %v after %v; want a deadline error", res, err, took)
			}
			wantErr(t, err, "deadline exceeded (timeout 50ms)")
			t.Logf("%v after %v", err, took)
			wantRecovers(t, m)
		})
	}
}
