//go:build !race

package e2e

// rssPerBudget is how many bytes of RSS a byte of plugin budget may cost;
// see hostile_race_test.go.
const rssPerBudget = 1
