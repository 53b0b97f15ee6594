// Package civil is the one civil calendar of the domain: local dates, ISO
// weeks and times of day in a program's time zone, and the one way a zone
// is loaded. The schedule writes its timetable in these types and
// attendance rolls time up into them; both use this package, so a date
// reads, writes and compares the same everywhere.
package civil

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // programs name IANA zones; minimal images have no zoneinfo
)

// Date is a calendar date in a program's time zone (a "local day"),
// written 2006-01-02. The zero Date means "unset": it writes as "" and ""
// reads back as it.
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
		return Date{}, fmt.Errorf("date %q: want yyyy-mm-dd: %w", s, err)
	}
	return DateOf(t, time.UTC), nil
}

// String writes the date as 2006-01-02 ("" for the zero date).
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// IsZero reports whether d is the zero date (unset).
func (d Date) IsZero() bool { return d == Date{} }

// MarshalText writes the date as 2006-01-02.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a date written as 2006-01-02; "" is the zero date.
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	x, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = x
	return nil
}

// Start returns the local midnight that begins the date in loc. It is
// computed with time.Date, so a day is 23 or 25 hours long across a DST
// change.
func (d Date) Start(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// At returns the instant of the local clock time c on date d in loc. Local
// times stay put across DST changes: 09:00 is 09:00 in winter and summer.
func (d Date) At(c Clock, loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, int(c)/60, int(c)%60, 0, 0, loc)
}

// AddDays returns the date n calendar days later (earlier when n < 0).
func (d Date) AddDays(n int) Date {
	return DateOf(time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC), time.UTC)
}

// Compare returns -1, 0 or +1 as d is before, equal to or after o.
func (d Date) Compare(o Date) int {
	switch {
	case d.Year != o.Year:
		return cmpInt(d.Year, o.Year)
	case d.Month != o.Month:
		return cmpInt(int(d.Month), int(o.Month))
	default:
		return cmpInt(d.Day, o.Day)
	}
}

// Before reports whether d is an earlier date than o.
func (d Date) Before(o Date) bool { return d.Compare(o) < 0 }

// After reports whether d is a later date than o.
func (d Date) After(o Date) bool { return d.Compare(o) > 0 }

// Weekday returns the day of the week of d.
func (d Date) Weekday() time.Weekday {
	return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).Weekday()
}

// Week returns the ISO week the date belongs to.
func (d Date) Week() Week {
	y, w := time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC).ISOWeek()
	return Week{y, w}
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Clock is a local time of day in minutes after midnight, written 15:04.
type Clock int

// ParseClock reads a time of day written as 15:04 (00:00 to 23:59).
func ParseClock(s string) (Clock, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || !digits(h) || !digits(m) || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("time of day %q: want hh:mm from 00:00 to 23:59", s)
	}
	return Clock(hh*60 + mm), nil
}

// String writes the time of day as 15:04.
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// MarshalText writes the time of day as 15:04.
func (c Clock) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a time of day written as 15:04.
func (c *Clock) UnmarshalText(b []byte) error {
	x, err := ParseClock(string(b))
	if err != nil {
		return err
	}
	*c = x
	return nil
}

// LoadZone loads an IANA time zone by name (America/New_York, UTC). It
// refuses "" and "Local" (the host's zone, which differs from host to
// host): a program's days must be the same on every node and in iopctl.
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("time zone %q: want an IANA zone such as America/New_York", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q: want an IANA zone such as America/New_York", name)
	}
	return loc, nil
}

// digits reports whether s is ASCII digits only (strconv.Atoi also takes a
// sign, which would let "+9:00" through as a second spelling of 09:00).
func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
