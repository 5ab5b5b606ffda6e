//go:build race

package e2e

// abuseMaxRatio bounds the good client's p99 under attack over its p99 on
// the idle broker. The goal, 2, does not hold under the race
// detector: every synchronisation of the broker's per-connection work
// (accept, CONNECT, authn, refusal) costs several times more, so serving
// the attack takes a large share of the machine; measured on a 2-core VM
// at load average 3-5 with the storm at 94-110 CONNECTs/s: p99 2.2-4.5 ms
// idle, 25-33 ms under attack (ratios 6.7-11.5 in four runs). The bound
// still catches an attack that starves the good client.
const abuseMaxRatio = 20
