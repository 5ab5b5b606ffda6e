package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/server"
)

func runCheck(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("check", "moat check [-c file]", `Check validates a configuration without serving it. It reads the file and
reports unknown keys, wrong types and values out of range; it loads every
certificate, key and CA bundle, and checks that every module and granted
file exists; then it compiles and instantiates every module and hands it its
[plugin.config], exactly as serve would, so that a module refusing its
configuration is caught too. It also checks that the user it runs as can
write the wasm cache directory ([wasm] cache_dir), the admin socket's
directory and the session store ([persistence] path): run it as the
service's user. No listener is opened.

Every problem is printed on stderr, one per line, as
	moat.toml:14: listener[1].cert_file: open certs/srv.pem: no such file or directory
(file, line where known, key path with 0-based indexes, message), and check
exits with status 1. A valid configuration prints "<file>: ok" on stdout,
then one line per decision (authn, authz, payload) saying what the
configuration lets clients do when no plugin decides, e.g.
	authz: no plugin; every publish, subscribe and delivery is denied, ...
and exits with status 0. Warnings go to stderr without changing the status: a
password file granted to an authn plugin whose costliest line takes longer
to check on this machine than the plugin's timeout (measured once) is one.
`, stderr)
	path := configFlag(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}

	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, err)
		return exitFail
	}
	// Compiling large modules takes a while: let Ctrl-C interrupt it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Both checks, so that every problem is printed at once.
	if err := errors.Join(server.CheckWritable(cfg), server.Check(ctx, cfg)); err != nil {
		printProblems(stderr, err)
		return exitFail
	}
	printPasswordCostWarnings(stderr, cfg)
	fmt.Fprintf(stdout, "%s: ok\n", *path)
	for _, line := range server.PolicySummary(cfg) {
		fmt.Fprintln(stdout, line)
	}
	return exitOK
}

// printProblems prints every problem in err (an errors.Join tree) on a line
// of its own.
func printProblems(w io.Writer, err error) {
	for _, p := range config.Problems(err) {
		fmt.Fprintln(w, p)
	}
}
