package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/moat-mqtt/moat/runtime/plugintest"
	"github.com/moat-mqtt/moat/runtime/wasm"
)

// runPlugin dispatches "moat plugin <test|inspect|new>".
func runPlugin(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	const help = `Usage: moat plugin <command> [arguments]

Tools for plugin authors:

	test     run a module against a conformance case file, without a broker
	inspect  show what a module declares and the moat.toml lines it needs
	new      create a plugin project that builds and passes its own cases

Run 'moat plugin <command> -h' for the flags of a command.
`
	if len(args) == 0 {
		fmt.Fprint(stderr, help)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, help)
		return exitOK
	case "test":
		return runPluginTest(args[1:], stdout, stderr)
	case "inspect":
		return runPluginInspect(args[1:], stdout, stderr)
	case "new":
		return runPluginNew(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "moat plugin: unknown command %q\nRun 'moat plugin -h' for usage.\n", args[0])
	return exitUsage
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("moat plugin test m.wasm --cases c.toml"), which
// the flag package alone stops at. It returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) (pos []string, code int, done bool) {
	for {
		if code, done := parseFlagsOnly(fs, args); done {
			return nil, code, true
		}
		if fs.NArg() == 0 {
			return pos, exitOK, false
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func parseFlagsOnly(fs *flag.FlagSet, args []string) (int, bool) {
	err := fs.Parse(args)
	switch {
	case err == flag.ErrHelp:
		return exitOK, true
	case err != nil:
		return exitUsage, true
	}
	return exitOK, false
}

func runPluginTest(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plugin test", "moat plugin test MODULE.wasm --cases FILE [--config JSON-or-file]",
		`Test loads MODULE.wasm in moat's wasm runtime, exactly as the broker would
(the same ABI checks, limits and config handling), with the decisions its
cases use, and runs every case of FILE against it: a request and the
decision expected (verdict, reason, attributes, mode, key id, message). The
format is documented in runtime/plugintest and examples/reference/cases.toml
is a complete example.

Each failing case is printed with its file and line, the request, and every
difference as "got ..., want ...". Test exits with status 1 when a case
fails or the module does not load, 0 when every case passes.

--config replaces the case file's [config]: a JSON object, or the name of
a file holding one. -run keeps only the cases whose name matches a regular
expression; -v lists the cases that pass too.
`, stderr)
	cases := fs.String("cases", "", "the case `file` (TOML)")
	config := fs.String("config", "", "the plugin config: a JSON object or a `file` holding one")
	only := fs.String("run", "", "run only the cases whose name matches this `regexp`")
	verbose := fs.Bool("v", false, "list passing cases too")
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 || *cases == "" {
		fmt.Fprintln(stderr, "moat plugin test: want one MODULE.wasm and --cases FILE\nRun 'moat plugin test -h' for usage.")
		return exitUsage
	}
	suite, err := plugintest.Load(*cases)
	if err != nil {
		printProblems(stderr, err)
		return exitFail
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			fmt.Fprintf(stderr, "moat plugin test: -run: %v\n", err)
			return exitUsage
		}
		kept := suite.Cases[:0]
		for _, c := range suite.Cases {
			if re.MatchString(c.Name) {
				kept = append(kept, c)
			}
		}
		if len(kept) == 0 {
			fmt.Fprintf(stderr, "moat plugin test: -run %q matches no case of %s\n", *only, *cases)
			return exitFail
		}
		suite.Cases = kept
	}
	var cfg []byte
	if *config != "" {
		if cfg, err = configArg(*config); err != nil {
			fmt.Fprintf(stderr, "moat plugin test: --config: %v\n", err)
			return exitUsage
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e, err := wasm.NewEngine(ctx, wasm.EngineOptions{})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	defer e.Close(ctx)
	rep, err := plugintest.Run(ctx, e, pos[0], suite, plugintest.Options{ConfigJSON: cfg})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	if *verbose {
		for _, r := range rep.Results {
			if len(r.Diffs) == 0 {
				fmt.Fprintf(stdout, "ok   %s:%d: %s\n", suite.Path, r.Case.Line, r.Case.Name)
			}
		}
	}
	rep.Write(stdout)
	if rep.Failed() > 0 {
		return exitFail
	}
	return exitOK
}

// configArg reads --config: JSON text when it starts with '{', else a file
// of JSON. Either must be an object, as the broker's [plugin.config] is.
func configArg(v string) ([]byte, error) {
	b := []byte(v)
	if !strings.HasPrefix(strings.TrimSpace(v), "{") {
		var err error
		if b, err = os.ReadFile(v); err != nil {
			return nil, err
		}
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	return b, nil
}
