package attendance

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"iop/rooms"
)

// newStore returns a store on the test Redis for a fresh program in New
// York, with a controlled clock.
func newStore(t *testing.T, opts Options) (*Store, string, *clock) {
	t.Helper()
	rdb := openRedis(t)
	program := testProgram(t, rdb)
	clk := &clock{now: fixed("2026-10-26T12:00:00Z")}
	opts.Now = clk.Now
	st := New(rdb, opts)
	if err := st.SetProgramZone(context.Background(), program, "America/New_York"); err != nil {
		t.Fatal(err)
	}
	return st, program, clk
}

func findPerson(t *testing.T, r *RoomReport, sub string) *RoomPerson {
	t.Helper()
	for _, p := range r.People {
		if p.Sub == sub {
			return p
		}
	}
	t.Fatalf("%s is not in the roster of %s", sub, r.Room.ID)
	return nil
}

// TestAcceptanceMinutes is acceptance 1 of the attendance issue: admitted at
// 18:02:10 and leaving at 19:32:40 is 90 minutes; the waiting room does not
// count; a 40 s drop with a reconnect keeps one segment and loses 40 s only.
func TestAcceptanceMinutes(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, clk := newStore(t, Options{})
	rec := newRecorder(t, st, program, clk)
	f := feed{rec, program}
	room := "eve-2026-10-26"
	ts := func(hh, mm, ss int) time.Time { return at(ny, 2026, 10, 26, hh, mm, ss) }

	th := person("p-th", "th1", rooms.RoleTherapist)
	f.joined(room, th, ts(17, 55, 0))

	c1 := person("p-c1", "c1", rooms.RoleClient)
	f.waiting(room, c1, ts(17, 58, 0)) // 4 min 10 s in the waiting room
	f.joined(room, c1, ts(18, 2, 10))
	f.left(room, c1, rooms.ReasonLeft, ts(19, 32, 40))

	// c2 drops at 18:30:00 and is back at 18:30:40 on a new connection.
	c2 := person("p-c2", "c2", rooms.RoleClient)
	f.joined(room, c2, ts(18, 0, 0))
	f.left(room, c2, rooms.ReasonDropped, ts(18, 30, 0))
	c2b := person("p-c2b", "c2", rooms.RoleClient)
	f.waiting(room, c2b, ts(18, 30, 5))
	f.joined(room, c2b, ts(18, 30, 40))
	f.left(room, c2b, rooms.ReasonLeft, ts(19, 0, 0))

	// c3 is back only after 2 minutes, beyond the 60 s grace: two segments.
	c3 := person("p-c3", "c3", rooms.RoleClient)
	f.joined(room, c3, ts(18, 0, 0))
	f.left(room, c3, rooms.ReasonDropped, ts(18, 30, 0))
	c3b := person("p-c3b", "c3", rooms.RoleClient)
	f.joined(room, c3b, ts(18, 32, 0))

	// c4's browser reconnects before the server notices the old socket
	// died: the connections overlap and count once.
	c4 := person("p-c4", "c4", rooms.RoleClient)
	f.joined(room, c4, ts(18, 0, 0))
	c4b := person("p-c4b", "c4", rooms.RoleClient)
	f.joined(room, c4b, ts(18, 10, 0))
	f.left(room, c4, rooms.ReasonDropped, ts(18, 10, 20))
	f.left(room, c4b, rooms.ReasonLeft, ts(18, 20, 0))

	// The therapist ends the session at 19:45; c3 and the therapist
	// are closed then, and their sockets' later leaves change nothing.
	f.ended(room, ts(19, 45, 0))
	f.left(room, c3b, rooms.ReasonLeft, ts(19, 45, 2))
	f.left(room, th, rooms.ReasonLeft, ts(19, 45, 3))
	flush(t, rec)
	clk.Set(ts(20, 0, 0))

	r, err := st.Room(ctx, program, room)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		sub      string
		segments int
		seconds  int64
	}{
		{"th1", 1, 110 * 60},    // 17:55 to 19:45
		{"c1", 1, 5430},         // 18:02:10 to 19:32:40, not from 17:58
		{"c2", 1, 3600 - 40},    // 18:00 to 19:00 less the 40 s away
		{"c3", 2, 1800 + 73*60}, // 18:00-18:30 and 18:32-19:45
		{"c4", 1, 20 * 60},      // 18:00 to 18:20 once, not twice
	}
	for _, w := range want {
		p := findPerson(t, r, w.sub)
		if len(p.Segments) != w.segments || p.Seconds != w.seconds {
			t.Errorf("%s: %d segments, %d s; want %d segments, %d s", w.sub, len(p.Segments), p.Seconds, w.segments, w.seconds)
		}
	}
	c1r := findPerson(t, r, "c1")
	if s := c1r.Segments[0]; c1r.Minutes != 90 || !s.Start.Equal(ts(18, 2, 10)) || s.End == nil || !s.End.Equal(ts(19, 32, 40)) ||
		s.StartLocal != "2026-10-26T18:02:10-04:00" || s.Modality != ModalityVideo {
		t.Errorf("c1: %d minutes, segment %+v; want 90 minutes from 18:02:10-04:00 to 19:32:40, video", c1r.Minutes, s)
	}
	if g := findPerson(t, r, "c2").Segments[0].Gaps; len(g) != 1 || !g[0].From.Equal(ts(18, 30, 0)) || !g[0].To.Equal(ts(18, 30, 40)) {
		t.Errorf("c2's segment has gaps %v, want one from 18:30:00 to 18:30:40", g)
	}
	if s := findPerson(t, r, "c3").Segments[1]; s.Reason != rooms.ReasonEnded || !s.End.Equal(ts(19, 45, 0)) {
		t.Errorf("c3's second segment closed %v for %q, want at 19:45:00 for ended", s.End, s.Reason)
	}
	wk, err := st.Week(ctx, program, "c1", Week{Year: 2026, Num: 44})
	if err != nil {
		t.Fatal(err)
	}
	if wk.Minutes != 90 || wk.Seconds != 5430 || len(wk.Sessions) != 1 || wk.Sessions[0].Minutes != 90 {
		t.Errorf("c1's week: %d minutes (%d s), sessions %+v; want 90 minutes in one session", wk.Minutes, wk.Seconds, wk.Sessions)
	}
}

