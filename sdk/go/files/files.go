// Package files reads the files that moat.toml grants a plugin (sdk/ABI.md
// §6, capabilities):
//
//	[[plugin]]
//	name = "passwd"
//	[plugin.files]
//	passwords = "/etc/moat/passwd"
//
// lets the module call ReadFile("passwords"), and read no other file. The
// module never learns host paths.
//
// It is a package of its own because the broker refuses, at load, a module
// that imports the file host functions without a [plugin.files] grant, and
// Go imports a host function only into modules that can reach a call to
// it: a plugin that does not import this package does not import
// moat.file_size or moat.file_read.
package files

import (
	"errors"
	"io/fs"
	"strconv"
)

// ErrNotGranted is returned for a name moat.toml does not grant; it
// matches fs.ErrNotExist with errors.Is.
var ErrNotGranted = &notGrantedError{}

type notGrantedError struct{}

func (*notGrantedError) Error() string        { return "not granted" }
func (*notGrantedError) Is(target error) bool { return target == fs.ErrNotExist }

// Status codes of file_size and file_read.
const (
	statusNotGranted = -1
	statusIOError    = -3
)

// ReadFile returns the content of the file granted as name. The broker
// reads the file at the time of the call, so a plugin that calls ReadFile
// again sees a changed file; a file that changes during the call may be
// read partly old, partly new, so a plugin that reloads should check what
// it parsed.
func ReadFile(name string) ([]byte, error) {
	size := hostFileSize(name)
	if size < 0 {
		return nil, statusError(name, size)
	}
	// The file may grow between file_size and file_read: read until the
	// host reports the end, growing the buffer as needed.
	b := make([]byte, 0, size+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n := hostFileRead(name, int64(len(b)), b[len(b):cap(b)])
		switch {
		case n < 0:
			return nil, statusError(name, n)
		case n == 0:
			return b, nil
		}
		b = b[:len(b)+int(n)]
	}
}

func statusError(name string, st int64) error {
	var err error
	switch st {
	case statusNotGranted:
		err = ErrNotGranted
	case statusIOError:
		err = errors.New("i/o error on the host")
	default:
		err = errors.New("host status " + strconv.FormatInt(st, 10))
	}
	return &fs.PathError{Op: "read", Path: name, Err: err}
}
