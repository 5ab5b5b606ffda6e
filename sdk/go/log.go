package moat

import (
	"strconv"
	"unicode/utf8"
)

// Level is a log level of the ABI's log host function.
type Level int32

const (
	// LevelDebug lines are dropped unless the broker logs at debug.
	LevelDebug Level = 0
	LevelInfo  Level = 1
	LevelWarn  Level = 2
	LevelError Level = 3
)

// The formatting helpers below do not use fmt: importing it (with the os,
// reflect and syscall packages it brings, whose initialisers run in every
// instance) cost every module built with the SDK 136 KB of code and six
// pages (384 KiB) of linear memory per instance, whether it logged or not.
// They format the verbs %v %s %q %d %x %X %t %c %f %g %e and %% with
// width, precision and the flags - and 0, as fmt.Sprintf does, for
// strings, byte slices, errors, values with a String method, booleans,
// integers and floats. Any other value prints as %!v(unsupported), any
// other verb as %!verb(...), and arguments left over are listed without
// their types. A module that imports fmt itself loses
// nothing by calling fmt.Sprintf and Log instead.

// Debugf logs a debug line, formatted as described above.
func Debugf(format string, args ...any) { Log(LevelDebug, sprintf(format, args)) }

// Infof logs an info line, formatted as described above.
func Infof(format string, args ...any) { Log(LevelInfo, sprintf(format, args)) }

// Warnf logs a warning, formatted as described above.
func Warnf(format string, args ...any) { Log(LevelWarn, sprintf(format, args)) }

// Errorf logs an error line, formatted as described above.
func Errorf(format string, args ...any) { Log(LevelError, sprintf(format, args)) }

// String returns the level's name.
func (l Level) String() string {
	switch l {
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return "level(" + strconv.Itoa(int(l)) + ")"
}

// sprintf formats args by format, with the subset of fmt described above.
func sprintf(format string, args []any) string {
	out := make([]byte, 0, len(format)+16*len(args))
	next := 0
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' {
			out = append(out, c)
			continue
		}
		// Flags, width and precision.
		var minus, zero bool
		width, prec := -1, -1
		for i++; i < len(format); i++ {
			if format[i] == '-' {
				minus = true
			} else if format[i] == '0' {
				zero = true
			} else {
				break
			}
		}
		width, i = digits(format, i)
		if i < len(format) && format[i] == '.' {
			if prec, i = digits(format, i+1); prec < 0 {
				prec = 0
			}
		}
		if i >= len(format) {
			out = append(out, "%!(NOVERB)"...)
			break
		}
		verb := format[i]
		if verb == '%' {
			out = append(out, '%')
			continue
		}
		if next >= len(args) {
			out = append(out, '%', '!', verb)
			out = append(out, "(MISSING)"...)
			continue
		}
		s, ok := formatArg(args[next], verb, prec)
		next++
		if !ok {
			out = append(out, '%', '!', verb, '(')
			out = append(out, s...)
			out = append(out, ')')
			continue
		}
		pad := width - utf8.RuneCountInString(s)
		switch {
		case pad <= 0:
			out = append(out, s...)
		case minus:
			out = append(out, s...)
			out = appendPad(out, ' ', pad)
		case zero && verb != 's' && verb != 'q' && verb != 'v' && verb != 't' && len(s) > 0 && (s[0] == '-' || s[0] == '+'):
			out = append(out, s[0])
			out = appendPad(out, '0', pad)
			out = append(out, s[1:]...)
		case zero:
			out = appendPad(out, '0', pad)
			out = append(out, s...)
		default:
			out = appendPad(out, ' ', pad)
			out = append(out, s...)
		}
	}
	if next < len(args) {
		out = append(out, "%!(EXTRA"...)
		for i, a := range args[next:] {
			if i > 0 {
				out = append(out, ',')
			}
			s, _ := formatArg(a, 'v', -1)
			out = append(out, ' ')
			out = append(out, s...)
		}
		out = append(out, ')')
	}
	return string(out)
}

// digits reads a decimal number at format[i:]: -1 when there is none.
func digits(format string, i int) (int, int) {
	n := -1
	for ; i < len(format) && format[i] >= '0' && format[i] <= '9'; i++ {
		n = max(n, 0)*10 + int(format[i]-'0')
		if n > 1e6 {
			n = 1e6
		}
	}
	return n, i
}

