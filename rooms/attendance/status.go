package attendance

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"iop/rooms"
)

// Targets is a client's weekly goal.
type Targets struct {
	Hours float64 `json:"target_hours"`
	Days  int     `json:"target_days"`
}

// AbsencePolicy says when missed sessions are flagged.
type AbsencePolicy struct {
	Consecutive int // the latest this many expected sessions all missed (default 2)
	InWindow    int // this many missed within Window weeks (default 6)
	Window      int // weeks (default 12)
}

// Rules are the domain numbers of attendance, each configurable (docs/api.md, "Attendance": billable days and weekly targets).
type Rules struct {
	Targets            Targets       // default weekly targets: 9 hours, 3 days
	MinHours, MaxHours float64       // allowed per-client hour targets: 6 to 19
	MinDays, MaxDays   int           // allowed per-client day targets: 3 to 5
	BillableDay        time.Duration // direct service that makes a day billable: 3 h
	MaxDaily           time.Duration // with no schedule, the most one day can still add: 4 h
	Absences           AbsencePolicy
}

// DefaultRules returns the rules docs/api.md states under "Attendance".
func DefaultRules() Rules {
	return Rules{
		Targets:  Targets{Hours: 9, Days: 3},
		MinHours: 6, MaxHours: 19,
		MinDays: 3, MaxDays: 5,
		BillableDay: 3 * time.Hour,
		MaxDaily:    4 * time.Hour,
		Absences:    AbsencePolicy{Consecutive: 2, InWindow: 6, Window: 12},
	}
}

// withDefaults fills the zero fields of r from DefaultRules.
func (r Rules) withDefaults() Rules {
	d := DefaultRules()
	if r.Targets.Hours == 0 {
		r.Targets.Hours = d.Targets.Hours
	}
	if r.Targets.Days == 0 {
		r.Targets.Days = d.Targets.Days
	}
	if r.MinHours == 0 && r.MaxHours == 0 {
		r.MinHours, r.MaxHours = d.MinHours, d.MaxHours
	}
	if r.MinDays == 0 && r.MaxDays == 0 {
		r.MinDays, r.MaxDays = d.MinDays, d.MaxDays
	}
	if r.BillableDay == 0 {
		r.BillableDay = d.BillableDay
	}
	if r.MaxDaily == 0 {
		r.MaxDaily = d.MaxDaily
	}
	if r.Absences.Consecutive == 0 {
		r.Absences.Consecutive = d.Absences.Consecutive
	}
	if r.Absences.InWindow == 0 {
		r.Absences.InWindow = d.Absences.InWindow
	}
	if r.Absences.Window == 0 {
		r.Absences.Window = d.Absences.Window
	}
	return r
}

// ErrTargets is returned for weekly targets outside the allowed range.
var ErrTargets = errors.New("attendance: weekly targets out of range")

// CheckTargets refuses targets outside the rules' ranges.
func (r Rules) CheckTargets(t Targets) error {
	if t.Hours < r.MinHours || t.Hours > r.MaxHours {
		return fmt.Errorf("%w: %g hours is not between %g and %g", ErrTargets, t.Hours, r.MinHours, r.MaxHours)
	}
	if t.Days < r.MinDays || t.Days > r.MaxDays {
		return fmt.Errorf("%w: %d days is not between %d and %d", ErrTargets, t.Days, r.MinDays, r.MaxDays)
	}
	return nil
}

// Status is how a client's week stands against their targets.
type Status string

// The weekly statuses of a client's week (docs/api.md, the week report's
// status).
const (
	// StatusOnTrack: the targets are met, or the week is not over and
	// they can still be met.
	StatusOnTrack Status = "on_track"
	// StatusAtRisk: the week is not over and what it still holds (the
	// client's remaining scheduled sessions, or with no schedule the
	// remaining days at MaxDaily each) cannot reach the targets.
	StatusAtRisk Status = "at_risk"
	// StatusBelow: the week is over and the targets were not met.
	StatusBelow Status = "below"
)

// Expected is a scheduled session a client was expected at: one occurrence
// of their track, or a session booked for them. Room is the id of the room
// the session is held in, which is how attendance is matched to it.
type Expected struct {
	Room  string     `json:"room"`
	Title string     `json:"title,omitempty"`
	Kind  rooms.Kind `json:"kind,omitempty"`
	Start time.Time  `json:"start"`
	End   time.Time  `json:"end"`
}

// ErrNoSchedule is what a Schedule answers for a person it has no
// timetable for (an ad-hoc program, a client not enrolled): their status
// then follows the no-schedule rule.
var ErrNoSchedule = errors.New("attendance: no schedule for this person")

// Schedule tells attendance which sessions a client is expected at. The
// schedule package implements it; without one, weekly status falls back to
// the MaxDaily rule and no absences are reported.
type Schedule interface {
	// Expected returns sub's sessions that start in [from, to), in any order.
	Expected(ctx context.Context, program, sub string, from, to time.Time) ([]Expected, error)
}

// Roster lists the people a program report must include even without
// attendance (the enrolled clients). The schedule package implements it.
type Roster interface {
	// Enrolled returns the subs of the clients enrolled in program at any
	// time in [from, to).
	Enrolled(ctx context.Context, program string, from, to time.Time) ([]string, error)
}

