package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/chain"
	"iop/rooms/civil"
	"iop/rooms/schedule"
	"iop/rooms/store"
)

// The schedule and enrollment commands work on Redis directly (-redis or
// IOP_REDIS_URL), through the same calls as the staff API: every write is
// validated whole, and attendance is told the program's time zone and each
// client's weekly targets, as iopd does when staff change them.

// redisFlag adds the -redis flag, defaulting to IOP_REDIS_URL.
func redisFlag(cmd *command, getenv func(string) string) *string {
	return cmd.String("redis", getenv("IOP_REDIS_URL"), "Redis URL, e.g. redis://127.0.0.1:6379/0 [$IOP_REDIS_URL]")
}

// parseArgs parses flags anywhere among the arguments and returns the
// positional ones, which must be exactly names.
func (c *command) parseArgs(args []string, names ...string) ([]string, error) {
	var pos []string
	for {
		if err := c.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(c.stdout, "usage: %s %s\n", c.Name(), c.synopsis)
				c.SetOutput(c.stdout)
				c.PrintDefaults()
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w (run %q for usage)", c.Name(), err, c.Name()+" -h")
		}
		args = c.Args()
		if len(args) == 0 {
			break
		}
		pos, args = append(pos, args[0]), args[1:]
	}
	if len(pos) != len(names) {
		return nil, fmt.Errorf("%s: want %s (usage: %s %s)", c.Name(), strings.Join(names, " "), c.Name(), c.synopsis)
	}
	return pos, nil
}

// stores is what the Redis-backed commands work on.
type stores struct {
	st    *store.Store
	sched *schedule.Store
	att   *attendance.Store
}

// openStores connects to the deployment's Redis. An embedded Redis would
// be empty, so a URL is required.
func openStores(ctx context.Context, redisURL string, getenv func(string) string) (*stores, error) {
	if redisURL == "" {
		return nil, errors.New("no Redis: pass -redis URL or set IOP_REDIS_URL (the deployment's Redis)")
	}
	zone := time.UTC
	if z := getenv("IOP_TIMEZONE"); z != "" {
		loc, err := civil.LoadZone(z)
		if err != nil {
			return nil, fmt.Errorf("IOP_TIMEZONE: %w", err)
		}
		zone = loc
	}
	key, err := chain.ParseKey(getenv("IOP_ATTENDANCE_KEY"))
	if err != nil {
		return nil, fmt.Errorf("IOP_ATTENDANCE_KEY: %w", err)
	}
	oldKeys, err := chain.ParseKeys(getenv("IOP_ATTENDANCE_OLD_KEYS"))
	if err != nil {
		return nil, fmt.Errorf("IOP_ATTENDANCE_OLD_KEYS: %w", err)
	}
	st, err := store.Open(ctx, redisURL)
	if err != nil {
		return nil, err
	}
	sched := schedule.NewStore(st.Redis)
	att := attendance.New(st.Redis, attendance.Options{Zone: zone, Schedule: schedule.ForAttendance(sched), Roster: schedule.ForAttendance(sched), Programs: schedule.ForAttendance(sched), Key: key, OldKeys: oldKeys})
	return &stores{st: st, sched: sched, att: att}, nil
}

func (s *stores) Close() { s.st.Close() }

// withStores runs fn with the deployment's stores open, then closes them.
func withStores(redisURL string, getenv func(string) string, fn func(context.Context, *stores) error) error {
	ctx := context.Background()
	s, err := openStores(ctx, redisURL, getenv)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(ctx, s)
}

// syncTargets gives attendance the stored enrollment's weekly targets.
func (s *stores) syncTargets(ctx context.Context, program, sub string) (*schedule.Enrollment, error) {
	e, err := s.sched.Enrollment(ctx, program, sub)
	if err != nil {
		return nil, err
	}
	if err := schedule.SyncTargets(ctx, s.att, program, sub, e); err != nil {
		return nil, fmt.Errorf("attendance targets of %s: %w", sub, err)
	}
	return e, nil
}

