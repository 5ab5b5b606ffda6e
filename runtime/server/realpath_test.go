package server

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

func TestWithRealPaths(t *testing.T) {
	files := map[string]string{"acl": "/etc/mosquitto/acl", "acl.d": "/etc/$x/acl.d", "passwords": "/etc/mosquitto/passwd"}
	base := errors.New("base")
	tests := []struct{ in, want string }{
		{`config refused: acl:5: unknown keyword "topik"`, `config refused: /etc/mosquitto/acl:5: unknown keyword "topik"`},
		{`config refused: "acl.d:12": x`, `config refused: "/etc/$x/acl.d:12": x`},
		{"acl:1: a; passwords:3: b", "/etc/mosquitto/acl:1: a; /etc/mosquitto/passwd:3: b"},
		// Not a position: left alone.
		{"the acl: refused", "the acl: refused"},
		{"myacl:5 nope", "myacl:5 nope"},
	}
	for _, tc := range tests {
		err := withRealPaths(errors.Join(errors.New(tc.in), base), files)
		if got := strings.SplitN(err.Error(), "\n", 2)[0]; got != tc.want {
			t.Errorf("%q -> %q, want %q", tc.in, got, tc.want)
		}
		if !errors.Is(err, base) {
			t.Errorf("%q: the original error is lost", tc.in)
		}
	}
}

// TestGrantedFileErrorNamesRealPath: the acl plugin refuses a bad file at
// start, and the error names the file's path on the host, not its grant
// name.
func TestGrantedFileErrorNamesRealPath(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "acl.wasm"), mustRead(t, testutil.Plugin(t, "acl")))
	writeFile(t, filepath.Join(dir, "acl.txt"), []byte("topic readwrite a/#\n\nbogus line here\n"))
	writeFile(t, filepath.Join(dir, "moat.toml"), []byte(header()+anonymous+aclPlugin))
	cfg, err := config.Load(filepath.Join(dir, "moat.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(t.Context(), cfg, nil)
	if err == nil {
		s.Close(t.Context())
		t.Fatal("a bad ACL file was accepted")
	}
	if want := filepath.Join(dir, "acl.txt") + ":3"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name %s", err, want)
	}
}
