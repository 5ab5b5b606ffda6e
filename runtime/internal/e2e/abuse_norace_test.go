//go:build !race

package e2e

// abuseMaxRatio bounds the good client's p99 under attack over its p99 on
// the idle broker: the goal. See abuse_race_test.go.
const abuseMaxRatio = 2