// runSchedule dispatches iopctl schedule SUBCOMMAND.
func runSchedule(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("schedule: want example, seed, check, show, holiday, cancel, uncancel, book, unbook or feed")
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "seed":
		return scheduleSeed(rest, getenv, stdout)
	case "check":
		return scheduleCheck(rest, stdout)
	case "example":
		return scheduleExample(rest, stdout)
	case "show":
		return scheduleShow(rest, getenv, stdout)
	case "holiday":
		return scheduleHoliday(rest, getenv, stdout)
	case "cancel", "uncancel":
		return scheduleCancel(sub == "cancel", rest, getenv, stdout)
	case "book":
		return scheduleBook(rest, getenv, stdout)
	case "unbook":
		return scheduleUnbook(rest, getenv, stdout)
	case "feed":
		return scheduleFeed(rest, getenv, stdout)
	}
	return fmt.Errorf("schedule %s: unknown (want example, seed, check, show, holiday, cancel, uncancel, book, unbook or feed)", sub)
}

// summary describes a schedule file in one line.
func summary(f *schedule.File) string {
	sessions := len(f.Program.Shared)
	for _, t := range f.Program.Tracks {
		sessions += len(t.Sessions)
	}
	return fmt.Sprintf("program %s (%s): %d tracks, %d recurring sessions, %d holidays, %d enrollments, %d bookings",
		f.Program.ID, f.Program.TimeZone, len(f.Program.Tracks), sessions, len(f.Program.Holidays), len(f.Enrollments), len(f.Bookings))
}

