package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/audit"
)

// attendanceBilling writes a program's week, or a range of dates (-from,
// -to: a billing month), as the billing export: one line per client per
// date of service, ending with the chain head.
func attendanceBilling(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("attendance billing",
		"PROGRAM [-week 2026-W49 | -from 2026-11-01 -to 2026-11-30] [-o FILE.csv] [-key-file FILE] [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	keyed := attendanceKeyFlag(cmd, getenv)
	weekFlag := cmd.String("week", "", "ISO week yyyy-Www (default: this week in the program's zone)")
	from := cmd.String("from", "", fmt.Sprintf("first date of service, YYYY-MM-DD (with -to; at most %d days)", attendance.MaxRangeDays))
	to := cmd.String("to", "", "last date of service, YYYY-MM-DD, included")
	out := cmd.String("o", "", "write the CSV to this file (mode 0600) instead of stdout")
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
	}
	ranged := *from != "" || *to != ""
	var r attendance.DateRange
	switch {
	case ranged && *weekFlag != "":
		return fmt.Errorf("attendance billing: -week or -from and -to, not both")
	case ranged:
		if r, err = attendance.ParseRange(*from, *to); err != nil {
			return fmt.Errorf("attendance billing: %w", err)
		}
	}
	if getenv, err = keyed(); err != nil {
		return err
	}
	ctx := context.Background()
	s, w, err := attendanceWeek(ctx, *redisURL, pos[0], *weekFlag, getenv)
	if err != nil {
		return err
	}
	defer s.Close()
	if !ranged {
		r = attendance.WeekRange(w)
	}
	x, err := s.att.BillingRange(ctx, pos[0], r)
	if err != nil {
		return err
	}
	period := r.String()
	if !ranged {
		period = w.String()
	}
	return writeExport(stdout, *out, x, len(x.Lines), "billing lines", pos[0], period)
}

// auditLog opens the deployment's audit trail as iopd keys it
// (IOP_AUDIT_KEY), for entries iopctl writes and reads.
func auditLog(s *stores, getenv func(string) string) (*audit.Log, error) {
	key, err := audit.ParseKey(getenv("IOP_AUDIT_KEY"))
	if err != nil {
		return nil, fmt.Errorf("IOP_AUDIT_KEY: %w", err)
	}
	retention, err := audit.ParseRetention(getenv("IOP_AUDIT_RETENTION"))
	if err != nil {
		return nil, fmt.Errorf("IOP_AUDIT_RETENTION: %w", err)
	}
	return audit.New(s.st.Redis, audit.Options{Key: key, Retention: retention}), nil
}

// attendanceAbsence records why a client missed one of their sessions, as
// the staff route does, and audits it.
func attendanceAbsence(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("attendance absence", "PROGRAM SUB SESSION-ROOM excused|no_show|cancelled|none -author STAFF-SUB [-key-file FILE] [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	keyed := attendanceKeyFlag(cmd, getenv)
	author := cmd.String("author", "", "the staff member recording it (their sub): the chain event and the audit entry name them")
	pos, err := cmd.parseArgs(args, "PROGRAM", "SUB", "SESSION-ROOM", "REASON")
	if err != nil {
		return err
	}
	if getenv, err = keyed(); err != nil {
		return err
	}
	program, sub, room, reason := pos[0], pos[1], pos[2], attendance.AbsenceReason(pos[3])
	if reason == "none" {
		reason = ""
	} else if !reason.Valid() {
		return fmt.Errorf("attendance absence: reason %q: want excused, no_show, cancelled or none", pos[3])
	}
	if *author == "" {
		return fmt.Errorf("attendance absence: -author is required")
	}
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		if _, err := s.sched.Expects(ctx, program, sub, room); err != nil {
			return err
		}
		rec, err := s.att.SetAbsence(ctx, program, sub, room, reason, *author)
		if err != nil {
			return err
		}
		if err := auditAmend(ctx, s, getenv, program, *author, audit.ActionAbsence, room, sub, rec.Seq); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "recorded %s for %s at %s (attendance seq %d)\n", orNone(string(reason)), sub, room, rec.Seq)
		return err
	})
}

