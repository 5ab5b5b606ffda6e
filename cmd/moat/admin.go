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

// The administration commands: clients, kick, sessions, status. Each talks
// to the running broker's admin endpoint as `moat reload` does (the socket,
// or the loopback HTTP listener with the token when the socket is off),
// prints a table, or the endpoint's JSON with -json.

const adminDoc = `
It talks to the running broker through the admin socket ([admin] socket in
the configuration; default moat.sock beside it), or through the loopback
HTTP listener ([admin] http, with the token of [admin] token_file) when
the socket is off. With -json it prints the broker's answer as JSON.
`

// adminFlags are the flags every administration command takes.
type adminFlags struct {
	path    *string
	socket  *string
	json    *bool
	timeout *time.Duration
}

func newAdminFlags(fs *flag.FlagSet) adminFlags {
	return adminFlags{
		path:    configFlag(fs),
		socket:  fs.String("socket", "", "the admin socket `path` (default: from the configuration)"),
		json:    fs.Bool("json", false, "print the broker's answer as JSON"),
		timeout: fs.Duration("timeout", 30*time.Second, "how long to wait for the broker"),
	}
}

// parseArgs parses args into fs, flags and positional arguments in any
// order ("moat kick ID -reason x" as well as "moat kick -reason x ID"),
// and checks the number of positional arguments is between min and max.
func parseArgs(fs *flag.FlagSet, args []string, min, max int) (pos []string, code int, done bool) {
	for {
		err := fs.Parse(args)
		switch {
		case errors.Is(err, flag.ErrHelp):
			return nil, exitOK, true
		case err != nil:
			return nil, exitUsage, true
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) < min || len(pos) > max {
		cmd := fs.Name()[len("moat "):]
		if len(pos) > max {
			fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), pos[max])
		} else {
			fmt.Fprintf(fs.Output(), "%s: missing argument\n", fs.Name())
		}
		fmt.Fprintf(fs.Output(), "Run 'moat help %s' for usage.\n", cmd)
		return nil, exitUsage, true
	}
	return pos, exitOK, false
}

// adminCall is one request to the admin endpoint.
type adminCall struct {
	method, path string
	body         any // sent as JSON when not nil
}

// errNotFound is the endpoint's 404: no such client or session.
var errNotFound = errors.New("not found")

// call sends c to the admin endpoint f names and decodes the answer into
// out (nil to discard it).
func (f adminFlags) call(c adminCall, out any) error {
	cfg, cfgErr := config.ReadAdmin(*f.path)
	client, target, err := adminClient(cfg, *f.socket)
	if err != nil {
		return err
	}
	base := strings.TrimSuffix(target.url, server.AdminPath)
	ctx, cancel := context.WithTimeout(context.Background(), *f.timeout)
	defer cancel()
	var body io.Reader
	if c.body != nil {
		b, err := json.Marshal(c.body)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, body)
	if err != nil {
		return err
	}
	if target.token != "" {
		req.Header.Set("Authorization", "Bearer "+target.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		if cfgErr != nil {
			err = fmt.Errorf("%w\n%v", err, cfgErr)
		}
		return fmt.Errorf("%s: %w", target.name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", target.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		if resp.StatusCode == http.StatusNotFound {
			return fmt.Errorf("%w: %s", errNotFound, msg)
		}
		return fmt.Errorf("%s: %s: %s", target.name, resp.Status, msg)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s: unreadable answer: %w", target.name, err)
	}
	return nil
}

// printJSON prints v indented.
func printJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(w, "%s\n", b)
}

// fail prints err for command name and returns the exit code.
func fail(stderr io.Writer, name string, err error) int {
	fmt.Fprintf(stderr, "moat %s: %v\n", name, err)
	return exitFail
}

