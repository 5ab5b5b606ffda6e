package server

import (
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// TestEmptyAuthzChain: with no authz plugin, authz_no_match decides every
// publish and subscription, deny by default, and the start log says so.
func TestEmptyAuthzChain(t *testing.T) {
	for _, tc := range []struct {
		name, auth string
		allowed    bool
		log        string
	}{
		{"default deny", "", false, "authz: no plugin; every publish, subscribe and delivery is denied"},
		{"authz_no_match allow", `authz_no_match = "allow"`, true, "authz: no plugin; every client may publish, subscribe and receive"},
		{"old no_match allow", `no_match = "allow"`, true, "(auth.authz_no_match = allow)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startEnv(t, nil, anonymous+tc.auth+"\n")
			if got := subscribes(t, e, "a/b"); got != tc.allowed {
				t.Errorf("subscription allowed = %v, want %v", got, tc.allowed)
			}
			c := testutil.MustConnectV3(t, e.url, testutil.V3Options{})
			defer c.Disconnect(0)
			if tc.allowed {
				c.Publish(t, "a/b", 1, false, "x")
			}
			if !strings.Contains(e.logs.String(), tc.log) {
				t.Errorf("start log does not say %q:\n%s", tc.log, e.logs)
			}
		})
	}
}
