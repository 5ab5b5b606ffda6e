package config

import (
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  string
	}{
		{in: "0", want: 0},
		{in: "4096", want: 4096},
		{in: "64KiB", want: 64 * KiB},
		{in: "64MiB", want: 64 * MiB},
		{in: "64 MiB", want: 64 * MiB},
		{in: " 4GiB ", want: 4 * GiB},
		{in: "100B", want: 100},
		{in: "64MB", err: `unknown unit "MB", want KiB, MiB or GiB`},
		{in: "64mib", err: `unknown unit "mib"`},
		{in: "1.5GiB", err: `unknown unit ".5GiB"`},
		{in: "-1", err: "want a number of bytes"},
		{in: "", err: "want a number of bytes"},
		{in: "MiB", err: "want a number of bytes"},
		{in: "9223372036854775807", want: 1<<63 - 1},
		{in: "9223372036854775808", err: "value out of range"},
		{in: "9000000000GiB", err: "too large"},
	}
	for _, tc := range tests {
		got, err := ParseByteSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseByteSize(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := map[ByteSize]string{
		0:           "0",
		100:         "100",
		KiB:         "1KiB",
		1536 * KiB:  "1536KiB",
		128 * MiB:   "128MiB",
		4 * GiB:     "4GiB",
		GiB + 1:     "1073741825",
		-2 * KiB:    "-2KiB",
		64*KiB + 64: "65600",
	}
	for in, want := range tests {
		if got := in.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(in), got, want)
		}
		if in < 0 {
			continue
		}
		back, err := ParseByteSize(want)
		if err != nil || back != in {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %d", want, back, err, int64(in))
		}
	}
}

// TestUnitsFromTOML decodes sizes and durations the way the config does.
func TestUnitsFromTOML(t *testing.T) {
	type doc struct {
		Size ByteSize `toml:"size"`
		Dur  Duration `toml:"dur"`
	}
	tests := []struct {
		in   string
		want doc
		err  string
	}{
		{in: "size = 65536\ndur = \"1m30s\"", want: doc{64 * KiB, Duration{90 * time.Second}}},
		{in: `size = "2GiB"`, want: doc{Size: 2 * GiB}},
		{in: `size = -1`, err: "invalid size -1: negative"},
		{in: `size = 1.5`, err: `want a size such as 4096 or "64MiB", got float64`},
		{in: `size = true`, err: "got bool"},
		{in: `dur = 100`, err: "duration 100 has no unit"},
		{in: `dur = "10 s"`, err: `invalid duration "10 s"`},
		{in: `dur = 1.5`, err: "want a duration string"},
	}
	for _, tc := range tests {
		var got doc
		_, err := toml.Decode(tc.in, &got)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %+v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestDurationText(t *testing.T) {
	b, err := Duration{1500 * time.Millisecond}.MarshalText()
	if err != nil || string(b) != "1.5s" {
		t.Errorf("MarshalText = %q, %v", b, err)
	}
	var d Duration
	if err := d.UnmarshalText(b); err != nil || d.Duration != 1500*time.Millisecond {
		t.Errorf("UnmarshalText(%q) = %v, %v", b, d, err)
	}
}