// StatusInput is what a weekly status is decided from.
type StatusInput struct {
	Now      time.Time
	Loc      *time.Location
	Week     Week
	Totals   *Totals // attendance in the week so far, open segments up to Now
	Targets  Targets
	MaxDaily time.Duration
	// DayMinimum is the attended time a day needs to count toward
	// Targets.Days (Policy.DayMinimum; 0: any attendance).
	DayMinimum time.Duration
	// Scheduled says a schedule is known; Expected then lists the client's
	// sessions of the week (possibly none).
	Scheduled bool
	Expected  []Expected
}

// WeeklyStatus decides a client's status for a week:
//
//   - on_track when the direct-service seconds (time with a therapist of
//     the program in the room) reach Targets.Hours and the days whose
//     direct service reaches DayMinimum reach Targets.Days;
//   - otherwise below once the week is over (Now at or after local Monday
//     00:00 of the next week);
//   - otherwise on_track if what remains can still reach both targets, else
//     at_risk. What remains is, with a schedule, the rest of each expected
//     session that has not ended (a session on a date not yet attended
//     adds a day when the day's attendance and its remaining sessions can
//     still reach DayMinimum); with no schedule, MaxDaily on each
//     remaining local day (today: what is left of MaxDaily and of the
//     day), each adding a day on the same condition.
func WeeklyStatus(in StatusInput) Status {
	t := in.Totals
	if t == nil {
		t = &Totals{}
	}
	need := time.Duration(in.Targets.Hours * float64(time.Hour))
	// Only direct service counts toward the hours: time without a
	// clinician is recorded and shown, never counted.
	have := time.Duration(t.DirectSeconds) * time.Second
	days := t.DaysReaching(in.DayMinimum)
	if have >= need && days >= in.Targets.Days {
		return StatusOnTrack
	}
	end := in.Week.End(in.Loc)
	if !in.Now.Before(end) {
		return StatusBelow
	}
	counted := func(d Date, extra time.Duration) bool {
		a := time.Duration(t.Days[d].DirectSeconds)*time.Second + extra
		return a > 0 && a >= in.DayMinimum
	}
	var more time.Duration
	newDays := map[Date]bool{}
	if in.Scheduled {
		still := map[Date]time.Duration{}
		for _, x := range in.Expected {
			from, to := maxTime(x.Start, in.Now), minTime(x.End, end)
			if !to.After(from) || from.Before(in.Week.Start(in.Loc)) {
				continue
			}
			more += to.Sub(from)
			still[DateOf(from, in.Loc)] += to.Sub(from)
		}
		for d, extra := range still {
			if !counted(d, 0) && counted(d, extra) {
				newDays[d] = true
			}
		}
	} else {
		today := DateOf(in.Now, in.Loc)
		for d := today; in.Week.Contains(d); d = d.AddDays(1) {
			avail := min(in.MaxDaily, d.AddDays(1).Start(in.Loc).Sub(d.Start(in.Loc)))
			if d == today {
				done := time.Duration(t.Days[d].Seconds) * time.Second
				avail = min(in.MaxDaily-done, d.AddDays(1).Start(in.Loc).Sub(in.Now))
			}
			if avail <= 0 {
				continue
			}
			more += avail
			if !counted(d, 0) && counted(d, avail) {
				newDays[d] = true
			}
		}
	}
	if have+more >= need && days+len(newDays) >= in.Targets.Days {
		return StatusOnTrack
	}
	return StatusAtRisk
}

// Absences returns the expected sessions that ended by now and that the
// client did not attend at all (attended holds the rooms with any
// attendance), in start order.
func Absences(expected []Expected, attended map[string]bool, now time.Time) []Expected {
	var out []Expected
	for _, x := range sortedExpected(expected) {
		if !x.End.After(now) && !attended[x.Room] {
			out = append(out, x)
		}
	}
	return out
}

// Flag is a pattern of missed sessions that staff should look at.
type Flag struct {
	Rule  string   `json:"rule"`  // FlagConsecutive or FlagFrequent
	Count int      `json:"count"` // how many sessions were missed
	Rooms []string `json:"rooms"` // the missed sessions, oldest first
}

// The absence flag rules.
const (
	FlagConsecutive = "consecutive" // the latest sessions were all missed
	FlagFrequent    = "frequent"    // many missed within the window
)

// AbsenceFlags evaluates the policy at the moment at over the expected
// sessions that ended by then: consecutive when the latest
// p.Consecutive of them were all missed (Count is the whole current
// streak); frequent when at least p.InWindow started within the p.Window
// weeks before at and were missed.
func AbsenceFlags(expected []Expected, attended map[string]bool, at time.Time, p AbsencePolicy) []Flag {
	var ended []Expected
	for _, x := range sortedExpected(expected) {
		if !x.End.After(at) {
			ended = append(ended, x)
		}
	}
	var flags []Flag
	var streak []string
	for i := len(ended) - 1; i >= 0 && !attended[ended[i].Room]; i-- {
		streak = append([]string{ended[i].Room}, streak...)
	}
	if p.Consecutive > 0 && len(streak) >= p.Consecutive {
		flags = append(flags, Flag{Rule: FlagConsecutive, Count: len(streak), Rooms: streak})
	}
	since := at.AddDate(0, 0, -7*p.Window)
	var missed []string
	for _, x := range ended {
		if x.Start.After(since) && !attended[x.Room] {
			missed = append(missed, x.Room)
		}
	}
	if p.InWindow > 0 && len(missed) >= p.InWindow {
		flags = append(flags, Flag{Rule: FlagFrequent, Count: len(missed), Rooms: missed})
	}
	return flags
}

func sortedExpected(in []Expected) []Expected {
	out := append([]Expected(nil), in...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}
