package passwdfile

import (
	"strings"
	"testing"
)

// BenchmarkVerify measures one password check per format, with the
// parameters a file most likely has: Mosquitto's defaults for its own
// formats, moat's defaults for the rest. Unknown users cost what the
// file's most common format costs.
func BenchmarkVerify(b *testing.B) {
	pw := []byte("correct horse battery staple")
	hash := func(format string, iter int) string {
		h, err := HashWith(pw, format, HashOptions{Iterations: iter})
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	cases := []struct{ name, hash string }{
		{"mosquitto-$7$-i=101", hash(FormatSHA512PBKDF2, 101)},
		{"mosquitto-$7$-i=1000", hash(FormatSHA512PBKDF2, 1000)},
		{"moat-$7$-i=210000", hash(FormatSHA512PBKDF2, 0)},
		{"mosquitto-$6$", hash(FormatSHA512, 0)},
		{"argon2id-m=19456,t=2,p=1", hash(FormatArgon2id, 0)},
		{"bcrypt-cost=10", hash(FormatBcrypt, 0)},
		{"goauth-pbkdf2-sha256-i=600000", hash(FormatPBKDF2SHA256, 0)},
		{"goauth-pbkdf2-sha512-i=210000", hash(FormatPBKDF2SHA512, 0)},
		{"scram-sha-256-i=4096", hash(FormatSCRAMSHA256, 0)},
		{"scram-sha-512-i=4096", hash(FormatSCRAMSHA512, 0)},
	}
	for _, c := range cases {
		f, err := Parse(strings.NewReader("user:"+c.hash+"\n"), "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !f.Verify("user", pw) {
					b.Fatal("refused")
				}
			}
		})
		if c.name == "mosquitto-$7$-i=101" {
			b.Run(c.name+"/unknown-user", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if f.Verify("nobody", pw) {
						b.Fatal("accepted")
					}
				}
			})
		}
	}
}

// BenchmarkParse measures loading a 1,000-user $7$ file (no hashing).
func BenchmarkParse(b *testing.B) {
	h, _ := HashWith([]byte("pw"), FormatSHA512PBKDF2, HashOptions{Iterations: 101})
	var sb strings.Builder
	for i := range 1000 {
		sb.WriteString("user")
		sb.WriteString(strings.Repeat("x", i%7))
		sb.WriteString(string(rune('a' + i%26)))
		sb.WriteString(strings.Repeat("0", i/26))
		sb.WriteString(":" + h + "\n")
	}
	data := sb.String()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(strings.NewReader(data), "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
