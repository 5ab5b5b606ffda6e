package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/moat-mqtt/moat/runtime/wasm"
)

// version is moat's version, set at link time:
//
//	go build -ldflags "-X main.version=v0.1.0" ./cmd/moat
//
// The Makefile sets it from git describe.
var version = "dev"

func runVersion(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("version", "moat version", `Version prints the version of moat, the Go release it was built with, and
the version of the module ABI it speaks (sdk/ABI.md): a module must declare
that ABI to load.
`, stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fmt.Fprintf(stdout, "moat %s (%s, %s/%s, moat ABI v%d)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, wasm.ABIVersion)
	return exitOK
}
