package attendance

import (
	"testing"
	"time"
	_ "time/tzdata" // the tests need America/New_York on any machine

	"iop/rooms"
)

func newYork(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// at returns a wall-clock time in loc, in UTC. (For the repeated hour of
// a fall-back night, time.Date picks the first; the tests use fixed UTC
// times there.)
func at(loc *time.Location, y int, m time.Month, d, hh, mm, ss int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, 0, loc).UTC()
}

func fixed(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestWeeks(t *testing.T) {
	ny := newYork(t)
	cases := []struct {
		week        string
		monday      string
		hours       float64 // length of the week in New York
		containsDST string
	}{
		{"2026-W44", "2026-10-26", 169, "2026-11-01: clocks go back, a 25-hour Sunday"},
		{"2026-W45", "2026-11-02", 168, ""},
		{"2026-W10", "2026-03-02", 167, "2026-03-08: clocks go forward, a 23-hour Sunday"},
		{"2026-W01", "2025-12-29", 168, "ISO week 1 starts in the previous calendar year"},
		{"2026-W53", "2026-12-28", 168, "2026 has 53 ISO weeks (it starts on a Thursday)"},
	}
	for _, c := range cases {
		w, err := ParseWeek(c.week)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.Monday().String(); got != c.monday {
			t.Errorf("%s starts on %s, want %s", c.week, got, c.monday)
		}
		if got := w.End(ny).Sub(w.Start(ny)).Hours(); got != c.hours {
			t.Errorf("%s lasts %v hours in New York, want %v (%s)", c.week, got, c.hours, c.containsDST)
		}
		if w.String() != c.week || w.Monday().Week() != w || w.Monday().AddDays(6).Week() != w || w.Monday().AddDays(7).Week() == w {
			t.Errorf("%s does not round-trip through its dates", c.week)
		}
	}
	for _, bad := range []string{"2026-W54", "2025-W53", "2026-45", "2026-W4", "x"} {
		if _, err := ParseWeek(bad); err == nil {
			t.Errorf("ParseWeek(%q) accepted a week that does not exist", bad)
		}
	}
}

// seg builds a closed or open segment with a media history.
func seg(start, end time.Time, media ...MediaChange) *Segment {
	s := &Segment{ID: "s", Sub: "c1", Room: "r", Start: start, End: end, Counted: start}
	if len(media) == 0 {
		media = []MediaChange{{At: start, Audio: true, Video: true}}
	}
	s.Media = media
	return s
}

type piece struct {
	date         string
	seconds      int64
	videoSeconds int64
}

// TestPieces splits segments into New York local days by hand-computed
// numbers, across midnight and both DST changes.
func TestPieces(t *testing.T) {
	ny := newYork(t)
	now := at(ny, 2026, 11, 1, 12, 0, 0)
	cases := []struct {
		name  string
		seg   *Segment
		want  []piece
		total int64
	}{{
		name:  "acceptance 1: 18:02:10 to 19:32:40 is 5430 s, 90 report minutes",
		seg:   seg(at(ny, 2026, 10, 26, 18, 2, 10), at(ny, 2026, 10, 26, 19, 32, 40)),
		want:  []piece{{"2026-10-26", 5430, 5430}},
		total: 5430,
	}, {
		name: "across local midnight: 23:30 to 00:45 is 30 min on one day and 45 on the next",
		seg:  seg(at(ny, 2026, 10, 27, 23, 30, 0), at(ny, 2026, 10, 28, 0, 45, 0)),
		want: []piece{{"2026-10-27", 1800, 1800}, {"2026-10-28", 2700, 2700}},
	}, {
		// Clocks go back at 02:00 EDT on 2026-11-01: 01:00-02:00 happens
		// twice. 22:00 EDT Saturday to 01:30 EST Sunday is 2 h on Saturday
		// and 00:00 EDT -> 01:30 EST = 2.5 h on Sunday: 4.5 h elapsed,
		// although the wall clock moved 3.5 h.
		name: "night the clocks go back",
		seg:  seg(fixed("2026-11-01T02:00:00Z"), fixed("2026-11-01T06:30:00Z")),
		want: []piece{{"2026-10-31", 7200, 7200}, {"2026-11-01", 9000, 9000}},
	}, {
		// Clocks go forward at 02:00 EST on 2026-03-08: 23:00 EST to
		// 04:00 EDT is 1 h on Saturday and 00:00 -> 04:00 EDT = 3 h on
		// Sunday (02:00-03:00 does not exist).
		name: "night the clocks go forward",
		seg:  seg(at(ny, 2026, 3, 7, 23, 0, 0), at(ny, 2026, 3, 8, 4, 0, 0)),
		want: []piece{{"2026-03-07", 3600, 3600}, {"2026-03-08", 10800, 10800}},
	}, {
		name: "a whole 25-hour day",
		seg:  seg(at(ny, 2026, 10, 31, 12, 0, 0), at(ny, 2026, 11, 2, 12, 0, 0)),
		want: []piece{{"2026-10-31", 43200, 43200}, {"2026-11-01", 90000, 90000}, {"2026-11-02", 43200, 43200}},
	}, {
		name: "camera off for 30 min, then everything off for 30 min",
		seg: seg(at(ny, 2026, 10, 26, 18, 0, 0), at(ny, 2026, 10, 26, 19, 30, 0),
			MediaChange{At: at(ny, 2026, 10, 26, 18, 0, 0), Audio: true, Video: true},
			MediaChange{At: at(ny, 2026, 10, 26, 18, 30, 0), Audio: true},
			MediaChange{At: at(ny, 2026, 10, 26, 19, 0, 0)}),
		want: []piece{{"2026-10-26", 5400, 1800}},
	}, {
		name: "open segment counts up to now (12:00 on 2026-11-01)",
		seg:  seg(at(ny, 2026, 11, 1, 9, 0, 0), time.Time{}),
		want: []piece{{"2026-11-01", 10800, 10800}},
	}, {
		name: "zero seconds make no piece",
		seg:  seg(at(ny, 2026, 10, 26, 18, 0, 0), at(ny, 2026, 10, 26, 18, 0, 0)),
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.seg.Pieces(ny, now)
			if len(got) != len(c.want) {
				t.Fatalf("got %d pieces %+v, want %d", len(got), got, len(c.want))
			}
			var sum int64
			for i, p := range got {
				w := c.want[i]
				if p.Date.String() != w.date || p.Seconds != w.seconds || p.VideoSeconds != w.videoSeconds {
					t.Errorf("piece %d: %s %d s (%d on camera), want %s %d s (%d)", i, p.Date, p.Seconds, p.VideoSeconds, w.date, w.seconds, w.videoSeconds)
				}
				sum += p.Seconds
			}
			if m := c.seg.Measure(now); m.Seconds != sum {
				t.Errorf("Measure = %d s, pieces sum to %d", m.Seconds, sum)
			}
		})
	}
	if got := Minutes(5430); got != 90 {
		t.Errorf("5430 s reports as %d minutes, want 90", got)
	}
}

