package civil

import "testing"

// FuzzParseDate checks the dates of the attendance API (?from=, ?to=) and
// of schedules: an accepted date writes back as it was read.
func FuzzParseDate(f *testing.F) {
	for _, s := range []string{"2026-11-30", "0000-01-01", "2024-02-29", "2026-02-29", "", "2026-11-30T00:00:00Z", "2026-13-01", "9999-12-31", "2026-1-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDate(s)
		if err == nil && d.String() != s {
			t.Fatalf("ParseDate(%q) = %s", s, d)
		}
	})
}

// FuzzParseWeek checks ISO weeks (?week=2026-W45): an accepted week
// writes back as read, and its Monday lies in it.
func FuzzParseWeek(f *testing.F) {
	for _, s := range []string{"2026-W45", "2026-W53", "2020-W53", "2026-W00", "0000-W01", "-001-W01", "2026-W+1", "", "2026W45"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := ParseWeek(s)
		if err != nil {
			return
		}
		if w.String() != s || w.Monday().Week() != w {
			t.Fatalf("ParseWeek(%q) = %s (Monday %s in %s)", s, w, w.Monday(), w.Monday().Week())
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
