package passwdfile_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/moat-mqtt/moat/plugins/passwd/passwdfile"
)

// Loading a Mosquitto password file and checking CONNECT credentials, as the
// passwd plugin does.
func Example() {
	file := "# written by mosquitto_passwd 2.0\n" +
		"alice:$7$101$Rgx9kiBq0B0Zc54K$R/mKGv5uA2TJM3upp/5U6+Wn6Kxxw00t29hTnYSg5y+Awryvt4GiLgRNgx5Id36jiksiznvDsymgATBQjpKs9w==\n"
	f, err := passwdfile.Parse(strings.NewReader(file), "passwd")
	if err != nil {
		panic(err)
	}
	fmt.Println(f.Verify("alice", []byte("secret")))
	fmt.Println(f.Verify("alice", []byte("guess")))
	fmt.Println(f.Verify("mallory", []byte("secret")))
	// Output:
	// true
	// false
	// false
}

// Adding a user, as moat passwd does.
func ExampleFile_Set() {
	f, _ := passwdfile.Parse(strings.NewReader("# users\n"), "passwd")
	h, err := passwdfile.Hash([]byte("wonderland"), passwdfile.DefaultFormat)
	if err != nil {
		panic(err)
	}
	if err := f.Set("alice", h); err != nil {
		panic(err)
	}
	f.Write(os.Stdout) // "# users" and "alice:$argon2id$v=19$m=19456,t=2,p=1$..."
	fmt.Println(f.Verify("alice", []byte("wonderland")))
}

// A load error names the file and the line, and never quotes what might be
// a plaintext password.
func ExampleParse_error() {
	_, err := passwdfile.Parse(strings.NewReader("# users\nbob:$5$rounds=5000$salt$hash\n"), "users.txt")
	fmt.Println(err)
	_, err = passwdfile.Parse(strings.NewReader("carol:hunter2\n"), "users.txt")
	fmt.Println(err)
	// Output:
	// passwd: users.txt:2: unknown hash format "$5$"
	// passwd: users.txt:1: unrecognized hash (value not shown; if it is a plaintext password, hash the file with moat passwd -U)
}
