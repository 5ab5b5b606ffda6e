package policy

import (
	"context"
	"testing"
)

// BenchmarkAuthorizeUncached is one decision that reaches a module (a
// native one answering from a map): the chain's own cost, breaker included.
func BenchmarkAuthorizeUncached(b *testing.B) {
	m := &ruleModule{authz: map[string]AuthzResult{"a/1": {Verdict: Allow}}}
	d := NewDecider(New(nil, authzChain(m), Options{}), CacheOptions{Disabled: true}, nil)
	defer d.Close()
	s := d.NewSession(&Client{ClientID: "c"})
	req := &AuthzRequest{Action: ActionDeliver, Topic: "a/1"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d.Authorize(ctx, s, req)
	}
}
