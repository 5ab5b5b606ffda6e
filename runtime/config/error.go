package config

import (
	"cmp"
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a configuration. Load, Parse and Validate return
// every problem they find as an errors.Join of *Error, sorted by line, so
// that a reader (or `moat check`) sees them all at once; take them apart
// with errors.As or Problems.
//
// Its message reads like a compiler's:
//
//	moat.toml:14: listener[1].cert_file: open certs/srv.pem: no such file or directory
//
// File is the config path as given to Load; Line is 1-based and left out
// when unknown (a default value, a config built in code); Key is the key
// path, with 0-based indexes for array entries like TOML and jq ("the
// second [[listener]]" is listener[1]) and left out for problems that
// concern the whole file.
type Error struct {
	File string
	Line int
	Key  string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Problems returns the individual problems in err: the leaves of any
// errors.Join tree, in order. It returns nil for a nil err and a single
// element for an error that joins nothing.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	return []error{err}
}

// problems collects the errors of one pass over a config.
type problems struct {
	file  string
	lines *keyLines
	errs  []*Error
}

// add records err at the key path, with the line of that path or of its
// nearest ancestor.
func (p *problems) add(path string, err error) {
	p.errs = append(p.errs, &Error{File: p.file, Line: p.lines.lineOf(path), Key: path, Err: err})
}

// addAt records err at an explicit line.
func (p *problems) addAt(line int, path string, err error) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Key: path, Err: err})
}

// err returns the problems as one error, or nil. Problems without a line
// (about the whole file) come first, then by line; otherwise in the order
// they were found.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(p.errs))
	for i, e := range p.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}
