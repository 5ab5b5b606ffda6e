package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/moat-mqtt/moat/runtime/broker"
	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/crypto"
	"github.com/moat-mqtt/moat/runtime/server"
)

// runKeygen is `moat keygen <file>`.
func runKeygen(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("keygen", "moat keygen file", `Keygen writes a new random 256-bit payload key to file, base64-encoded, with
mode 0600, for a [[key]] entry of moat.toml:

	[[key]]
	id = "k2"
	file = "keys/k2.key"

It refuses to overwrite an existing file: a lost key makes every message
sealed under it unreadable. The key is never printed.
`, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "moat keygen: want exactly one file name\nRun 'moat help keygen' for usage.\n")
		return exitUsage
	}
	path := fs.Arg(0)
	if err := crypto.GenerateKeyFile(path); err != nil {
		fmt.Fprintf(stderr, "moat keygen: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: new key written (mode 0600)\n", path)
	return exitOK
}

// runKeys is `moat keys <subcommand>`; rewrap is the only one.
func runKeys(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("keys", "moat keys rewrap [-c file]", `Keys manages stored payload envelopes.

  moat keys rewrap [-c file]

Rewrap re-encrypts every payload the broker stored encrypted (the at-rest
and reencrypt payload modes: retained messages, messages queued for
sessions, wills) under the active at-rest key of the configuration ([keys]
at_rest), so that older keys can leave the key ring. It works on the bolt
file of [persistence] directly and needs the broker stopped: a running
broker holds the file's lock, and rewrap then fails without changing
anything. Payloads that do not open (a key already gone) are left as they
are and counted. The whole file is rewritten in one transaction.

A broker picks up a new active key without rewrap: new messages use it at
once, and older envelopes stay readable while their keys stay in the ring.
`, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 || fs.Arg(0) != "rewrap" {
		fmt.Fprintf(stderr, "moat keys: want the subcommand rewrap\nRun 'moat help keys' for usage.\n")
		return exitUsage
	}
	sub := newFlags("keys rewrap", "moat keys rewrap [-c file]", "Rewrap: see 'moat help keys'.\n", stderr)
	path := configFlag(sub)
	if code, done := parseFlags(sub, fs.Args()[1:]); done {
		return code
	}

	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, err)
		return exitFail
	}
	log, err := server.NewLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ring, err := broker.LoadRing(ctx, cfg, nil)
	if err != nil {
		printProblems(stderr, err)
		return exitFail
	}
	st, err := broker.Rewrap(ctx, cfg, ring, log)
	if err != nil {
		fmt.Fprintf(stderr, "moat keys rewrap: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: rewrapped under %q: %d retained, %d queued, %d wills; %d already current; %d left as they were (see the log)\n",
		cfg.Persistence.Path, ring.Active(crypto.PurposeAtRest), st.Retained, st.Inflight, st.Wills, st.Current, st.Failed)
	if st.Failed > 0 {
		return exitFail
	}
	return exitOK
}
