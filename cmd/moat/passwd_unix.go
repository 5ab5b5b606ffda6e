//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package main

import (
	"os"
	"os/signal"
	"syscall"
	"unsafe"
)

// This file turns terminal echo off with two ioctls from package syscall,
// instead of golang.org/x/term, which go.mod does not have.

func tcget(fd uintptr) (syscall.Termios, error) {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, ioctlGetTermios, uintptr(unsafe.Pointer(&t)))
	if errno != 0 {
		return t, errno
	}
	return t, nil
}

func tcset(fd uintptr, t *syscall.Termios) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, ioctlSetTermios, uintptr(unsafe.Pointer(t)))
	if errno != 0 {
		return errno
	}
	return nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := tcget(f.Fd())
	return err == nil
}

// readNoEcho turns echo off on the terminal f, calls prompt, reads one line
// and restores the terminal, also when SIGINT or SIGTERM arrive meanwhile
// (the signal is then delivered again, with its default action, so the
// command dies as it would have, but with echo back on).
func readNoEcho(f *os.File, prompt func()) ([]byte, error) {
	fd := f.Fd()
	old, err := tcget(fd)
	if err != nil {
		return nil, err
	}
	quiet := old
	quiet.Lflag &^= syscall.ECHO
	quiet.Lflag |= syscall.ICANON | syscall.ISIG
	quiet.Iflag |= syscall.ICRNL
	if err := tcset(fd, &quiet); err != nil {
		return nil, err
	}

	sigs := make(chan os.Signal, 1)
	done := make(chan struct{})
	finished := make(chan struct{})
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		defer close(finished)
		select {
		case s := <-sigs:
			tcset(fd, &old)
			signal.Stop(sigs)
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				p.Signal(s)
			}
		case <-done:
		}
	}()
	defer func() {
		signal.Stop(sigs)
		close(done)
		<-finished
		tcset(fd, &old)
	}()

	prompt()
	return readLine(f)
}

// fileOwner returns the owner of fi, to give it to the file that replaces it.
func fileOwner(fi os.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
