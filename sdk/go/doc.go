// Package moat is the Go SDK for moat policy modules: WebAssembly modules
// that decide who may connect to the moat MQTT broker (authn), what a
// client may publish, subscribe to and receive (authz), and what happens to
// a message payload (payload). It implements the guest side of moat ABI v1
// (sdk/ABI.md), so a plugin sees typed requests and results and never a
// pointer.
//
// # A module
//
// A module is a main package that registers handlers from an init
// function:
//
//	package main
//
//	import moat "github.com/moat-mqtt/moat/sdk/go"
//
//	func init() {
//		moat.HandleAuthz(func(r *moat.AuthzRequest) moat.Result {
//			if r.Action == moat.ActionSubscribe && r.Topic == "public/#" {
//				return moat.Allow()
//			}
//			return moat.Ignore()
//		})
//	}
//
//	func main() {}
//
// built as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o plugin.wasm .
//
// and listed in moat.toml:
//
//	[[plugin]]
//	name = "example"
//	module = "plugin.wasm"
//	decisions = ["authz"]
//
// # init, not main
//
// With -buildmode=c-shared, Go exports _initialize, which the broker calls
// once per instance: it initialises the runtime and runs every package's
// init functions, and returns. main is never called; the package still
// needs one to build. Any export called before _initialize traps. So
// handlers are registered in init, and state a handler needs is set up in
// init or in the configuration handler. (Checked by TestReactorInit in
// internal/sdktest.)
//
// # Handlers and decisions
//
// The SDK always exports moat_abi_v1, moat_buffer, moat_authenticate,
// moat_authorize, moat_payload and moat_configure. A decision export whose
// handler is not registered answers with a malformed result, which the
// broker counts as a plugin error (and applies the plugin's on_error): the
// decisions in moat.toml must list exactly the handlers the module
// registers, "authn" for HandleAuthn, "authz" for HandleAuthz and
// "payload" for HandlePayload.
//
// A handler returns a Result built with Allow, Deny or Ignore; an
// authentication handler returns an AuthnResult, which adds what the
// broker attaches to an allowed client (superuser flag, attributes,
// expiry) or, with Continue, a round of MQTT 5 enhanced authentication. A
// result the ABI calls malformed (a zero Result, a Deny reason below 0x80,
// Continue outside enhanced authentication, more attributes than the broker
// takes) is reported as an error line in the broker's log and counts as a
// plugin error. So does a handler that panics: the SDK recovers, logs the
// panic's message, and the broker replaces the instance.
//
// # What a handler may keep
//
// Everything a request holds (its strings, byte slices, lists and
// certificate) is the handler's to keep: the SDK copies each request out
// of the buffer the broker reuses, into memory it never hands out again.
// The request struct itself is reused by the next call of the same kind:
// keep its fields, or a copy of it (kept := *req), not the pointer.
//
// The SDK takes that memory from chunks of about 4 KiB, so that a
// decision allocates only once every few dozen calls: in a Go wasm module
// one heap allocation costs about as much as a whole decision. A kept
// string holds its chunk in memory; a plugin that keeps many strings for
// long (a large cache) may strings.Clone them to let chunks go. Decoding
// in place instead, as views into the broker's buffer that the next
// request overwrites, saved 0.5-0.8 µs a decision, but any string a
// handler kept (a map key, say) would then change under it.
//
// # Garbage collection
//
// Go's collector marks in goroutines that run beside the program, but a
// reactor module runs only inside calls from the broker and never yields.
// A cycle that allocations start therefore stays in its mark phase, with
// the write barrier slowing every pointer write about tenfold, until more
// allocation finishes it. After each call the SDK checks whether a cycle
// is marking and, if so, yields to the scheduler until it ends (bounded
// per call). A handler that allocates little never pays for this.
//
// # Cost
//
// A call into a Go export that does nothing costs about 30 ns; an
// authorization through the SDK with a handler that allows at once about
// 1 µs, most of it decoding and copying the request, against about 120 ns
// for the same handler in native Go. Go's wasm code is slow per operation
// (every call and every taken jump goes through a dispatch table), so keep
// handlers short and free of allocation; the broker's authorization cache
// keeps most publishes from reaching a module at all. README.md, "Where
// the time and memory go", has the figures and the tests that measure
// them (BenchmarkGoCost, TestGoInstanceMemory in internal/sdktest).
//
// # Instances and state
//
// The broker runs several instances of a module (a pool) and calls each
// one at a time. A module may keep caches in package variables, but no
// per-connection state: the next request of the same client may reach
// another instance. Enhanced authentication carries its state from round
// to round in AuthnResult.AuthState. Goroutines a handler starts run only
// while a later call is in progress; do not start any.
//
// # Configuration, logs, clock, randomness
//
// HandleConfig receives the plugin's [plugin.config] table as JSON once
// per instance, before any decision; returning an error refuses it and
// the broker shows the message. Log (and Debugf, Infof, Warnf, Errorf)
// writes to the broker's log with the plugin's name; debug lines appear
// only when the broker logs at debug. What the module writes to standard
// output or error (fmt.Println, println, a panic's trace) also reaches the
// broker's log, as debug lines. Now and Random use the broker's clock and
// random source. Files granted in moat.toml are read with the files
// subpackage, which a module imports only if it needs them (the broker
// refuses a module that imports the file functions without a grant).
//
// # Outside wasm
//
// The package also builds natively, so that a plugin's handlers can be
// unit-tested with go test: they are plain functions of requests built as
// Go values. Log then writes to standard error, Now and Random use the
// system's, and payloads and files cannot be read.
package moat
