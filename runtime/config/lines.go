package config

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// keyLines knows on which line each key of a TOML document is defined.
//
// BurntSushi/toml v1.6 records key positions but does not export them, and
// it records them per key name without array indexes, so every [[listener]]
// would share the line of the last one. keyLines is a small scanner that
// walks the document after the library has accepted it and records each key
// under its indexed path ("listener[1].cert_file"), 0-based like TOML
// arrays. It assumes valid TOML (it runs only on what toml.Decode parsed);
// on anything else it stops early and leaves keys without a line, and
// messages without one: it never fails and never panics.
type keyLines struct {
	// line maps an indexed path to the 1-based line where it is defined.
	line map[string]int
	// seen maps a key as the library names it (toml.Key.String(), no
	// indexes) to its indexed paths in document order, which is also the
	// order of MetaData.Keys and MetaData.Undecoded.
	seen map[string][]string
}

// lineOf returns the line of path or, when path itself was not written (a
// default, a key inside a value), of its nearest written ancestor; 0 if
// none is known.
func (kl *keyLines) lineOf(path string) int {
	if kl == nil {
		return 0
	}
	for path != "" {
		if n, ok := kl.line[path]; ok {
			return n
		}
		path = parentPath(path)
	}
	return 0
}

// indexed returns the nth (0-based) indexed path of a key as the library
// names it, or "" if the scanner did not see that many.
func (kl *keyLines) indexed(key toml.Key, nth int) string {
	if kl == nil {
		return ""
	}
	paths := kl.seen[key.String()]
	if nth < len(paths) {
		return paths[nth]
	}
	return ""
}

// under returns the indexed path of key (as the library names it) inside
// the entry whose indexed path is prefix ("listener[1]"), or "" if it is
// not there. With prefix "" it returns the first occurrence.
func (kl *keyLines) under(prefix, key string) string {
	if kl == nil {
		return ""
	}
	for _, p := range kl.seen[key] {
		if prefix == "" || p == prefix || strings.HasPrefix(p, prefix+".") || strings.HasPrefix(p, prefix+"[") {
			return p
		}
	}
	return ""
}

// parentPath strips the last part of an indexed path: "a[1].b" → "a[1]",
// "a[1]" → "a", "a" → "".
func parentPath(p string) string {
	// Walk back over the last part, skipping quoted sections.
	inQuote := false
	for i := len(p) - 1; i >= 0; i-- {
		switch c := p[i]; {
		case c == '"' && (i == 0 || p[i-1] != '\\'):
			inQuote = !inQuote
		case inQuote:
		case c == '.':
			return p[:i]
		case c == '[':
			return p[:i]
		}
	}
	return ""
}

