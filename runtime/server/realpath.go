package server

import (
	"regexp"
	"sort"
)

// withRealPaths names granted files by their host paths in a module's load
// error. A module reads a granted file under its [plugin.files] name and
// never learns the path (sdk/ABI.md §6), so its messages say "acl:5"; the
// operator needs "/etc/mosquitto/acl:5". Only a name followed by ":" and a
// line number is replaced, so that words of the message that happen to
// equal a name are left alone.
func withRealPaths(err error, files map[string]string) error {
	if err == nil || len(files) == 0 {
		return err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	// Longest first, so that "acl" does not match inside "acl.d".
	sort.Slice(names, func(i, j int) bool { return len(names[i]) > len(names[j]) })
	msg := err.Error()
	out := msg
	for _, n := range names {
		re := regexp.MustCompile(`(^|[\s"'(\[=])` + regexp.QuoteMeta(n) + `:(\d)`)
		out = re.ReplaceAllString(out, "${1}"+escapeRepl(files[n])+":${2}")
	}
	if out == msg {
		return err
	}
	return &realPathError{msg: out, err: err}
}

// escapeRepl escapes "$" for regexp.ReplaceAllString.
func escapeRepl(s string) string { return regexp.MustCompile(`\$`).ReplaceAllString(s, "$$$$") }

// realPathError is a load error with host paths in its message; it
// unwraps to the original.
type realPathError struct {
	msg string
	err error
}

func (e *realPathError) Error() string { return e.msg }
func (e *realPathError) Unwrap() error { return e.err }
