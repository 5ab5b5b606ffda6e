package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// rustRecipe is the Rust SDK's build command (sdk/rust/README.md).
var rustRecipe = []string{"--edition", "2021", "--target", "wasm32-unknown-unknown", "--crate-type", "cdylib",
	"-C", "panic=abort", "-C", "opt-level=s", "-C", "link-arg=-zstack-size=65536", "-C", "strip=symbols"}

func rustc() string {
	if r := os.Getenv("RUSTC"); r != "" {
		return r
	}
	return "/usr/bin/rustc"
}

func buildRust(t *testing.T, src, out string) {
	t.Helper()
	if b, err := exec.Command(rustc(), append(rustRecipe, src, "-o", out)...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", rustc(), src, err, b)
	}
}

func runMoat(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, strings.NewReader(""), &o, &e)
	return code, o.String(), e.String()
}

// TestProjectSDK checks that every language's project gets its SDK as
// sdk/ has it, where its build files expect it.
func TestProjectSDK(t *testing.T) {
	want := map[string]map[string]string{ // language: project file -> repository file
		"rust": {"moat.rs": "sdk/rust/moat.rs"},
		"c":    {"moat.h": "sdk/c/moat.h"},
		"cpp":  {"moat.h": "sdk/c/moat.h"},
		"as":   {},
		"go":   {},
	}
	asSDK, _ := filepath.Glob("../../sdk/assemblyscript/assembly/*.ts")
	for _, f := range asSDK {
		want["as"]["moat/"+filepath.Base(f)] = "sdk/assemblyscript/assembly/" + filepath.Base(f)
	}
	goSDK, _ := filepath.Glob("../../sdk/go/*.go")
	for _, f := range goSDK {
		if !strings.HasSuffix(f, "_test.go") {
			want["go"]["moat/"+filepath.Base(f)] = "sdk/go/" + filepath.Base(f)
		}
	}
	if len(asSDK) == 0 || len(want["go"]) == 0 {
		t.Fatalf("no SDK sources found: %d AssemblyScript, %d Go", len(asSDK), len(want["go"]))
	}
	for i := range languages {
		l := &languages[i]
		files, err := renderProject(l, newData{Name: "p", Dir: "p"})
		if err != nil {
			t.Fatal(err)
		}
		for name, repo := range want[l.name] {
			disk, err := os.ReadFile(filepath.Join("../..", repo))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(files[name], disk) {
				t.Errorf("%s project: %s is not %s", l.name, name, repo)
			}
		}
		for name := range files {
			if strings.HasSuffix(name, "_test.go") {
				t.Errorf("%s project: has test file %s", l.name, name)
			}
		}
	}
}

// TestPluginNewAS creates an AssemblyScript project, builds it with its
// Makefile and the compiler of the repository's node_modules (make build
// installs it; a user runs npm install in the project), and runs its own
// cases: they pass at once.
func TestPluginNewAS(t *testing.T) {
	asc, err := filepath.Abs("../../node_modules/.bin/asc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(asc); err != nil {
		t.Fatalf("%v: run make build (npm ci) first", err)
	}
	dir := filepath.Join(t.TempDir(), "tenant-policy")
	code, out, errOut := runMoat("plugin", "new", "--lang", "as", "--dir", dir, "tenant-policy")
	if code != exitOK || !strings.Contains(out, "npm install && make test") {
		t.Fatalf("new: exit %d\n%s%s", code, out, errOut)
	}
	cmd := exec.Command("make", "tenant-policy.wasm", "ASC="+asc)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, b)
	}
	mod := filepath.Join(dir, "tenant-policy.wasm")
	code, out, errOut = runMoat("plugin", "test", mod, "--cases", filepath.Join(dir, "cases.toml"))
	if code != exitOK || !strings.Contains(out, "5 cases passed") {
		t.Fatalf("test: exit %d\n%s%s", code, out, errOut)
	}
}

