package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/server"
)

func runServe(args []string, _ io.Reader, _, stderr io.Writer) int {
	fs := newFlags("serve", "moat serve [-c file] [-shutdown-timeout duration] [-watch=false]", `Serve runs the broker described by the configuration file, logging to
stderr as [log] says, until it receives SIGINT or SIGTERM.

On the first signal it shuts down gracefully: it stops accepting
connections, lets in-flight QoS 1 and 2 exchanges complete, disconnects the
clients and closes persistence cleanly, giving up after -shutdown-timeout.
A second signal ends the process at once.

The policy is reloaded without dropping a client when the configuration
file, a module or a file granted to a plugin changes (unless -watch=false),
on SIGHUP, and on 'moat reload', which talks to the admin socket ([admin]
socket, default moat.sock beside the configuration). A reload applies
[[plugin]], [auth], [reload] and the payload keys ([[key]], [keys]);
changes to other settings are logged as needing a restart. A broken
version is refused and changes nothing but a log line.

A configuration with problems, a module that does not load, or a state
directory the user cannot write (see 'moat check') is refused before any
listener opens; every problem is printed as 'moat check' prints it.

Started by systemd with Type=notify (deploy/moat.service), serve sends
READY=1 once its listeners accept connections and STOPPING=1 when it
begins to shut down.
`, stderr)
	path := configFlag(fs)
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	watch := fs.Bool("watch", true, "reload when the configuration, a module or a granted file changes")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *grace <= 0 {
		fmt.Fprintf(stderr, "moat serve: -shutdown-timeout %s: want more than 0\n", *grace)
		return exitUsage
	}

	cfg, err := config.Load(*path)
	if err != nil {
		printProblems(stderr, err)
		return exitFail
	}
	// Before any listener opens: a service user that cannot write its
	// state finds out now, not on the first persistent session.
	if err := server.CheckWritable(cfg); err != nil {
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
	// SIGHUP reloads; caught from here on so that an early one does not
	// end the process (its default action), and acted on once serving.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// Password files are timed once per load and reload: a line slower
	// than its plugin's timeout refuses its user with no other sign
	// (checkcost.go).
	s, err := server.New(ctx, cfg, log, server.WithVersion(version), server.WithLoadWarnings(passwordCostWarnings))
	if err != nil {
		// Module problems, listed like `moat check` lists them.
		printProblems(stderr, err)
		return exitFail
	}
	if err := s.Start(ctx); err != nil {
		log.Error("cannot start", "config", *path, "err", err)
		closeServer(s, *grace, log)
		return exitFail
	}
	// Loading the policy (compiling modules, configuring every instance,
	// probing password costs) leaves garbage that the runtime would give
	// back to the OS only over minutes; an idle broker's RSS is counted
	// against bare mochi's (runtime/broker BenchmarkIdleRSS), so return
	// it now: one collection, once per start.
	debug.FreeOSMemory()
	admin, err := s.OpenAdmin(server.AdminOptions{Version: version})
	if err != nil {
		log.Error("cannot start", "config", *path, "err", err)
		closeServer(s, *grace, log)
		return exitFail
	}
	var watcher *server.Watcher
	if *watch {
		// Without a watcher the broker still reloads on SIGHUP and
		// `moat reload`: not a reason to refuse to serve.
		if watcher, err = s.Watch(server.WatchOptions{}); err != nil {
			log.Error("not watching files for changes", "err", err)
		}
	}
	logPlugins(log, cfg, s.Modules())
	log.Info("serving", "config", *path, "version", version)
	if err := notify("READY=1\nSTATUS=serving\nMAINPID=" + strconv.Itoa(os.Getpid())); err != nil {
		log.Warn("cannot tell the service manager the broker is ready", "err", err)
	}

	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-hup:
			s.Reload(ctx, server.Trigger{Source: server.TriggerSignal, Signal: "SIGHUP"})
		}
	}
	stop() // from here on a second signal kills the process
	log.Info("shutting down", "timeout", *grace)
	if err := notify("STOPPING=1\nSTATUS=shutting down"); err != nil {
		log.Warn("cannot tell the service manager the broker is stopping", "err", err)
	}
	if watcher != nil {
		if err := watcher.Close(); err != nil {
			log.Warn("closing the file watcher", "err", err)
		}
	}
	actx, cancel := context.WithTimeout(context.Background(), *grace)
	err = admin.Close(actx)
	cancel()
	if err != nil {
		log.Warn("closing the admin endpoint", "err", err)
	}
	if !closeServer(s, *grace, log) {
		return exitFail
	}
	log.Info("stopped")
	return exitOK
}

// closeServer shuts s down within grace and reports whether that went
// cleanly.
func closeServer(s *server.Server, grace time.Duration, log *slog.Logger) bool {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return false
	}
	return true
}

// logPlugins logs each plugin loaded at start with the digest of what runs,
// so that the log says which code decided from the first connection on.
func logPlugins(log *slog.Logger, cfg *config.Config, mods []server.ModuleReport) {
	for _, m := range mods {
		attrs := []any{"plugin", m.Name, "sha256", m.Digest}
		for _, pc := range cfg.Plugins {
			if pc.Name == m.Name {
				attrs = append(attrs, "module", pc.Module, "decisions", pc.Decisions)
			}
		}
		log.Info("plugin loaded", attrs...)
	}
}
