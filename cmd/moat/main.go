// Command moat is an MQTT broker whose security policy (authentication,
// authorization, payload encryption) is decided by sandboxed WebAssembly
// modules listed in a TOML file.
//
// Usage:
//
//	moat <command> [arguments]
//
// The commands are:
//
//	serve    run the broker until SIGINT or SIGTERM
//	check    validate a config and compile its modules, without serving
//	reload   ask a running broker to reload its config and modules
//	status   show the running broker: listeners, plugins, uptime, version
//	clients  list the connected clients, or show one
//	kick     disconnect a client
//	sessions list sessions, or delete one
//	passwd   create and update password files, like mosquitto_passwd
//	keygen   write a new payload-encryption key file
//	keys     manage stored encrypted messages (keys rewrap)
//	plugin   test a module against a case file, inspect one, start a new one
//	version  print the version of moat, of Go and of the module ABI
//	help     show help for moat or for a command
//
// Run "moat help <command>" for the flags of a command. The configuration
// file is described, key by key, in examples/moat.toml.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the command ran and failed: a bad config, a failed start
	exitUsage = 2 // the command line was wrong
)

// A command is one subcommand of moat. Its run function parses its own
// flags from args (the arguments after its name) and returns the exit code;
// given "-h" it prints its help to stderr and returns exitOK.
type command struct {
	name    string
	summary string // one line for "moat help"
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order "moat help" shows them.
// Adding a command is adding an entry here.
func commands() []command {
	return []command{
		{"serve", "run the broker until SIGINT or SIGTERM", runServe},
		{"check", "validate a config and compile its modules, without serving", runCheck},
		{"reload", "make the running broker reload its policy, and show the outcome", runReload},
		{"status", "show the running broker: listeners, plugins, uptime, version", runStatus},
		{"clients", "list the connected clients, or show one", runClients},
		{"kick", "disconnect a client (MQTT 5: DISCONNECT 0x98)", runKick},
		{"sessions", "list sessions, or delete one (sessions rm ID)", runSessions},
		{"ban", "add, remove or list the running broker's bans", runBan},
		{"passwd", "create and update password files, like mosquitto_passwd", runPasswd},
		{"migrate", "translate a mosquitto.conf into a moat.toml", runMigrate},
		{"keygen", "write a new payload key file", runKeygen}, {"keys", "rewrap stored payloads under the active key (broker stopped)", runKeys},
		{"plugin", "test, inspect and create policy modules (plugin test|inspect|new)", runPlugin},
		{"version", "print the version of moat, of Go and of the module ABI", runVersion},
	}
}

// run is main without the process: it returns the exit code, so that
// tests can drive it.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			usage(stdout)
			return exitOK
		}
		name = rest[0]
		if name == "help" {
			usage(stdout)
			return exitOK
		}
		cmd, ok := lookup(name)
		if !ok {
			return unknown(name, stderr)
		}
		// A command's help goes to stdout when asked for with "help".
		return cmd.run([]string{"-h"}, stdin, stdout, stdout)
	}
	cmd, ok := lookup(name)
	if !ok {
		return unknown(name, stderr)
	}
	return cmd.run(rest, stdin, stdout, stderr)
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func unknown(name string, stderr io.Writer) int {
	fmt.Fprintf(stderr, "moat: unknown command %q\nRun 'moat help' for usage.\n", name)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `moat is an MQTT broker whose security policy is decided by sandboxed
WebAssembly modules listed in a TOML file.

Usage:

	moat <command> [arguments]

Commands:

`)
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "\t%s\t%s\n", c.name, c.summary)
	}
	fmt.Fprintf(tw, "\t%s\t%s\n", "help", "show help for moat or for a command")
	tw.Flush()
	fmt.Fprint(w, `
Run 'moat help <command>' for details on a command.
The configuration is described key by key in examples/moat.toml.
`)
}

// newFlags makes the flag set of a command, whose help is the synopsis, a
// description and the flags.
func newFlags(name, synopsis, doc string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("moat "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: %s\n\n%s", synopsis, doc)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args into fs. When it returns done, the command must
// return code: help was printed (exitOK) or the command line was wrong
// (exitUsage, after the flag package or parseFlags said why).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK, true
	case err != nil:
		return exitUsage, true
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\nRun 'moat help %s' for usage.\n",
			fs.Name(), fs.Arg(0), fs.Name()[len("moat "):])
		return exitUsage, true
	}
	return exitOK, false
}

// configFlag adds -c (and its long form -config) to fs.
func configFlag(fs *flag.FlagSet) *string {
	path := new(string)
	fs.StringVar(path, "c", "moat.toml", "the configuration `file`")
	fs.StringVar(path, "config", "moat.toml", "the same as -c")
	return path
}