// attendanceCorrect records a correction as a new event, as the staff
// route does, and audits it.
func attendanceCorrect(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("attendance correct", "PROGRAM (-segment ID | -room ROOM -sub SUB [-role client] [-kind group] [-video]) -start TIME -end TIME -reason TEXT -author STAFF-SUB", stdout)
	redisURL := redisFlag(cmd, getenv)
	keyed := attendanceKeyFlag(cmd, getenv)
	var in attendance.CorrectionInput
	cmd.StringVar(&in.Segment, "segment", "", "the closed segment to correct (its id in the room roster)")
	cmd.StringVar(&in.Room, "room", "", "for a presence the record lacks: the session (room id)")
	cmd.StringVar(&in.Sub, "sub", "", "for a presence the record lacks: the person")
	role := cmd.String("role", string(rooms.RoleClient), "for a presence the record lacks: their role")
	kind := cmd.String("kind", string(rooms.KindGroup), "for a presence the record lacks: the session's kind")
	cmd.BoolVar(&in.Video, "video", false, "for a presence the record lacks: by video (default audio only)")
	start := cmd.String("start", "", "the start from now on, RFC 3339 (2026-11-02T09:00:00-05:00)")
	end := cmd.String("end", "", "the end from now on, RFC 3339; equal to -start voids the segment")
	cmd.StringVar(&in.Reason, "reason", "", "why, on one line (kept in the chain)")
	cmd.StringVar(&in.Author, "author", "", "the staff member recording it (their sub)")
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
	}
	if getenv, err = keyed(); err != nil {
		return err
	}
	if in.Author == "" {
		return fmt.Errorf("attendance correct: -author is required")
	}
	if in.Start, err = time.Parse(time.RFC3339, *start); err != nil {
		return fmt.Errorf("attendance correct: -start: %w", err)
	}
	if in.End, err = time.Parse(time.RFC3339, *end); err != nil {
		return fmt.Errorf("attendance correct: -end: %w", err)
	}
	if in.Segment == "" {
		in.Role, in.Kind = rooms.Role(*role), rooms.Kind(*kind)
		if !in.Kind.Valid() {
			return fmt.Errorf("attendance correct: -kind %q is not a session kind", *kind)
		}
	}
	program := pos[0]
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		rec, err := s.att.Correct(ctx, program, in)
		if err != nil {
			return err
		}
		if err := auditAmend(ctx, s, getenv, program, in.Author, audit.ActionCorrection, in.Room, rec.Sub, rec.Seq); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "recorded the correction of %s (attendance seq %d)\n", rec.Sub, rec.Seq)
		return err
	})
}

// auditAmend writes the audit entry of an absence or a correction made
// with iopctl, naming its chain event.
func auditAmend(ctx context.Context, s *stores, getenv func(string) string, program, author, action, room, subject string, seq int64) error {
	l, err := auditLog(s, getenv)
	if err != nil {
		return err
	}
	_, err = l.Append(ctx, audit.Entry{
		Program: program, Actor: author, Role: string(rooms.RoleStaff), Action: action, Room: room, Subject: subject,
		Detail: fmt.Sprintf("iopctl seq %d", seq),
	})
	if err != nil {
		return fmt.Errorf("the attendance event seq %d is recorded, but its audit entry is not: %w", seq, err)
	}
	return nil
}

// recordedHeads reads the chain heads that the program's audit trail
// recorded for its exports.
func recordedHeads(ctx context.Context, s *stores, getenv func(string) string, program string) ([]attendance.ChainHead, error) {
	l, err := auditLog(s, getenv)
	if err != nil {
		return nil, err
	}
	var heads []attendance.ChainHead
	after := ""
	for {
		page, next, err := l.Page(ctx, program, after, audit.MaxPageSize)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if e.Action != audit.ActionAttendanceExport {
				continue
			}
			if h, err := attendance.ParsePoint(program, e.Detail); err == nil {
				heads = append(heads, h)
			}
		}
		if next == "" {
			return heads, nil
		}
		after = next
	}
}
