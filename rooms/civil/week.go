package civil

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Week is an ISO 8601 week (Monday to Sunday) of local dates.
type Week struct {
	Year int // ISO year, which differs from the calendar year around New Year
	Num  int // 1 to 53
}

// WeekOf returns the ISO week of t's local date in loc.
func WeekOf(t time.Time, loc *time.Location) Week { return DateOf(t, loc).Week() }

// ParseWeek reads a week written as 2026-W45 (docs/api.md's yyyy-Www).
func ParseWeek(s string) (Week, error) {
	y, n, ok := strings.Cut(s, "-W")
	if !ok || len(y) != 4 || len(n) != 2 || !digits(y) || !digits(n) {
		return Week{}, fmt.Errorf("week %q: want yyyy-Www", s)
	}
	year, err1 := strconv.Atoi(y)
	num, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil {
		return Week{}, fmt.Errorf("week %q: want yyyy-Www", s)
	}
	w := Week{year, num}
	if num < 1 || num > 53 || w.Monday().Week() != w {
		return Week{}, fmt.Errorf("week %q: no such ISO week", s)
	}
	return w, nil
}

// String writes the week as 2026-W45.
func (w Week) String() string { return fmt.Sprintf("%04d-W%02d", w.Year, w.Num) }

// MarshalText writes the week as 2026-W45.
func (w Week) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText reads a week written as 2026-W45.
func (w *Week) UnmarshalText(b []byte) error {
	x, err := ParseWeek(string(b))
	*w = x
	return err
}

// Monday returns the first date of the week. January 4th is always in
// week 1.
func (w Week) Monday() Date {
	jan4 := time.Date(w.Year, time.January, 4, 12, 0, 0, 0, time.UTC)
	back := (int(jan4.Weekday()) + 6) % 7 // days since Monday
	return DateOf(jan4, time.UTC).AddDays(-back + 7*(w.Num-1))
}

// Dates returns the seven dates of the week, Monday first.
func (w Week) Dates() []Date {
	m := w.Monday()
	out := make([]Date, 7)
	for i := range out {
		out[i] = m.AddDays(i)
	}
	return out
}

// Start returns local midnight of the week's Monday in loc.
func (w Week) Start(loc *time.Location) time.Time { return w.Monday().Start(loc) }

// End returns local midnight of the next Monday in loc: the week is the
// half-open interval [Start, End), 167 to 169 hours long.
func (w Week) End(loc *time.Location) time.Time { return w.Monday().AddDays(7).Start(loc) }

// Add returns the week n weeks later (earlier when n < 0).
func (w Week) Add(n int) Week { return w.Monday().AddDays(7 * n).Week() }

// Contains reports whether the date falls in the week.
func (w Week) Contains(d Date) bool { return d.Week() == w }
