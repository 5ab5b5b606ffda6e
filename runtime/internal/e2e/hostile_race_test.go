//go:build race

package e2e

// rssPerBudget is how many bytes of RSS a byte of plugin budget may cost:
// under the race detector, host code that touches guest-sized buffers
// (argon2id's memory, a copy into guest memory) also touches their shadow
// memory, about twice as much again.
const rssPerBudget = 3
