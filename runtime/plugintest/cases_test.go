package plugintest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
	"github.com/moat-mqtt/moat/runtime/plugintest"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", ``, "no [[case]]"},
		{"toml", "[[case]\n", "cases.toml"},
		{"unknown key", "[[case]]\nname='a'\nkind='authn'\nusername='x'\nexpect={verdict='allow'}\npasword='x'\n", "unknown key case.pasword"},
		{"unknown expect key", "[[case]]\nname='a'\nkind='authn'\nexpect={verdict='allow', atributes={}}\n", "unknown key case.expect.atributes"},
		{"kind", "[[case]]\nname='a'\nkind='authx'\nexpect={verdict='allow'}\n", `case[0] "a" (line 1): kind: "authx"`},
		{"no name", "\n\n[[case]]\nkind='authn'\nexpect={verdict='allow'}\n", "case[0] (line 3): name: missing"},
		{"dup name", "[[case]]\nname='a'\nkind='authn'\nexpect={verdict='allow'}\n[[case]]\nname='a'\nkind='authn'\nexpect={verdict='deny'}\n", `case[1] "a" (line 5): name: "a" is also case 0`},
		{"action", "[[case]]\nname='a'\nkind='authz'\naction='read'\nexpect={verdict='allow'}\n", `action: "read"`},
		{"authn action", "[[case]]\nname='a'\nkind='authn'\naction='publish'\nexpect={verdict='allow'}\n", "authn requests have none"},
		{"verdict", "[[case]]\nname='a'\nkind='authn'\nexpect={verdict='yes'}\n", `expect.verdict: "yes"`},
		{"no verdict", "[[case]]\nname='a'\nkind='authn'\n", `expect.verdict: ""`},
		{"mode", "[[case]]\nname='a'\nkind='payload'\naction='publish'\nexpect={verdict='allow', mode='secret'}\n", `expect.mode: "secret"`},
		{"qos", "[[case]]\nname='a'\nkind='authz'\naction='publish'\nqos=3\nexpect={verdict='allow'}\n", "qos: 3"},
		{"protocol", "[[case]]\nname='a'\nkind='authn'\nprotocol=6\nexpect={verdict='allow'}\n", "protocol: 6"},
		{"reason", "[[case]]\nname='a'\nkind='authn'\nexpect={verdict='deny', reason=256}\n", "expect.reason: 256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plugintest.Parse("cases.toml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigJSON(t *testing.T) {
	s, err := plugintest.Parse("c.toml", []byte("[config]\nn = 1\nwhen = 2024-01-02T03:04:05Z\nusers = [{name = 'a<b'}]\n[[config.t]]\nx = true\n[[case]]\nname='a'\nkind='authn'\nexpect={verdict='ignore'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	j, err := s.ConfigJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"n":1,"t":[{"x":true}],"users":[{"name":"a\u003cb"}],"when":"2024-01-02T03:04:05Z"}`; string(j) != want {
		t.Errorf("got %s, want %s", j, want)
	}
}

// TestRunReportsDiffs runs the Rust reference module against expectations
// that are wrong on purpose and checks that each difference is reported.
func TestRunReportsDiffs(t *testing.T) {
	root := testutil.RepoRoot(t)
	mod := referenceRust(t, root)
	s, err := plugintest.Parse("wrong.toml", []byte(`
[config]
users = [{ name = "alice", password = "pw", tenant = "acme" }]

[[case]]
name = "right"
kind = "authn"
username = "alice"
password = "pw"
expect = { verdict = "allow", attributes = { tenant = "acme" } }

[[case]]
name = "wrong attributes"
kind = "authn"
username = "alice"
password = "pw"
expect = { verdict = "allow", attributes = { tenant = "globex", role = "x" } }

[[case]]
name = "wrong verdict and message"
kind = "authn"
username = "alice"
password = "nope"
expect = { verdict = "allow", reason = 0x87, message = "welcome" }

[[case]]
name = "wrong mode"
kind = "payload"
action = "publish"
topic = "secure/x"
expect = { verdict = "allow", mode = "plaintext" }
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	rep, err := plugintest.Run(ctx, e, mod, s, plugintest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Write(&out)
	if rep.Failed() != 3 {
		t.Errorf("failed %d, want 3:\n%s", rep.Failed(), &out)
	}
	for _, want := range []string{
		`FAIL wrong.toml:12: case[1] "wrong attributes" (line 12)`,
		`attributes: got {tenant="acme"}, want {role="x", tenant="globex"}`,
		`FAIL wrong.toml:19: case[2] "wrong verdict and message"`,
		`request: authn username="alice" password=(set)`,
		`verdict: got deny, want allow`,
		`reason: got 0 (default), want 0x87`,
		`message: got "bad user name or password", want "welcome"`,
		`mode: got "at-rest", want "plaintext"`,
		`key_id: got "default", want (none)`,
		`3 of 4 cases failed`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, &out)
		}
	}
	if strings.Contains(out.String(), `"right"`) {
		t.Errorf("a passing case is reported:\n%s", &out)
	}

	// A config the module refuses is a load error naming it.
	_, err = plugintest.Run(ctx, e, mod, s, plugintest.Options{ConfigJSON: []byte(`{"users": 3}`)})
	if err == nil || !strings.Contains(err.Error(), "users: want an array") {
		t.Errorf("got %v, want the module's refusal", err)
	}
	// A module without a decision the cases need is refused at load.
	_, err = plugintest.Run(ctx, e, filepath.Join(root, "runtime", "wasm", "testdata", "basic.wasm"), s, plugintest.Options{})
	if err == nil || !strings.Contains(err.Error(), "missing export func[moat_") {
		t.Errorf("got %v, want a missing export", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[config]\nusers=[]\n[[case]]\nname='a'\nkind='authz'\naction='publish'\nexpect={verdict='allow'}\n"))
	f.Add([]byte("[[case]]\nname='a'\nkind='authn'\npassword='x'\nattributes={a='b'}\nexpect={verdict='deny', reason=0x86, message=''}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := plugintest.Parse("f.toml", data)
		if err != nil {
			return
		}
		if len(s.Cases) == 0 {
			t.Fatal("a suite without cases parsed")
		}
		if _, err := s.ConfigJSON(); err != nil {
			// NaN and infinities cannot be JSON: an error, never a panic.
			return
		}
	})
}

// TestFiles checks the files grant of a case file: paths relative to the
// case file, names as the module asks for them.
func TestFiles(t *testing.T) {
	root := testutil.RepoRoot(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "greeting.txt"), []byte("hello from a file"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := filepath.Join(dir, "cases.toml")
	if err := os.WriteFile(cases, []byte(`
files = { greeting = "greeting.txt" }

[[case]]
name = "a granted file"
kind = "authz"
action = "publish"
topic = "greeting"
expect = { verdict = "allow", message = "hello from a file" }

[[case]]
name = "a name not granted"
kind = "authz"
action = "publish"
topic = "passwords"
expect = { verdict = "deny", reason = 0x87 }
`), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := plugintest.Load(cases)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "greeting.txt"); s.Files["greeting"] != want {
		t.Fatalf("files: %v, want greeting = %s", s.Files, want)
	}
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	rep, err := plugintest.Run(ctx, e, filepath.Join(root, "runtime", "wasm", "testdata", "files.wasm"), s, plugintest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	rep.Write(&out)
	if rep.Failed() != 0 {
		t.Fatalf("%s", &out)
	}
}
