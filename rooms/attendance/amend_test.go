package attendance

import (
	"context"
	"errors"
	"testing"

	"iop/rooms"
)

// TestCorrectionsAreNewEvents: a correction changes what the reports show
// but not one stored event; it lists its author and reason; verify and
// rebuild agree with it; a bad one changes nothing.
func TestCorrectionsAreNewEvents(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, clk := newStore(t, Options{Key: testKey})
	appendAll(t, st, scenario(program, ny))
	clk.Set(at(ny, 2026, 10, 28, 12, 0, 0))
	before := readStream(t, st.rdb, program)
	week := func(sub string) *WeekReport {
		t.Helper()
		r, err := st.Week(ctx, program, sub, Week{Year: 2026, Num: 44})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if got := week("c3").Seconds; got != 72*60 {
		t.Fatalf("c3 before: %d s, want 4320", got)
	}

	// Removed by mistake at 19:15: present to 19:45 by the therapist's note.
	rec, err := st.Correct(ctx, program, CorrectionInput{
		Segment: "s-c3", Start: at(ny, 2026, 10, 26, 18, 3, 0), End: at(ny, 2026, 10, 26, 19, 45, 0),
		Author: "staff-1", Reason: "removed by mistake; present to 19:45 per the therapist's note",
	})
	if err != nil || !rec.Applied {
		t.Fatalf("correct: %+v, %v", rec, err)
	}
	if got := week("c3").Seconds; got != 102*60 {
		t.Errorf("c3 after the correction: %d s, want 6120", got)
	}
	room, err := st.Room(ctx, program, "eve-1")
	if err != nil {
		t.Fatal(err)
	}
	segs, _ := st.segments(ctx, mustView(t, st, program), []string{"s-c3"})
	if len(segs) != 1 || len(segs[0].Corrections) != 1 || segs[0].Corrections[0].Author != "staff-1" ||
		!segs[0].Corrections[0].End.Equal(at(ny, 2026, 10, 26, 19, 15, 0)) {
		t.Errorf("the segment does not list the correction with the bounds it replaced: %+v", segs)
	}
	if p := findPerson(t, room, "c3"); p.Seconds != 102*60 {
		t.Errorf("roster: c3 %d s", p.Seconds)
	}
	after := readStream(t, st.rdb, program)
	if len(after) != len(before)+1 {
		t.Fatalf("stream %d entries, want %d", len(after), len(before)+1)
	}
	for i := range before {
		if before[i].Values["hash"] != after[i].Values["hash"] || before[i].Values["event"] != after[i].Values["event"] {
			t.Fatalf("stored event %d changed", i)
		}
	}

	// A presence the chain never saw, and a voided segment.
	if _, err := st.Correct(ctx, program, CorrectionInput{
		Room: "eve-9", Kind: rooms.KindGroup, Sub: "c4", Role: rooms.RoleClient, Video: true,
		Start: at(ny, 2026, 10, 27, 18, 0, 0), End: at(ny, 2026, 10, 27, 18, 30, 0),
		Author: "staff-1", Reason: "joined by phone during the outage",
	}); err != nil {
		t.Fatal(err)
	}
	// c4's segment in eve-1 is still open (all of the 27th), plus 30 min.
	if r := week("c4"); len(r.Daily) != 3 || r.Daily[1].Seconds != 86400+1800 {
		t.Errorf("c4's added presence: %+v", r.Daily)
	}
	if _, err := st.Correct(ctx, program, CorrectionInput{
		Segment: "s-c2", Start: at(ny, 2026, 10, 26, 18, 2, 0), End: at(ny, 2026, 10, 26, 18, 2, 0),
		Author: "staff-1", Reason: "another client's device",
	}); err != nil {
		t.Fatal(err)
	}
	if got := week("c2").Seconds; got != 0 {
		t.Errorf("c2 after voiding s-c2: %d s, want 0", got)
	}

	v, err := st.Verify(ctx, program)
	if err != nil || !v.OK {
		t.Fatalf("verify after corrections: %+v %+v, %v", v.First, v.Rollup, err)
	}
	want := weekJSON(t, st, program)
	if _, err := st.Rebuild(ctx, program); err != nil {
		t.Fatal(err)
	}
	if got := weekJSON(t, st, program); got != want {
		t.Errorf("rebuild differs from the live corrections:\n%s\n%s", got, want)
	}

	head, _ := st.Head(ctx, program)
	bad := []struct {
		name string
		in   CorrectionInput
		want error
	}{
		{"an open segment", CorrectionInput{Segment: "s-c5", Start: at(ny, 2026, 10, 26, 23, 30, 0), End: at(ny, 2026, 10, 26, 23, 40, 0)}, ErrAmend},
		{"an unknown segment", CorrectionInput{Segment: "nope", Start: at(ny, 2026, 10, 26, 18, 0, 0), End: at(ny, 2026, 10, 26, 19, 0, 0)}, ErrNoSegment},
		{"into the future", CorrectionInput{Segment: "s-c1", Start: at(ny, 2026, 10, 26, 18, 0, 0), End: at(ny, 2026, 10, 29, 19, 0, 0)}, ErrAmend},
		{"reversed", CorrectionInput{Segment: "s-c1", Start: at(ny, 2026, 10, 26, 19, 0, 0), End: at(ny, 2026, 10, 26, 18, 0, 0)}, ErrAmend},
		{"no reason", CorrectionInput{Segment: "s-c1", Start: at(ny, 2026, 10, 26, 18, 0, 0), End: at(ny, 2026, 10, 26, 19, 0, 0), Reason: " "}, ErrAmend},
		{"a reason on two lines", CorrectionInput{Segment: "s-c1", Start: at(ny, 2026, 10, 26, 18, 0, 0), End: at(ny, 2026, 10, 26, 19, 0, 0), Reason: "a\nb"}, ErrAmend},
		{"a new presence without a role", CorrectionInput{Room: "x", Sub: "c9", Start: at(ny, 2026, 10, 26, 18, 0, 0), End: at(ny, 2026, 10, 26, 19, 0, 0)}, ErrAmend},
	}
	for _, b := range bad {
		if b.in.Author == "" {
			b.in.Author = "staff-1"
		}
		if b.in.Reason == "" {
			b.in.Reason = "because"
		}
		if _, err := st.Correct(ctx, program, b.in); !errors.Is(err, b.want) {
			t.Errorf("%s: %v, want %v", b.name, err, b.want)
		}
	}
	if h, _ := st.Head(ctx, program); h != head {
		t.Errorf("refused corrections moved the chain from %s to %s", head, h)
	}
}

func mustView(t *testing.T, st *Store, program string) *view {
	t.Helper()
	v, err := st.view(context.Background(), program)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAbsenceReasons: staff record why a client missed a session; the
// week shows it; a session the program cancelled is no longer missed; an
// unknown reason changes nothing; the reasons survive a rebuild.
func TestAbsenceReasons(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	sess := func(room string, d int) Expected {
		return Expected{Room: room, Start: at(ny, 2026, 10, d, 9, 0, 0), End: at(ny, 2026, 10, d, 10, 0, 0)}
	}
	sched := fakeSchedule{"c1": {sess("a", 26), sess("b", 27), sess("c", 28)}}
	st, program, clk := newStore(t, Options{Schedule: sched, Roster: sched})
	clk.Set(at(ny, 2026, 10, 28, 12, 0, 0))
	// c1 came to "c" for 20 minutes only: not attended by the policy.
	appendAll(t, st, []Event{
		{ID: "1", Kind: KindAdmit, Program: program, Segment: "x", Room: "c", Sub: "c1", Role: rooms.RoleClient, At: at(ny, 2026, 10, 28, 9, 0, 0), Audio: true},
		{ID: "2", Kind: KindLeave, Program: program, Segment: "x", At: at(ny, 2026, 10, 28, 9, 20, 0), Reason: rooms.ReasonLeft},
	})
	missed := func() (rooms []string, reasons map[string]AbsenceReason) {
		t.Helper()
		r, err := st.Week(ctx, program, "c1", Week{Year: 2026, Num: 44})
		if err != nil {
			t.Fatal(err)
		}
		reasons = map[string]AbsenceReason{}
		for _, x := range r.Missed {
			rooms = append(rooms, x.Room)
		}
		for _, s := range r.Scheduled {
			reasons[s.Room] = s.Absence
		}
		return rooms, reasons
	}
	if got, _ := missed(); len(got) != 3 {
		t.Fatalf("missed %v, want a, b and c (20 minutes of c is not half)", got)
	}
	for room, reason := range map[string]AbsenceReason{"a": AbsenceExcused, "b": AbsenceCancelled} {
		if _, err := st.SetAbsence(ctx, program, "c1", room, reason, "staff-1"); err != nil {
			t.Fatal(err)
		}
	}
	got, reasons := missed()
	if len(got) != 2 || got[0] != "a" || got[1] != "c" || reasons["a"] != AbsenceExcused || reasons["c"] != "" {
		t.Errorf("missed %v with reasons %v; want a (excused) and c, b cancelled by the program", got, reasons)
	}
	head, _ := st.Head(ctx, program)
	if _, err := st.SetAbsence(ctx, program, "c1", "c", "sick", "staff-1"); !errors.Is(err, ErrAmend) {
		t.Errorf("reason sick: %v, want ErrAmend", err)
	}
	if h, _ := st.Head(ctx, program); h != head {
		t.Errorf("a refused reason moved the chain")
	}
	if v, err := st.Verify(ctx, program); err != nil || !v.OK {
		t.Fatalf("verify: %+v, %v", v.Rollup, err)
	}
	if _, err := st.Rebuild(ctx, program); err != nil {
		t.Fatal(err)
	}
	if _, reasons := missed(); reasons["a"] != AbsenceExcused {
		t.Errorf("after rebuild: %v", reasons)
	}
	if _, err := st.SetAbsence(ctx, program, "c1", "a", "", "staff-1"); err != nil {
		t.Fatal(err)
	}
	if _, reasons := missed(); reasons["a"] != "" {
		t.Errorf("cleared reason still shown: %v", reasons)
	}
}