func TestModality(t *testing.T) {
	cases := []struct {
		a    Amount
		want Modality
	}{
		{Amount{Seconds: 100, VideoSeconds: 60, AudioSeconds: 40}, ModalityVideo},
		{Amount{Seconds: 100, VideoSeconds: 30, AudioSeconds: 50}, ModalityAudioOnly},
		{Amount{Seconds: 100, VideoSeconds: 20, AudioSeconds: 20}, ModalityNoMedia},
		{Amount{Seconds: 90, VideoSeconds: 30, AudioSeconds: 30}, ModalityVideo}, // a tie goes to video
		{Amount{}, ModalityNoMedia},
	}
	for _, c := range cases {
		if got := c.a.Modality(); got != c.want {
			t.Errorf("%+v: modality %s, want %s", c.a, got, c.want)
		}
	}
	if ModalityOf(true, false) != ModalityAudioOnly || ModalityOf(false, true) != ModalityVideo || ModalityOf(false, false) != ModalityNoMedia {
		t.Error("ModalityOf names the media states wrongly")
	}
}

// TestStep walks the segment state machine that live appends and rebuild
// share.
func TestStep(t *testing.T) {
	ny := newYork(t)
	t0 := at(ny, 2026, 10, 26, 18, 0, 0)
	sec := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Second) }
	admit := Event{Kind: KindAdmit, Program: "p", Segment: "s1", Room: "r", Sub: "c1", Role: rooms.RoleClient, At: t0, Audio: true, Video: true}
	run := func(evs ...Event) (*Segment, []result) {
		var s *Segment
		var rs []result
		for i := range evs {
			r := step(s, &evs[i], ny)
			if r.seg != nil {
				s = r.seg
			}
			rs = append(rs, r)
		}
		return s, rs
	}

	t.Run("a 40 s drop with a resume keeps one segment and loses 40 s only", func(t *testing.T) {
		s, rs := run(admit,
			Event{Kind: KindLeave, Segment: "s1", At: sec(1800), Reason: rooms.ReasonDropped},
			Event{Kind: KindResume, Segment: "s1", Room: "r", Sub: "c1", At: sec(1840), Audio: true, Video: true},
			Event{Kind: KindLeave, Segment: "s1", At: sec(3600), Reason: rooms.ReasonLeft})
		if got := s.Measure(sec(9999)).Seconds; got != 3560 {
			t.Errorf("present %d s, want 3600 - 40 = 3560", got)
		}
		var rolled int64
		for _, r := range rs {
			for _, p := range r.pieces {
				rolled += p.Seconds
			}
		}
		if rolled != 3560 || len(s.Gaps) != 1 || s.Reason != rooms.ReasonLeft {
			t.Errorf("rollups got %d s, gaps %v, reason %q", rolled, s.Gaps, s.Reason)
		}
	})
	t.Run("a second leave changes nothing", func(t *testing.T) {
		_, rs := run(admit,
			Event{Kind: KindLeave, Segment: "s1", At: sec(600), Reason: rooms.ReasonEnded},
			Event{Kind: KindLeave, Segment: "s1", At: sec(660), Reason: rooms.ReasonLeft})
		if rs[2].out != ignored {
			t.Errorf("second leave: outcome %v, want ignored", rs[2].out)
		}
	})
	t.Run("a segment swept as lost is extended by its recorder's late leave", func(t *testing.T) {
		s, rs := run(admit,
			Event{Kind: KindLeave, Segment: "s1", At: sec(900), Reason: ReasonLost},
			Event{Kind: KindLeave, Segment: "s1", At: sec(1200), Reason: rooms.ReasonLeft})
		if rs[2].out != closed || s.Measure(sec(9999)).Seconds != 1200 || len(s.Gaps) != 0 {
			t.Errorf("after revival: %v, %d s, gaps %v; want closed, 1200 s, no gap", rs[2].out, s.Measure(sec(9999)).Seconds, s.Gaps)
		}
	})
	t.Run("a media event revives a lost segment; the time away counts", func(t *testing.T) {
		s, rs := run(admit,
			Event{Kind: KindLeave, Segment: "s1", At: sec(900), Reason: ReasonLost},
			Event{Kind: KindMedia, Segment: "s1", At: sec(1000), Audio: true},
			Event{Kind: KindLeave, Segment: "s1", At: sec(1200), Reason: rooms.ReasonLeft})
		a := s.Measure(sec(9999))
		if rs[2].out != reopened || a.Seconds != 1200 || a.VideoSeconds != 1000 {
			t.Errorf("revived: %v, %+v; want reopened, 1200 s of which 1000 on camera", rs[2].out, a)
		}
	})
	t.Run("a media event never revives a segment that left", func(t *testing.T) {
		_, rs := run(admit,
			Event{Kind: KindLeave, Segment: "s1", At: sec(900), Reason: rooms.ReasonLeft},
			Event{Kind: KindMedia, Segment: "s1", At: sec(1000)})
		if rs[2].out != ignored {
			t.Errorf("outcome %v, want ignored", rs[2].out)
		}
	})
	t.Run("events about an unknown segment are ignored; a resume opens it", func(t *testing.T) {
		_, rs := run(Event{Kind: KindLeave, Segment: "s1", At: t0, Reason: "left"})
		if rs[0].out != ignored {
			t.Errorf("leave of unknown segment: %v", rs[0].out)
		}
		s, rs := run(Event{Kind: KindResume, Segment: "s1", Room: "r", Sub: "c1", At: t0})
		if rs[0].out != opened || s.Start != t0 {
			t.Errorf("resume of unknown segment: %v", rs[0].out)
		}
	})
	t.Run("time never runs backwards inside a segment", func(t *testing.T) {
		s, _ := run(admit,
			Event{Kind: KindMedia, Segment: "s1", At: sec(600), Audio: true},
			Event{Kind: KindLeave, Segment: "s1", At: sec(300), Reason: "left"})
		if !s.End.Equal(sec(600)) {
			t.Errorf("a leave stamped before the last media change ends at %v, want %v", s.End, sec(600))
		}
	})
}