func loadFile(path string) (*schedule.File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := schedule.LoadYAML(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// scheduleCheck validates a schedule file without storing it.
func scheduleCheck(args []string, stdout io.Writer) error {
	cmd := newCommand("schedule check", "FILE.yaml", stdout)
	pos, err := cmd.parseArgs(args, "FILE")
	if err != nil {
		return err
	}
	f, err := loadFile(pos[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, "ok:", summary(f))
	return err
}

// scheduleExample prints the example program (the one dev mode runs), as
// a start for a program's own file.
func scheduleExample(args []string, stdout io.Writer) error {
	cmd := newCommand("schedule example", "", stdout)
	if _, err := cmd.parseArgs(args); err != nil {
		return err
	}
	_, err := stdout.Write(schedule.Example)
	return err
}

// scheduleSeed validates a schedule file and stores it (the program is
// replaced; enrollments and bookings with the same sub or id too).
func scheduleSeed(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("schedule seed", "FILE.yaml [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	pos, err := cmd.parseArgs(args, "FILE")
	if err != nil {
		return err
	}
	f, err := loadFile(pos[0])
	if err != nil {
		return err
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		if err := s.sched.Seed(ctx, f); err != nil {
			return fmt.Errorf("%s: %w", pos[0], err)
		}
		if err := schedule.SyncAttendance(ctx, s.sched, s.att, f.Program.ID); err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, "seeded", summary(f))
		return err
	})
}

// weekOf reads -week (default: the current week in loc).
func weekOf(flagValue string, loc *time.Location) (attendance.Week, error) {
	if flagValue == "" {
		return attendance.WeekOf(time.Now(), loc), nil
	}
	w, err := attendance.ParseWeek(flagValue)
	if err != nil {
		return w, fmt.Errorf("-week: %w", err)
	}
	return w, nil
}

// scheduleShow prints a program's week: every occurrence in local time,
// then the holidays and cancellations that week.
func scheduleShow(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("schedule show", "PROGRAM [-week 2026-W49] [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	weekFlag := cmd.String("week", "", "ISO week yyyy-Www (default: this week in the program's zone)")
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
	}
	if _, err := weekOf(*weekFlag, time.UTC); err != nil {
		return err
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		sch, err := s.sched.Load(ctx, pos[0])
		if err != nil {
			return err
		}
		loc := sch.Location()
		w, err := weekOf(*weekFlag, loc)
		if err != nil {
			return err
		}
		p := &sch.Program
		fmt.Fprintf(stdout, "%s (%s), week %s: %s to %s, %s\n\n", p.Name, p.ID, w,
			w.Monday(), w.Monday().AddDays(6), loc)
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DAY\tTIME\tKIND\tTRACK\tTITLE\tWHO\tROOM")
		occ := sch.Occurrences(w.Start(loc), w.End(loc))
		for _, o := range occ {
			track := o.Track
			switch {
			case o.Booked:
				track = "booked"
			case track == "":
				track = "shared"
			}
			if o.Cohort != "" {
				track += " (" + o.Cohort + ")"
			}
			who := strings.Join(o.Therapists, ",")
			if o.Client != "" {
				who += " with " + o.Client
			}
			start, end := o.Start.In(loc), o.End.In(loc)
			fmt.Fprintf(tw, "%s\t%s-%s\t%s\t%s\t%s\t%s\t%s\n", start.Format("Mon 2 Jan"), start.Format("15:04"), end.Format("15:04"),
				o.Kind, track, o.Title, who, o.ID)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(occ) == 0 {
			fmt.Fprintln(stdout, "(no sessions this week)")
		}
		inWeek := func(d schedule.Date) bool {
			ad, err := attendance.ParseDate(d.String())
			return err == nil && w.Contains(ad)
		}
		for _, h := range p.Holidays {
			if inWeek(h) {
				fmt.Fprintf(stdout, "holiday %s: no recurring session meets\n", h)
			}
		}
		for _, c := range p.Cancellations {
			if inWeek(c.Date) {
				fmt.Fprintf(stdout, "cancelled %s on %s", c.Session, c.Date)
				if c.Reason != "" {
					fmt.Fprintf(stdout, ": %s", c.Reason)
				}
				fmt.Fprintln(stdout)
			}
		}
		return nil
	})
}

// scheduleHoliday adds or removes a holiday.
func scheduleHoliday(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("schedule holiday", "add|rm PROGRAM DATE [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	pos, err := cmd.parseArgs(args, "add|rm", "PROGRAM", "DATE")
	if err != nil {
		return err
	}
	op, program := pos[0], pos[1]
	if op != "add" && op != "rm" {
		return fmt.Errorf("schedule holiday %s: want add or rm", op)
	}
	d, err := schedule.ParseDate(pos[2])
	if err != nil {
		return err
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		if op == "add" {
			if err := s.sched.AddHoliday(ctx, program, d); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "holiday %s added to %s\n", d, program)
			return err
		}
		if err := s.sched.RemoveHoliday(ctx, program, d); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "holiday %s removed from %s\n", d, program)
		return err
	})
}

// scheduleCancel cancels or restores one occurrence of a recurring session.
func scheduleCancel(cancel bool, args []string, getenv func(string) string, stdout io.Writer) error {
	name, synopsis := "schedule uncancel", "PROGRAM SESSION DATE [-redis URL]"
	if cancel {
		name, synopsis = "schedule cancel", "PROGRAM SESSION DATE [-reason TEXT] [-redis URL]"
	}
	cmd := newCommand(name, synopsis, stdout)
	redisURL := redisFlag(cmd, getenv)
	reason := new(string)
	if cancel {
		reason = cmd.String("reason", "", "why, for staff (clients see only that it is cancelled)")
	}
	pos, err := cmd.parseArgs(args, "PROGRAM", "SESSION", "DATE")
	if err != nil {
		return err
	}
	d, err := schedule.ParseDate(pos[2])
	if err != nil {
		return err
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		room := schedule.OccurrenceID(pos[0], pos[1], d)
		if cancel {
			if err := s.sched.Cancel(ctx, pos[0], pos[1], d, *reason); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "cancelled %s\n", room)
			return err
		}
		if err := s.sched.Uncancel(ctx, pos[0], pos[1], d); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "restored %s\n", room)
		return err
	})
}

