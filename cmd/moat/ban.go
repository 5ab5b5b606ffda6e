package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/server"
)

const banSynopsis = `moat ban add [-c file] [-socket path] [-for duration] [-reason text] KIND VALUE
       moat ban rm   [-c file] [-socket path] KIND VALUE
       moat ban list [-c file] [-socket path]`

const banDoc = `Ban manages the running broker's bans through its admin endpoint (as
moat reload does). KIND is client_id, username or ip; an ip VALUE is an
address or a CIDR prefix (10.0.0.0/8). A client that matches a ban is
refused in CONNACK (MQTT 5: 0x8A banned; MQTT 3.1.1: not authorized), and
one already connected is disconnected at once. Bans are kept in [limits]
ban_file (default moat.bans beside the configuration) and survive a
restart; -for makes a ban temporary. list also shows the temporary bans of
flapping detection.
`

func runBan(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "add" && args[0] != "rm" && args[0] != "list") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			fmt.Fprintf(stderr, "Usage: %s\n\n%s", banSynopsis, banDoc)
			return exitOK
		}
		fmt.Fprintf(stderr, "Usage: %s\n\nRun 'moat help ban' for details.\n", banSynopsis)
		return exitUsage
	}
	verb := args[0]
	fs := newFlags("ban "+verb, banSynopsis, banDoc, stderr)
	path := configFlag(fs)
	socket := fs.String("socket", "", "the admin socket `path` (default: from the configuration)")
	dur := fs.Duration("for", 0, "how long the ban lasts (add; default: for ever)")
	reason := fs.String("reason", "", "a note kept with the ban (add)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the broker")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	want := 2
	if verb == "list" {
		want = 0
	}
	if fs.NArg() != want {
		fmt.Fprintf(stderr, "moat ban %s: want %d arguments, got %d\nUsage: %s\n", verb, want, fs.NArg(), banSynopsis)
		return exitUsage
	}

	cfg, cfgErr := config.ReadAdmin(*path)
	client, target, err := adminClient(cfg, *socket)
	if err != nil {
		fmt.Fprintf(stderr, "moat ban: %v\n", err)
		return exitFail
	}
	base := strings.TrimSuffix(target.url, server.AdminPath) + server.AdminBansPath
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var method, u string
	var body []byte
	switch verb {
	case "list":
		method, u = http.MethodGet, base
	case "add":
		req := server.BanRequest{Kind: fs.Arg(0), Value: fs.Arg(1), Reason: *reason}
		if *dur > 0 {
			req.For = dur.String()
		}
		body, _ = json.Marshal(req)
		method, u = http.MethodPost, base
	case "rm":
		method, u = http.MethodDelete, base+"?"+url.Values{"kind": {fs.Arg(0)}, "value": {fs.Arg(1)}}.Encode()
	}
	status, data, err := adminDo(ctx, client, method, u, target.token, body)
	if err != nil {
		fmt.Fprintf(stderr, "moat ban: %s: %v\n", target.name, err)
		if cfgErr != nil {
			fmt.Fprintf(stderr, "moat ban: %v\n", cfgErr)
		}
		return exitFail
	}
	if verb == "list" && status == http.StatusOK {
		var bans []broker.Ban
		if err := json.Unmarshal(data, &bans); err != nil {
			fmt.Fprintf(stderr, "moat ban: unreadable answer: %v\n", err)
			return exitFail
		}
		printBans(stdout, bans)
		return exitOK
	}
	var res server.BanResult
	if err := json.Unmarshal(data, &res); err != nil {
		fmt.Fprintf(stderr, "moat ban: unreadable answer (%d): %v\n", status, err)
		return exitFail
	}
	if status != http.StatusOK {
		fmt.Fprintf(stderr, "moat ban %s: %s\n", verb, res.Error)
		return exitFail
	}
	if verb == "add" {
		fmt.Fprintf(stdout, "banned %s %q%s; disconnected %d clients\n", res.Ban.Kind, res.Ban.Value, until(res.Ban.Expires), res.Disconnected)
	} else {
		fmt.Fprintf(stdout, "removed the %s ban on %q\n", fs.Arg(0), fs.Arg(1))
	}
	return exitOK
}

func until(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " until " + t.Format(time.RFC3339)
}

// adminDo sends one request to the admin endpoint and returns the status
// and the body.
func adminDo(ctx context.Context, c *http.Client, method, u, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, nil, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return 0, nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
	}
	return resp.StatusCode, data, nil
}

// printBans prints the ban list as a table.
func printBans(w io.Writer, bans []broker.Ban) {
	if len(bans) == 0 {
		fmt.Fprintln(w, "no bans")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tVALUE\tEXPIRES\tREASON")
	for _, b := range bans {
		exp := "never"
		if !b.Expires.IsZero() {
			exp = b.Expires.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Kind, b.Value, exp, b.Reason)
	}
	_ = tw.Flush()
}
