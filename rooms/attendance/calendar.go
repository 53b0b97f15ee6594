package attendance

import (
	"time"

	"iop/rooms/civil"
)

// The calendar attendance rolls up into is the domain's one civil calendar
// (package civil), shared with the schedule: these names are the same
// types, kept so that attendance reads as before.
type (
	// Date is a calendar date in a program's time zone (a "local day").
	Date = civil.Date
	// Week is an ISO 8601 week (Monday to Sunday) of local dates.
	Week = civil.Week
)

// DateOf returns the local date of t in loc (civil.DateOf).
func DateOf(t time.Time, loc *time.Location) Date { return civil.DateOf(t, loc) }

// ParseDate reads a date written as 2006-01-02 (civil.ParseDate).
func ParseDate(s string) (Date, error) { return civil.ParseDate(s) }

// WeekOf returns the ISO week of t's local date in loc (civil.WeekOf).
func WeekOf(t time.Time, loc *time.Location) Week { return civil.WeekOf(t, loc) }

// ParseWeek reads a week written as 2026-W45 (civil.ParseWeek).
func ParseWeek(s string) (Week, error) { return civil.ParseWeek(s) }
