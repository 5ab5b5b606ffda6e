package broker_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// A broker on a free port whose policy lets anonymous clients do anything.
// runtime/server builds the config and the policy from moat.toml instead.
func Example() {
	cfg, err := config.Parse([]byte(`
[[listener]]
name = "tcp"
type = "tcp"
address = "127.0.0.1:0"
`), "")
	if err != nil {
		log.Fatal(err)
	}
	decider := policy.NewDecider(policy.New(nil, nil, policy.Options{AllowAnonymous: true, AuthzNoMatch: policy.Allow}), policy.CacheOptions{}, nil)
	defer decider.Close() // after the broker: it decides until Close returns

	b, err := broker.New(broker.Options{Config: cfg, Decider: decider})
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("listening on a real port:", b.Addr("tcp").String() != "127.0.0.1:0")

	// Shutdown: stop accepting, give in-flight QoS 1/2 up to 5 s, disconnect.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		log.Fatal(err)
	}
	// Output: listening on a real port: true
}
