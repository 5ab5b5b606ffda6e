// Package sdk carries the sources of moat's guest SDKs for the host
// tools: `moat plugin new` copies them into the project it creates, from
// this one copy, so that a new project gets the SDK as the repository has
// it (go:embed cannot reach sdk/ from cmd/moat). The SDKs themselves are
// guest code: sdk/go builds for GOOS=wasip1, the others are not Go.
package sdk

import "embed"

// Files holds rust/moat.rs, c/moat.h, assemblyscript/assembly/*.ts and
// go/*.go (its tests too; a copier skips them). Read-only.
//
//go:embed rust/moat.rs c/moat.h assemblyscript/assembly/*.ts go/*.go
var Files embed.FS