func runClients(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("clients", "moat clients [-c file] [-json] [ID]", `Clients lists the clients connected to the running broker: client id,
username, listener, remote address, MQTT version, when it connected, its
subscriptions and how many QoS 1/2 messages wait in its session (queued,
held back by its receive maximum, or sent and not yet acknowledged).
Given a client id, it shows that client in full, or the session it left
if it is offline.
`+adminDoc, stderr)
	f := newAdminFlags(fs)
	pos, code, done := parseArgs(fs, args, 0, 1)
	if done {
		return code
	}
	if len(pos) == 1 {
		var ci broker.ClientInfo
		if err := f.call(adminCall{method: http.MethodGet, path: "/clients/" + url.PathEscape(pos[0])}, &ci); err != nil {
			return fail(stderr, "clients", err)
		}
		if *f.json {
			printJSON(stdout, ci)
		} else {
			printClient(stdout, ci)
		}
		return exitOK
	}
	var cs []broker.ClientInfo
	if err := f.call(adminCall{method: http.MethodGet, path: "/clients"}, &cs); err != nil {
		return fail(stderr, "clients", err)
	}
	if *f.json {
		printJSON(stdout, cs)
		return exitOK
	}
	printClients(stdout, cs, false)
	return exitOK
}

// printClients prints one line per client (or session).
func printClients(w io.Writer, cs []broker.ClientInfo, sessions bool) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	if sessions {
		fmt.Fprintln(tw, "CLIENT ID\tUSERNAME\tSTATE\tMQTT\tEXPIRY\tSUBSCRIPTIONS\tQUEUED")
	} else {
		fmt.Fprintln(tw, "CLIENT ID\tUSERNAME\tLISTENER\tREMOTE\tMQTT\tCONNECTED SINCE\tSUBSCRIPTIONS\tQUEUED")
	}
	for _, c := range cs {
		if sessions {
			state := "connected"
			if !c.Connected {
				state = "offline"
				if !c.DisconnectedAt.IsZero() {
					state += " since " + c.DisconnectedAt.Format(time.DateTime)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%ds\t%d\t%d\n", c.ID, c.Username, state, c.Protocol, c.SessionExpiry, len(c.Subscriptions), c.Queued)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", c.ID, c.Username, c.Listener, c.Remote, c.Protocol,
			since(c.ConnectedSince), len(c.Subscriptions), c.Queued)
	}
	tw.Flush()
	if len(cs) == 0 {
		if sessions {
			fmt.Fprintln(w, "(no session)")
		} else {
			fmt.Fprintln(w, "(no client connected)")
		}
	}
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}

// printClient prints one client in full.
func printClient(w io.Writer, c broker.ClientInfo) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	state := "connected"
	if !c.Connected {
		state = "offline (session only)"
		if !c.DisconnectedAt.IsZero() {
			state = "offline since " + c.DisconnectedAt.Local().Format(time.DateTime)
		}
	}
	for _, kv := range [][2]string{
		{"client id", c.ID}, {"username", c.Username}, {"state", state}, {"listener", c.Listener},
		{"remote", c.Remote}, {"mqtt", c.Protocol}, {"connected since", since(c.ConnectedSince)},
		{"session expiry", fmt.Sprintf("%ds", c.SessionExpiry)}, {"queued", fmt.Sprint(c.Queued)},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	tw.Flush()
	fmt.Fprintf(w, "subscriptions: %d\n", len(c.Subscriptions))
	for _, s := range c.Subscriptions {
		fmt.Fprintf(w, "  %s  QoS %d\n", s.Filter, s.QoS)
	}
}

func runKick(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("kick", "moat kick [-c file] [-reason text] [-json] ID", `Kick disconnects the connected client ID. An MQTT 5 client gets DISCONNECT
with reason code 0x98 (administrative action) and the -reason text as its
reason string; MQTT 3.1.1 has no server DISCONNECT, so its connection is
closed. As for any connection the broker ends, the client's will is
published (if the policy allows it) and its session stays, subject to its
expiry; 'moat sessions rm ID' deletes it. The client may reconnect: kick
does not ban (Mosquitto's kick does not either).

The kick is logged by the broker with who asked.
`+adminDoc, stderr)
	f := newAdminFlags(fs)
	reason := fs.String("reason", "", "the reason `text` sent to an MQTT 5 client (at most 256 bytes)")
	pos, code, done := parseArgs(fs, args, 1, 1)
	if done {
		return code
	}
	var ci broker.ClientInfo
	if err := f.call(adminCall{method: http.MethodPost, path: "/clients/" + url.PathEscape(pos[0]) + "/kick",
		body: server.KickRequest{Reason: *reason}}, &ci); err != nil {
		return fail(stderr, "kick", err)
	}
	if *f.json {
		printJSON(stdout, ci)
		return exitOK
	}
	fmt.Fprintf(stdout, "kicked %s (username %q, MQTT %s, %s)\n", ci.ID, ci.Username, ci.Protocol, ci.Remote)
	return exitOK
}

func runSessions(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("sessions", "moat sessions [-c file] [-json] [rm ID]", `Sessions lists every session the running broker holds: those of connected
clients and those that offline clients left (clean session off, or an
MQTT 5 session expiry), with their subscriptions and queued messages.

'moat sessions rm ID' deletes the session of client ID, subscriptions and
queued messages, from memory and from the store ([persistence]). A client
still connected is disconnected first (MQTT 5: DISCONNECT 0x98) and its
session ends with the connection. Queued QoS 1/2 messages of the session
are lost: that is what deleting it asks for.
`+adminDoc, stderr)
	f := newAdminFlags(fs)
	reason := fs.String("reason", "session deleted by an administrator", "with rm: the reason `text` sent to a connected MQTT 5 client")
	pos, code, done := parseArgs(fs, args, 0, 2)
	if done {
		return code
	}
	switch {
	case len(pos) == 0:
	case pos[0] == "rm" && len(pos) == 2:
		var ci broker.ClientInfo
		if err := f.call(adminCall{method: http.MethodDelete, path: "/sessions/" + url.PathEscape(pos[1]),
			body: server.KickRequest{Reason: *reason}}, &ci); err != nil {
			return fail(stderr, "sessions rm", err)
		}
		if *f.json {
			printJSON(stdout, ci)
			return exitOK
		}
		what := "offline"
		if ci.Connected {
			what = "connected; disconnected"
		}
		fmt.Fprintf(stdout, "deleted the session of %s (%s, %d subscriptions, %d queued messages)\n", ci.ID, what, len(ci.Subscriptions), ci.Queued)
		return exitOK
	default:
		fmt.Fprintf(stderr, "moat sessions: unexpected arguments %q: want none, or rm ID\nRun 'moat help sessions' for usage.\n", strings.Join(pos, " "))
		return exitUsage
	}
	var ss []broker.ClientInfo
	if err := f.call(adminCall{method: http.MethodGet, path: "/sessions"}, &ss); err != nil {
		return fail(stderr, "sessions", err)
	}
	if *f.json {
		printJSON(stdout, ss)
		return exitOK
	}
	printClients(stdout, ss, true)
	return exitOK
}

func runStatus(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("status", "moat status [-c file] [-json]", `Status shows the running broker: its version and uptime, its listeners
with their connected clients, its plugins with the SHA-256 of each module
and the number of denials that named it since start, the number of
clients and sessions, and the last reload.
`+adminDoc, stderr)
	f := newAdminFlags(fs)
	if _, code, done := parseArgs(fs, args, 0, 0); done {
		return code
	}
	var st server.Status
	if err := f.call(adminCall{method: http.MethodGet, path: "/status"}, &st); err != nil {
		return fail(stderr, "status", err)
	}
	if *f.json {
		printJSON(stdout, st)
		return exitOK
	}
	fmt.Fprintf(stdout, "moat %s (%s), up %s since %s\n", st.Version, st.GoVersion,
		(time.Duration(st.Uptime) * time.Second).String(), st.Started.Local().Format(time.DateTime))
	fmt.Fprintf(stdout, "%d clients connected, %d sessions, %d denials since start\n", st.Clients, st.Sessions, st.Denials)
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "\nLISTENER\tTYPE\tADDRESS\tCLIENTS")
	for _, l := range st.Listeners {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", l.Name, l.Type, l.Address, l.Clients)
	}
	fmt.Fprintln(tw, "\nPLUGIN\tDECISIONS\tSHA256\tDENIALS")
	for _, p := range st.Plugins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", p.Name, strings.Join(p.Decisions, ","), short(p.Digest), p.Denials)
	}
	tw.Flush()
	if r := st.LastReload; r != nil {
		outcome := "applied"
		if !r.Applied {
			outcome = "refused"
		}
		fmt.Fprintf(stdout, "\nlast reload: %s, %s (%s)\n", r.Time.Local().Format(time.DateTime), outcome, r.Trigger)
	}
	return exitOK
}
