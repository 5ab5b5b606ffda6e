//go:build !wasip1

package moat

import (
	"crypto/rand"
	"os"
	"time"
)

// Outside wasm (a plugin's own unit tests) the host functions fall back to
// the process: Log writes to standard error, Now and Random use the
// system's clock and random source, and payloads cannot be read.

// Log sends a line to the broker's log, tagged with the plugin's name.
// Debug lines are dropped unless the broker logs at debug. Never log
// passwords, tokens, keys or payloads. Outside wasm it writes to standard
// error.
func Log(level Level, msg string) {
	os.Stderr.WriteString("moat: " + level.String() + ": " + msg + "\n")
}

// Now returns the broker's wall clock; outside wasm, time.Now.
func Now() time.Time { return time.Now() }

// Random fills b with cryptographically secure random bytes from the
// broker; outside wasm, from crypto/rand.
func Random(b []byte) { rand.Read(b) }

func payloadRead(int, []byte) int32 { return -1 }
