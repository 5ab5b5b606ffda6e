package main

import (
	"bytes"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"
)

// templates holds one project skeleton per language, under
// templates/<lang>/. A file whose name ends in .tmpl is rendered with
// text/template (data: newData) and written without the suffix; any other
// file is copied as it is, but for a name ending in .gosrc, written as .go
// (Go source in templates/ would otherwise be a package of this module).
// templates/rust/moat.rs is a copy of
// sdk/rust/moat.rs, and templates/c/moat.h and templates/cpp/moat.h of
// sdk/c/moat.h, and templates/as/moat/*.ts of
// sdk/assemblyscript/assembly/*.ts, and templates/go/moat/*.gosrc of
// sdk/go/*.go (tests aside), which a test keeps identical (TestTemplateSDKInSync):
// go:embed cannot reach outside this directory.
//
//go:embed all:templates
var templates embed.FS

// A language of `moat plugin new`. Adding one is adding a directory under
// templates/ and an entry here.
type language struct {
	name string
	dir  string // under templates/
	// next is what the user runs after creating the project.
	next string
}

var languages = []language{
	{name: "rust", dir: "rust", next: "cd {{.Dir}} && make test"},
	{name: "c", dir: "c", next: "cd {{.Dir}} && make test"},
	{name: "cpp", dir: "cpp", next: "cd {{.Dir}} && make test"},
	{name: "as", dir: "as", next: "cd {{.Dir}} && npm install && make test"},
	{name: "go", dir: "go", next: "cd {{.Dir}} && make test"},
}

type newData struct {
	Name string // the project's and module's name
	Dir  string // where the project is created
}

var projectName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)

func runPluginNew(args []string, stdout, stderr io.Writer) int {
	var names []string
	for _, l := range languages {
		names = append(names, l.name)
	}
	fs := newFlags("plugin new", "moat plugin new --lang LANG [--dir DIR] NAME",
		`New creates a plugin project called NAME in the directory NAME (or --dir):
the policy source with its decision functions, the SDK, a build file and a
case file the project passes as created. Edit a decision function, add a
case, and run the project's test (printed at the end).

Languages: `+strings.Join(names, ", ")+`.
`, stderr)
	lang := fs.String("lang", "", "the `language`: "+strings.Join(names, ", "))
	dir := fs.String("dir", "", "the `directory` to create (default: NAME)")
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) != 1 || *lang == "" {
		fmt.Fprintln(stderr, "moat plugin new: want --lang LANG and one NAME\nRun 'moat plugin new -h' for usage.")
		return exitUsage
	}
	name := pos[0]
	if !projectName.MatchString(name) {
		fmt.Fprintf(stderr, "moat plugin new: name %q: want lower-case letters, digits, '-' and '_', starting with a letter\n", name)
		return exitUsage
	}
	var l *language
	for i := range languages {
		if languages[i].name == *lang {
			l = &languages[i]
		}
	}
	if l == nil {
		fmt.Fprintf(stderr, "moat plugin new: unknown language %q; available: %s\n", *lang, strings.Join(names, ", "))
		return exitUsage
	}
	if *dir == "" {
		*dir = name
	}
	data := newData{Name: name, Dir: *dir}
	files, err := renderTemplate(l.dir, data)
	if err != nil {
		fmt.Fprintf(stderr, "moat plugin new: %v\n", err)
		return exitFail
	}
	if _, err := os.Stat(*dir); err == nil {
		fmt.Fprintf(stderr, "moat plugin new: %s already exists; choose another NAME or --dir\n", *dir)
		return exitFail
	}
	if err := writeProject(*dir, files); err != nil {
		fmt.Fprintf(stderr, "moat plugin new: %v\n", err)
		return exitFail
	}
	next, err := render("next", l.next, data)
	if err != nil {
		fmt.Fprintf(stderr, "moat plugin new: %v\n", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "created %s (%s), %d files\nnext: %s\n", *dir, l.name, len(files), next)
	return exitOK
}

// renderTemplate returns the files of templates/<dir>, rendered, by
// relative path.
func renderTemplate(dir string, data newData) (map[string][]byte, error) {
	root := path.Join("templates", dir)
	files := map[string][]byte{}
	err := fs.WalkDir(templates, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		if name, ok := strings.CutSuffix(rel, ".tmpl"); ok {
			s, err := render(rel, string(b), data)
			if err != nil {
				return err
			}
			rel, b = name, []byte(s)
		} else if name, ok := strings.CutSuffix(rel, ".gosrc"); ok {
			rel = name + ".go"
		}
		files[rel] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", dir, err)
	}
	return files, nil
}

func render(name, text string, data newData) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// writeProject creates dir and writes files into it; on failure it
// removes what it made.
func writeProject(dir string, files map[string][]byte) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return err
		}
	}
	return nil
}
