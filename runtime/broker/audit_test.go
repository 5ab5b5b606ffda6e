package broker

import "testing"

func TestSampleAllow(t *testing.T) {
	tests := []struct {
		rate     float64
		min, max int // of 1000 draws
	}{
		{0, 0, 0},
		{1, 1000, 1000},
		{0.5, 300, 700}, // binomial: outside is a 1e-35 event
		{0.01, 0, 60},
	}
	for _, tc := range tests {
		h := &policyHook{auditAllow: tc.rate}
		n := 0
		for range 1000 {
			if h.sampleAllow() {
				n++
			}
		}
		if n < tc.min || n > tc.max {
			t.Errorf("rate %v: %d of 1000 sampled, want %d..%d", tc.rate, n, tc.min, tc.max)
		}
	}
}
