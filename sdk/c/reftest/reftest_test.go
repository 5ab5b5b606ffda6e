package reftest

import "testing"

// TestMatch pins the oracle of the fuzz tests to the semantics the SDKs
// document (the same table as the Go demo plugin's).
func TestMatch(t *testing.T) {
	for _, tc := range matchCases {
		if got := Match(tc.filter, tc.topic, tc.isFilter, tc.user, tc.client); got != tc.want {
			t.Errorf("Match(%q, %q, %v, %q, %q) = %v, want %v", tc.filter, tc.topic, tc.isFilter, tc.user, tc.client, got, tc.want)
		}
	}
}
