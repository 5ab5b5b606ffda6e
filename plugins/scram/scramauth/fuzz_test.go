package scramauth

import (
	"bytes"
	"testing"
)

// FuzzServer feeds arbitrary client messages and states to the server. It
// must never panic, and must never authenticate: the fuzzer does not know the
// password.
func FuzzServer(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.clientFirst, v.clientFinal, false)
	}
	f.Add("y,,n=user,r=abc,x=1", "c=eSws,r=abc,p=AAAA", true)
	f.Add("n,a=user,n=user,r=abc", "c=biws,r=abcdef,x=1,p=", false)
	f.Add("p=tls-unique,,n=user,r=abc", "", false)
	f.Add("n,,m=x,n==2C=3D,r=,", ",p=,p=", true)

	salt := bytes.Repeat([]byte{7}, 16)
	cred256, err := NewCredentials(SHA256, []byte("pencil"), salt, 1)
	if err != nil {
		f.Fatal(err)
	}
	cred512, _ := NewCredentials(SHA512, []byte("pencil"), salt, 1)
	s, err := NewServer(ServerConfig{
		Lookup: func(u string) (Credentials, bool) {
			switch u {
			case "user":
				return cred256, true
			case "user512":
				return cred512, true
			}
			return Credentials{}, false
		},
		Secret: testSecret,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, first, final string, sha512 bool) {
		mech := SHA256
		if sha512 {
			mech = SHA512
		}
		_, st, err := s.Start(mech, []byte(first), bytes.NewReader(bytes.Repeat([]byte{1}, 64)))
		if err != nil {
			st = []byte(first) // a forged state
		}
		if _, _, err := s.Finish(mech, st, []byte(final)); err == nil {
			t.Fatalf("authenticated without the password: first %q final %q", first, final)
		}
		// The client side must not panic on server messages either.
		c, err := NewClient(mech, "user", "pencil")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Final([]byte(first)); err == nil {
			_ = c.Verify([]byte(final))
		}
	})
}
