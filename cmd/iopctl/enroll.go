package main

// enroll.go holds iopctl enroll: enrolling a client, changing their
// track, and ending the enrollment.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"iop/rooms/schedule"
)

// runEnroll enrolls a client, changes their track, or ends the enrollment.
func runEnroll(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "track":
			return enrollTrack(args[1:], getenv, stdout)
		case "end":
			return enrollEnd(args[1:], getenv, stdout)
		}
	}
	cmd := newCommand("enroll", "PROGRAM SUB -track TRACK -start DATE [-cohort C1,C2] [-target-hours 9] [-target-days 3] [-planned-days 90] [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	var (
		track   = cmd.String("track", "", "the track the client starts in (required)")
		start   = cmd.String("start", "", "first day, yyyy-mm-dd (required)")
		cohorts = cmd.String("cohort", "", "cohorts the client belongs to, comma-separated (women, veterans, ...)")
		hours   = cmd.Float64("target-hours", 0, "weekly hours target, 6 to 19 (0: 9)")
		days    = cmd.Int("target-days", 0, "weekly days target, 3 to 5 (0: 3)")
		planned = cmd.Int("planned-days", 0, "planned length in days, reviewed at its end (0: 90)")
	)
	pos, err := cmd.parseArgs(args, "PROGRAM", "SUB")
	if err != nil {
		return err
	}
	if *track == "" || *start == "" {
		return errors.New("enroll: -track and -start are required")
	}
	d, err := schedule.ParseDate(*start)
	if err != nil {
		return fmt.Errorf("enroll: -start: %w", err)
	}
	e := schedule.Enrollment{Sub: pos[1], Program: pos[0], Track: *track, Start: d, TargetHours: *hours, TargetDays: *days, PlannedDays: *planned}
	for _, c := range strings.Split(*cohorts, ",") {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(e.Cohorts, c) {
			e.Cohorts = append(e.Cohorts, c)
		}
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		if err := s.sched.Enroll(ctx, e); err != nil {
			return err
		}
		return printEnrollment(ctx, s, pos[0], pos[1], "enrolled", stdout)
	})
}

// printEnrollment syncs the targets and prints the stored enrollment.
func printEnrollment(ctx context.Context, s *stores, program, sub, what string, stdout io.Writer) error {
	e, err := schedule.StoredEnrollment(ctx, s.sched, s.att, program, sub)
	if err != nil {
		return err
	}
	d := e.WithDefaults()
	fmt.Fprintf(stdout, "%s %s in %s: track %s from %s, targets %gh and %d days a week, review %s", what, e.Sub, program, e.Track, e.Start, d.TargetHours, d.TargetDays, e.PlannedEnd())
	for _, c := range e.Changes {
		fmt.Fprintf(stdout, "; track %s from %s", c.Track, c.Effective)
	}
	if !e.End.IsZero() {
		fmt.Fprintf(stdout, "; ends %s (%s)", e.End, e.EndReason)
	}
	_, err = fmt.Fprintln(stdout)
	return err
}

func enrollTrack(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("enroll track", "PROGRAM SUB TRACK -effective DATE [-reason TEXT] [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	effective := cmd.String("effective", "", "first day in the new track, yyyy-mm-dd (required)")
	reason := cmd.String("reason", "", "why, for staff")
	pos, err := cmd.parseArgs(args, "PROGRAM", "SUB", "TRACK")
	if err != nil {
		return err
	}
	d, err := schedule.ParseDate(*effective)
	if err != nil {
		return fmt.Errorf("enroll track: -effective: %w", err)
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		if err := s.sched.ChangeTrack(ctx, pos[0], pos[1], pos[2], d, *reason); err != nil {
			return err
		}
		return printEnrollment(ctx, s, pos[0], pos[1], "moved", stdout)
	})
}

func enrollEnd(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("enroll end", "PROGRAM SUB -date DATE -reason discharge|completion|step_down [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	date := cmd.String("date", "", "the client's last day, yyyy-mm-dd (required)")
	reason := cmd.String("reason", "", "discharge, completion or step_down (required)")
	pos, err := cmd.parseArgs(args, "PROGRAM", "SUB")
	if err != nil {
		return err
	}
	d, err := schedule.ParseDate(*date)
	if err != nil {
		return fmt.Errorf("enroll end: -date: %w", err)
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		if err := s.sched.EndEnrollment(ctx, pos[0], pos[1], d, schedule.EndReason(*reason)); err != nil {
			return err
		}
		return printEnrollment(ctx, s, pos[0], pos[1], "ended", stdout)
	})
}