// TestLedger rolls pieces up per person per day and per ISO week.
func TestLedger(t *testing.T) {
	ny := newYork(t)
	l := NewLedger(ny)
	add := func(room string, from, to time.Time) {
		s := seg(from, to)
		s.Room = room
		l.AddSegment(s, to)
	}
	add("mon-am", at(ny, 2026, 10, 26, 9, 0, 0), at(ny, 2026, 10, 26, 12, 0, 0))   // 3 h: billable
	add("mon-pm", at(ny, 2026, 10, 26, 18, 0, 0), at(ny, 2026, 10, 26, 18, 30, 0)) // same day, second session
	add("wed-am", at(ny, 2026, 10, 28, 9, 0, 0), at(ny, 2026, 10, 28, 11, 59, 59)) // 1 s short of billable
	add("sun-late", at(ny, 2026, 11, 1, 23, 0, 0), at(ny, 2026, 11, 2, 1, 0, 0))   // 1 h in W44, 1 h in W45
	w44 := l.Week("c1", Week{Year: 2026, Num: 44})
	if w44.Seconds != 10800+1800+10799+3600 || w44.Sessions() != 4 || w44.DaysAttended() != 3 || w44.BillableDays(3*time.Hour) != 1 {
		t.Errorf("W44: %d s, %d sessions, %d days, %d billable; want 27000, 4, 3, 1",
			w44.Seconds, w44.Sessions(), w44.DaysAttended(), w44.BillableDays(3*time.Hour))
	}
	w45 := l.Week("c1", Week{Year: 2026, Num: 45})
	if w45.Seconds != 3600 || w45.DaysAttended() != 1 {
		t.Errorf("W45: %d s over %d days, want 3600 over 1", w45.Seconds, w45.DaysAttended())
	}
	mon, _ := ParseDate("2026-10-26")
	if d := l.Day("c1", mon); d.Seconds != 12600 || d.Sessions() != 2 {
		t.Errorf("Monday: %d s in %d sessions, want 12600 in 2", d.Seconds, d.Sessions())
	}
}
