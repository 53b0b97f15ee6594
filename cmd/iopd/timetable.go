package main

import (
	"bytes"
	"context"
	"errors"
	"time"

	"iop/rooms/attendance"
	"iop/rooms/schedule"
)

// timetable lets attendance see the schedule: the sessions each client was
// expected at (absences, at_risk) and who is enrolled.
type timetable struct{ s *schedule.Store }

var (
	_ attendance.Schedule = timetable{}
	_ attendance.Roster   = timetable{}
)

// Expected implements attendance.Schedule.
func (t timetable) Expected(ctx context.Context, program, sub string, from, to time.Time) ([]attendance.Expected, error) {
	sch, err := t.s.LoadFor(ctx, program, sub)
	if errors.Is(err, schedule.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []attendance.Expected
	for _, o := range sch.Sessions(sub, from, to) {
		out = append(out, attendance.Expected{Room: o.ID, Title: o.Title, Kind: o.Kind, Start: o.Start, End: o.End})
	}
	return out, nil
}

// Enrolled implements attendance.Roster.
func (t timetable) Enrolled(ctx context.Context, program string, from, to time.Time) ([]string, error) {
	p, err := t.s.Program(ctx, program)
	if errors.Is(err, schedule.ErrNotFound) {
		return nil, nil // a program without a schedule enrolls nobody
	}
	if err != nil {
		return nil, err
	}
	es, err := t.s.Enrollments(ctx, program)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		return nil, err
	}
	first, last := schedule.DateOf(from, loc), schedule.DateOf(to, loc)
	var out []string
	for _, e := range es {
		if !e.Start.After(last) && (e.End.IsZero() || !e.End.Before(first)) {
			out = append(out, e.Sub)
		}
	}
	return out, nil
}

// seedExample loads the example program (deploy/program.example.yaml, built
// in) unless Redis has it already: staff edits are never overwritten.
func seedExample(ctx context.Context, s *schedule.Store) error {
	if _, err := s.Program(ctx, "example"); !errors.Is(err, schedule.ErrNotFound) {
		return err
	}
	f, err := schedule.LoadYAML(bytes.NewReader(schedule.Example))
	if err != nil {
		return err
	}
	return s.Seed(ctx, f)
}
