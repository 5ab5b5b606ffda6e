package aclfile_test

import (
	"fmt"
	"log"
	"strings"

	"github.com/moat-mqtt/moat/plugins/acl/aclfile"
)

func Example() {
	const file = `# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/private

pattern write devices/%c/state
@pattern allow publish maxqos=1 retain=deny tenants/%{tenant}/#
`
	acl, err := aclfile.Parse(strings.NewReader(file), "acl.conf")
	if err != nil {
		log.Fatal(err)
	}
	alice := aclfile.Query{Username: "alice", ClientID: "phone"}

	q := alice
	q.Action, q.Topic = aclfile.Publish, "alice/notes"
	fmt.Println(acl.Check(q))

	q.Topic = "alice/private"
	fmt.Println(acl.Explain(q))

	q = aclfile.Query{Anonymous: true, ClientID: "sensor-7", Action: aclfile.Publish, Topic: "devices/sensor-7/state"}
	fmt.Println(acl.Check(q))

	q = alice
	q.Action, q.Topic, q.QoS = aclfile.Publish, "tenants/acme/x", 2
	q.Attributes = []aclfile.Attr{{Key: "tenant", Value: "acme"}}
	fmt.Println(acl.Check(q))
	// Output:
	// allow
	// deny acl.conf:6: topic deny alice/private
	// allow
	// no-match
}

func ExampleParse_error() {
	_, err := aclfile.Parse(strings.NewReader("user alice\ntopic rw alice/#\n"), "acl.conf")
	fmt.Println(err)
	// Output:
	// acl: acl.conf:2: unknown access "rw" (want read, write, readwrite or deny)
}
