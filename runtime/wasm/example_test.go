package wasm_test

import (
	"context"
	"fmt"

	"github.com/moat-mqtt/moat/runtime/policy"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// A broker makes one Engine, loads each [[plugin]] as a Module, and hands
// the modules to runtime/policy as Authenticators and Authorizers.
func ExampleEngine_Load() {
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		panic(err)
	}
	defer e.Close(ctx) // after the modules

	m, err := e.Load(ctx, wasm.ModuleConfig{
		Name:      "public",
		Path:      "testdata/basic.wasm",
		Decisions: []string{"authz"},
		Instances: 1,
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	var az policy.Authorizer = m
	client := &policy.Client{ClientID: "sensor-1", ProtocolVersion: 5}
	for _, topic := range []string{"public/news", "deny/this", "private/x"} {
		res, err := az.Authorize(ctx, &policy.AuthzRequest{Client: client, Action: policy.ActionPublish, Topic: topic})
		fmt.Println(topic, res.Verdict, fmt.Sprintf("%#x", res.Reason), err)
	}
	// Output:
	// public/news allow 0x0 <nil>
	// deny/this deny 0x87 <nil>
	// private/x ignore 0x0 <nil>
}
