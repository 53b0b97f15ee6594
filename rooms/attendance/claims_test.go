package attendance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"iop/rooms"
)

// billingEvents appends a presence with the given state from from to to,
// then any state changes (at, state) in between.
type billingEvents struct {
	t       *testing.T
	st      *Store
	program string
	n       int
}

func (b *billingEvents) stay(seg, room string, kind rooms.Kind, sub string, role rooms.Role, from, to time.Time,
	first MediaChange, changes ...MediaChange) {
	b.t.Helper()
	ev := func(e Event) Event {
		b.n++
		e.ID, e.Program, e.Segment = fmt.Sprintf("%s-%d", seg, b.n), b.program, seg
		return e
	}
	evs := []Event{ev(Event{Kind: KindAdmit, Room: room, RoomKind: kind, Sub: sub, Name: "Name " + sub, Role: role, At: from,
		Audio: first.Audio, Video: first.Video, NoClinician: first.NoClinician})}
	for _, c := range changes {
		evs = append(evs, ev(Event{Kind: KindMedia, At: c.At, Audio: c.Audio, Video: c.Video, NoClinician: c.NoClinician}))
	}
	evs = append(evs, ev(Event{Kind: KindLeave, At: to, Reason: rooms.ReasonLeft}))
	appendAll(b.t, b.st, evs)
}

var (
	onVideo  = MediaChange{Audio: true, Video: true}
	alone    = MediaChange{Audio: true, Video: true, NoClinician: true}
	audioDir = MediaChange{Audio: true}
)

func lineOf(t *testing.T, x *BillingExport, date, client string) *BillingLine {
	t.Helper()
	for i := range x.Lines {
		if x.Lines[i].Date.String() == date && x.Lines[i].Client == client {
			return &x.Lines[i]
		}
	}
	return nil
}

// TestFamilyCodes: a family session with the client and a family member
// bills 90847; one the family attended without the client bills 90846 on
// the client's line of that date (the family's seconds stay out of the
// client's); the client alone, or a family that stayed too briefly to
// attend, bills no family code.
func TestFamilyCodes(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	d := func(day, hh, mm int) time.Time { return at(ny, 2026, 11, day, hh, mm, 0) }
	fam := func(room string, day int) Expected {
		return Expected{Room: room, Kind: rooms.KindFamily, Start: d(day, 14, 0), End: d(day, 15, 0)}
	}
	sched := fakeSchedule{"c1": {fam("fam-mon", 2), fam("fam-wed", 4), fam("fam-thu", 5), fam("fam-fri", 6)}}
	st, program, clk := newStore(t, Options{Schedule: sched, Roster: sched})
	clk.Set(d(9, 12, 0))
	b := &billingEvents{t: t, st: st, program: program}
	// Monday: the client with her mother.
	b.stay("th-mon", "fam-mon", rooms.KindFamily, "th1", rooms.RoleTherapist, d(2, 14, 0), d(2, 15, 0), onVideo)
	b.stay("c1-mon", "fam-mon", rooms.KindFamily, "c1", rooms.RoleClient, d(2, 14, 0), d(2, 15, 0), onVideo)
	b.stay("f1-mon", "fam-mon", rooms.KindFamily, "family-aa", rooms.RoleFamily, d(2, 14, 5), d(2, 15, 0), onVideo)
	// Wednesday: the mother came, the client did not (audio only).
	b.stay("th-wed", "fam-wed", rooms.KindFamily, "th2", rooms.RoleTherapist, d(4, 14, 0), d(4, 15, 0), onVideo)
	b.stay("f1-wed", "fam-wed", rooms.KindFamily, "family-bb", rooms.RoleFamily, d(4, 14, 0), d(4, 14, 50), audioDir)
	// Thursday: the client alone.
	b.stay("th-thu", "fam-thu", rooms.KindFamily, "th1", rooms.RoleTherapist, d(5, 14, 0), d(5, 15, 0), onVideo)
	b.stay("c1-thu", "fam-thu", rooms.KindFamily, "c1", rooms.RoleClient, d(5, 14, 0), d(5, 15, 0), onVideo)
	// Friday: the family for ten minutes of the hour.
	b.stay("th-fri", "fam-fri", rooms.KindFamily, "th1", rooms.RoleTherapist, d(6, 14, 0), d(6, 15, 0), onVideo)
	b.stay("f1-fri", "fam-fri", rooms.KindFamily, "family-cc", rooms.RoleFamily, d(6, 14, 0), d(6, 14, 10), onVideo)

	x, err := st.BillingWeek(ctx, program, Week{Year: 2026, Num: 45})
	if err != nil {
		t.Fatal(err)
	}
	mon, wed, thu := lineOf(t, x, "2026-11-02", "c1"), lineOf(t, x, "2026-11-04", "c1"), lineOf(t, x, "2026-11-05", "c1")
	if mon == nil || strings.Join(mon.Codes, ";") != "90847" || mon.Modifier != "95" || mon.DirectSeconds != 3600 {
		t.Errorf("Monday, client with family: %+v, want 90847, 95, 3600 s", mon)
	}
	if wed == nil {
		t.Fatalf("no line for Wednesday, when the family attended without the client: %+v", x.Lines)
	}
	if strings.Join(wed.Codes, ";") != "90846" || strings.Join(wed.Sessions, ";") != "fam-wed" ||
		strings.Join(wed.Clinicians, ";") != "th2" || wed.Modifier != "93" || wed.Seconds != 0 || wed.Billable {
		t.Errorf("Wednesday, family without the client: %+v, want 90846 by th2, audio-only modifier, none of the client's seconds", wed)
	}
	if len(wed.SessionTypes) != 1 || wed.SessionTypes[0] != rooms.KindFamily {
		t.Errorf("Wednesday session types %v, want family", wed.SessionTypes)
	}
	if thu == nil || len(thu.Codes) != 0 || thu.DirectSeconds != 3600 {
		t.Errorf("Thursday, the client alone in a family session: %+v, want no family code", thu)
	}
	if fri := lineOf(t, x, "2026-11-06", "c1"); fri != nil {
		t.Errorf("Friday, the family ten minutes of an hour: %+v, want no line", fri)
	}
	for _, l := range x.Lines {
		if l.Client != "c1" {
			t.Errorf("a line for %s: family members and therapists have none", l.Client)
		}
	}
}

