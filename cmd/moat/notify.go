package main

import (
	"fmt"
	"net"
	"os"
)

// notify tells the service manager about the broker's state, as
// sd_notify(3) does, for a systemd unit of Type=notify (deploy/moat.service):
// "READY=1" once the listeners accept connections, "STOPPING=1" when a
// graceful shutdown begins. Without $NOTIFY_SOCKET (not started by
// systemd, or a unit of another type) it does nothing.
//
// The protocol is one datagram of newline-separated KEY=VALUE lines sent
// to the Unix datagram socket named by $NOTIFY_SOCKET: a path, or an
// abstract socket when it starts with "@" (Go's net package maps "@" to
// the leading NUL byte). It is implemented here rather than taken from a
// library because it is that small.
func notify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] != '/' && addr[0] != '@' {
		return fmt.Errorf("sd_notify: NOTIFY_SOCKET %q: want an absolute path or an abstract socket (@name)", addr)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %s: %w", addr, err)
	}
	return nil
}
