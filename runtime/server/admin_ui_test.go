package server

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moat-mqtt/moat/runtime/internal/testutil"
)

// chromium runs headless Chromium on url and returns the DOM once the page
// settled (its scripts ran and their fetches answered, within the virtual
// time budget). Chromium is a test dependency (.ci/run installs Debian's
// chromium package).
func chromium(t *testing.T, url string) string {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Fatal("headless Chromium is needed for the status page test: install Debian's chromium package (.ci/run does)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=10000", "--dump-dom", url)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("chromium: %v\n%s", err, stderr)
	}
	return string(out)
}

// TestStatusPageChromium loads the status page in headless Chromium, which
// signs in with the token once (/ui/login?token=, then a cookie), runs the
// page's script and shows the connected test client, its subscription and
// a denial. Without the token, Chromium gets the login form and no data.
func TestStatusPageChromium(t *testing.T) {
	e, a := startAdminEnv(t)
	alice := testutil.MustConnectV5(t, e.addr, testutil.V5Options{ClientID: "ui-client-7", Username: "alice", Password: adminPassword})
	alice.Subscribe(t, "demo/page", 1)
	if _, _, err := testutil.ConnectV5(t, e.addr, testutil.V5Options{ClientID: "ui-intruder", Username: "alice", Password: "not-the-password"}); err == nil {
		t.Fatal("ui-intruder connected")
	}
	base := "http://" + a.HTTPAddr()

	dom := chromium(t, base+"/ui/login?token="+adminToken)
	row := func(table string) string {
		m := regexp.MustCompile(`(?s)<table id="` + table + `">.*?</table>`).FindString(dom)
		if m == "" {
			t.Fatalf("no table %q in the DOM:\n%s", table, dom)
		}
		return m
	}
	clients := row("clients")
	for _, want := range []string{"<td>ui-client-7</td>", "<td>alice</td>", "<td>5</td>", "demo/page (QoS 1)"} {
		if !strings.Contains(clients, want) {
			t.Errorf("the clients table lacks %q:\n%s", want, clients)
		}
	}
	if d := row("denials"); !strings.Contains(d, "<td>ui-intruder</td>") || !strings.Contains(d, "<td>connect</td>") {
		t.Errorf("the denials table lacks ui-intruder's refusal:\n%s", d)
	}
	if p := row("plugins"); !strings.Contains(p, "<td>demo</td>") || !strings.Contains(p, "<td>authn, authz</td>") {
		t.Errorf("the plugins table lacks demo:\n%s", p)
	}
	if !strings.Contains(dom, `<span id="version">v9.9.9-test</span>`) {
		t.Errorf("no version in the page:\n%s", dom)
	}

	dom = chromium(t, base+"/ui/")
	if !strings.Contains(dom, `action="/ui/login"`) || strings.Contains(dom, "ui-client-7") {
		t.Errorf("without the token: want the login form and no data:\n%s", dom)
	}
}
