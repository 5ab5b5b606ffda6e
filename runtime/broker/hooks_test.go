package broker

import (
	"reflect"
	"strings"
	"testing"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mochiHooks reads the hooks registered in mochi's server. The list is
// unexported; reading it rather than the Broker's own record means the test
// sees any hook registered by any path.
func mochiHooks(t *testing.T, srv *mqtt.Server) []mqtt.Hook {
	t.Helper()
	f := reflect.ValueOf(srv).Elem().FieldByName("hooks")
	if !f.IsValid() {
		t.Fatal("mochi's Server has no field \"hooks\" any more; update this test")
	}
	hooks, ok := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(*mqtt.Hooks)
	if !ok {
		t.Fatalf("mochi's Server.hooks is a %s, want *mqtt.Hooks", f.Type())
	}
	return hooks.GetAll()
}

// TestOnlyPolicyHookAuthorizes: mochi lets a CONNECT or an ACL check pass
// when ANY hook says yes, so the policy hook must be the only one that
// answers them, and it must answer both (with no hook answering, mochi
// refuses everything).
func TestOnlyPolicyHookAuthorizes(t *testing.T) {
	t.Parallel()
	configs := []struct {
		name string
		doc  string
	}{
		{"plain", tcpConfig},
		{"restricted capabilities", restrictedConfig},
		{"persistence", boltConfig},
	}
	for _, tc := range configs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := startHarness(t, tc.doc, nil)
			hooks := mochiHooks(t, h.srv)
			if len(hooks) != len(h.hooks) {
				t.Errorf("mochi has %d hooks, the broker registered %d", len(hooks), len(h.hooks))
			}
			var policyHooks int
			for _, hk := range hooks {
				auth := hk.Provides(mqtt.OnConnectAuthenticate)
				acl := hk.Provides(mqtt.OnACLCheck)
				if _, ok := hk.(*policyHook); ok {
					policyHooks++
					if !auth || !acl {
						t.Errorf("the policy hook provides OnConnectAuthenticate=%v OnACLCheck=%v, want both", auth, acl)
					}
					continue
				}
				if auth || acl {
					t.Errorf("hook %q provides OnConnectAuthenticate=%v OnACLCheck=%v; only the policy hook may", hk.ID(), auth, acl)
				}
			}
			if policyHooks != 1 {
				t.Errorf("%d policy hooks registered, want 1", policyHooks)
			}
		})
	}
}

func TestCheckAuthHooks(t *testing.T) {
	t.Parallel()
	srv := mqtt.New(&mqtt.Options{Logger: newTestLogger(t)})
	caps := newCapsHook(srv, capabilities(parseConfig(t, t.TempDir(), restrictedConfig).MQTT), 0)
	pol := newPolicyHook(srv, newDecider(t, allowAll(), nil), nil)
	tests := []struct {
		name  string
		hooks []mqtt.Hook
		want  string // "" for no error
	}{
		{"policy alone", []mqtt.Hook{pol}, ""},
		{"with capabilities and store", []mqtt.Hook{caps, pol, newBoltStore()}, ""},
		{"allow-all beside policy", []mqtt.Hook{caps, pol, &allowHook{provides: mqtt.OnConnectAuthenticate}}, "allow-all"},
		{"allow-all first", []mqtt.Hook{&allowHook{provides: mqtt.OnConnectAuthenticate}, pol}, "allow-all"},
		{"ACL only", []mqtt.Hook{pol, &allowHook{provides: mqtt.OnACLCheck}}, "allow-all"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkAuthHooks(tc.hooks, pol)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("checkAuthHooks: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("checkAuthHooks: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// allowHook is mochi's hooks/auth.AllowHook for one event (importing that
// package would pull in a YAML module moat does not depend on).
type allowHook struct {
	mqtt.HookBase
	provides byte
}

func (h *allowHook) ID() string                                              { return "allow-all" }
func (h *allowHook) Provides(b byte) bool                                    { return b == h.provides }
func (h *allowHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (h *allowHook) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }
