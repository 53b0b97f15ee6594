package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms/attendance"
	"iop/rooms/civil"
)

// runAttendance dispatches iopctl attendance SUBCOMMAND.
func runAttendance(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("attendance: want report, export, billing, absence, correct, verify or rebuild")
	}
	switch args[0] {
	case "report":
		return attendanceReport(args[1:], getenv, stdout)
	case "export":
		return attendanceExport(args[1:], getenv, stdout)
	case "verify":
		return attendanceVerify(args[1:], getenv, stdout)
	case "rebuild":
		return attendanceRebuild(args[1:], getenv, stdout)
	case "billing":
		return attendanceBilling(args[1:], getenv, stdout)
	case "absence":
		return attendanceAbsence(args[1:], getenv, stdout)
	case "correct":
		return attendanceCorrect(args[1:], getenv, stdout)
	}
	return fmt.Errorf("attendance %s: unknown (want report, export, billing, absence, correct, verify or rebuild)", args[0])
}

// attendanceKeyFlag adds -key-file to an attendance command and returns
// getenv with the file's key as IOP_ATTENDANCE_KEY when it is given: the
// store is then keyed as iopd's is.
func attendanceKeyFlag(cmd *command, getenv func(string) string) func() (func(string) string, error) {
	file := cmd.String("key-file", "", "read the attendance chain key from this file instead of $IOP_ATTENDANCE_KEY (hex: and hex digits, or raw bytes)")
	return func() (func(string) string, error) {
		if *file == "" {
			return getenv, nil
		}
		b, err := os.ReadFile(*file)
		if err != nil {
			return nil, fmt.Errorf("attendance key file: %w", err)
		}
		return func(name string) string {
			if name == "IOP_ATTENDANCE_KEY" {
				return string(b)
			}
			return getenv(name)
		}, nil
	}
}

// attendanceWeek opens the stores and reads -week in the program's zone.
func attendanceWeek(ctx context.Context, redisURL, program, weekFlag string, getenv func(string) string) (*stores, attendance.Week, error) {
	s, err := openStores(ctx, redisURL, getenv)
	if err != nil {
		return nil, attendance.Week{}, err
	}
	loc, err := s.att.Zone(ctx, program)
	if err == nil {
		var w attendance.Week
		if w, err = weekOf(weekFlag, loc); err == nil {
			return s, w, nil
		}
	}
	s.Close()
	return nil, attendance.Week{}, err
}

