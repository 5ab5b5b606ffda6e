package envelope_test

import (
	"crypto/rand"
	"fmt"

	"github.com/moat-mqtt/moat/sdk/envelope"
)

// A device seals its readings end to end; only holders of the key (and
// not the broker, under the require-e2e mode) can read them.
func Example() {
	key := make([]byte, envelope.KeySize) // in practice: the device's provisioned key
	_, _ = rand.Read(key)
	s, err := envelope.NewSealer(envelope.AES256GCM, "device-1", key)
	if err != nil {
		panic(err)
	}
	env, err := s.Seal(nil, "sensors/1/temp", []byte("21.5"))
	if err != nil {
		panic(err)
	}
	// Publish env on "sensors/1/temp", with the MQTT 5 user property
	// envelope.Property = "1".

	h, _ := envelope.Parse(env)
	plain, err := envelope.Open(key, "sensors/1/temp", env)
	fmt.Println(h.KeyID, string(plain), err)
	_, err = envelope.Open(key, "sensors/2/temp", env)
	fmt.Println(err)
	// Output:
	// device-1 21.5 <nil>
	// envelope: message authentication failed
}
