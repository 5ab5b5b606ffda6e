package moat_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	moat "github.com/moat-mqtt/moat/sdk/go"
)

// A tenant-scoped authorizer: a client may use the topics under its
// tenant, which an authentication module attached as an attribute.
func authorizeTenant(r *moat.AuthzRequest) moat.Result {
	tenant, ok := r.Attributes.Get("tenant")
	if !ok {
		return moat.Ignore() // not ours: the next module decides
	}
	if strings.HasPrefix(r.Topic, tenant+"/") {
		return moat.Allow()
	}
	return moat.Deny(moat.ReasonNotAuthorized, "outside the tenant's topics")
}

func ExampleHandleAuthz() {
	// In a plugin, register from func init(): a c-shared module never runs
	// main.
	moat.HandleAuthz(authorizeTenant)

	// Handlers are plain functions, tested natively without wasm.
	req := &moat.AuthzRequest{
		Client: moat.Client{Username: "alice", Attributes: moat.Attributes{{Key: "tenant", Value: "acme"}}},
		Action: moat.ActionPublish,
		Topic:  "globex/orders",
	}
	res := authorizeTenant(req)
	fmt.Println(res.Verdict(), res.Message())
	// Output: deny outside the tenant's topics
}

func ExampleHandleAuthn() {
	moat.HandleAuthn(func(r *moat.AuthnRequest) moat.AuthnResult {
		if r.Username != "sensor" || string(r.Password) != "not-a-real-secret" {
			return moat.AuthnResult{Result: moat.Deny(0, "bad username or password")}
		}
		return moat.AuthnResult{
			Result:     moat.Allow(),
			Attributes: moat.Attributes{{Key: "tenant", Value: "acme"}},
			Expiry:     moat.Now().Add(time.Hour),
		}
	})
}

func ExampleHandleConfig() {
	var topics []string
	moat.HandleConfig(func(cfg []byte) error {
		var c struct {
			Topics []string `json:"topics"`
		}
		if err := json.Unmarshal(cfg, &c); err != nil {
			return fmt.Errorf("config: %w", err)
		}
		if len(c.Topics) == 0 {
			return errors.New(`config: "topics" is empty`)
		}
		topics = c.Topics
		return nil
	})
	_ = topics
}

func ExampleContinue() {
	// MQTT 5 enhanced authentication in two rounds: the module keeps its
	// state in AuthState, because the next round may reach another
	// instance.
	moat.HandleAuthn(func(r *moat.AuthnRequest) moat.AuthnResult {
		if r.AuthMethod != "EXAMPLE-CHALLENGE" {
			return moat.AuthnResult{Result: moat.Ignore()}
		}
		if r.Round == 0 {
			challenge := make([]byte, 16)
			moat.Random(challenge)
			return moat.Continue(challenge, challenge)
		}
		if verify(r.AuthState, r.AuthData) {
			return moat.AuthnResult{Result: moat.Allow()}
		}
		return moat.AuthnResult{Result: moat.Deny(moat.ReasonBadAuthMethod, "challenge failed")}
	})
}

func verify(challenge, response []byte) bool { return len(challenge) > 0 && len(response) > 0 }
