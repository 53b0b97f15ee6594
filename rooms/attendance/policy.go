package attendance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Policy is how a program decides what counts as attending: a scheduled
// session, a day toward the weekly target days. Each program sets its own
// in its schedule file (README, "Attendance"); zero fields take
// DefaultPolicy's.
type Policy struct {
	// SessionShare is the share of a scheduled session's length a client
	// must be present inside its window for the session to count as
	// attended (default 0.5).
	SessionShare float64 `json:"session_share"`
	// LateMargin is how late after the start a first arrival, and how
	// early before the end a last departure, may be without a flag
	// (default 10 minutes).
	LateMargin time.Duration `json:"late_margin"`
	// DayMinimum is the attended time a local day needs to count toward
	// the weekly target days (default 1 hour).
	DayMinimum time.Duration `json:"day_minimum"`
}

// DefaultPolicy returns the defaults the README gives reasons for: half a
// session, 10 minutes, one hour a day.
func DefaultPolicy() Policy {
	return Policy{SessionShare: 0.5, LateMargin: 10 * time.Minute, DayMinimum: time.Hour}
}

// WithDefaults fills the zero fields of p from DefaultPolicy.
func (p Policy) WithDefaults() Policy {
	d := DefaultPolicy()
	if p.SessionShare == 0 {
		p.SessionShare = d.SessionShare
	}
	if p.LateMargin == 0 {
		p.LateMargin = d.LateMargin
	}
	if p.DayMinimum == 0 {
		p.DayMinimum = d.DayMinimum
	}
	return p
}

// ErrPolicy is returned for a policy outside its ranges.
var ErrPolicy = errors.New("attendance: policy out of range")

// Check refuses a policy outside its ranges: a share in (0, 1], a margin
// from 0 to 1 hour, a day minimum from 0 to 12 hours (zero fields mean the
// defaults).
func (p Policy) Check() error {
	switch {
	case p.SessionShare < 0 || p.SessionShare > 1 || math.IsNaN(p.SessionShare):
		return fmt.Errorf("%w: session share %g is not between 0 and 1", ErrPolicy, p.SessionShare)
	case p.LateMargin < 0 || p.LateMargin > time.Hour:
		return fmt.Errorf("%w: late margin %s is not between 0 and 1h", ErrPolicy, p.LateMargin)
	case p.DayMinimum < 0 || p.DayMinimum > 12*time.Hour:
		return fmt.Errorf("%w: day minimum %s is not between 0 and 12h", ErrPolicy, p.DayMinimum)
	}
	return nil
}

// ProgramConfig gives attendance each program's own settings. The
// schedule package implements it from the program's schedule file;
// without it every program has DefaultPolicy and DefaultBilling.
type ProgramConfig interface {
	// Policy returns the program's attendance policy (zero fields: the
	// defaults).
	Policy(ctx context.Context, program string) (Policy, error)
	// Billing returns the program's billing settings (zero fields: the
	// defaults).
	Billing(ctx context.Context, program string) (Billing, error)
}

// policy returns a program's policy with its defaults filled in.
func (s *Store) policy(ctx context.Context, program string) (Policy, error) {
	if s.opts.Programs == nil {
		return DefaultPolicy(), nil
	}
	p, err := s.opts.Programs.Policy(ctx, program)
	if err != nil {
		return Policy{}, fmt.Errorf("read attendance policy: %w", err)
	}
	return p.WithDefaults(), nil
}

// SessionAttendance is a client's attendance of one scheduled session as
// the policy judges it.
type SessionAttendance struct {
	Room  string    `json:"room"`
	Title string    `json:"title,omitempty"`
	Kind  string    `json:"kind,omitempty"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Seconds is the direct service inside [Start, End), up to now: time
	// present with a therapist of the program in the room (time without
	// one never counts toward attending).
	Seconds int64 `json:"seconds"`
	// Needed is the seconds the policy's share asks for.
	Needed int64 `json:"needed"`
	// Attended: Seconds reached Needed.
	Attended bool `json:"attended"`
	// Late: the first arrival inside the window came more than the
	// margin after the start; LateSeconds is how late.
	Late        bool  `json:"late"`
	LateSeconds int64 `json:"late_seconds,omitempty"`
	// LeftEarly: the session is over and the last departure came more than
	// the margin before its end; EarlySeconds is how early.
	LeftEarly    bool  `json:"left_early"`
	EarlySeconds int64 `json:"early_seconds,omitempty"`
	// Over: the session has ended (now is at or after End).
	Over bool `json:"over"`
	// Absence is the reason staff recorded for not attending (excused,
	// no_show, cancelled); "" when none.
	Absence AbsenceReason `json:"absence,omitempty"`
}

// Judge applies the policy to one scheduled session: segs are the
// person's segments (any room: only those in x.Room count), now the time
// of the report (an open segment counts up to it).
func (p Policy) Judge(x Expected, segs []*Segment, now time.Time) SessionAttendance {
	p = p.WithDefaults()
	a := SessionAttendance{Room: x.Room, Title: x.Title, Kind: string(x.Kind), Start: x.Start, End: x.End, Over: !now.Before(x.End)}
	length := x.End.Sub(x.Start)
	a.Needed = int64(math.Ceil(p.SessionShare * length.Seconds()))
	windowEnd := minTime(x.End, now)
	var first, last time.Time
	for _, seg := range segs {
		if seg.Room != x.Room {
			continue
		}
		from, to := maxTime(seg.Start, x.Start), minTime(seg.until(now), windowEnd)
		if !to.After(from) {
			continue
		}
		n := seg.measure(from, to).DirectSeconds
		if n == 0 {
			continue
		}
		a.Seconds += n
		if arr := seg.firstPresent(from, to); first.IsZero() || arr.Before(first) {
			first = arr
		}
		if dep := seg.lastPresent(from, to); dep.After(last) {
			last = dep
		}
	}
	a.Attended = a.Seconds > 0 && a.Seconds >= a.Needed
	if first.IsZero() {
		return a
	}
	if late := first.Sub(x.Start); late > p.LateMargin {
		a.Late, a.LateSeconds = true, int64(late/time.Second)
	}
	if early := x.End.Sub(last); a.Over && early > p.LateMargin {
		a.LeftEarly, a.EarlySeconds = true, int64(early/time.Second)
	}
	return a
}

// firstPresent returns the first time in [from, to) outside the gaps.
func (s *Segment) firstPresent(from, to time.Time) time.Time {
	t := from
	for _, g := range s.Gaps {
		if !g.From.After(t) && g.To.After(t) {
			t = g.To
		}
	}
	return minTime(t, to)
}

// lastPresent returns the end of the last stretch in [from, to) outside
// the gaps.
func (s *Segment) lastPresent(from, to time.Time) time.Time {
	t := to
	for i := len(s.Gaps) - 1; i >= 0; i-- {
		if g := s.Gaps[i]; g.From.Before(t) && !g.To.Before(t) {
			t = g.From
		}
	}
	return maxTime(t, from)
}

// DaysReaching returns how many local dates have at least min of direct
// service (any when min is zero): the days that count toward the weekly
// target days. It is the billable-day rule with the program's day minimum.
func (t *Totals) DaysReaching(min time.Duration) int { return t.BillableDays(min) }
