package hostcrypto_test

import (
	"crypto"
	"crypto/subtle"
	"encoding/base64"
	"fmt"

	"github.com/moat-mqtt/moat/sdk/go/hostcrypto"
)

// Checking a Mosquitto 2.0 "$7$" password hash (PBKDF2-HMAC-SHA512, 101
// iterations, 64-byte key) in a module: the broker computes the key.
func Example() {
	salt, _ := base64.StdEncoding.DecodeString("Rgx9kiBq0B0Zc54K")
	stored, _ := base64.StdEncoding.DecodeString("R/mKGv5uA2TJM3upp/5U6+Wn6Kxxw00t29hTnYSg5y+Awryvt4GiLgRNgx5Id36jiksiznvDsymgATBQjpKs9w==")
	for _, pw := range []string{"wrong", "secret"} {
		key, err := hostcrypto.PBKDF2(crypto.SHA512, []byte(pw), salt, 101, len(stored))
		if err != nil {
			panic(err)
		}
		fmt.Println(pw, subtle.ConstantTimeCompare(key, stored) == 1)
	}
	// Output:
	// wrong false
	// secret true
}
