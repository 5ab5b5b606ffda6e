package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/server"
)

func runReload(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("reload", "moat reload [-c file] [-socket path] [-timeout duration] [--dry-run [-candidate file]]", `Reload asks the running broker to reload its policy, through the admin
socket ([admin] socket in the configuration; default moat.sock beside it),
or through the loopback HTTP listener ([admin] http, with the token of
[admin] token_file) when the socket is off. The broker reads the
configuration file again, loads every changed module and swaps the new
policy in without dropping a client; then it re-checks existing
subscriptions against it.

A reload is all or nothing: when anything is wrong (a syntax error, a
missing file, a module that does not compile or refuses its config, a
sha256 mismatch) the running policy stays in force, every problem is
printed on stderr, and reload exits with status 1. On success it prints
what was reloaded and what needs a restart to take effect, and exits 0.

With --dry-run the broker loads the configuration as a reload would, then
changes nothing: it replays its recent decisions ([reload] dry_run_history;
kept without passwords or payloads, so a CONNECT that carried credentials
cannot be replayed) and checks every current subscription against the new
policy, and prints who would be refused or let in, and which subscriptions
a reload would revoke. It exits 1 when a reload would be refused. With
-candidate it tries that file instead of the broker's configuration file:
the file watcher of `+"`moat serve`"+` applies an edit of the configuration file
itself at once, so try the edit in a copy first.
`, stderr)
	path := configFlag(fs)
	socket := fs.String("socket", "", "the admin socket `path` (default: from the configuration)")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the reload")
	dryRun := fs.Bool("dry-run", false, "report what a reload would change, changing nothing")
	candidate := fs.String("candidate", "", "with --dry-run: the configuration `file` to try instead of the broker's")
	if code, done := parseFlags(fs, args); done {
		return code
	}

	// Only [admin] is read here: the rest of the file, broken or not, is
	// the broker's to judge.
	cfg, cfgErr := config.ReadAdmin(*path)
	client, target, err := adminClient(cfg, *socket)
	if err != nil {
		fmt.Fprintf(stderr, "moat reload: %v\n", err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if *candidate != "" && !*dryRun {
		fmt.Fprintln(stderr, "moat reload: -candidate needs --dry-run")
		return exitUsage
	}
	if *dryRun {
		return runDryRun(ctx, client, target, *path, *candidate, stdout, stderr)
	}
	res, err := postAdmin[server.ReloadResult](ctx, client, target.url, target.token)
	if err != nil {
		fmt.Fprintf(stderr, "moat reload: %s: %v\n", target.name, err)
		if cfgErr != nil {
			fmt.Fprintf(stderr, "moat reload: %v\n", cfgErr)
		}
		return exitFail
	}
	certsOK := printCertificates(stdout, stderr, res)
	if !res.Applied {
		fmt.Fprintf(stderr, "%s: reload refused; the running policy is unchanged:\n", *path)
		for _, e := range res.Errors {
			fmt.Fprintln(stderr, e)
		}
		printRestart(stderr, res)
		return exitFail
	}
	printReload(stdout, *path, res)
	if !certsOK {
		return exitFail
	}
	return exitOK
}

// printCertificates reports each listener certificate: reloaded on stdout,
// refused on stderr. It returns false if one was refused.
func printCertificates(stdout, stderr io.Writer, res server.ReloadResult) bool {
	ok := true
	for _, c := range res.Certificates {
		switch {
		case c.Error != "":
			ok = false
			fmt.Fprintf(stderr, "listener %s: certificate refused, the one in force stays: %s\n", c.Listener, c.Error)
		case c.Reloaded:
			fmt.Fprintf(stdout, "listener %s: certificate reloaded from %s\n", c.Listener, c.CertFile)
		default:
			fmt.Fprintf(stdout, "listener %s: certificate unchanged\n", c.Listener)
		}
	}
	return ok
}

// adminTarget is where the reload request goes.
type adminTarget struct {
	name  string // for messages
	url   string
	token string
}

// adminClient returns an HTTP client for the admin endpoint: the socket
// (from -socket, else the config), or the HTTP listener when the socket is
// off.
func adminClient(cfg *config.Config, socket string) (*http.Client, adminTarget, error) {
	if socket == "" {
		socket = cfg.AdminSocket()
	}
	if socket != "" {
		tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}}
		return &http.Client{Transport: tr}, adminTarget{name: socket, url: "http://moat" + server.AdminPath}, nil
	}
	if cfg.Admin.HTTP == "" {
		return nil, adminTarget{}, errors.New("[admin] socket is off and [admin] http is not set: the broker has no admin endpoint (send it SIGHUP instead)")
	}
	tok, err := cfg.AdminToken()
	if err != nil {
		return nil, adminTarget{}, err
	}
	return &http.Client{}, adminTarget{name: cfg.Admin.HTTP, url: "http://" + cfg.Admin.HTTP + server.AdminPath, token: tok}, nil
}

// postAdmin sends a POST to one of the admin endpoint's reload routes and
// decodes its result, which the endpoint answers with 200 (applied, or
// would be) or 422 (refused); any other status is an error.
func postAdmin[T any](ctx context.Context, c *http.Client, url, token string) (T, error) {
	var res T
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return res, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return res, err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnprocessableEntity {
		return res, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return res, fmt.Errorf("unreadable answer (%s): %w", resp.Status, err)
	}
	return res, nil
}

// printReload prints a successful reload:
//
//	moat.toml: reloaded in 12ms
//	  plugin demo  sha256 3f2a9c1b7d4e  replaced (was 77aa01bc9e3f)
//	  plugin acl   sha256 1b2c3d4e5f60  reused
//	revoked 2 subscriptions, disconnected 0 clients
func printReload(w io.Writer, path string, res server.ReloadResult) {
	fmt.Fprintf(w, "%s: reloaded in %v\n", path, res.Took.Round(time.Millisecond/10))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, m := range res.Modules {
		var what string
		switch {
		case m.Reused:
			what = "reused"
		case m.Previous == "":
			what = "added"
		case m.Previous == m.Digest:
			what = "reloaded (settings or granted files changed)"
		default:
			what = "replaced (was " + short(m.Previous) + ")"
		}
		fmt.Fprintf(tw, "  plugin %s\tsha256 %s\t%s\n", m.Name, short(m.Digest), what)
	}
	for _, o := range res.OldModules {
		gone := true
		for _, m := range res.Modules {
			gone = gone && m.Name != o.Name
		}
		if gone {
			fmt.Fprintf(tw, "  plugin %s\tsha256 %s\tremoved\n", o.Name, short(o.Digest))
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "revoked %d subscription%s, disconnected %d client%s\n",
		res.Revoked, plural(res.Revoked), res.Disconnected, plural(res.Disconnected))
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	printRestart(w, res)
}

func printRestart(w io.Writer, res server.ReloadResult) {
	if len(res.NeedsRestart) == 0 {
		return
	}
	fmt.Fprintln(w, "needs a restart to take effect (the broker keeps the running values):")
	for _, c := range res.NeedsRestart {
		fmt.Fprintf(w, "  %s\n", c)
	}
}

// short abbreviates a digest as git abbreviates commits.
func short(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
