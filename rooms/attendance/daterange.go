package attendance

import (
	"errors"
	"fmt"
	"time"
)

// DateRange is the local dates From to To, both included: the dates of
// service a billing export covers (an ISO week, a billing month).
type DateRange struct {
	From Date `json:"from"`
	To   Date `json:"to"`
}

// MaxRangeDays is the longest DateRange a billing export covers: a
// calendar quarter (92 days), so that one request never reads a year.
const MaxRangeDays = 92

// ErrRange is returned for a date range a billing export refuses.
var ErrRange = errors.New("attendance: bad date range")

// WeekRange returns the dates of an ISO week, Monday to Sunday.
func WeekRange(w Week) DateRange { return DateRange{From: w.Monday(), To: w.Monday().AddDays(6)} }

// ParseRange reads "from" and "to" as YYYY-MM-DD and checks the range.
func ParseRange(from, to string) (DateRange, error) {
	f, err := ParseDate(from)
	if err != nil {
		return DateRange{}, fmt.Errorf("%w: from %q is not a date like 2026-11-01", ErrRange, from)
	}
	t, err := ParseDate(to)
	if err != nil {
		return DateRange{}, fmt.Errorf("%w: to %q is not a date like 2026-11-30", ErrRange, to)
	}
	r := DateRange{From: f, To: t}
	return r, r.Check()
}

// Check refuses a reversed range and one longer than MaxRangeDays.
func (r DateRange) Check() error {
	switch {
	case r.From.IsZero() || r.To.IsZero():
		return fmt.Errorf("%w: from and to are both required", ErrRange)
	case r.To.Before(r.From):
		return fmt.Errorf("%w: to %s comes before from %s", ErrRange, r.To, r.From)
	case r.Days() > MaxRangeDays:
		return fmt.Errorf("%w: %d days from %s to %s; at most %d", ErrRange, r.Days(), r.From, r.To, MaxRangeDays)
	}
	return nil
}

// Days returns how many dates the range holds.
func (r DateRange) Days() int {
	a, b := r.From.Start(time.UTC), r.To.Start(time.UTC)
	return int(b.Sub(a)/(24*time.Hour)) + 1
}

// Contains reports whether d is in the range.
func (r DateRange) Contains(d Date) bool { return !d.Before(r.From) && !d.After(r.To) }

// Start returns local midnight of From in loc.
func (r DateRange) Start(loc *time.Location) time.Time { return r.From.Start(loc) }

// End returns local midnight after To in loc.
func (r DateRange) End(loc *time.Location) time.Time { return r.To.AddDays(1).Start(loc) }

// Weeks returns the ISO weeks the range touches, in order.
func (r DateRange) Weeks() []Week {
	var out []Week
	for w := r.From.Week(); !w.Monday().After(r.To); w = w.Add(1) {
		out = append(out, w)
	}
	return out
}

// String writes the range as "FROM..TO".
func (r DateRange) String() string { return r.From.String() + ".." + r.To.String() }
