package aclfile

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestSubscribeCheck(t *testing.T) {
	a := mustParse(t, `@subscribe check
topic read public/#
topic deny public/secret/#
topic write public/in
topic readwrite rw/+

user alice
topic read alice/+/status
@topic allow subscribe maxqos=1 alice/cmd/#
@topic deny subscribe alice/cmd/admin
@topic allow deliver alice/cmd/#
pattern read users/%u/#
@pattern allow subscribe,deliver rooms/%{room}/+
`)
	if !a.ChecksSubscribe() {
		t.Fatal("ChecksSubscribe = false")
	}
	an := anon("c")
	al := user("alice", "a1")
	runChecks(t, a, []checkCase{
		// read grants subscribe to filters it covers.
		{"covered exactly", sub(an, "public/#"), Allow},
		{"covered +", sub(an, "public/+"), Allow},
		{"covered literal", sub(an, "public/a/b"), Allow},
		{"# covers parent", sub(an, "public"), Allow},
		{"not covered #", sub(an, "#"), NoMatch},
		{"not covered +/#", sub(an, "+/#"), NoMatch},
		{"deny covers", sub(an, "public/secret/#"), Deny},
		{"deny covers literal", sub(an, "public/secret/x"), Deny},
		{"deny covers parent", sub(an, "public/secret"), Deny},
		// Overlapping a deny is allowed; delivery filters.
		{"overlap deny allowed", sub(an, "public/+/x"), Allow},
		{"overlap deny deliver", del(an, "public/secret/x"), Deny},
		{"write does not grant subscribe", sub(an, "public/in"), Allow}, // via public/#
		{"readwrite +", sub(an, "rw/+"), Allow},
		{"readwrite + not #", sub(an, "rw/#"), NoMatch},
		{"readwrite + literal", sub(an, "rw/x"), Allow},
		{"readwrite + deeper", sub(an, "rw/x/y"), NoMatch},
		{"$ filter", sub(an, "$SYS/#"), NoMatch},

		{"alice + covers +", sub(al, "alice/+/status"), Allow},
		{"alice + covers literal", sub(al, "alice/x/status"), Allow},
		{"alice + does not cover #", sub(al, "alice/#"), NoMatch},
		{"alice maxqos ok", qos(sub(al, "alice/cmd/x"), 1), Allow},
		{"alice maxqos over", qos(sub(al, "alice/cmd/x"), 2), NoMatch},
		{"alice maxqos not on deliver", qos(del(al, "alice/cmd/x"), 2), Allow},
		{"alice ext deny", sub(al, "alice/cmd/admin"), Deny},
		{"alice ext deny only subscribe", del(al, "alice/cmd/admin"), Allow},
		{"alice # covers #", sub(al, "alice/cmd/#"), Allow},
		{"alice pattern %u", sub(al, "users/alice/#"), Allow},
		{"alice pattern %u literal", sub(al, "users/alice/x"), Allow},
		{"alice %u does not cover +", sub(al, "users/+/x"), NoMatch},
		{"alice other user", sub(al, "users/bob/x"), NoMatch},
		{"attr room", sub(attrs(al, "room", "r1"), "rooms/r1/+"), Allow},
		{"attr room other", sub(attrs(al, "room", "r1"), "rooms/r2/+"), NoMatch},
		{"attr room + filter", sub(attrs(al, "room", "r1"), "rooms/+/x"), NoMatch},
		{"invalid filter", sub(al, "alice/#/x"), Deny},
		{"qos 3", qos(sub(al, "alice/cmd/x"), 3), Deny},
	})
}