func appendPad(b []byte, c byte, n int) []byte {
	for range n {
		b = append(b, c)
	}
	return b
}

// formatArg formats one argument for verb, with precision prec (-1 for
// none); ok is false for a verb the argument's type does not take, with
// s what goes inside %!verb(...).
func formatArg(a any, verb byte, prec int) (s string, ok bool) {
	switch v := a.(type) {
	case nil:
		if verb == 'v' {
			return "<nil>", true
		}
		return "<nil>", false
	case error:
		return formatString(v.Error(), verb, prec)
	case interface{ String() string }:
		return formatString(v.String(), verb, prec)
	case string:
		return formatString(v, verb, prec)
	case []byte:
		if verb == 'v' {
			b := []byte{'['}
			for i, c := range v {
				if i > 0 {
					b = append(b, ' ')
				}
				b = strconv.AppendUint(b, uint64(c), 10)
			}
			return string(append(b, ']')), true
		}
		return formatString(string(v), verb, prec)
	case bool:
		if verb == 'v' || verb == 't' {
			return strconv.FormatBool(v), true
		}
		return "bool=" + strconv.FormatBool(v), false
	case int:
		return formatInt(int64(v), verb)
	case int8:
		return formatInt(int64(v), verb)
	case int16:
		return formatInt(int64(v), verb)
	case int32:
		return formatInt(int64(v), verb)
	case int64:
		return formatInt(v, verb)
	case uint:
		return formatUint(uint64(v), verb)
	case uint8:
		return formatUint(uint64(v), verb)
	case uint16:
		return formatUint(uint64(v), verb)
	case uint32:
		return formatUint(uint64(v), verb)
	case uint64:
		return formatUint(v, verb)
	case uintptr:
		return formatUint(uint64(v), verb)
	case float32:
		return formatFloat(float64(v), verb, prec, 32)
	case float64:
		return formatFloat(v, verb, prec, 64)
	}
	return "unsupported", false
}

func formatString(s string, verb byte, prec int) (string, bool) {
	if prec >= 0 && (verb == 's' || verb == 'v' || verb == 'q') {
		n := 0
		for i := range s {
			if n == prec {
				s = s[:i]
				break
			}
			n++
		}
	}
	switch verb {
	case 's', 'v':
		return s, true
	case 'q':
		return strconv.Quote(s), true
	case 'x', 'X':
		const lower, upper = "0123456789abcdef", "0123456789ABCDEF"
		hex := lower
		if verb == 'X' {
			hex = upper
		}
		b := make([]byte, 0, 2*len(s))
		for i := 0; i < len(s); i++ {
			b = append(b, hex[s[i]>>4], hex[s[i]&15])
		}
		return string(b), true
	}
	return "string=" + s, false
}

func formatInt(v int64, verb byte) (string, bool) {
	switch verb {
	case 'd', 'v':
		return strconv.FormatInt(v, 10), true
	case 'x', 'X':
		s := strconv.FormatInt(v, 16)
		if verb == 'X' {
			s = upperHex(s)
		}
		return s, true
	case 'c':
		return string(rune(v)), true
	case 'q':
		return strconv.QuoteRune(rune(v)), true
	}
	return "int=" + strconv.FormatInt(v, 10), false
}

func formatUint(v uint64, verb byte) (string, bool) {
	switch verb {
	case 'd', 'v':
		return strconv.FormatUint(v, 10), true
	case 'x', 'X':
		s := strconv.FormatUint(v, 16)
		if verb == 'X' {
			s = upperHex(s)
		}
		return s, true
	case 'c':
		return string(rune(v)), true
	case 'q':
		return strconv.QuoteRune(rune(v)), true
	}
	return "uint=" + strconv.FormatUint(v, 10), false
}

func upperHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func formatFloat(v float64, verb byte, prec, bits int) (string, bool) {
	switch verb {
	case 'v', 'g':
		return strconv.FormatFloat(v, 'g', prec, bits), true
	case 'f', 'e':
		if prec < 0 {
			prec = 6
		}
		return strconv.FormatFloat(v, verb, prec, bits), true
	}
	return "float64=" + strconv.FormatFloat(v, 'g', -1, bits), false
}
