//go:build race

package e2e

// rssPerBudget is how many bytes of RSS a byte of plugin budget may cost:
// under the race detector, host code that touches guest-sized buffers
// (argon2id's memory, a copy into guest memory) also touches their shadow
// memory, about twice as much again, and a busy machine adds to the peak
// (4: +198 MiB was seen for a 32 MiB budget, where 3 allows 192).
const rssPerBudget = 4
