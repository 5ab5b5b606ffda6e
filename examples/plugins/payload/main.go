// Command payload is the example payload-policy module, used by
// examples/payload.toml: it picks a payload mode per topic tree from the
// rules in its configuration, and, for re-encrypted messages, the key of
// each subscriber from an attribute that authentication attached to it.
//
// Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o bin/examples/payload.wasm ./examples/plugins/payload
//
// The module never sees a key: it names key ids, and the broker does the
// cryptography (sdk/ABI.md §4). The package also builds natively, where
// its tests call the handler directly.
package main

import moat "github.com/moat-mqtt/moat/sdk/go"

// init registers the handlers: a c-shared wasm module runs package
// initialisers (from _initialize) but never main.
func init() {
	p := &policy{}
	moat.HandleConfig(p.configure)
	moat.HandlePayload(p.decide)
}

func main() {}
