package scramauth

import (
	"crypto/rand"
	"testing"
)

// BenchmarkServer measures the broker's share of an exchange: Start (lookup,
// nonce, state MAC) and Finish (state check, three HMACs, one hash). It does
// no PBKDF2, so it does not depend on the iteration count.
func BenchmarkServer(b *testing.B) {
	for _, mech := range Mechanisms() {
		cred := mustCreds(b, mech, "pencil", DefaultIterations)
		s := users(b, map[string]Credentials{"user": cred})
		c, _ := NewClient(mech, "user", "pencil")
		first := c.First()
		sf, st, err := s.Start(mech, first, rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		fin, err := c.Final(sf)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(mech+"/Start", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Start(mech, first, rand.Reader); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(mech+"/Finish", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.Finish(mech, st, fin); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClientFinal is the client's cost, dominated by PBKDF2 at the
// default 4096 iterations.
func BenchmarkClientFinal(b *testing.B) {
	for _, mech := range Mechanisms() {
		cred := mustCreds(b, mech, "pencil", DefaultIterations)
		s := users(b, map[string]Credentials{"user": cred})
		c, _ := NewClient(mech, "user", "pencil")
		sf, _, _ := s.Start(mech, c.First(), rand.Reader)
		b.Run(mech, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Final(sf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
