package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a string such as "150ms" or "5m".
// A bare number is refused: "timeout = 100" could mean seconds or
// milliseconds, and guessing wrong by a factor of 1000 is worse than an
// error.
type Duration struct{ time.Duration }

// UnmarshalTOML implements toml.Unmarshaler.
func (d *Duration) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		return d.UnmarshalText([]byte(v))
	case int64:
		return fmt.Errorf("duration %d has no unit: write it as a string such as \"%ds\" or \"%dms\"", v, v, v)
	}
	return fmt.Errorf("want a duration string such as \"100ms\", got %T", v)
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number and a unit such as \"100ms\", \"5s\", \"24h\"", b)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// ByteSize is a size in bytes, written as an integer (bytes) or as a string
// with a binary unit: "512KiB", "64MiB", "1GiB" (also "4096" and "64 MiB").
// Decimal units (KB, MB) are refused rather than guessed.
type ByteSize int64

// Binary units, for ByteSize values in code.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
)

var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB}, {"B", 1},
}

// ParseByteSize parses the text form of a ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	end := 0
	for end < len(t) && t[end] >= '0' && t[end] <= '9' {
		end++
	}
	if end == 0 {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes or a number and a unit (KiB, MiB, GiB)", s)
	}
	n, err := strconv.ParseInt(t[:end], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", s, errors.Unwrap(err))
	}
	unit := strings.TrimSpace(t[end:])
	if unit == "" {
		return ByteSize(n), nil
	}
	for _, u := range byteUnits {
		if unit == u.name {
			if n > math.MaxInt64/int64(u.size) {
				return 0, fmt.Errorf("invalid size %q: too large", s)
			}
			return ByteSize(n) * u.size, nil
		}
	}
	return 0, fmt.Errorf("invalid size %q: unknown unit %q, want KiB, MiB or GiB", s, unit)
}

// UnmarshalTOML implements toml.Unmarshaler: an integer is bytes, a string
// is parsed by ParseByteSize.
func (b *ByteSize) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("invalid size %d: negative", v)
		}
		*b = ByteSize(v)
		return nil
	case string:
		return b.UnmarshalText([]byte(v))
	}
	return fmt.Errorf("want a size such as 4096 or \"64MiB\", got %T", v)
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// String formats b with the largest unit that divides it exactly: "64MiB",
// "1536KiB", "100".
func (b ByteSize) String() string {
	if b != 0 {
		for _, u := range byteUnits[:3] {
			if b%u.size == 0 {
				return strconv.FormatInt(int64(b/u.size), 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }
