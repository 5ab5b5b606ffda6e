// Command demo is the example moat policy module, used by
// examples/moat.toml: it logs users in from a list in its configuration
// and authorizes topics with MQTT topic-filter rules.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bin/examples/demo.wasm ./examples/plugins/demo
//
// The package also builds natively, where its tests call the handlers
// directly.
package main

import moat "github.com/moat-mqtt/moat/sdk/go"

// init registers the handlers: a c-shared wasm module runs package
// initialisers (from _initialize) but never main.
func init() {
	d := &demo{}
	moat.HandleConfig(d.configure)
	moat.HandleAuthn(d.authenticate)
	moat.HandleAuthz(d.authorize)
}

func main() {}
