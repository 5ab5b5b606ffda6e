package aclfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// SyntaxError is a malformed line. Parse returns all of them, joined.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return "acl: " + e.File + ":" + strconv.Itoa(e.Line) + ": " + e.Msg
}

const (
	// maxLine bounds the memory one line can take; a topic is at most 64 KiB.
	maxLine = 1 << 20
	// maxErrors keeps the report of a file that is not an ACL file short.
	maxErrors = 20
)

// Parse reads an ACL file. name is the file's name in messages; no file is
// opened. It returns every syntax error, each a *SyntaxError (match with
// errors.As), or the reader's error wrapped.
func Parse(r io.Reader, name string) (*ACL, error) {
	p := parser{acl: &ACL{name: name}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	n := 0
	for sc.Scan() {
		n++
		p.line(n, sc.Text())
		if len(p.errs) >= maxErrors {
			break
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			p.fail(n+1, "line longer than %d bytes", maxLine)
		} else {
			return nil, fmt.Errorf("acl: read %s: %w", name, err)
		}
	}
	if !p.acl.checkSubscribe {
		for _, l := range p.subscribeLines {
			p.fail(l, `rule names subscribe, but the file has no "@subscribe check"`)
		}
	}
	if len(p.errs) > 0 {
		slices.SortStableFunc(p.errs, func(a, b error) int {
			return a.(*SyntaxError).Line - b.(*SyntaxError).Line
		})
		if len(p.errs) > maxErrors {
			p.errs = append(p.errs[:maxErrors], fmt.Errorf("acl: %s: too many errors", name))
		}
		return nil, errors.Join(p.errs...)
	}
	return p.acl, nil
}

type parser struct {
	acl  *ACL
	errs []error

	inUser  bool
	user    string
	section *node // where topic and @topic lines go; nil until the first

	subscribeLines []int // rules that name subscribe
}

func (p *parser) fail(line int, format string, args ...any) {
	p.errs = append(p.errs, &SyntaxError{File: p.acl.name, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// isSpace is C's isspace in the "C" locale, which Mosquitto trims with.
func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\v' || r == '\f' || r == '\r'
}

func (p *parser) line(n int, raw string) {
	if strings.IndexByte(raw, 0) >= 0 {
		p.fail(n, "line contains a NUL byte")
		return
	}
	// Mosquitto trims trailing white space, then takes '#' in column one as
	// a comment and splits on spaces. Leading tabs and indented comments,
	// which it rejects as invalid lines, are accepted here.
	s := strings.TrimLeft(strings.TrimRightFunc(raw, isSpace), " \t")
	if s == "" || s[0] == '#' {
		return
	}
	// Mosquitto keywords end at a space; extension keywords also at a tab.
	sep := " "
	if s[0] == '@' {
		sep = " \t"
	}
	keyword, rest := s, ""
	if i := strings.IndexAny(s, sep); i >= 0 {
		keyword, rest = s[:i], s[i+1:]
	}
	switch keyword {
	case "topic", "pattern":
		p.mosquittoRule(n, s, keyword == "pattern", rest)
	case "user":
		user := strings.TrimFunc(rest, isSpace)
		if user == "" {
			p.fail(n, "missing username")
			return
		}
		p.inUser = true
		p.user = user
		if p.acl.users == nil {
			p.acl.users = make(map[string]*node)
		}
		sec := p.acl.users[user]
		if sec == nil {
			sec = &node{}
			p.acl.users[user] = sec
		}
		p.section = sec
	case "@topic", "@pattern":
		p.extensionRule(n, s, keyword == "@pattern", rest)
	case "@subscribe":
		if arg := strings.Trim(rest, " \t"); arg != "check" {
			p.fail(n, `@subscribe: want "@subscribe check", got %q`, arg)
			return
		}
		p.acl.checkSubscribe = true
	default:
		p.fail(n, "unknown keyword %q (want topic, pattern, user, @topic, @pattern or @subscribe)", keyword)
	}
}

// mosquittoRule parses the rest of a topic or pattern line the way
// aclfile__parse does: the next space-separated token is the access word,
// and the rest of the line, trimmed, the topic; a lone token is the topic
// with readwrite access.
func (p *parser) mosquittoRule(n int, text string, pattern bool, rest string) {
	rest = strings.TrimLeft(rest, " ")
	if rest == "" {
		p.fail(n, "missing topic")
		return
	}
	access, topic, found := strings.Cut(rest, " ")
	set := setReadWrite
	deny := false
	if !found {
		topic = access
	} else {
		topic = strings.TrimFunc(topic, isSpace)
		switch access {
		case "read":
			set = setRead
		case "write":
			set = setWrite
		case "readwrite":
		case "deny":
			// MOSQ_ACL_NONE refuses whatever access is asked.
			deny = true
		default:
			p.fail(n, "unknown access %q (want read, write, readwrite or deny)", access)
			return
		}
	}
	r := &rule{line: n, text: text, pattern: pattern, deny: deny, actions: set, maxQoS: 2}
	vars := noVars
	if pattern {
		vars = mosquittoVars
	}
	if !p.setFilter(r, topic, vars) {
		return
	}
	p.add(r)
}

// extensionRule parses the rest of an @topic or @pattern line.
func (p *parser) extensionRule(n int, text string, pattern bool, rest string) {
	perm, rest := nextToken(rest)
	r := &rule{line: n, text: text, pattern: pattern, maxQoS: 2}
	switch perm {
	case "allow":
	case "deny":
		r.deny = true
	case "":
		p.fail(n, "missing permission (want allow or deny)")
		return
	default:
		p.fail(n, "unknown permission %q (want allow or deny)", perm)
		return
	}
	actions, rest := nextToken(rest)
	if actions == "" {
		p.fail(n, "missing actions (want publish, subscribe, deliver, read, write or readwrite)")
		return
	}
	for _, a := range strings.Split(actions, ",") {
		switch a {
		case "publish":
			r.actions |= setPublish
		case "subscribe":
			r.actions |= setSubscribe
			p.subscribeLines = append(p.subscribeLines, n)
		case "deliver":
			r.actions |= setDeliver
		case "read":
			r.actions |= setRead
		case "write":
			r.actions |= setWrite
		case "readwrite":
			r.actions |= setReadWrite
		default:
			p.fail(n, "unknown action %q (want publish, subscribe, deliver, read, write or readwrite)", a)
			return
		}
	}

	seen := map[string]bool{}
	topic := ""
	for {
		tok, after := nextToken(rest)
		if tok == "--" {
			topic = strings.Trim(after, " \t")
			break
		}
		key, value, isOpt := strings.Cut(tok, "=")
		if !isOpt || !isOptionKey(key) {
			topic = strings.Trim(rest, " \t")
			break
		}
		rest = after
		if r.deny {
			p.fail(n, "option %q: options belong to allow rules", tok)
			return
		}
		if seen[key] {
			p.fail(n, "option %q given twice", key)
			return
		}
		seen[key] = true
		switch key {
		case "maxqos":
			if len(value) != 1 || value[0] < '0' || value[0] > '2' {
				p.fail(n, "option maxqos=%q: want 0, 1 or 2", value)
				return
			}
			if r.actions&(setPublish|setSubscribe) == 0 {
				p.fail(n, "option maxqos: applies to publish and subscribe, and the rule has neither")
				return
			}
			r.maxQoS = value[0] - '0'
		case "retain":
			switch value {
			case "allow":
			case "deny":
				r.noRetain = true
			default:
				p.fail(n, "option retain=%q: want allow or deny", value)
				return
			}
			if r.actions&setPublish == 0 {
				p.fail(n, "option retain: applies to publish, and the rule has none")
				return
			}
		default:
			p.fail(n, "unknown option %q (want maxqos or retain)", key)
			return
		}
	}
	if topic == "" {
		p.fail(n, "missing topic")
		return
	}
	vars := noVars
	if pattern {
		vars = extensionVars
	}
	if !p.setFilter(r, topic, vars) {
		return
	}
	p.add(r)
}

// nextToken splits off the next token separated by spaces or tabs.
func nextToken(s string) (tok, rest string) {
	s = strings.TrimLeft(s, " \t")
	if i := strings.IndexAny(s, " \t"); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// isOptionKey decides whether "key=value" is an option or the start of the
// topic: option keys are lower-case letters.
func isOptionKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 'a' || k[i] > 'z' {
			return false
		}
	}
	return true
}

type varSyntax uint8

const (
	noVars        varSyntax = iota // topic, @topic: '%' is literal
	mosquittoVars                  // pattern: whole-level %c and %u
	extensionVars                  // @pattern: %c, %u, %{name}; no other '%'
)

func (p *parser) setFilter(r *rule, topic string, vars varSyntax) bool {
	if msg := validFilter(topic); msg != "" {
		p.fail(r.line, "invalid topic filter %q: %s", topic, msg)
		return false
	}
	r.filter = topic
	r.levels = make([]level, 0, strings.Count(topic, "/")+1)
	for _, l := range strings.Split(topic, "/") {
		lv := level{kind: levelLiteral, text: l}
		switch {
		case l == "+":
			lv.kind = levelPlus
		case l == "#":
			lv.kind = levelHash
		case vars != noVars && l == "%c":
			lv = level{kind: varClient}
		case vars != noVars && l == "%u":
			lv = level{kind: varUser}
		case vars == mosquittoVars && (strings.Contains(l, "%c") || strings.Contains(l, "%u")):
			p.fail(r.line, "invalid topic filter %q: %%c and %%u must be a whole level (%q)", topic, l)
			return false
		case vars == extensionVars && strings.Contains(l, "%"):
			name, ok := strings.CutPrefix(l, "%{")
			name, ok2 := strings.CutSuffix(name, "}")
			if !ok || !ok2 || !validAttrName(name) {
				p.fail(r.line, "invalid topic filter %q: in @pattern a '%%' must be a whole level %%c, %%u or %%{name} (%q)", topic, l)
				return false
			}
			lv = level{kind: varAttr, text: name}
			p.acl.usesAttrs = true
		}
		r.levels = append(r.levels, lv)
	}
	return true
}

func validAttrName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func (p *parser) add(r *rule) {
	a := p.acl
	a.rules = append(a.rules, r)
	if r.pattern {
		if a.patterns == nil {
			a.patterns = &node{}
		}
		a.patterns.insert(r)
		return
	}
	r.anon, r.user = !p.inUser, p.user
	if !p.inUser {
		if a.anon == nil {
			a.anon = &node{}
		}
		p.section = a.anon
	}
	p.section.insert(r)
}