// parseLocal reads "2026-12-01 14:00" in loc, or an RFC 3339 time.
func parseLocal(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, loc); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("-start %q: want \"2026-12-01 14:00\" (the program's local time) or RFC 3339", s)
}

// scheduleBook books an individual or family session.
func scheduleBook(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("schedule book", `PROGRAM -client SUB -therapist SUB [-kind individual|family] -start "2026-12-01 14:00" [-length 50m] [-title TEXT] [-redis URL]`, stdout)
	redisURL := redisFlag(cmd, getenv)
	var (
		client    = cmd.String("client", "", "the client's sub (required)")
		therapist = cmd.String("therapist", "", "the therapist's sub (required)")
		kind      = cmd.String("kind", string(rooms.KindIndividual), "individual or family")
		start     = cmd.String("start", "", `local start in the program's zone, "2026-12-01 14:00", or RFC 3339 (required)`)
		length    = cmd.Duration("length", 50*time.Minute, "how long it lasts")
		title     = cmd.String("title", "", "shown to the two of them (default: Individual session / Family session)")
	)
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
	}
	if *client == "" || *therapist == "" || *start == "" {
		return errors.New("schedule book: -client, -therapist and -start are required")
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		p, err := s.sched.Program(ctx, pos[0])
		if err != nil {
			return err
		}
		loc, err := p.Location()
		if err != nil {
			return err
		}
		at, err := parseLocal(*start, loc)
		if err != nil {
			return err
		}
		b, err := s.sched.Book(ctx, pos[0], schedule.Booking{
			Kind: rooms.Kind(*kind), Start: at.UTC(), Length: schedule.Duration(*length),
			Client: *client, Therapist: *therapist, Title: *title,
		})
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "booked %s: %s %s, %s (%s), %s with %s\n", b.ID, b.Kind,
			b.Start.In(loc).Format("Mon 2 Jan 2006 15:04"), b.Length, loc, b.Therapist, b.Client)
		return err
	})
}

// scheduleUnbook cancels a booking.
func scheduleUnbook(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("schedule unbook", "PROGRAM BOOKING-ID [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	pos, err := cmd.parseArgs(args, "PROGRAM", "BOOKING-ID")
	if err != nil {
		return err
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		if err := s.sched.CancelBooking(ctx, pos[0], pos[1]); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "cancelled booking %s\n", pos[1])
		return err
	})
}

// scheduleFeed prints a person's private calendar address, a new one
// (-rotate; the old one stops working) or revokes it (-revoke).
func scheduleFeed(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("schedule feed", "PROGRAM SUB [-rotate | -revoke] [-url BASE] [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	var (
		rotate = cmd.Bool("rotate", false, "make a new address; the old one stops working")
		revoke = cmd.Bool("revoke", false, "stop the feed")
		base   = cmd.String("url", getenv("IOP_PUBLIC_URL"), "iopd's public base URL, e.g. https://iop.example.org [$IOP_PUBLIC_URL]")
	)
	pos, err := cmd.parseArgs(args, "PROGRAM", "SUB")
	if err != nil {
		return err
	}
	if *rotate && *revoke {
		return errors.New("schedule feed: -rotate or -revoke, not both")
	}
	if *base != "" {
		if u, err := url.Parse(*base); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("schedule feed: -url %q: want a base URL like https://iop.example.org", *base)
		}
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		program, sub := pos[0], pos[1]
		if _, err := s.sched.Program(ctx, program); err != nil {
			return err
		}
		var secret string
		switch {
		case *revoke:
			if err := s.sched.RevokeFeed(ctx, program, sub); err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "calendar feed of %s revoked\n", sub)
			return err
		case *rotate:
			secret, err = s.sched.RotateFeed(ctx, program, sub)
		default:
			secret, err = s.sched.FeedSecret(ctx, program, sub)
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, strings.TrimRight(*base, "/")+"/v1/calendar/"+secret+".ics")
		return err
	})
}

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
	e, err := s.syncTargets(ctx, program, sub)
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
