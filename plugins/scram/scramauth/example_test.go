package scramauth_test

import (
	"crypto/rand"
	"fmt"

	"github.com/moat-mqtt/moat/plugins/scram/scramauth"
)

// A full SCRAM-SHA-256 exchange, as the scram plugin and an MQTT 5 client
// would run it over CONNECT, AUTH and CONNACK.
func Example() {
	stored, err := scramauth.NewCredentials(scramauth.SHA256, []byte("correct horse"), []byte("16 random bytes!"), scramauth.DefaultIterations)
	if err != nil {
		panic(err)
	}
	srv, err := scramauth.NewServer(scramauth.ServerConfig{
		Lookup: func(user string) (scramauth.Credentials, bool) { return stored, user == "alice" },
		Secret: []byte("derived from the credentials file"),
	})
	if err != nil {
		panic(err)
	}

	client, _ := scramauth.NewClient(scramauth.SHA256, "alice", "correct horse")
	// CONNECT carries client.First(); the host calls round 0.
	serverFirst, state, err := srv.Start(scramauth.SHA256, client.First(), rand.Reader)
	if err != nil {
		panic(err)
	}
	// AUTH (0x18) carries serverFirst; the client answers.
	clientFinal, err := client.Final(serverFirst)
	if err != nil {
		panic(err)
	}
	// The host hands back the state with the client's AUTH: round 1.
	serverFinal, user, err := srv.Finish(scramauth.SHA256, state, clientFinal)
	fmt.Println(user, err)
	// CONNACK carries serverFinal; the client checks the server knew the keys.
	fmt.Println(client.Verify(serverFinal))
	// Output:
	// alice <nil>
	// <nil>
}
