package broker

import (
	"bytes"
	"context"
	_ "embed"
	"strings"
	"testing"
	"time"

	ppackets "github.com/eclipse/paho.golang/packets"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// authlimits.wasm returns as much authentication data and state as its
// method's name asks for; built from authlimits.wat.
//
//go:embed testdata/authlimits.wasm
var authLimitsWasm []byte

// TestEnhancedAuthLimits: an exchange whose module returns more state or
// data than the limits is refused with a plugin error, before the broker
// sends the data or holds the state for a round; so is a client that
// sends more data than the limit. At the limits the exchange completes.
// MQTT 5 packets over loopback, a real wasm module.
func TestEnhancedAuthLimits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	engine, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := engine.Load(ctx, wasm.ModuleConfig{Name: "authlimits", Binary: authLimitsWasm, Decisions: []string{"authn"}, Instances: 2, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = m.Close()
		_ = engine.Close(ctx)
	})
	b := startPolicyBroker(t, func(s *brokerSetup) {
		s.authn = []policy.Step[policy.Authenticator]{{Name: "authlimits", Module: m}}
		s.authz = nil
		s.opts = policy.Options{AllowAnonymous: true}
	})

	tests := []struct {
		name, method string
		connectData  []byte // the CONNECT's auth data
		replyData    []byte // the client's AUTH data, answering the first AUTH
		authData     int    // length of the broker's AUTH data; -1: no AUTH
		code         byte
		log          string
	}{
		{name: "module data over the limit", method: "DATA", authData: -1, code: 0x87,
			log: "authentication data of 16385 bytes exceeds the limit of 16384"},
		{name: "module state over the limit", method: "STATE", authData: -1, code: 0x87,
			log: "authentication state of 4097 bytes exceeds the limit of 4096"},
		{name: "at the limits", method: "WITHIN", replyData: []byte("ok"), authData: maxAuthData, code: 0},
		{name: "client data over the limit", method: "WITHIN", replyData: bytes.Repeat([]byte("x"), maxAuthData+1),
			authData: maxAuthData, code: 0x87},
		{name: "CONNECT data over the limit", method: "WITHIN", connectData: bytes.Repeat([]byte("x"), maxAuthData+1),
			authData: -1, code: 0x87},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, b.addr)
			cp := rawConnect("", "", "")
			cp.Content.(*ppackets.Connect).Properties.AuthMethod = tc.method
			cp.Content.(*ppackets.Connect).Properties.AuthData = tc.connectData
			r.send(cp)
			p := r.recv()
			if p != nil && p.Type == ppackets.AUTH {
				a := p.Content.(*ppackets.Auth)
				if tc.authData < 0 || len(a.Properties.AuthData) != tc.authData {
					t.Fatalf("AUTH with %d bytes of data, want %d", len(a.Properties.AuthData), tc.authData)
				}
				r.send(rawAuth(tc.method, tc.replyData, 0x18))
				p = r.recv()
			} else if tc.authData >= 0 {
				t.Fatalf("got %v, want an AUTH", p)
			}
			if p == nil || p.Type != ppackets.CONNACK {
				t.Fatalf("got %v, want CONNACK", p)
			}
			if ca := p.Content.(*ppackets.Connack); ca.ReasonCode != tc.code {
				t.Fatalf("CONNACK 0x%02X, want 0x%02X", ca.ReasonCode, tc.code)
			}
			if tc.log != "" && !strings.Contains(b.logs.String(), tc.log) {
				t.Errorf("no plugin error %q in the log", tc.log)
			}
		})
	}
}
