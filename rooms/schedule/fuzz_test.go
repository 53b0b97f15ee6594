package schedule

import (
	"bytes"
	"testing"
)

// FuzzLoadYAML feeds schedule files (the staff API's and iopctl's input)
// to the loader: it must refuse or accept, never panic or hang.
func FuzzLoadYAML(f *testing.F) {
	f.Add(Example)
	f.Add([]byte("program:\n  id: p\n  name: P\n  time_zone: UTC\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := LoadYAML(bytes.NewReader(data))
		if err == nil && file == nil {
			t.Fatal("no file and no error")
		}
	})
}

// FuzzParseDate checks that every date the parser accepts writes back as
// it was read.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-11-30", "0000-01-01", "2026-02-29", "2026-13-01", "9999-12-31", "", "2026-1-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err == nil && d.String() != s {
			t.Fatalf("ParseDate(%q) = %s", s, d)
		}
	})
}

// FuzzParseClock checks times of day (session starts): accepted ones are
// within the day and write back as read.
func FuzzParseClock(f *testing.F) {
	for _, s := range []string{"09:00", "23:59", "24:00", "-1:00", "+9:00", "9:00", "", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseClock(s)
		if err != nil {
			return
		}
		if c < 0 || c >= 24*60 || c.String() != s {
			t.Fatalf("ParseClock(%q) = %d (%s)", s, int(c), c)
		}
	})
}

// FuzzParseWeekday checks weekday names.
func FuzzParseWeekday(f *testing.F) {
	for _, s := range []string{"mon", "Monday", " SUN ", "", "xyz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWeekday(s)
		if err == nil && (w < 0 || w > 6) {
			t.Fatalf("ParseWeekday(%q) = %d", s, int(w))
		}
	})
}
