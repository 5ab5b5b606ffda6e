// Package brokertest starts a real moat broker for the tests of packages
// that sit above runtime/broker (runtime/server, plugins, examples).
// runtime/broker's own tests cannot use it (it imports runtime/broker) and
// have the same helpers in testutil_test.go.
package brokertest

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/policy"
)

// TCP is the smallest useful moat.toml: one plain listener named "tcp" on
// a free loopback port.
const TCP = `
[[listener]]
name = "tcp"
type = "tcp"
address = "127.0.0.1:0"
`

// Config parses doc as if it were dir/moat.toml, so that relative paths
// (certificates, the bolt file) resolve against dir.
func Config(t testing.TB, dir, doc string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(doc), filepath.Join(dir, "moat.toml"))
	if err != nil {
		t.Fatalf("brokertest: parse config: %v", err)
	}
	return cfg
}

// AllowAll is a policy under which anonymous clients may do anything.
func AllowAll() *policy.Policy {
	return policy.New(nil, nil, policy.Options{AllowAnonymous: true, AuthzNoMatch: policy.Allow})
}

// Start starts a broker from cfg running p and closes it, then its
// Decider, at the end of the test. log may be nil.
func Start(t testing.TB, cfg *config.Config, p *policy.Policy, log *slog.Logger) *broker.Broker {
	t.Helper()
	d := policy.NewDecider(p, policy.CacheOptions{}, log)
	t.Cleanup(d.Close)
	b, err := broker.New(broker.Options{Config: cfg, Decider: d, Logger: log})
	if err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	if err := b.Start(context.Background()); err != nil {
		t.Fatalf("brokertest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("brokertest: %v", err)
		}
	})
	return b
}
