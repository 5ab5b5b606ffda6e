//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package main

import (
	"errors"
	"os"
	"runtime"
)

// isTerminal reports whether f looks like a terminal (a character device):
// on these systems moat cannot turn echo off, so it refuses to read a
// password there rather than show it.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func readNoEcho(*os.File, func()) ([]byte, error) {
	return nil, errors.New("cannot turn terminal echo off on " + runtime.GOOS + ": pipe the password on stdin or use -b")
}

func fileOwner(os.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }
