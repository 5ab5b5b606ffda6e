// Package e2e holds end-to-end tests of moat's first-party plugins: a real
// broker (runtime/server) assembled from a moat.toml, real wasm modules
// built from plugins/, real MQTT clients (paho) over loopback sockets, and,
// where a test compares with it, a real Mosquitto given the same files.
// It has no code of its own; see the _test.go files.
package e2e