func TestExtensions(t *testing.T) {
	a := mustParse(t, `@topic allow publish maxqos=1 retain=deny sensors/#
@topic allow deliver sensors/#
@topic deny publish sensors/locked
@topic allow read,write -- k=v/#
@topic allow readwrite	retain=allow	tab/sep arated
user dev
@topic allow publish,deliver -- k=v/#
@topic allow write maxqos=2 x/y z
@pattern allow publish,deliver tenants/%{tenant}/%u/#
@pattern deny deliver tenants/%{tenant}/private
@pattern allow write maxqos=0 qos0/%c
@pattern allow deliver groups/%{group.name}/#
pattern read legacy/%{tenant}
`)
	if !a.UsesAttributes() {
		t.Fatal("UsesAttributes = false")
	}
	an := anon("c1")
	dev := user("dev", "d1")
	acme := func(q Query) Query { return attrs(q, "tenant", "acme") }
	runChecks(t, a, []checkCase{
		{"publish qos 1 under ceiling", qos(pub(an, "sensors/a"), 1), Allow},
		{"publish qos 2 over ceiling", qos(pub(an, "sensors/a"), 2), NoMatch},
		{"publish retain refused", retain(pub(an, "sensors/a")), NoMatch},
		{"deliver no ceiling", qos(del(an, "sensors/a"), 2), Allow},
		{"deliver retained", retain(del(an, "sensors/a")), Allow},
		{"deny only publish", pub(an, "sensors/locked"), Deny},
		{"deny only publish: deliver ok", del(an, "sensors/locked"), Allow},
		{"-- ends options", pub(an, "k=v/x"), Allow},
		{"read,write", del(an, "k=v/x"), Allow},
		{"tabs separate, topic keeps space", retain(pub(an, "tab/sep arated")), Allow},
		{"subscribe open without check", sub(an, "#"), Allow},

		{"dev --", pub(dev, "k=v/1"), Allow},
		{"dev topic with space", qos(pub(dev, "x/y z"), 2), Allow},
		{"attr tenant", pub(acme(dev), "tenants/acme/dev/a"), Allow},
		{"attr tenant other", pub(acme(dev), "tenants/other/dev/a"), NoMatch},
		{"attr tenant other user", pub(acme(dev), "tenants/acme/ops/a"), NoMatch},
		{"attr missing", pub(dev, "tenants/acme/dev/a"), NoMatch},
		{"attr first wins", pub(attrs(dev, "tenant", "acme", "tenant", "evil"), "tenants/acme/dev/a"), Allow},
		{"attr first wins 2", pub(attrs(dev, "tenant", "acme", "tenant", "evil"), "tenants/evil/dev/a"), NoMatch},
		{"attr with / refused", pub(attrs(dev, "tenant", "a/b"), "tenants/a/b/dev/a"), NoMatch},
		{"attr + refused", pub(attrs(dev, "tenant", "+"), "tenants/x/dev/a"), NoMatch},
		{"attr # refused", pub(attrs(dev, "tenant", "#"), "tenants/x/dev/a"), NoMatch},
		{"attr empty refused", pub(attrs(dev, "tenant", ""), "tenants//dev/a"), NoMatch},
		{"attr deny", del(acme(dev), "tenants/acme/private"), Deny},
		{"attr deny other tenant", del(acme(dev), "tenants/x/private"), NoMatch},
		{"attr dotted name", del(attrs(an, "group.name", "g1"), "groups/g1/x"), Allow},
		{"attr anonymous %u", pub(acme(an), "tenants/acme/c1/a"), NoMatch},
		{"qos0 ceiling", pub(an, "qos0/c1"), Allow},
		{"qos0 ceiling over", qos(pub(an, "qos0/c1"), 1), NoMatch},
		// %{...} is literal in a Mosquitto pattern line.
		{"mosquitto pattern literal %{}", del(acme(an), "legacy/%{tenant}"), Allow},
		{"mosquitto pattern literal %{} not substituted", del(acme(an), "legacy/acme"), NoMatch},
	})
}

// TestIndexMatchesReference compares the index with the naive Mosquitto-order
// scan on random files and queries built from a small alphabet, so that
// wildcards, '$', substitutions and sections collide often.
func TestIndexMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	files, queries := 3000, 60
	if testing.Short() {
		files = 500
	}
	for i := 0; i < files; i++ {
		text := randomFile(rng)
		a, err := Parse(strings.NewReader(text), "rand.acl")
		if err != nil {
			t.Fatalf("random file does not parse: %v\n%s", err, text)
		}
		for j := 0; j < queries; j++ {
			q := randomQuery(rng)
			if got, want := a.Check(q), naiveCheck(a, q); got != want {
				_, why := a.Explain(q)
				t.Fatalf("Check = %v, reference = %v (%s)\nquery %+v\nfile:\n%s", got, want, why, q, text)
			}
		}
	}
}