// TestPluginNewGo creates a Go project, builds it with its Makefile and
// runs its own cases: they pass at once.
func TestPluginNewGo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tenant-policy")
	code, out, errOut := runMoat("plugin", "new", "--lang", "go", "--dir", dir, "tenant-policy")
	if code != exitOK || !strings.Contains(out, "make test") {
		t.Fatalf("new: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "moat", "handlers.go")); err != nil {
		t.Fatalf("the SDK is not in the project as Go source: %v", err)
	}
	cmd := exec.Command("make", "tenant-policy.wasm")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make: %v\n%s", err, b)
	}
	mod := filepath.Join(dir, "tenant-policy.wasm")
	code, out, errOut = runMoat("plugin", "test", mod, "--cases", filepath.Join(dir, "cases.toml"))
	if code != exitOK || !strings.Contains(out, "5 cases passed") {
		t.Fatalf("test: exit %d\n%s%s", code, out, errOut)
	}
}

// TestPluginNewC creates a C and a C++ project, builds each with its own
// Makefile, as its README says, and runs its own cases: they pass at once.
func TestPluginNewC(t *testing.T) {
	for _, lang := range []string{"c", "cpp"} {
		t.Run(lang, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tenant-policy")
			code, out, errOut := runMoat("plugin", "new", "--lang", lang, "--dir", dir, "tenant-policy")
			if code != exitOK || !strings.Contains(out, "make test") {
				t.Fatalf("new: exit %d\n%s%s", code, out, errOut)
			}
			cmd := exec.Command("make", "tenant-policy.wasm")
			cmd.Dir = dir
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make: %v\n%s", err, b)
			}
			mod := filepath.Join(dir, "tenant-policy.wasm")
			code, out, errOut = runMoat("plugin", "test", mod, "--cases", filepath.Join(dir, "cases.toml"))
			if code != exitOK || !strings.Contains(out, "5 cases passed") {
				t.Fatalf("test: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}

// TestPluginNewRust creates a Rust project, builds it with its own
// recipe and runs its own cases: they pass at once. Then a case is made
// wrong, and `plugin test` fails with the diff.
func TestPluginNewRust(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tenant-policy")
	code, out, errOut := runMoat("plugin", "new", "--lang", "rust", "--dir", dir, "tenant-policy")
	if code != exitOK || !strings.Contains(out, "make test") {
		t.Fatalf("new: exit %d\n%s%s", code, out, errOut)
	}
	mf, err := os.ReadFile(filepath.Join(dir, "Makefile"))
	if err != nil || !strings.Contains(string(mf), "-o $@") || !strings.Contains(string(mf), "tenant-policy.wasm:") {
		t.Fatalf("Makefile: %v\n%s", err, mf)
	}
	mod := filepath.Join(dir, "tenant-policy.wasm")
	buildRust(t, filepath.Join(dir, "plugin.rs"), mod)
	cases := filepath.Join(dir, "cases.toml")
	code, out, errOut = runMoat("plugin", "test", mod, "--cases", cases)
	if code != exitOK || !strings.Contains(out, "5 cases passed") {
		t.Fatalf("test: exit %d\n%s%s", code, out, errOut)
	}

	b, _ := os.ReadFile(cases)
	wrong := strings.Replace(string(b), `topic = "users/bob/status"
expect = { verdict = "ignore" }`, `topic = "users/bob/status"
expect = { verdict = "allow" }`, 1)
	if wrong == string(b) {
		t.Fatal("the template's cases changed: update this test")
	}
	os.WriteFile(cases, []byte(wrong), 0o644)
	code, out, _ = runMoat("plugin", "test", mod, "--cases", cases)
	if code != exitFail || !strings.Contains(out, `"bob's prefix is not alice's"`) || !strings.Contains(out, "verdict: got ignore, want allow") {
		t.Fatalf("a wrong case: exit %d\n%s", code, out)
	}

	// The directory exists now: new refuses to overwrite it.
	if code, _, errOut := runMoat("plugin", "new", "--lang", "rust", "--dir", dir, "tenant-policy"); code != exitFail || !strings.Contains(errOut, "already exists") {
		t.Errorf("new over an existing dir: exit %d %s", code, errOut)
	}
}

func TestPluginNewErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--lang", "rust"}, exitUsage, "want --lang LANG and one NAME"},
		{[]string{"x"}, exitUsage, "want --lang LANG"},
		{[]string{"--lang", "cobol", "x"}, exitUsage, `unknown language "cobol"; available: rust`},
		{[]string{"--lang", "rust", "Bad Name"}, exitUsage, `name "Bad Name"`},
	}
	for _, tc := range tests {
		code, _, errOut := runMoat(append([]string{"plugin", "new"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d %q, want %d %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

var (
	referenceOnce sync.Once
	referencePath string
	referenceErr  error
)

// referenceModule builds the Rust reference policy once per test process
// (into the TestMain directory, removed at the end).
func referenceModule(t *testing.T) string {
	t.Helper()
	referenceOnce.Do(func() {
		referencePath = filepath.Join(filepath.Dir(moatBin), "reference-rust.wasm")
		out, err := exec.Command(rustc(), append(rustRecipe, "../../examples/reference/rust/reference.rs", "-o", referencePath)...).CombinedOutput()
		if err != nil {
			referenceErr = fmt.Errorf("%s: %v\n%s", rustc(), err, out)
		}
	})
	if referenceErr != nil {
		t.Fatal(referenceErr)
	}
	return referencePath
}

func TestPluginTest(t *testing.T) {
	mod := referenceModule(t)
	cases := "../../examples/reference/cases.toml"
	code, out, errOut := runMoat("plugin", "test", mod, "--cases", cases)
	if code != exitOK || !strings.Contains(out, "cases passed") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}

	// --config replaces the suite's: without users, every authn case that
	// expected a decision now gets ignore.
	cfg := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(cfg, []byte(`{"users": [{"name": "alice", "password": "other", "tenant": "acme"}]}`), 0o644)
	for _, c := range []string{cfg, `{"users": []}`} {
		code, out, _ = runMoat("plugin", "test", "--config", c, mod, "--cases", cases)
		if code != exitFail || !strings.Contains(out, `"alice connects with her password"`) || !strings.Contains(out, "cases failed") {
			t.Errorf("--config %s: exit %d\n%s", c, code, out)
		}
	}

	// -run keeps matching cases, -v lists the passing ones.
	code, out, errOut = runMoat("plugin", "test", mod, "--cases", cases, "-run", "^alice (connects|publishes)", "-v")
	if code != exitOK || !strings.Contains(out, "4 cases passed") || !strings.Contains(out, `cases.toml:23: alice connects with her password`) {
		t.Errorf("-run -v: exit %d\n%s%s", code, out, errOut)
	}

	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{mod, "--cases", cases, "-run", "nothing like this"}, exitFail, "matches no case"},
		{[]string{mod, "--cases", cases, "-run", "("}, exitUsage, "-run: error parsing regexp"},
		{[]string{mod}, exitUsage, "want one MODULE.wasm and --cases FILE"},
		{[]string{"--cases", cases}, exitUsage, "want one MODULE.wasm"},
		{[]string{mod, "--cases", "nope.toml"}, exitFail, "no such file"},
		{[]string{mod, "--cases", cases, "--config", "[1]"}, exitUsage, "no such file"},
		{[]string{mod, "--cases", cases, "--config", "{x"}, exitUsage, "not a JSON object"},
		{[]string{mod, "--cases", cases, "--config", `{"users": 1}`}, exitFail, `config refused (moat_configure returned 1): users: want an array`},
		{[]string{"../../runtime/wasm/testdata/noop.wasm", "--cases", cases}, exitFail, "missing export"},
	}
	for _, tc := range tests {
		code, _, errOut := runMoat(append([]string{"plugin", "test"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d %q, want %d %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}

func TestPluginInspect(t *testing.T) {
	mod := referenceModule(t)
	code, out, errOut := runMoat("plugin", "inspect", mod)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"abi:       v1\n",
		"decisions: authn, authz, payload\n",
		"func moat.set_key_id\n",
		"capabilities: (none)\n",
		`decisions = ["authn", "authz", "payload"]`,
		`name = "reference-rust"`,
		"sha256 = \"",
		"load: ok",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runMoat("plugin", "inspect", "../../runtime/wasm/testdata/files.wasm")
	if !strings.Contains(out, "func moat.file_read  needs a [plugin.files] grant") || !strings.Contains(out, "capabilities: [plugin.files]") || !strings.Contains(out, "  [plugin.files]\n") {
		t.Errorf("files.wasm: exit %d\n%s", code, out)
	}
	code, out, _ = runMoat("plugin", "inspect", "../../runtime/wasm/testdata/abi_v2.wasm")
	if code != exitFail || !strings.Contains(out, "abi:       v2 (this broker speaks v1)") {
		t.Errorf("abi_v2.wasm: exit %d\n%s", code, out)
	}
	code, _, errOut = runMoat("plugin", "inspect", "plugin_test.go")
	if code != exitFail || !strings.Contains(errOut, "not a WebAssembly binary") {
		t.Errorf("a Go file: exit %d %s", code, errOut)
	}
}

// TestServeRustReference serves examples/reference/moat.toml (the Rust
// reference policy) with the real binary and checks its decisions on real
// MQTT connections.
func TestServeRustReference(t *testing.T) {
	dir := t.TempDir()
	bin, err := os.ReadFile(referenceModule(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "reference-rust.wasm"), bin, 0o644); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../examples/reference/moat.toml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer(
		`"127.0.0.1:1883"`, `"127.0.0.1:0"`,
		`"../../bin/examples/reference-rust.wasm"`, `"reference-rust.wasm"`,
	).Replace(string(doc)) + "\n[log]\nformat = \"json\"\n"
	if !strings.Contains(cfg, `"reference-rust.wasm"`) || !strings.Contains(cfg, "127.0.0.1:0") {
		t.Fatalf("examples/reference/moat.toml changed: update this test\n%s", cfg)
	}
	if err := os.WriteFile(filepath.Join(dir, "moat.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, dir)
	addr := s.address(t, "mqtt")

	client := func(id, user, password string) (mqtt.Client, error) {
		opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).
			SetUsername(user).SetPassword(password).SetAutoReconnect(false).
			SetConnectTimeout(10 * time.Second)
		c := mqtt.NewClient(opts)
		tok := c.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatalf("connect %s: timed out", id)
		}
		return c, tok.Error()
	}
	for _, bad := range []struct{ user, pw string }{{"alice", "wrong"}, {"mallory", "x"}} {
		if c, err := client("bad-"+bad.user, bad.user, bad.pw); err == nil {
			c.Disconnect(0)
			t.Errorf("%s with password %q connected", bad.user, bad.pw)
		}
	}

	alice, err := client("alice-1", "alice", "alice-pw")
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	defer alice.Disconnect(0)
	got := make(chan string, 4)
	sub := alice.SubscribeMultiple(map[string]byte{"tenants/acme/#": 1, "devices/alice/+": 1, "devices/bob/#": 1}, func(_ mqtt.Client, m mqtt.Message) {
		got <- m.Topic() + " " + string(m.Payload())
	})
	if !sub.WaitTimeout(10*time.Second) || sub.Error() != nil {
		t.Fatalf("subscribe: %v", sub.Error())
	}
	granted := sub.(*mqtt.SubscribeToken).Result()
	if granted["tenants/acme/#"] != 1 || granted["devices/alice/+"] != 1 || granted["devices/bob/#"] != 0x80 {
		t.Errorf("granted %v, want tenants/acme/# and devices/alice/+ at QoS 1, devices/bob/# refused (0x80)", granted)
	}

	carol, err := client("carol-1", "carol", "carol-pw")
	if err != nil {
		t.Fatalf("carol: %v", err)
	}
	defer carol.Disconnect(0)
	// Denied QoS 0 publishes are dropped (a denied QoS 1 one disconnects
	// an MQTT 3.1.1 client); the allowed one after them must be the only
	// one to arrive.
	for i, p := range []string{"devices/alice/x", "tenants/globex/x", "tenants/acme/news"} {
		tok := carol.Publish(p, byte(i/2), false, "from carol")
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", p, tok.Error())
		}
	}
	select {
	case m := <-got:
		if m != "tenants/acme/news from carol" {
			t.Errorf("alice received %q, want only tenants/acme/news", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("alice received nothing:\n%s", s.output())
	}
	select {
	case m := <-got:
		t.Errorf("alice also received %q", m)
	case <-time.After(200 * time.Millisecond):
	}
}
