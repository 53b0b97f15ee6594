package attendance

import (
	"bytes"
	"context"
	"encoding/csv"
	"testing"
	"time"

	"iop/rooms"
)

// TestBreakdown follows one client through a session whose state changes:
// video with a therapist, audio only, the therapist gone, nothing sent.
// Every report (segment, session, day, week, the stored rollups after a
// rebuild, the CSV) splits the seconds the same way, and the day is billed
// on direct seconds only.
func TestBreakdown(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, clk := newStore(t, Options{})
	t0 := at(ny, 2026, 10, 26, 9, 0, 0)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	room := "grp"
	evs := []Event{
		{ID: "1", Kind: KindAdmit, Program: program, Segment: "c", Room: room, Sub: "c1", Role: rooms.RoleClient, At: sec(0), Audio: true, Video: true},
		{ID: "2", Kind: KindMedia, Program: program, Segment: "c", At: sec(600), Audio: true},                    // camera off
		{ID: "3", Kind: KindMedia, Program: program, Segment: "c", At: sec(900), Audio: true, NoClinician: true}, // therapist left
		{ID: "4", Kind: KindMedia, Program: program, Segment: "c", At: sec(1000), NoClinician: true},             // nothing received
		{ID: "5", Kind: KindMedia, Program: program, Segment: "c", At: sec(1100), Audio: true, Video: true},      // therapist back, camera on
		{ID: "6", Kind: KindLeave, Program: program, Segment: "c", At: sec(11000), Reason: rooms.ReasonLeft},
	}
	for _, e := range evs {
		if _, err := st.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	clk.Set(sec(20000))
	want := Breakdown{AudioOnlySeconds: 400, NoMediaSeconds: 100, DirectSeconds: 10800, NoClinicianSeconds: 200}
	const seconds, video = 11000, 10500

	check := func(what string, s, v int64, b Breakdown) {
		t.Helper()
		if s != seconds || v != video || b != want {
			t.Errorf("%s: %d s, %d video, %+v; want %d, %d, %+v", what, s, v, b, seconds, video, want)
		}
	}
	roster, err := st.Room(ctx, program, room)
	if err != nil {
		t.Fatal(err)
	}
	p := findPerson(t, roster, "c1")
	check("segment", p.Segments[0].Seconds, p.Segments[0].VideoSeconds, p.Segments[0].Breakdown)
	check("person in the roster", p.Seconds, p.VideoSeconds, p.Breakdown)
	check("roster", roster.Seconds, roster.VideoSeconds, roster.Breakdown)

	w := DateOf(t0, ny).Week()
	wk, err := st.Week(ctx, program, "c1", w)
	if err != nil {
		t.Fatal(err)
	}
	check("week", wk.Seconds, wk.VideoSeconds, wk.Breakdown)
	check("day", wk.Daily[0].Seconds, wk.Daily[0].VideoSeconds, wk.Daily[0].Breakdown)
	check("session", wk.Sessions[0].Seconds, wk.Sessions[0].VideoSeconds, wk.Sessions[0].Breakdown)
	// 11,000 s present but 10,800 s direct: just billable. 200 s more
	// without the therapist would not have made it so.
	if !wk.Daily[0].Billable || wk.BillableDays != 1 {
		t.Errorf("10,800 s of direct service is a billable day: %+v", wk.Daily[0])
	}

	var buf bytes.Buffer
	if err := st.ExportWeek(ctx, &buf, program, w); err != nil {
		t.Fatal(err)
	}
	cr := csv.NewReader(&buf)
	cr.Comment = '#'
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	row := recs[1]
	for name, v := range map[string]string{
		"seconds": "11000", "video_seconds": "10500", "audio_only_seconds": "400", "no_media_seconds": "100",
		"direct_seconds": "10800", "no_clinician_seconds": "200", "modality": "video",
	} {
		if i, ok := col[name]; !ok || row[i] != v {
			t.Errorf("CSV %s: %q, want %s (header %v)", name, row[col[name]], v, recs[0])
		}
	}

	// The rollups rebuilt from the events are the same.
	if _, err := st.Rebuild(ctx, program); err != nil {
		t.Fatal(err)
	}
	if wk, err = st.Week(ctx, program, "c1", w); err != nil {
		t.Fatal(err)
	}
	check("week after rebuild", wk.Seconds, wk.VideoSeconds, wk.Breakdown)
}

// TestNoClinicianField: a no_clinician stretch is not direct, and an
// event without the field (recorded before it existed) means a clinician
// was there, so old chains keep their meaning.
func TestNoClinicianField(t *testing.T) {
	ny := newYork(t)
	t0 := at(ny, 2026, 10, 26, 18, 0, 0)
	s := step(nil, &Event{Kind: KindAdmit, Segment: "s", Room: "r", Sub: "c", At: t0, Audio: true}, ny).seg
	a := s.Measure(t0.Add(time.Minute))
	if a.DirectSeconds != 60 || a.NoClinician() != 0 || a.AudioSeconds != 60 || a.NoMedia() != 0 {
		t.Errorf("an event without no_clinician: %+v", a)
	}
	s = step(s, &Event{Kind: KindMedia, Segment: "s", At: t0.Add(time.Minute), Audio: true, NoClinician: true}, ny).seg
	a = s.Measure(t0.Add(3 * time.Minute))
	if a.DirectSeconds != 60 || a.NoClinician() != 120 || a.Modality() != ModalityAudioOnly {
		t.Errorf("two minutes without a clinician: %+v", a)
	}
}

// TestRecorderClinicianPresence is finding 3 on the recorder: a client's
// and a family member's time is direct only while a therapist is admitted
// in the room; a therapist of another room does not count; the
// therapist's own time is direct.
func TestRecorderClinicianPresence(t *testing.T) {
	ctx := context.Background()
	ny := newYork(t)
	st, program, clk := newStore(t, Options{})
	rec := newRecorder(t, st, program, clk)
	f := feed{rec, program}
	ts := func(mm, ss int) time.Time { return at(ny, 2026, 10, 26, 18, mm, ss) }
	room, other := "grp", "other"
	th, th2 := person("t", "th1", rooms.RoleTherapist), person("t2", "th2", rooms.RoleTherapist)
	c, fam := person("c", "c1", rooms.RoleClient), person("f", "fm1", rooms.RoleFamily)

	f.joined(other, th2, ts(0, 0)) // in another room all along
	f.joined(room, c, ts(1, 0))    // 60 s before the therapist: not direct
	f.joined(room, th, ts(2, 0))
	f.joined(room, fam, ts(3, 0))
	f.left(room, th, rooms.ReasonDropped, ts(10, 0))                      // drops at 18:10
	f.joined(room, person("t-b", "th1", rooms.RoleTherapist), ts(10, 30)) // back 30 s later: a gap for all
	f.left(room, person("t-b", "th1", rooms.RoleTherapist), rooms.ReasonLeft, ts(20, 0))
	f.left(room, fam, rooms.ReasonLeft, ts(21, 0)) // 60 s alone with the client
	f.left(room, c, rooms.ReasonLeft, ts(25, 0))   // 300 s without a therapist
	f.left(other, th2, rooms.ReasonLeft, ts(30, 0))
	flush(t, rec)
	clk.Set(ts(40, 0))

	r, err := st.Room(ctx, program, room)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		sub                   string
		seconds, direct, none int64
	}{
		{"c1", 24 * 60, 24*60 - 60 - 30 - 300, 60 + 30 + 300},
		{"fm1", 18 * 60, 18*60 - 30 - 60, 30 + 60},
		{"th1", 18*60 - 30, 18*60 - 30, 0},
	} {
		p := findPerson(t, r, w.sub)
		if p.Seconds != w.seconds || p.DirectSeconds != w.direct || p.NoClinicianSeconds != w.none {
			t.Errorf("%s: %d s, %d direct, %d without a clinician; want %d, %d, %d",
				w.sub, p.Seconds, p.DirectSeconds, p.NoClinicianSeconds, w.seconds, w.direct, w.none)
		}
	}
}
