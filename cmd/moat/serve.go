package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/moat-mqtt/moat/runtime/config"
	"github.com/moat-mqtt/moat/runtime/server"
)

func runServe(args []string, _ io.Reader, _, stderr io.Writer) int {
	fs := newFlags("serve", "moat serve [-c file] [-shutdown-timeout duration]", `Serve runs the broker described by the configuration file, logging to
stderr as [log] says, until it receives SIGINT or SIGTERM.

On the first signal it shuts down gracefully: it stops accepting
connections, lets in-flight QoS 1 and 2 exchanges complete, disconnects the
clients and closes persistence cleanly, giving up after -shutdown-timeout.
A second signal ends the process at once.

A configuration with problems, or a module that does not load, is refused
before any listener opens; every problem is printed as 'moat check' prints
it.
`, stderr)
	path := configFlag(fs)
	grace := fs.Duration("shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
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
	log, err := server.NewLogger(cfg.Log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	s, err := server.New(ctx, cfg, log)
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
	log.Info("serving", "config", *path, "version", version)

	<-ctx.Done()
	stop() // from here on a second signal kills the process
	log.Info("shutting down", "timeout", *grace)
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
