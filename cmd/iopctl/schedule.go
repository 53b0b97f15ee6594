package main

// schedule.go holds iopctl schedule: the program file, the timetable,
// holidays, cancellations, bookings and calendar feeds.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/schedule"
)

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