// pathPart renders one key part for an indexed path, quoting it when it is
// not a bare key.
func pathPart(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !isBare(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

func joinPath(prefix, part string) string {
	if prefix == "" {
		return pathPart(part)
	}
	return prefix + "." + pathPart(part)
}

func isBare(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}

// scanLines indexes a TOML document.
func scanLines(data []byte) *keyLines {
	s := &scanner{
		data: data,
		ln:   1,
		kl:   &keyLines{line: map[string]int{}, seen: map[string][]string{}},
		arrs: map[string]int{},
	}
	s.document()
	return s.kl
}

type scanner struct {
	data []byte
	i    int
	ln   int
	kl   *keyLines
	// arrs counts the elements of each array of tables seen so far, by
	// indexed path ("plugin", "plugin[1].rule").
	arrs map[string]int
	// table and tableKey are the current [table]: indexed and as the
	// library names it.
	table    string
	tableKey toml.Key
	depth    int
}

// record notes a key defined at the current line.
func (s *scanner) record(path string, key toml.Key, line int) {
	if _, ok := s.kl.line[path]; !ok {
		s.kl.line[path] = line
	}
	k := key.String()
	s.kl.seen[k] = append(s.kl.seen[k], path)
}

func (s *scanner) eof() bool { return s.i >= len(s.data) }

func (s *scanner) peek(off int) byte {
	if s.i+off < len(s.data) {
		return s.data[s.i+off]
	}
	return 0
}

// blank skips spaces and tabs.
func (s *scanner) blank() {
	for !s.eof() && (s.data[s.i] == ' ' || s.data[s.i] == '\t') {
		s.i++
	}
}

// space skips blanks, newlines and comments.
func (s *scanner) space() {
	for !s.eof() {
		switch s.data[s.i] {
		case ' ', '\t', '\r':
			s.i++
		case '\n':
			s.i++
			s.ln++
		case '#':
			for !s.eof() && s.data[s.i] != '\n' {
				s.i++
			}
		default:
			return
		}
	}
}

// document reads statements until the end, or until something it does not
// understand.
func (s *scanner) document() {
	for {
		s.space()
		if s.eof() {
			return
		}
		start := s.i
		if s.data[s.i] == '[' {
			if !s.header() {
				return
			}
		} else if !s.keyValue(s.table, s.tableKey) {
			return
		}
		if s.i <= start { // no progress: give up rather than loop
			return
		}
	}
}

// header reads [table] or [[array]].
func (s *scanner) header() bool {
	line := s.ln
	array := s.peek(1) == '['
	if array {
		s.i += 2
	} else {
		s.i++
	}
	parts, ok := s.key()
	if !ok {
		return false
	}
	s.blank()
	if array {
		if s.peek(0) != ']' || s.peek(1) != ']' {
			return false
		}
		s.i += 2
	} else {
		if s.peek(0) != ']' {
			return false
		}
		s.i++
	}

	// Resolve the parts: a part naming an array of tables refers to its
	// last element, as in TOML.
	path := ""
	for j, p := range parts {
		path = joinPath(path, p)
		if j == len(parts)-1 {
			break
		}
		if n := s.arrs[path]; n > 0 {
			path += "[" + strconv.Itoa(n-1) + "]"
		}
		if _, ok := s.kl.line[path]; !ok { // implicit parent table
			s.kl.line[path] = line
		}
	}
	if array {
		n := s.arrs[path]
		s.arrs[path] = n + 1
		path += "[" + strconv.Itoa(n) + "]"
	}
	s.table = path
	s.tableKey = toml.Key(parts)
	s.record(path, s.tableKey, line)
	return true
}

// keyValue reads key = value inside the table at prefix.
func (s *scanner) keyValue(prefix string, prefixKey toml.Key) bool {
	line := s.ln
	parts, ok := s.key()
	if !ok {
		return false
	}
	s.blank()
	if s.peek(0) != '=' {
		return false
	}
	s.i++
	s.blank()
	path := prefix
	for j, p := range parts {
		path = joinPath(path, p)
		if j < len(parts)-1 {
			if _, ok := s.kl.line[path]; !ok { // implicit table of a dotted key
				s.kl.line[path] = line
			}
		}
	}
	key := append(append(toml.Key{}, prefixKey...), parts...)
	s.record(path, key, line)
	return s.value(path, key)
}

// key reads a dotted key: bare, "basic" or 'literal' parts.
func (s *scanner) key() ([]string, bool) {
	var parts []string
	for {
		s.blank()
		if s.eof() {
			return nil, false
		}
		switch c := s.data[s.i]; {
		case c == '"':
			raw, ok := s.basicString()
			if !ok {
				return nil, false
			}
			if u, err := strconv.Unquote(`"` + raw + `"`); err == nil {
				raw = u
			}
			parts = append(parts, raw)
		case c == '\'':
			s.i++
			start := s.i
			for !s.eof() && s.data[s.i] != '\'' && s.data[s.i] != '\n' {
				s.i++
			}
			if s.eof() || s.data[s.i] != '\'' {
				return nil, false
			}
			parts = append(parts, string(s.data[start:s.i]))
			s.i++
		case c < 0x80 && isBare(rune(c)):
			start := s.i
			for !s.eof() && s.data[s.i] < 0x80 && isBare(rune(s.data[s.i])) {
				s.i++
			}
			parts = append(parts, string(s.data[start:s.i]))
		default:
			return nil, false
		}
		s.blank()
		if s.peek(0) != '.' {
			return parts, true
		}
		s.i++
	}
}

// basicString reads "..." starting at the quote and returns the raw
// content between the quotes.
func (s *scanner) basicString() (string, bool) {
	s.i++
	start := s.i
	for !s.eof() {
		switch s.data[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			raw := string(s.data[start:s.i])
			s.i++
			return raw, true
		case '\n':
			return "", false
		}
		s.i++
	}
	return "", false
}

// value skips one value, recording the keys of inline tables it contains.
func (s *scanner) value(path string, key toml.Key) bool {
	if s.eof() {
		return false
	}
	// Bound recursion: TOML has no depth limit, the call stack has.
	s.depth++
	defer func() { s.depth-- }()
	if s.depth > 100 {
		return false
	}
	switch {
	case s.has(`"""`):
		return s.multiline(`"""`, true)
	case s.has(`'''`):
		return s.multiline(`'''`, false)
	case s.data[s.i] == '"':
		_, ok := s.basicString()
		return ok
	case s.data[s.i] == '\'':
		s.i++
		for !s.eof() && s.data[s.i] != '\'' && s.data[s.i] != '\n' {
			s.i++
		}
		if s.eof() || s.data[s.i] != '\'' {
			return false
		}
		s.i++
		return true
	case s.data[s.i] == '[':
		return s.array(path, key)
	case s.data[s.i] == '{':
		return s.inlineTable(path, key)
	}
	// A number, a boolean or a date-time: up to a delimiter. Date-times
	// may contain one space ("1979-05-27 07:32:00"), so blanks end the
	// value only through the delimiters that follow them.
	start := s.i
	for !s.eof() {
		c := s.data[s.i]
		if c == ',' || c == ']' || c == '}' || c == '\n' || c == '\r' || c == '#' {
			break
		}
		s.i++
	}
	return s.i > start
}

func (s *scanner) has(prefix string) bool {
	return bytes.HasPrefix(s.data[s.i:], []byte(prefix))
}

// multiline skips a multi-line string, basic or literal (delim is three
// quotes of either kind), counting its lines.
func (s *scanner) multiline(delim string, escapes bool) bool {
	s.i += len(delim)
	for !s.eof() {
		c := s.data[s.i]
		switch {
		case escapes && c == '\\':
			if s.peek(1) == '\n' {
				s.ln++
			}
			s.i += 2
			continue
		case c == '\n':
			s.ln++
		case s.has(delim):
			s.i += len(delim)
			// Up to two more quotes belong to the content: """a"""".
			for k := 0; k < 2 && !s.eof() && s.data[s.i] == delim[0]; k++ {
				s.i++
			}
			return true
		}
		s.i++
	}
	return false
}

// array skips [ ... ], indexing the elements that are inline tables.
func (s *scanner) array(path string, key toml.Key) bool {
	s.i++
	for n := 0; ; n++ {
		s.space()
		if s.eof() {
			return false
		}
		if s.data[s.i] == ']' {
			s.i++
			return true
		}
		elem := path + "[" + strconv.Itoa(n) + "]"
		if s.data[s.i] == '{' {
			s.kl.line[elem] = s.ln
		}
		if !s.value(elem, key) {
			return false
		}
		s.space()
		if s.peek(0) == ',' {
			s.i++
		}
	}
}

// inlineTable skips { k = v, ... }, recording its keys.
func (s *scanner) inlineTable(path string, key toml.Key) bool {
	s.i++
	for {
		s.space() // TOML 1.1 allows newlines inside inline tables
		if s.eof() {
			return false
		}
		if s.data[s.i] == '}' {
			s.i++
			return true
		}
		if !s.keyValue(path, key) {
			return false
		}
		s.space()
		if s.peek(0) == ',' {
			s.i++
		}
	}
}
