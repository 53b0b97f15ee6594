package schedule

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"iop/rooms/attendance"
)

// ForAttendance lets attendance see the schedule: the sessions each client
// was expected at (absences, at_risk), who is enrolled, and each program's
// attendance policy and billing settings.
func ForAttendance(s *Store) Attendance { return Attendance{s} }

// AttendanceOptions returns o with the schedule s as attendance's
// Schedule, Roster and Programs: the one place where iopd and iopctl wire
// the schedule into attendance.
func AttendanceOptions(s *Store, o attendance.Options) attendance.Options {
	a := ForAttendance(s)
	o.Schedule, o.Roster, o.Programs = a, a, a
	return o
}

// Attendance is the schedule as attendance reads it.
type Attendance struct{ s *Store }

var (
	_ attendance.Schedule = Attendance{}
	_ attendance.Roster   = Attendance{}
)

// Expected implements attendance.Schedule. A program without a schedule, or
// a person not enrolled in it, has none: attendance.ErrNoSchedule.
func (a Attendance) Expected(ctx context.Context, program, sub string, from, to time.Time) ([]attendance.Expected, error) {
	sch, err := a.s.LoadFor(ctx, program, sub)
	if errors.Is(err, ErrNotFound) {
		return nil, attendance.ErrNoSchedule
	}
	if err != nil {
		return nil, err
	}
	if _, enrolled := sch.Enrollments[sub]; !enrolled {
		return nil, attendance.ErrNoSchedule
	}
	var out []attendance.Expected
	for _, o := range sch.Sessions(sub, from, to) {
		out = append(out, attendance.Expected{Room: o.ID, Title: o.Title, Kind: o.Kind, Start: o.Start, End: o.End})
	}
	return out, nil
}

// Enrolled implements attendance.Roster: the clients enrolled at any time
// in [from, to).
func (a Attendance) Enrolled(ctx context.Context, program string, from, to time.Time) ([]string, error) {
	sch, err := a.s.Load(ctx, program)
	if errors.Is(err, ErrNotFound) {
		return nil, nil // a program without a schedule enrolls nobody
	}
	if err != nil {
		return nil, err
	}
	// to is exclusive: a client who starts on the next Monday is not in
	// this week.
	first, last := DateOf(from, sch.Location()), DateOf(to.Add(-time.Nanosecond), sch.Location())
	var out []string
	for sub, e := range sch.Enrollments {
		if !e.Start.After(last) && (e.End.IsZero() || !e.End.Before(first)) {
			out = append(out, sub)
		}
	}
	sort.Strings(out)
	return out, nil
}

// SyncAttendance makes attendance follow a program's schedule: its time
// zone, and each enrolled client's weekly targets. Call it after seeding or
// replacing a whole program.
func SyncAttendance(ctx context.Context, s *Store, att *attendance.Store, program string) error {
	p, err := s.Program(ctx, program)
	if err != nil {
		return err
	}
	if err := att.SetProgramZone(ctx, program, p.TimeZone); err != nil {
		return err
	}
	es, err := s.Enrollments(ctx, program)
	if err != nil {
		return err
	}
	for _, e := range es {
		if err := SyncTargets(ctx, att, program, e.Sub, &e); err != nil {
			return err
		}
	}
	return nil
}

// StoredEnrollment reads back sub's enrollment after a change and gives
// attendance (unless nil) its weekly targets: what the staff API and iopctl
// do after every enrollment change.
func StoredEnrollment(ctx context.Context, s *Store, att *attendance.Store, program, sub string) (*Enrollment, error) {
	e, err := s.Enrollment(ctx, program, sub)
	if err != nil {
		return nil, err
	}
	if att != nil {
		if err := SyncTargets(ctx, att, program, sub, e); err != nil {
			return nil, fmt.Errorf("attendance targets: %w", err)
		}
	}
	return e, nil
}

// SyncTargets gives attendance the weekly targets of sub's enrollment e
// (its own, or the defaults it takes); a nil e (an erased enrollment)
// returns sub to the program's default. It is the one place where weekly
// targets go from the schedule into attendance: seeding, the staff API and
// iopctl all call it.
func SyncTargets(ctx context.Context, att *attendance.Store, program, sub string, e *Enrollment) error {
	var t attendance.Targets
	if e != nil {
		d := e.WithDefaults()
		t = attendance.Targets{Hours: d.TargetHours, Days: d.TargetDays}
	}
	return att.SetTargets(ctx, program, sub, t)
}
