package passwdfile

import (
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/plugins/scram/scramauth"
)

// scramLogin runs a whole SCRAM exchange against srv.
func scramLogin(srv *scramauth.Server, mech, user, password string) error {
	c, err := scramauth.NewClient(mech, user, password)
	if err != nil {
		return err
	}
	sf, st, err := srv.Start(mech, c.First(), rand.Reader)
	if err != nil {
		return err
	}
	fin, err := c.Final(sf)
	if err != nil {
		return err
	}
	sfin, got, err := srv.Finish(mech, st, fin)
	if err != nil {
		return err
	}
	if got != user {
		return errors.New("wrong user authenticated: " + got)
	}
	return c.Verify(sfin)
}

// TestSCRAMServerFromFile: credentials written by Hash (as moat passwd -H
// scram-sha-* writes them) serve SCRAM exchanges through File.SCRAMServer,
// and the file's other lines do not.
func TestSCRAMServerFromFile(t *testing.T) {
	h256, err := Hash([]byte("s3cret"), FormatSCRAMSHA256)
	if err != nil {
		t.Fatal(err)
	}
	h512, _ := Hash([]byte("s3cret"), FormatSCRAMSHA512)
	data, _ := os.ReadFile("testdata/mixed.txt")
	in := string(data) + "alice:" + h256 + "\nbob:" + h512 + "\n"
	f, err := Parse(strings.NewReader(in), "t")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := f.SCRAMServer()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mech, user, pw string
		ok             bool
	}{
		{scramauth.SHA256, "alice", "s3cret", true},
		{scramauth.SHA512, "bob", "s3cret", true},
		{scramauth.SHA256, "user", "pencil", true},
		{scramauth.SHA512, "user512", "pencil", true},
		{scramauth.SHA256, "alice", "s3cret!", false},
		{scramauth.SHA512, "alice", "s3cret", false}, // alice has SHA-256 credentials
		{scramauth.SHA256, "mosq7", "secret", false}, // a $7$ line is no SCRAM credential
		{scramauth.SHA256, "nobody", "s3cret", false},
	}
	for _, tc := range tests {
		t.Run(tc.mech+"/"+tc.user+"/"+tc.pw, func(t *testing.T) {
			err := scramLogin(srv, tc.mech, tc.user, tc.pw)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && !errors.Is(err, scramauth.ErrAuthFailed) {
				t.Fatalf("got %v, want ErrAuthFailed", err)
			}
		})
	}
	// SCRAM lines also serve plain username/password CONNECTs.
	if !f.Verify("alice", []byte("s3cret")) || f.Verify("alice", []byte("s3cret!")) {
		t.Error("plain Verify of a SCRAM line")
	}
	// Another parse of the same file is another instance of the pool: it
	// finishes an exchange the first one started.
	g, _ := Parse(strings.NewReader(in), "t")
	srv2, _ := g.SCRAMServer()
	c, _ := scramauth.NewClient(scramauth.SHA256, "alice", "s3cret")
	sf, st, _ := srv.Start(scramauth.SHA256, c.First(), rand.Reader)
	fin, _ := c.Final(sf)
	if _, _, err := srv2.Finish(scramauth.SHA256, st, fin); err != nil {
		t.Fatalf("round 1 on another instance: %v", err)
	}
	// A changed file is another secret: an exchange in flight fails.
	g.Set("carol", h256)
	srv3, _ := g.SCRAMServer()
	if _, _, err := srv3.Finish(scramauth.SHA256, st, fin); !errors.Is(err, scramauth.ErrState) {
		t.Fatalf("after a file change: %v, want ErrState", err)
	}
}
