package moat

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestSprintf checks the SDK's formatter against fmt.Sprintf on what it
// supports, and its %!verb(...) forms elsewhere.
func TestSprintf(t *testing.T) {
	same := []struct {
		format string
		args   []any
	}{
		{"plain", nil},
		{"100%% sure", nil},
		{"%s and %v", []any{"a", "b"}},
		{"%q", []any{"quote \"me\"\n"}},
		{"%d %d %d %d %d", []any{-1, int8(-8), int16(16), int32(-32), int64(1 << 40)}},
		{"%d %d %d %d %d %v", []any{uint(1), uint8(8), uint16(16), uint32(32), uint64(1 << 63), uintptr(7)}},
		{"%x %X %x %X", []any{255, 255, -255, uint64(0xdead)}},
		{"%x %X", []any{"hi", []byte{0xab, 0x01}}},
		{"%t %v", []any{true, false}},
		{"%c %q", []any{'é', 'x'}},
		{"%v %g %f %.2f %e %.3e", []any{1.5, 2.25, 3.125, 3.14159, 1234.5678, float32(0.5)}},
		{"%v", []any{errors.New("boom")}},
		{"%s", []any{time.Second}},
		{"%v", []any{nil}},
		{"[%5d] [%-5d] [%05d] [%05d]", []any{42, 42, 42, -42}},
		{"[%8s] [%-8s] [%.2s] [%5.1s]", []any{"abc", "abc", "abcdef", "xyz"}},
		{"[%3s]", []any{"héé"}},
		{"%v %v", []any{[]byte("bytes"), "x"}},
		{"%d", nil},
		{"%s %s", []any{"one"}},
		{"trailing %", nil},
	}
	for _, tc := range same {
		want := fmt.Sprintf(tc.format, tc.args...)
		if got := sprintf(tc.format, tc.args); got != want {
			t.Errorf("sprintf(%q, %v) = %q, fmt says %q", tc.format, tc.args, got, want)
		}
	}
	differ := []struct {
		format string
		args   []any
		want   string
	}{
		{"%v", []any{struct{ A int }{1}}, "%!v(unsupported)"},
		{"%d", []any{"s"}, "%!d(string=s)"},
		{"%s", []any{3}, "%!s(int=3)"},
		{"%d", []any{true}, "%!d(bool=true)"},
		{"%s", []any{"one", 2, "three"}, "one%!(EXTRA 2, three)"},
	}
	for _, tc := range differ {
		if got := sprintf(tc.format, tc.args); got != tc.want {
			t.Errorf("sprintf(%q, %v) = %q, want %q", tc.format, tc.args, got, tc.want)
		}
	}
}

func FuzzSprintf(f *testing.F) {
	f.Add("%5.2f %-3d %q %x %%", 3.5, 7, "s")
	f.Fuzz(func(t *testing.T, format string, fl float64, n int, s string) {
		sprintf(format, []any{fl, n, s}) // must not panic
	})
}