// TestAcceptanceWeek is acceptance 2: a week of day- and evening-track
// sessions in America/New_York, the week clocks go back (2026-W44, Monday
// 2026-10-26 to Sunday 2026-11-01, 169 hours), checked against numbers
// worked out by hand.
//
// Day track: Mon/Wed/Fri 09:00-12:00. Evening track: Mon/Tue/Thu
// 18:00-21:00. Targets 9 h (32,400 s) and 3 days; billable day 3 h
// (10,800 s).
//
//	day1 (day track)   Mon 09:00:00-12:00:00                     10,800 s  billable
//	                   Wed 09:05:30-12:00:00 (audio only 10-11)  10,470 s  (6,870 on camera)
//	                   Fri 09:00:00-11:30:00                       9,000 s
//	                   = 30,270 s = 504 min (504.5), on camera 26,670 s = 444 min
//	                   3 days, 1 billable; at week end below (8 h 24 min 30 s).
//	                   Thursday noon: 21,270 s done + Friday's 10,800 s = 32,070 s
//	                   < 32,400 s: at_risk (without a schedule it would be on_track).
//	eve1 (evening)     Mon, Tue, Thu 18:00-21:00 = 32,400 s = 540 min, exactly 9 h:
//	                   on_track, 3 days, 3 billable.
//	eve2 (evening)     Mon 18-21 (10,800), misses Tue, Thu 18-21 (10,800), and a
//	                   family session Sat 22:00 EDT - Sun 01:30 EST across the
//	                   clock change: Sat 7,200 + Sun 9,000 = 16,200 s (4.5 h
//	                   although the wall clock moved 3.5 h).
//	                   = 37,800 s = 630 min; 4 days (Mon Thu Sat Sun), 2 billable;
//	                   on_track; 1 absence (Tue), no flag.
//	abs1 (day track)   Mon 09-12 only: 10,800 s; absences Wed, Fri: flag
//	                   consecutive 2; below.
//	noshow (evening)   enrolled, never came: 0 s, below, 3 absences, consecutive 3.
//	th1 (therapist)    Mon/Wed/Fri 08:55-12:05 = 3 x 11,400 = 34,200 s; no status.
//	fm1 (family)       the family session, 16,200 s; no status.
func TestAcceptanceWeek(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	w44 := Week{Year: 2026, Num: 44}
	sched := fakeSchedule{
		"day1": dayTrack(ny, w44), "abs1": dayTrack(ny, w44),
		"eve1": eveningTrack(ny, w44), "eve2": eveningTrack(ny, w44), "noshow": eveningTrack(ny, w44),
	}
	st, program, clk := newStore(t, Options{Schedule: sched, Roster: sched})
	rec := newRecorder(t, st, program, clk)
	f := feed{rec, program}
	ts := func(d, hh, mm, ss int) time.Time { return at(ny, 2026, 10, d, hh, mm, ss) }
	attend := func(room string, p rooms.Participant, from, to time.Time) {
		f.joined(room, p, from)
		f.left(room, p, rooms.ReasonLeft, to)
	}
	day1, abs1 := person("d1", "day1", rooms.RoleClient), person("a1", "abs1", rooms.RoleClient)
	eve1, eve2 := person("e1", "eve1", rooms.RoleClient), person("e2", "eve2", rooms.RoleClient)
	th1, fm1 := person("t1", "th1", rooms.RoleTherapist), person("f1", "fm1", rooms.RoleFamily)
	th2 := person("t2", "th2", rooms.RoleTherapist)
	// led runs a session with its therapist there from 5 minutes before
	// to 5 minutes after: the clients' time in it is direct service.
	led := func(room string, th rooms.Participant, from, to time.Time, clients func()) {
		f.joined(room, th, from.Add(-5*time.Minute))
		clients()
		f.left(room, th, rooms.ReasonLeft, to.Add(5*time.Minute))
	}

	// Monday to Thursday noon.
	led("day-2026-10-26", th1, ts(26, 9, 0, 0), ts(26, 12, 0, 0), func() {
		attend("day-2026-10-26", day1, ts(26, 9, 0, 0), ts(26, 12, 0, 0))
		attend("day-2026-10-26", abs1, ts(26, 9, 0, 0), ts(26, 12, 0, 0))
	})
	led("eve-2026-10-26", th2, ts(26, 18, 0, 0), ts(26, 21, 0, 0), func() {
		attend("eve-2026-10-26", eve1, ts(26, 18, 0, 0), ts(26, 21, 0, 0))
		attend("eve-2026-10-26", eve2, ts(26, 18, 0, 0), ts(26, 21, 0, 0))
	})
	led("eve-2026-10-27", th2, ts(27, 18, 0, 0), ts(27, 21, 0, 0), func() {
		attend("eve-2026-10-27", eve1, ts(27, 18, 0, 0), ts(27, 21, 0, 0))
	})
	led("day-2026-10-28", th1, ts(28, 9, 0, 0), ts(28, 12, 0, 0), func() {
		f.joined("day-2026-10-28", day1, ts(28, 9, 5, 30))
		f.media("day-2026-10-28", day1, true, false, ts(28, 10, 0, 0))
		f.media("day-2026-10-28", day1, true, true, ts(28, 11, 0, 0))
		f.left("day-2026-10-28", day1, rooms.ReasonLeft, ts(28, 12, 0, 0))
	})
	flush(t, rec)

	clk.Set(ts(29, 12, 0, 0))
	status := func(sub string) Status {
		t.Helper()
		r, err := st.Week(ctx, program, sub, w44)
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	for sub, want := range map[string]Status{"day1": StatusAtRisk, "eve1": StatusOnTrack, "abs1": StatusAtRisk} {
		if got := status(sub); got != want {
			t.Errorf("Thursday noon: %s is %s, want %s", sub, got, want)
		}
	}
	noSched := New(st.rdb, Options{Now: clk.Now})
	if r, _ := noSched.Week(ctx, program, "day1", w44); r.Status != StatusOnTrack {
		t.Errorf("Thursday noon without a schedule: day1 is %s, want on_track (4 days of up to 4 h remain)", r.Status)
	}

	// Thursday evening to Friday 10:00, day1 still in Friday's session.
	led("eve-2026-10-29", th2, ts(29, 18, 0, 0), ts(29, 21, 0, 0), func() {
		attend("eve-2026-10-29", eve1, ts(29, 18, 0, 0), ts(29, 21, 0, 0))
		attend("eve-2026-10-29", eve2, ts(29, 18, 0, 0), ts(29, 21, 0, 0))
	})
	f.joined("day-2026-10-30", th1, ts(30, 8, 55, 0))
	f.joined("day-2026-10-30", day1, ts(30, 9, 0, 0))
	flush(t, rec)
	clk.Set(ts(30, 10, 0, 0))
	if r, _ := st.Week(ctx, program, "day1", w44); !r.Live || r.Seconds != 10800+10470+3600 {
		t.Errorf("Friday 10:00: day1 has %d s (live %v), want %d counted up to now", r.Seconds, r.Live, 10800+10470+3600)
	}

	// The rest of the week.
	f.left("day-2026-10-30", day1, rooms.ReasonLeft, ts(30, 11, 30, 0))
	f.left("day-2026-10-30", th1, rooms.ReasonLeft, ts(30, 12, 5, 0))
	// The family session has no therapist in it here: its time is
	// recorded and shown, as no_clinician seconds, and never billed.
	famStart, famEnd := fixed("2026-11-01T02:00:00Z"), fixed("2026-11-01T06:30:00Z") // Sat 22:00 EDT, Sun 01:30 EST
	attend("fam-eve2", eve2, famStart, famEnd)
	attend("fam-eve2", fm1, famStart, famEnd)
	flush(t, rec)
	clk.Set(at(ny, 2026, 11, 2, 9, 0, 0))

	rep, err := st.ProgramWeek(ctx, program, w44)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		minutes, video, days, billable, absences int64
		status                                   Status
		flags                                    string
	}
	want := map[string]row{
		"day1": {504, 444, 3, 1, 0, StatusBelow, ""},
		"eve1": {540, 540, 3, 3, 0, StatusOnTrack, ""},
		// eve2's Saturday and Sunday have no therapist: days with
		// attendance, but not days toward the targets (the policy's day
		// minimum counts direct service): 2 of 3.
		"eve2":   {630, 630, 4, 2, 1, StatusBelow, ""},
		"abs1":   {180, 180, 1, 1, 2, StatusBelow, "consecutive:2"},
		"noshow": {0, 0, 0, 0, 3, StatusBelow, "consecutive:3"},
		"th1":    {570, 570, 3, 3, 0, "", ""},
		"th2":    {570, 570, 3, 3, 0, "", ""},
		"fm1":    {270, 270, 2, 0, 0, "", ""},
	}
	if len(rep.People) != len(want) {
		t.Errorf("the program week lists %d people, want %d", len(rep.People), len(want))
	}
	for _, p := range rep.People {
		w, ok := want[p.Sub]
		if !ok {
			t.Errorf("unexpected person %s", p.Sub)
			continue
		}
		var flags []string
		for _, fl := range p.Flags {
			flags = append(flags, fl.Rule+":"+string(rune('0'+fl.Count)))
		}
		got := row{p.Minutes, p.VideoMinutes, int64(p.Days), int64(p.BillableDays), int64(p.Absences), p.Status, strings.Join(flags, ",")}
		if got != w {
			t.Errorf("%s: got %+v, want %+v", p.Sub, got, w)
		}
	}
	if rep.People[0].Role != rooms.RoleClient || rep.People[len(rep.People)-1].Role != rooms.RoleTherapist {
		t.Errorf("clients are not listed first: %s ... %s", rep.People[0].Role, rep.People[len(rep.People)-1].Role)
	}
	eve2r, _ := st.Week(ctx, program, "eve2", w44)
	if eve2r.Seconds != 37800 || eve2r.TargetHours != 9 || eve2r.TargetDays != 3 || len(eve2r.Sessions) != 3 {
		t.Errorf("eve2: %d s, targets %v h %d days, %d sessions; want 37800 s, 9 h, 3 days, 3 sessions", eve2r.Seconds, eve2r.TargetHours, eve2r.TargetDays, len(eve2r.Sessions))
	}
	var sat, sun DayLine
	for _, d := range eve2r.Daily {
		switch d.Date.String() {
		case "2026-10-31":
			sat = d
		case "2026-11-01":
			sun = d
		}
	}
	if sat.Seconds != 7200 || sun.Seconds != 9000 || sun.Billable {
		t.Errorf("eve2's Saturday %d s and Sunday %d s (billable %v); want 7200 and 9000, not billable", sat.Seconds, sun.Seconds, sun.Billable)
	}
	day1r, _ := st.Week(ctx, program, "day1", w44)
	if day1r.Seconds != 30270 || day1r.VideoSeconds != 26670 {
		t.Errorf("day1: %d s, %d on camera; want 30270 and 26670", day1r.Seconds, day1r.VideoSeconds)
	}
	if len(day1r.Daily) != 3 || day1r.Daily[1].Seconds != 10470 || day1r.Daily[1].VideoSeconds != 6870 || day1r.Daily[1].Sessions != 1 || !day1r.Daily[0].Billable || day1r.Daily[1].Billable {
		t.Errorf("day1's days: %+v; want Wednesday 10470 s (6870 on camera) in one session, only Monday billable", day1r.Daily)
	}
	if d, _ := st.Day(ctx, program, "th1", Date{Year: 2026, Month: 10, Day: 28}); d.Seconds != 11400 || !d.Billable || d.Sessions != 1 {
		t.Errorf("th1's Wednesday: %+v, want 11400 s in one session, billable", d)
	}

	// A per-client target of 8 hours turns day1's week to on_track.
	if err := st.SetTargets(ctx, program, "day1", Targets{Hours: 8, Days: 3}); err != nil {
		t.Fatal(err)
	}
	if got := status("day1"); got != StatusOnTrack {
		t.Errorf("day1 with an 8 h target: %s, want on_track", got)
	}
	if err := st.SetTargets(ctx, program, "day1", Targets{Hours: 20, Days: 3}); err == nil {
		t.Error("a 20 h target was accepted; the range is 6 to 19")
	}

	// The billing CSV: PROTOCOL's header and one row per segment and day.
	var buf bytes.Buffer
	if err := st.ExportWeek(ctx, &buf, program, w44); err != nil {
		t.Fatal(err)
	}
	cr := csv.NewReader(&buf)
	cr.Comment = '#' // the chain head line
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != CSVHeader || CSVHeader != "sub,name,role,room,kind,date_local,start_utc,end_utc,start_local,end_local,seconds,video_seconds,modality,audio_only_seconds,no_media_seconds,direct_seconds,no_clinician_seconds" {
		t.Fatalf("CSV header %v", recs[0])
	}
	// day1 3, eve1 3, eve2 2 + 2, abs1 1, th1 3, th2 3, fm1 2.
	if len(recs)-1 != 19 {
		t.Errorf("%d CSV rows, want 19", len(recs)-1)
	}
	var famRows []string
	for _, r := range recs[1:] {
		if r[0] == "eve2" && r[3] == "fam-eve2" {
			famRows = append(famRows, strings.Join(r[4:], ","))
		}
	}
	wantFam := []string{
		"family,2026-10-31,2026-11-01T02:00:00Z,2026-11-01T04:00:00Z,2026-10-31T22:00:00-04:00,2026-11-01T00:00:00-04:00,7200,7200,video,0,0,0,7200",
		"family,2026-11-01,2026-11-01T04:00:00Z,2026-11-01T06:30:00Z,2026-11-01T00:00:00-04:00,2026-11-01T01:30:00-05:00,9000,9000,video,0,0,0,9000",
	}
	if strings.Join(famRows, "\n") != strings.Join(wantFam, "\n") {
		t.Errorf("family session rows:\n%s\nwant:\n%s", strings.Join(famRows, "\n"), strings.Join(wantFam, "\n"))
	}
}
