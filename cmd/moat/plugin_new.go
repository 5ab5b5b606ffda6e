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

	"github.com/moat-mqtt/moat/sdk"
)

// templates holds one project skeleton per language, under
// templates/<lang>/. A file whose name ends in .tmpl is rendered with
// text/template (data: newData) and written without the suffix; any other
// file is copied as it is. The SDK a project needs is not in templates/:
// it comes from package sdk (language.sdk), the repository's one copy.
//
//go:embed all:templates
var templates embed.FS

// A language of `moat plugin new`. Adding one is adding a directory under
// templates/ and an entry here.
type language struct {
	name string
	dir  string // under templates/
	// sdk maps a pattern of sdk.Files to the project directory its files
	// are copied into ("" for the project's root). Go tests are skipped.
	sdk map[string]string
	// next is what the user runs after creating the project.
	next string
}

var languages = []language{
	{name: "rust", dir: "rust", sdk: map[string]string{"rust/moat.rs": ""}, next: "cd {{.Dir}} && make test"},
	{name: "c", dir: "c", sdk: map[string]string{"c/moat.h": ""}, next: "cd {{.Dir}} && make test"},
	{name: "cpp", dir: "cpp", sdk: map[string]string{"c/moat.h": ""}, next: "cd {{.Dir}} && make test"},
	{name: "as", dir: "as", sdk: map[string]string{"assemblyscript/assembly/*.ts": "moat"}, next: "cd {{.Dir}} && npm install && make test"},
	{name: "go", dir: "go", sdk: map[string]string{"go/*.go": "moat"}, next: "cd {{.Dir}} && make test"},
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
	files, err := renderProject(l, data)
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

// renderProject returns the files of a new project of language l, by
// relative path: templates/<l.dir>, rendered, and the SDK files l needs.
func renderProject(l *language, data newData) (map[string][]byte, error) {
	root := path.Join("templates", l.dir)
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
		}
		files[rel] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", l.dir, err)
	}
	for pattern, dst := range l.sdk {
		matches, err := fs.Glob(sdk.Files, pattern)
		if err != nil || len(matches) == 0 {
			return nil, fmt.Errorf("template %s: sdk %s: no files (%v)", l.dir, pattern, err)
		}
		for _, m := range matches {
			if strings.HasSuffix(m, "_test.go") {
				continue
			}
			b, err := sdk.Files.ReadFile(m)
			if err != nil {
				return nil, fmt.Errorf("template %s: %w", l.dir, err)
			}
			files[path.Join(dst, path.Base(m))] = b
		}
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