// TestModifierFollowsDirectService: a client on video while no therapist
// was there and audio-only while one was gets the audio-only modifier,
// though video is what they held for the most seconds.
func TestModifierFollowsDirectService(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	d := func(hh, mm int) time.Time { return at(ny, 2026, 11, 3, hh, mm, 0) }
	st, program, clk := newStore(t, Options{})
	clk.Set(d(23, 0))
	b := &billingEvents{t: t, st: st, program: program}
	b.stay("th", "grp", rooms.KindGroup, "th1", rooms.RoleTherapist, d(10, 0), d(10, 40), onVideo)
	b.stay("c1", "grp", rooms.KindGroup, "c1", rooms.RoleClient, d(9, 0), d(10, 40), alone,
		MediaChange{At: d(10, 0), Audio: true})
	x, err := st.BillingWeek(ctx, program, Week{Year: 2026, Num: 45})
	if err != nil {
		t.Fatal(err)
	}
	l := lineOf(t, x, "2026-11-03", "c1")
	if l == nil || l.VideoSeconds != 3600 || l.AudioSeconds != 2400 || l.Amount.Modality() != ModalityVideo {
		t.Fatalf("line %+v: want 3600 s video, 2400 s audio only", l)
	}
	if l.Modifier != "93" || l.DirectSeconds != 2400 || strings.Join(l.Codes, ";") != "90853" {
		t.Errorf("modifier %q, direct %d, codes %v: want 93 (the direct service was audio only), 2400 s, 90853", l.Modifier, l.DirectSeconds, l.Codes)
	}
}

// TestTherapistCorrectionMovesDirectService: correcting when a therapist
// was there moves the clients' direct and no-clinician seconds with it, in
// reports, exports, the room roster, and after verify and rebuild.
func TestTherapistCorrectionMovesDirectService(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	d := func(hh, mm int) time.Time { return at(ny, 2026, 11, 3, hh, mm, 0) }
	st, program, clk := newStore(t, Options{})
	clk.Set(d(23, 0))
	b := &billingEvents{t: t, st: st, program: program}
	// The therapist's connection was recorded as ending at 18:30; she was
	// there to 19:00. The recorder marked c1 as without a clinician from
	// 18:30, c2 (audio only) too, and the family member f1.
	b.stay("th", "grp", rooms.KindGroup, "th1", rooms.RoleTherapist, d(18, 0), d(18, 30), onVideo)
	b.stay("c1", "grp", rooms.KindGroup, "c1", rooms.RoleClient, d(18, 0), d(19, 0), onVideo, MediaChange{At: d(18, 30), Audio: true, Video: true, NoClinician: true})
	b.stay("c2", "grp", rooms.KindGroup, "c2", rooms.RoleClient, d(18, 20), d(18, 50), audioDir, MediaChange{At: d(18, 30), Audio: true, NoClinician: true})
	b.stay("c3", "other", rooms.KindGroup, "c3", rooms.RoleClient, d(18, 0), d(19, 0), alone)
	w := Week{Year: 2026, Num: 45}
	check := func(when string, want map[string][2]int64) {
		t.Helper()
		x, err := st.BillingWeek(ctx, program, w)
		if err != nil {
			t.Fatal(err)
		}
		for sub, dn := range want {
			r, err := st.Week(ctx, program, sub, w)
			if err != nil {
				t.Fatal(err)
			}
			if r.DirectSeconds != dn[0] || r.NoClinicianSeconds != dn[1] {
				t.Errorf("%s: %s's week has %d s direct, %d s without a clinician; want %d and %d",
					when, sub, r.DirectSeconds, r.NoClinicianSeconds, dn[0], dn[1])
			}
			if l := lineOf(t, x, "2026-11-03", sub); l == nil || l.DirectSeconds != dn[0] || l.NoClinician() != dn[1] {
				t.Errorf("%s: %s's billing line %+v, want %d s direct", when, sub, l, dn[0])
			}
		}
		v, err := st.Verify(ctx, program)
		if err != nil || !v.OK {
			t.Errorf("%s: verify %+v, %v", when, v, err)
		}
	}
	check("as recorded", map[string][2]int64{"c1": {1800, 1800}, "c2": {600, 1200}, "c3": {0, 3600}})

	correct := func(in CorrectionInput) {
		t.Helper()
		in.Author, in.Reason = "staff-1", "per the therapist's note"
		if rec, err := st.Correct(ctx, program, in); err != nil || !rec.Applied {
			t.Fatalf("correct %+v: %+v, %v", in, rec, err)
		}
	}
	correct(CorrectionInput{Segment: "th", Start: d(18, 0), End: d(19, 0)})
	check("the therapist there to 19:00", map[string][2]int64{"c1": {3600, 0}, "c2": {1800, 0}, "c3": {0, 3600}})

	correct(CorrectionInput{Segment: "th", Start: d(18, 0), End: d(18, 10)})
	check("the therapist there to 18:10 only", map[string][2]int64{"c1": {600, 3000}, "c2": {0, 1800}})

	// A co-therapist's presence the record lacked: 18:40 to 19:00.
	correct(CorrectionInput{Room: "grp", Kind: rooms.KindGroup, Sub: "th2", Role: rooms.RoleTherapist, Video: true,
		Start: d(18, 40), End: d(19, 0)})
	check("a co-therapist added from 18:40", map[string][2]int64{"c1": {1800, 1800}, "c2": {600, 1200}})

	before := weekJSON45(t, st, program)
	if _, err := st.Rebuild(ctx, program); err != nil {
		t.Fatal(err)
	}
	if after := weekJSON45(t, st, program); after != before {
		t.Errorf("rebuild from the chain disagrees with the live rollups:\n%s\n%s", before, after)
	}
	check("after rebuild", map[string][2]int64{"c1": {1800, 1800}, "c2": {600, 1200}})
}

