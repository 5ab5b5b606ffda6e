package passwdfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse never panics; what it accepts, Write writes back in a
// form Parse reads to the same file; Verify never panics.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("a:$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAA\nb:$7$1$AA$" + string(bytes.Repeat([]byte("A"), 86)) + "\n"))
	f.Add([]byte("u:$scram-sha-512$i=1$AA$AA$AA\n\xef\xbb\xbfx:y\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := file.Write(&out); err != nil {
			t.Fatal(err)
		}
		again, err := Parse(bytes.NewReader(out.Bytes()), "fuzz")
		if err != nil {
			t.Fatalf("Write produced a file Parse refuses: %v\n%q", err, out.Bytes())
		}
		var out2 bytes.Buffer
		again.Write(&out2)
		if !bytes.Equal(out.Bytes(), out2.Bytes()) || again.Len() != file.Len() {
			t.Fatalf("Write is not stable:\n%q\n%q", out.Bytes(), out2.Bytes())
		}
		// Verify only cheap files: a fuzzed $7$ may legally ask for
		// millions of iterations.
		for _, e := range file.users {
			if e.kind == kindBcrypt && e.iter > 6 || e.iter > 1000 || int(e.mem)*e.iter > 4096 || e.scram.Iterations() > 1000 {
				return
			}
		}
		for u := range file.users {
			if file.Verify(u, []byte("password")) && file.Verify(u, []byte("other password")) {
				t.Fatalf("user %q accepts two passwords", u)
			}
		}
		if file.Len() > 0 { // an empty file's dummy is a full-cost argon2id
			file.Verify("nobody-\x00", []byte("x"))
		}
	})
}
