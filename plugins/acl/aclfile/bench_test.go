package aclfile

import (
	"fmt"
	"strings"
	"testing"
)

// benchFile builds an ACL of n rules shaped like a real deployment: a
// section for the benchmarked user with n/2 topic rules (some with
// wildcards and denies), other users' sections, and n/2 patterns. The
// benchmarked queries hit the last rules of their lists, which is the worst
// case for Mosquitto's linear scan and an ordinary one for the index.
func benchFile(n int) string {
	var b strings.Builder
	half := n / 2
	b.WriteString("topic read public/#\nuser bench\n")
	for i := 0; i < half; i++ {
		switch i % 10 {
		case 0:
			fmt.Fprintf(&b, "topic read site%d/#\n", i)
		case 1:
			fmt.Fprintf(&b, "topic deny site%d/+/secret\n", i)
		default:
			fmt.Fprintf(&b, "topic readwrite site%d/+/temp\n", i)
		}
	}
	fmt.Fprintf(&b, "user other\ntopic readwrite other/#\n")
	for i := 0; i < half; i++ {
		if i%10 == 1 {
			fmt.Fprintf(&b, "pattern deny tenant%d/%%u/admin\n", i)
		} else {
			fmt.Fprintf(&b, "pattern readwrite tenant%d/%%u/#\n", i)
		}
	}
	return b.String()
}

type benchQuery struct {
	name string
	q    Query
	want Result
}

func benchQueries(n int) []benchQuery {
	last := n/2 - 1 // a readwrite rule in both lists for n >= 10
	u := user("bench", "bench-1")
	return []benchQuery{
		{"publish-hit", pub(u, fmt.Sprintf("site%d/dev7/temp", last)), Allow},
		{"deliver-miss", del(u, "nowhere/dev7/temp"), NoMatch},
		{"pattern-u", del(u, fmt.Sprintf("tenant%d/bench/inbox", last)), Allow},
	}
}

var sizes = []int{10, 100, 1000, 10000}

// BenchmarkCheck measures decisions on the index; compare with
// BenchmarkLinearScan, which does what Mosquitto does.
func BenchmarkCheck(b *testing.B) {
	benchmarkChecker(b, func(a *ACL, q Query) Result { return a.Check(q) })
}

// BenchmarkLinearScan is the reference: Mosquitto's algorithm, scanning
// the section and every pattern, substituting each pattern per check.
func BenchmarkLinearScan(b *testing.B) {
	benchmarkChecker(b, naiveCheck)
}

func benchmarkChecker(b *testing.B, check func(*ACL, Query) Result) {
	for _, n := range sizes {
		a := mustParse(b, benchFile(n))
		if a.Len() != n+2 {
			b.Fatalf("bench file has %d rules, want %d", a.Len(), n+2)
		}
		for _, bq := range benchQueries(n) {
			b.Run(fmt.Sprintf("rules=%d/%s", n, bq.name), func(b *testing.B) {
				if got := check(a, bq.q); got != bq.want {
					b.Fatalf("check = %v, want %v", got, bq.want)
				}
				b.ReportAllocs()
				for b.Loop() {
					check(a, bq.q)
				}
			})
		}
	}
}

func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		text := benchFile(n)
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := Parse(strings.NewReader(text), "bench.acl"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
