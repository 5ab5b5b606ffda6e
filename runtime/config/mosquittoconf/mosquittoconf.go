// Package mosquittoconf reads Mosquitto's configuration file format
// (mosquitto.conf(5)) into a list of directives, following include_dir the
// way Mosquitto does. It knows the syntax, not the meaning: cmd/moat's
// migrate command decides what each option becomes in moat.toml.
//
// The syntax, as Mosquitto 2.0 reads it (conf.c, config__read_file_core):
// one option per line, "name value...", separated by spaces or tabs; a line
// whose first non-blank character is '#' is a comment, and so is a blank
// line; there are no trailing comments (a '#' later in a line is part of
// the value); trailing whitespace is dropped. include_dir names a directory
// whose files ending in ".conf" are read in byte order of their names, as
// if their lines stood there.
package mosquittoconf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Directive is one option line.
type Directive struct {
	// Name is the option, such as "listener" or "password_file".
	Name string
	// Args are the whitespace-separated words after the name.
	Args []string
	// Value is everything after the name, trimmed, for options whose value
	// may contain spaces (a topic, a path).
	Value string
	// File and Line say where the directive was read; File is the path as
	// opened (absolute for include_dir files when the directory was).
	File string
	Line int
}

// Pos is "file:line", for messages.
func (d Directive) Pos() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// maxLine bounds one line; Mosquitto's own buffer grows without a bound,
// but a config line longer than this is not a config line.
const maxLine = 1 << 20

// maxDepth bounds include_dir nesting: Mosquitto refuses include_dir in an
// included file (depth 1), so this is more than enough.
const maxDepth = 8

// Parse reads one file's directives from r without following include_dir
// (the include_dir directive itself is returned). name is used in
// positions and errors.
func Parse(r io.Reader, name string) ([]Directive, error) {
	var out []Directive
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t\r\n")
		t := strings.TrimLeft(line, " \t")
		if t == "" || t[0] == '#' {
			continue
		}
		if strings.IndexByte(t, 0) >= 0 {
			return nil, fmt.Errorf("mosquittoconf: %s:%d: NUL byte in line", name, n)
		}
		fields := strings.FieldsFunc(t, isBlank)
		d := Directive{Name: fields[0], Args: fields[1:], File: name, Line: n}
		d.Value = strings.Trim(t[len(fields[0]):], " \t")
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mosquittoconf: %s:%d: %w", name, n+1, err)
	}
	return out, nil
}

// isBlank: Mosquitto separates words by spaces and tabs only.
func isBlank(r rune) bool { return r == ' ' || r == '\t' }

// Load reads the file at path and, in place of each include_dir directive,
// the directives of the ".conf" files of that directory in byte order of
// their names. A relative include_dir is taken as Mosquitto takes it:
// relative to the working directory, not to the file.
func Load(path string) ([]Directive, error) {
	return load(path, 0)
}

func load(path string, depth int) ([]Directive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("mosquittoconf: %w", err)
	}
	defer f.Close()
	ds, err := Parse(f, path)
	if err != nil {
		return nil, err
	}
	var out []Directive
	for _, d := range ds {
		if d.Name != "include_dir" {
			out = append(out, d)
			continue
		}
		if depth+1 > maxDepth {
			return nil, fmt.Errorf("mosquittoconf: %s: include_dir nested more than %d deep", d.Pos(), maxDepth)
		}
		if d.Value == "" {
			return nil, fmt.Errorf("mosquittoconf: %s: include_dir: no directory given", d.Pos())
		}
		files, err := confFiles(d.Value)
		if err != nil {
			return nil, fmt.Errorf("mosquittoconf: %s: include_dir: %w", d.Pos(), err)
		}
		for _, p := range files {
			sub, err := load(p, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
		}
	}
	return out, nil
}

// confFiles lists the regular files in dir whose names end in ".conf", in
// byte order (Mosquitto sorts them with strcasecmp on some platforms and
// strcmp on others; byte order is strcmp's).
func confFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s: %w", dir, pe.Err)
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".conf") || e.IsDir() {
			continue
		}
		out = append(out, filepath.Join(dir, e.Name()))
	}
	sort.Strings(out)
	return out, nil
}