// attendanceReport prints a program's week, one line per person, or one
// person's week with their sessions.
func attendanceReport(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("attendance report", "PROGRAM [-week 2026-W49] [-sub SUB] [-key-file FILE] [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	keyed := attendanceKeyFlag(cmd, getenv)
	weekFlag := cmd.String("week", "", "ISO week yyyy-Www (default: this week in the program's zone)")
	sub := cmd.String("sub", "", "one person's week, with their sessions")
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
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
	var people []*attendance.WeekReport
	var zone string
	if *sub != "" {
		r, err := s.att.Week(ctx, pos[0], *sub, w)
		if err != nil {
			return err
		}
		people, zone = []*attendance.WeekReport{r}, r.Zone
	} else {
		rep, err := s.att.ProgramWeek(ctx, pos[0], w)
		if err != nil {
			return err
		}
		people, zone = rep.People, rep.Zone
	}
	fmt.Fprintf(stdout, "program %s, week %s (%s); minutes are whole minutes of exact seconds, rounded down\n\n", pos[0], w, zone)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PERSON\tROLE\tMINUTES\tVIDEO MIN\tDAYS\tBILLABLE DAYS\tTARGET\tSTATUS\tABSENCES")
	anyLive := false
	for _, r := range people {
		target, status, absences := "-", "-", "-"
		if r.TargetHours > 0 {
			target = fmt.Sprintf("%gh/%dd", r.TargetHours, r.TargetDays)
			status = string(r.Status)
			absences = fmt.Sprint(r.Absences)
		}
		role := string(r.Role)
		if role == "" {
			role = "-"
		}
		live := ""
		if r.Live {
			live, anyLive = "*", true
		}
		fmt.Fprintf(tw, "%s\t%s\t%d%s\t%d\t%d\t%d\t%s\t%s\t%s\n", person(r.Sub, r.Name), role, r.Minutes, live, r.VideoMinutes, r.Days, r.BillableDays, target, status, absences)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if anyLive {
		fmt.Fprintln(stdout, "* a session still open, counted up to now")
	}
	if len(people) == 0 {
		fmt.Fprintln(stdout, "(nobody attended or was enrolled)")
	}
	if *sub == "" {
		return nil
	}
	r := people[0]
	fmt.Fprintln(stdout)
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tKIND\tFROM\tTO\tMINUTES\tVIDEO MIN\tMODALITY")
	for _, l := range r.Sessions {
		end := "(open)"
		if l.EndLocal != nil {
			end = *l.EndLocal
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", l.Room, l.Kind, l.StartLocal, end, l.Minutes, l.VideoMinutes, l.Modality)
	}
	loc, err := civil.LoadZone(r.Zone)
	if err != nil {
		loc = time.UTC
	}
	for _, m := range r.Missed {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\tmissed\t\t\n", m.Room, m.Kind, m.Start.In(loc).Format(time.RFC3339), m.End.In(loc).Format(time.RFC3339))
	}
	return tw.Flush()
}

// person names someone in a report: their display name and sub.
func person(sub, name string) string {
	if name == "" {
		return sub
	}
	return name + " (" + sub + ")"
}

// attendanceExport writes a program's week as the segment CSV.
func attendanceExport(args []string, getenv func(string) string, stdout io.Writer) error {
	return weekCSV("attendance export", "rows", args, getenv, stdout,
		func(ctx context.Context, s *stores, program string, w attendance.Week) (csvWeek, int, error) {
			x, err := s.att.WeekExport(ctx, program, w)
			if err != nil {
				return nil, 0, err
			}
			return x, len(x.Rows), nil
		})
}

// csvWeek is a program week read for export: its CSV ends with the chain
// head it was read at.
type csvWeek interface {
	WriteCSV(io.Writer) error
	ChainHead() attendance.ChainHead
}

// weekCSV runs an export command (name) of one program week: to stdout, or
// to a file readable by the operator only, since its lines show who is in
// a substance-use program (42 CFR Part 2).
func weekCSV(name, lines string, args []string, getenv func(string) string, stdout io.Writer,
	read func(ctx context.Context, s *stores, program string, w attendance.Week) (csvWeek, int, error)) error {
	cmd := newCommand(name, "PROGRAM [-week 2026-W49] [-o FILE.csv] [-key-file FILE] [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	keyed := attendanceKeyFlag(cmd, getenv)
	weekFlag := cmd.String("week", "", "ISO week yyyy-Www (default: this week in the program's zone)")
	out := cmd.String("o", "", "write the CSV to this file (mode 0600) instead of stdout")
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
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
	x, n, err := read(ctx, s, pos[0], w)
	if err != nil {
		return err
	}
	return writeExport(stdout, *out, x, n, lines, pos[0], w.String())
}

// writeExport writes an export to stdout, or to the file out (mode 0600)
// and a line saying what it wrote (n lines of program's period) at which
// chain head.
func writeExport(stdout io.Writer, out string, x csvWeek, n int, lines, program, period string) error {
	if out == "" {
		return x.WriteCSV(stdout)
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := x.WriteCSV(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %d %s of %s %s to %s, read at %s\n", n, lines, program, period, out, x.ChainHead())
	return err
}

// attendanceVerify walks a program's hash chain and compares its rollups
// with its events, then checks the chain against the heads the audit
// trail recorded for its exports; a broken chain, a rollup that differs or
// an exported head the chain no longer holds is an error (exit status 1)
// naming the first altered or missing event, the rollup, or the export.
func attendanceVerify(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("attendance verify", "PROGRAM [-key-file FILE] [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	keyed := attendanceKeyFlag(cmd, getenv)
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
	}
	if getenv, err = keyed(); err != nil {
		return err
	}
	program := pos[0]
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		v, err := s.att.Verify(ctx, program)
		if err != nil {
			return err
		}
		if f := v.First; f != nil {
			fmt.Fprintf(stdout, "FAILED %s: %d events walked; first problem at seq %d (event %s, stream entry %s): %s\n",
				program, v.Events, f.Seq, orNone(f.EventID), orNone(f.StreamID), f.Problem)
			if v.WrongKey {
				fmt.Fprintln(stdout, "note: the chain's head says it was keyed with another attendance key than the one given")
			}
			return fmt.Errorf("attendance of %s: the chain is broken at seq %d: %s", program, f.Seq, f.Problem)
		}
		if r := v.Rollup; r != nil {
			fmt.Fprintf(stdout, "FAILED %s: the chain holds (%d events, head seq %d), but a stored rollup is not what its events give: %s\n",
				program, v.Events, v.Seq, r)
			fmt.Fprintf(stdout, "iopctl attendance rebuild %s recomputes the rollups from the events\n", program)
			return fmt.Errorf("attendance of %s: rollup %s differs from the events", program, r.Key)
		}
		if !v.OK {
			return fmt.Errorf("attendance of %s: does not verify", program)
		}
		mode := "unkeyed (SHA-256: an edit whose hashes were recomputed is found only against a head recorded elsewhere)"
		switch {
		case v.Key != "" && v.KeyedFrom > 1:
			mode = fmt.Sprintf("keyed (HMAC-SHA256, key %s) from seq %d; SHA-256 before", v.Key, v.KeyedFrom)
		case v.Key != "":
			mode = fmt.Sprintf("keyed (HMAC-SHA256, key %s)", v.Key)
		}
		heads, err := recordedHeads(ctx, s, getenv, program)
		if err != nil {
			return fmt.Errorf("read the exports' chain heads from the audit trail: %w", err)
		}
		checks, err := s.att.CheckHeads(ctx, program, heads)
		if err != nil {
			return err
		}
		for _, c := range checks {
			if !c.OK {
				fmt.Fprintf(stdout, "FAILED %s: an export recorded in the audit trail was read at seq %d hash %s; the chain now has %s there\n",
					program, c.Recorded.Seq, c.Recorded.Hash, orNone(c.Found))
				return fmt.Errorf("attendance of %s: the chain no longer holds what was exported at seq %d", program, c.Recorded.Seq)
			}
		}
		_, err = fmt.Fprintf(stdout, "OK %s: %d events, head seq %d, hash %s, %s; %d rollups match the events; %d exported heads hold\n",
			program, v.Events, v.Seq, orNone(v.Head), mode, v.Rollups, len(checks))
		return err
	})
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// attendanceRebuild recomputes a program's rollups from its event stream
// and prints each person's week that changed.
func attendanceRebuild(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := newCommand("attendance rebuild", "PROGRAM [-force] [-key-file FILE] [-redis URL]", stdout)
	redisURL := redisFlag(cmd, getenv)
	keyed := attendanceKeyFlag(cmd, getenv)
	force := cmd.Bool("force", false, "rebuild even from a chain that does not verify (an edited or removed event is then carried into the rollups)")
	pos, err := cmd.parseArgs(args, "PROGRAM")
	if err != nil {
		return err
	}
	if getenv, err = keyed(); err != nil {
		return err
	}
	program := pos[0]
	return withStores(*redisURL, getenv, func(ctx context.Context, s *stores) error {
		loc, err := s.att.Zone(ctx, program)
		if err != nil {
			return err
		}
		weeks, err := eventWeeks(ctx, s.st.Redis, program, loc)
		if err != nil {
			return err
		}
		before, err := weekTotals(ctx, s.att, program, weeks)
		if err != nil {
			return err
		}
		rebuild := s.att.Rebuild
		if *force {
			rebuild = s.att.RebuildForce
		}
		res, err := rebuild(ctx, program)
		if errors.Is(err, attendance.ErrBroken) || errors.Is(err, attendance.ErrKeyRequired) || errors.Is(err, attendance.ErrWrongKey) {
			fmt.Fprintf(stdout, "REFUSED %s: %v\nthe rollups were not changed; iopctl attendance verify %s names the problem; -force rebuilds anyway\n", program, err, program)
			return err
		}
		if err != nil {
			return err
		}
		switch {
		case res.Unverified:
			fmt.Fprintf(stdout, "WARNING %s: -force: the chain is keyed with another key than the one given (or none), so it was not checked\n", program)
		case res.Broken != nil:
			f := res.Broken
			fmt.Fprintf(stdout, "WARNING %s: -force: the chain is broken at seq %d (event %s, stream entry %s): %s; the rollups now follow the stream as it is\n",
				program, f.Seq, orNone(f.EventID), orNone(f.StreamID), f.Problem)
		}
		after, err := weekTotals(ctx, s.att, program, weeks)
		if err != nil {
			return err
		}
		checked := "; the chain verified"
		if res.Unverified || res.Broken != nil {
			checked = ""
		}
		fmt.Fprintf(stdout, "rebuilt %s: %d events replayed into %d segments (rollup generation %d)%s\n", program, res.Events, res.Segments, res.Generation, checked)
		changed := diffTotals(before, after)
		if len(changed) == 0 {
			_, err = fmt.Fprintln(stdout, "no week's totals changed")
			return err
		}
		for _, line := range changed {
			fmt.Fprintln(stdout, line)
		}
		return nil
	})
}

// eventWeeks returns the ISO weeks (in loc) of a program's attendance
// events: the weeks whose rollups a rebuild may change. It reads the event
// stream that attendance.Store writes (rooms/attendance/store.go keys).
func eventWeeks(ctx context.Context, rdb *redis.Client, program string, loc *time.Location) ([]attendance.Week, error) {
	key := "iop:att:{" + program + "}:events"
	seen := map[attendance.Week]bool{}
	start := "-"
	for {
		page, err := rdb.XRangeN(ctx, key, start, "+", 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("read attendance events: %w", err)
		}
		for _, x := range page {
			body, _ := x.Values["event"].(string)
			var e attendance.Event
			if json.Unmarshal([]byte(body), &e) == nil && !e.At.IsZero() {
				seen[attendance.WeekOf(e.At, loc)] = true
			}
		}
		if len(page) < 1000 {
			break
		}
		start = "(" + page[len(page)-1].ID
	}
	out := make([]attendance.Week, 0, len(seen))
	for w := range seen {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// totals is what a rebuild may change in a person's week.
type totals struct {
	name                   string
	seconds, videoSeconds  int64
	days, billable, visits int
}

// weekTotals reads every person's totals in the weeks given, keyed by
// "week sub".
func weekTotals(ctx context.Context, att *attendance.Store, program string, weeks []attendance.Week) (map[string]totals, error) {
	out := map[string]totals{}
	for _, w := range weeks {
		rep, err := att.ProgramWeek(ctx, program, w)
		if err != nil {
			return nil, err
		}
		for _, r := range rep.People {
			out[w.String()+" "+r.Sub] = totals{
				name: r.Name, seconds: r.Seconds, videoSeconds: r.VideoSeconds,
				days: r.Days, billable: r.BillableDays, visits: r.SessionsAttended,
			}
		}
	}
	return out, nil
}

// diffTotals describes each person-week whose totals differ, sorted.
func diffTotals(before, after map[string]totals) []string {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		b, a := before[k], after[k]
		var d []string
		add := func(what string, x, y int64) {
			if x != y {
				d = append(d, fmt.Sprintf("%s %d -> %d", what, x, y))
			}
		}
		add("seconds", b.seconds, a.seconds)
		add("minutes", attendance.Minutes(b.seconds), attendance.Minutes(a.seconds))
		add("video seconds", b.videoSeconds, a.videoSeconds)
		add("days", int64(b.days), int64(a.days))
		add("billable days", int64(b.billable), int64(a.billable))
		add("sessions", int64(b.visits), int64(a.visits))
		if len(d) == 0 {
			continue
		}
		week, sub, _ := strings.Cut(k, " ")
		name := a.name
		if name == "" {
			name = b.name
		}
		out = append(out, fmt.Sprintf("%s %s: %s", week, person(sub, name), strings.Join(d, ", ")))
	}
	sort.Strings(out)
	return out
}
