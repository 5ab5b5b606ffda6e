package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moat-mqtt/moat/runtime/server"
)

// runDryRun is `moat reload --dry-run`: the broker loads the config file
// as a reload would and reports what it would change; nothing changes.
func runDryRun(ctx context.Context, c *http.Client, target adminTarget, path, candidate string, stdout, stderr io.Writer) int {
	u := strings.TrimSuffix(target.url, server.AdminPath) + server.DryRunPath
	if candidate != "" {
		// The broker resolves nothing against the caller's directory.
		abs, err := filepath.Abs(candidate)
		if err != nil {
			fmt.Fprintf(stderr, "moat reload: -candidate: %v\n", err)
			return exitFail
		}
		u += "?config=" + url.QueryEscape(abs)
		path = candidate
	}
	res, err := postAdmin[server.DryRunResult](ctx, c, u, target.token)
	if err != nil {
		fmt.Fprintf(stderr, "moat reload: %s: %v\n", target.name, err)
		return exitFail
	}
	if !res.Loadable {
		fmt.Fprintf(stderr, "%s: a reload would be refused; nothing was changed:\n", path)
		for _, e := range res.Errors {
			fmt.Fprintln(stderr, e)
		}
		return exitFail
	}
	printDryRun(stdout, path, res)
	return exitOK
}

// printDryRun prints what a reload would change:
//
//	moat.toml: dry run in 40ms; nothing was changed
//	  plugin acl  sha256 1b2c3d4e5f60  reloaded (settings or granted files changed)
//	replayed 6 of 6 recorded decisions; 2 would change:
//	  refused  authz  watcher  subscribe private/#  allow -> deny  (acl)
//	  refused  authz  pub      publish private/a    allow -> deny  (acl)
//	would revoke 1 subscription:
//	  watcher  private/#  qos 1  connected  (acl)
func printDryRun(w io.Writer, path string, res server.DryRunResult) {
	fmt.Fprintf(w, "%s: dry run in %v; nothing was changed\n", path, res.Took.Round(time.Millisecond/10))
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, m := range res.Modules {
		what := "unchanged"
		switch {
		case m.Reused:
		case m.Previous == "":
			what = "would be added"
		case m.Previous == m.Digest:
			what = "would be reloaded (settings or granted files changed)"
		default:
			what = "would replace " + short(m.Previous)
		}
		if m.Shadow {
			what += ", shadow"
		}
		fmt.Fprintf(tw, "  plugin %s\tsha256 %s\t%s\n", m.Name, short(m.Digest), what)
	}
	tw.Flush()
	fmt.Fprintf(w, "replayed %d of %d recorded decision%s", res.Replayed, res.Recorded, plural(res.Recorded))
	if res.Recorded != res.Replayed {
		fmt.Fprintf(w, " (repeats replayed once; %d not replayable)", res.NotReplayable)
	}
	if len(res.Changes) == 0 {
		fmt.Fprint(w, "; none would change\n")
	} else {
		fmt.Fprintf(w, "; %d would change:\n", len(res.Changes))
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		for _, c := range res.Changes {
			what := "refused"
			if c.New == "allow" {
				what = "allowed"
			}
			req := "connect"
			if c.Kind == "authz" {
				req = c.Action + " " + c.Topic
				if c.ShareGroup != "" {
					req = c.Action + " $share/" + c.ShareGroup + "/" + c.Topic
				}
			}
			who := c.ClientID
			if c.Username != "" {
				who += " (" + c.Username + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s -> %s\t%s\n", what, c.Kind, who, req, c.Old, c.New, decidedBy(c.Module, c.Message))
		}
		tw.Flush()
	}
	if len(res.Revoked) == 0 {
		fmt.Fprintln(w, "would revoke no subscription")
	} else {
		fmt.Fprintf(w, "would revoke %d subscription%s:\n", len(res.Revoked), plural(len(res.Revoked)))
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		for _, r := range res.Revoked {
			state := "offline"
			if r.Connected {
				state = "connected"
			}
			who := r.ClientID
			if r.Username != "" {
				who += " (" + r.Username + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\tqos %d\t%s\t%s\n", who, r.Filter, r.QoS, state, decidedBy(r.Module, r.Message))
		}
		tw.Flush()
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if len(res.NeedsRestart) > 0 {
		fmt.Fprintln(w, "would need a restart to take effect:")
		for _, c := range res.NeedsRestart {
			fmt.Fprintf(w, "  %s\n", c)
		}
	}
}

// decidedBy says which module decided, and why, in parentheses.
func decidedBy(module, message string) string {
	switch {
	case module != "" && message != "":
		return "(" + module + ": " + message + ")"
	case module != "":
		return "(" + module + ")"
	case message != "":
		return "(" + message + ")"
	}
	return ""
}
