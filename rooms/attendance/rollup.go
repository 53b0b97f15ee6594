package attendance

import (
	"sort"
	"time"
)

// Totals is one person's attendance over a stretch of time: a local day or
// an ISO week.
type Totals struct {
	Amount
	Rooms map[string]Amount // per session (room)
	Days  map[Date]Amount   // per local date
}

// add counts a piece of a segment in room.
func (t *Totals) add(room string, p Piece) {
	if t.Rooms == nil {
		t.Rooms, t.Days = map[string]Amount{}, map[Date]Amount{}
	}
	t.Amount = t.Amount.Add(p.Amount)
	t.Rooms[room] = t.Rooms[room].Add(p.Amount)
	t.Days[p.Date] = t.Days[p.Date].Add(p.Amount)
}

// Sessions returns how many distinct sessions (rooms) were attended.
func (t *Totals) Sessions() int {
	n := 0
	for _, a := range t.Rooms {
		if a.Seconds > 0 {
			n++
		}
	}
	return n
}

// DaysAttended returns how many local dates have any attendance.
func (t *Totals) DaysAttended() int {
	n := 0
	for _, a := range t.Days {
		if a.Seconds > 0 {
			n++
		}
	}
	return n
}

// BillableDays returns how many local dates have at least min of direct
// service (3 hours for H0015 / S9480 by default): time with a therapist of
// the program in the room; time without one never counts.
func (t *Totals) BillableDays(min time.Duration) int {
	n := 0
	for _, a := range t.Days {
		if billableDay(a, min) {
			n++
		}
	}
	return n
}

// billableDay reports whether a day's attendance has at least min of direct
// service.
func billableDay(a Amount, min time.Duration) bool {
	return a.DirectSeconds > 0 && time.Duration(a.DirectSeconds)*time.Second >= min
}

// SortedDays returns the attended dates in order.
func (t *Totals) SortedDays() []Date {
	out := make([]Date, 0, len(t.Days))
	for d, a := range t.Days {
		if a.Seconds > 0 {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// PersonDay keys a person's day in a Ledger.
type PersonDay struct {
	Sub  string
	Date Date
}

// PersonWeek keys a person's ISO week in a Ledger.
type PersonWeek struct {
	Sub  string
	Week Week
}

// Ledger sums segments into rollups per person per local day and per ISO
// week of the local date, in one time zone. The store keeps the same sums
// in Redis; Ledger is the pure form, for tests and reports.
type Ledger struct {
	Loc   *time.Location
	Days  map[PersonDay]*Totals
	Weeks map[PersonWeek]*Totals
}

// NewLedger returns an empty ledger for the zone loc.
func NewLedger(loc *time.Location) *Ledger {
	return &Ledger{Loc: loc, Days: map[PersonDay]*Totals{}, Weeks: map[PersonWeek]*Totals{}}
}

// AddSegment counts a segment, an open one up to now.
func (l *Ledger) AddSegment(s *Segment, now time.Time) {
	for _, p := range s.Pieces(l.Loc, now) {
		l.Add(s.Sub, s.Room, p)
	}
}

// Add counts one piece of sub's presence in room.
func (l *Ledger) Add(sub, room string, p Piece) {
	dk, wk := PersonDay{sub, p.Date}, PersonWeek{sub, p.Date.Week()}
	if l.Days[dk] == nil {
		l.Days[dk] = &Totals{}
	}
	if l.Weeks[wk] == nil {
		l.Weeks[wk] = &Totals{}
	}
	l.Days[dk].add(room, p)
	l.Weeks[wk].add(room, p)
}

// Week returns sub's totals for week (empty when nothing was attended).
func (l *Ledger) Week(sub string, w Week) *Totals {
	if t := l.Weeks[PersonWeek{sub, w}]; t != nil {
		return t
	}
	return &Totals{}
}

// Day returns sub's totals for a date (empty when nothing was attended).
func (l *Ledger) Day(sub string, d Date) *Totals {
	if t := l.Days[PersonDay{sub, d}]; t != nil {
		return t
	}
	return &Totals{}
}