func weekJSON45(t *testing.T, st *Store, program string) string {
	t.Helper()
	r, err := st.ProgramWeek(context.Background(), program, Week{Year: 2026, Num: 45})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range r.People {
		fmt.Fprintf(&b, "%s %d %d %d %d|", p.Sub, p.Seconds, p.DirectSeconds, p.VideoSeconds, p.AudioOnlySeconds)
	}
	return b.String()
}

// TestBillingRange: a billing month gives the lines of its dates only,
// across ISO weeks; reversed, too long and malformed ranges are refused.
func TestBillingRange(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, clk := newStore(t, Options{})
	clk.Set(at(ny, 2026, 12, 2, 12, 0, 0))
	b := &billingEvents{t: t, st: st, program: program}
	for i, day := range []struct {
		m   time.Month
		day int
	}{{10, 31}, {11, 1}, {11, 16}, {11, 30}, {12, 1}} {
		from := at(ny, 2026, day.m, day.day, 18, 0, 0)
		b.stay(fmt.Sprintf("th%d", i), fmt.Sprintf("g%d", i), rooms.KindGroup, "th1", rooms.RoleTherapist, from, from.Add(time.Hour), onVideo)
		b.stay(fmt.Sprintf("c%d", i), fmt.Sprintf("g%d", i), rooms.KindGroup, "c1", rooms.RoleClient, from, from.Add(time.Hour), onVideo)
	}
	r, err := ParseRange("2026-11-01", "2026-11-30")
	if err != nil {
		t.Fatal(err)
	}
	x, err := st.BillingRange(ctx, program, r)
	if err != nil {
		t.Fatal(err)
	}
	var dates []string
	for _, l := range x.Lines {
		dates = append(dates, l.Date.String())
	}
	if got := strings.Join(dates, " "); got != "2026-11-01 2026-11-16 2026-11-30" {
		t.Errorf("November's lines are on %s, want 2026-11-01 2026-11-16 2026-11-30", got)
	}
	for _, c := range []struct{ from, to string }{
		{"2026-11-30", "2026-11-01"}, // reversed
		{"2026-01-01", "2026-04-03"}, // 93 days
		{"2026-11-31", "2026-12-01"}, // no such date
		{"2026-11", "2026-11-30"},
		{"", "2026-11-30"},
	} {
		if _, err := ParseRange(c.from, c.to); !errors.Is(err, ErrRange) {
			t.Errorf("ParseRange(%q, %q) = %v, want ErrRange", c.from, c.to, err)
		}
	}
	if _, err := st.BillingRange(ctx, program, DateRange{From: r.To, To: r.From}); !errors.Is(err, ErrRange) {
		t.Errorf("BillingRange of a reversed range: %v", err)
	}
	if r, err := ParseRange("2026-10-01", "2026-12-31"); err != nil || r.Days() != 92 {
		t.Errorf("a quarter of 92 days: %v, %d days", err, r.Days())
	}
}