var (
	randLevels     = []string{"a", "b", "$s", "", "+", "#"}
	randNameLevels = []string{"a", "b", "$s", "", "c1", "u1", "t1", "%c"}
	randUsers      = []string{"u1", "u2", "", "u+", "u/x"}
	randClients    = []string{"c1", "c2", "", "c#", "c/x", "$s"}
)

func randomFilter(rng *rand.Rand, vars []string) string {
	n := 1 + rng.IntN(4)
	parts := make([]string, 0, n)
	for i := 0; i < n; i++ {
		l := randLevels[rng.IntN(len(randLevels))]
		if len(vars) > 0 && rng.IntN(4) == 0 {
			l = vars[rng.IntN(len(vars))]
		}
		if l == "#" {
			parts = append(parts, l)
			break
		}
		parts = append(parts, l)
	}
	f := strings.Join(parts, "/")
	if f == "" {
		f = "a"
	}
	return f
}

func randomFile(rng *rand.Rand) string {
	var b strings.Builder
	if rng.IntN(2) == 0 {
		b.WriteString("@subscribe check\n")
	}
	mosqAccess := []string{"read ", "write ", "readwrite ", "deny ", ""}
	extActions := []string{"publish", "subscribe", "deliver", "read", "publish,deliver", "subscribe,deliver"}
	opts := []string{"", "maxqos=0 ", "maxqos=1 ", "retain=deny ", "maxqos=1 retain=deny "}
	for i, n := 0, 1+rng.IntN(12); i < n; i++ {
		switch rng.IntN(6) {
		case 0:
			fmt.Fprintf(&b, "user %s\n", []string{"u1", "u2", "u+"}[rng.IntN(3)])
		case 1:
			// %c is literal in a topic line.
			fmt.Fprintf(&b, "topic %s%s\n", mosqAccess[rng.IntN(len(mosqAccess))], randomFilter(rng, []string{"%c"}))
		case 2:
			fmt.Fprintf(&b, "pattern %s%s\n", mosqAccess[rng.IntN(len(mosqAccess))], randomFilter(rng, []string{"%c", "%u"}))
		case 3, 4:
			kind, vars := "@topic", []string(nil)
			if rng.IntN(2) == 0 {
				kind, vars = "@pattern", []string{"%c", "%u", "%{t}"}
			}
			act := extActions[rng.IntN(len(extActions))]
			if !strings.Contains(b.String(), "@subscribe check") {
				act = strings.ReplaceAll(act, "subscribe", "deliver")
			}
			if rng.IntN(3) == 0 {
				fmt.Fprintf(&b, "%s deny %s %s\n", kind, act, randomFilter(rng, vars))
			} else {
				opt := opts[rng.IntN(len(opts))]
				if !strings.Contains(act, "publish") {
					opt = ""
				}
				fmt.Fprintf(&b, "%s allow %s %s%s\n", kind, act, opt, randomFilter(rng, vars))
			}
		default:
			b.WriteString("# comment\n")
		}
	}
	return b.String()
}

func randomQuery(rng *rand.Rand) Query {
	q := Query{
		Action:   Action(1 + rng.IntN(3)),
		ClientID: randClients[rng.IntN(len(randClients))],
		QoS:      uint8(rng.IntN(3)),
		Retain:   rng.IntN(3) == 0,
	}
	if rng.IntN(3) == 0 {
		q.Anonymous = true
	} else {
		q.Username = randUsers[rng.IntN(len(randUsers))]
	}
	if rng.IntN(2) == 0 {
		q.Attributes = pairs("t", randNameLevels[rng.IntN(len(randNameLevels))])
	}
	if q.Action == Subscribe {
		q.Topic = randomFilter(rng, nil)
	} else {
		n := 1 + rng.IntN(4)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = randNameLevels[rng.IntN(len(randNameLevels))]
		}
		q.Topic = strings.Join(parts, "/")
		if q.Topic == "" {
			q.Topic = "a"
		}
	}
	return q
}
