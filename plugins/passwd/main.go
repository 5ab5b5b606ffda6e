//go:build wasip1

package main

import (
	moat "github.com/moat-mqtt/moat/sdk/go"
	"github.com/moat-mqtt/moat/sdk/go/files"
)

// A c-shared module never runs main: handlers are registered at init.
func init() {
	p := &plugin{readFile: files.ReadFile}
	moat.HandleConfig(p.configure)
	moat.HandleAuthn(p.authenticate)
}
