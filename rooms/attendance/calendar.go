package attendance

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Date is a calendar date in a program's time zone (a "local day").
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// DateOf returns the local date of t in loc.
func DateOf(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return Date{y, m, d}
}

// ParseDate reads a date written as 2006-01-02.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: %w", s, err)
	}
	return DateOf(t, time.UTC), nil
}

// String writes the date as 2006-01-02.
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// MarshalText writes the date as 2006-01-02.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a date written as 2006-01-02.
func (d *Date) UnmarshalText(b []byte) error {
	x, err := ParseDate(string(b))
	*d = x
	return err
}

// Start returns the local midnight that begins the date in loc. It is
// computed with time.Date, so a day is 23 or 25 hours long across a DST
// change.
func (d Date) Start(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// AddDays returns the date n calendar days later (earlier when n < 0).
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC), time.UTC)
}

// Before reports whether d is an earlier date than o.
func (d Date) Before(o Date) bool {
	if d.Year != o.Year {
		return d.Year < o.Year
	}
	if d.Month != o.Month {
		return d.Month < o.Month
	}
	return d.Day < o.Day
}

// Week returns the ISO week the date belongs to.
func (d Date) Week() Week {
	y, w := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).ISOWeek()
	return Week{y, w}
}

// Weekday returns the day of the week of the date.
func (d Date) Weekday() time.Weekday {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday()
}

// Week is an ISO 8601 week (Monday to Sunday) of local dates.
type Week struct {
	Year int // ISO year, which differs from the calendar year around New Year
	Num  int // 1 to 53
}

// WeekOf returns the ISO week of t's local date in loc.
func WeekOf(t time.Time, loc *time.Location) Week { return DateOf(t, loc).Week() }

// ParseWeek reads a week written as 2026-W45 (PROTOCOL.md's yyyy-Www).
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

// digits reports whether s is ASCII digits only (strconv.Atoi also takes a
// sign, which would let "2026-W+1" through as a second spelling of a week).
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
