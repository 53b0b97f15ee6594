package attendance

import (
	"testing"
	"time"
)

// present builds a closed segment of sub in room from a to b, with gaps.
func present(room string, a, b time.Time, gaps ...Gap) *Segment {
	s := &Segment{ID: room + a.String(), Room: room, Sub: "c1", Role: "client", Start: a.UTC(), End: b.UTC(),
		Media: []MediaChange{{At: a.UTC(), Audio: true, Video: true}}, Gaps: gaps}
	if b.IsZero() {
		s.End = time.Time{}
	}
	return s
}

// TestPolicyJudgesSessions is acceptance 2: the share of the window, late
// arrival and early departure, in the program's zone, across both 2026 DST
// changes of New York.
func TestPolicyJudgesSessions(t *testing.T) {
	ny := newYork(t)
	l := func(y int, m time.Month, d, hh, mm, ss int) time.Time { return time.Date(y, m, d, hh, mm, ss, 0, ny) }
	group := Expected{Room: "g", Start: l(2026, 11, 30, 9, 0, 0), End: l(2026, 11, 30, 10, 0, 0)}
	after := l(2026, 11, 30, 12, 0, 0)
	// 01:30 to 03:30 on the spring-forward night is one real hour; on the
	// fall-back night 00:30 to 02:30 is three.
	spring := Expected{Room: "g", Start: l(2026, 3, 8, 1, 30, 0), End: l(2026, 3, 8, 3, 30, 0)}
	fall := Expected{Room: "g", Start: l(2026, 11, 1, 0, 30, 0), End: l(2026, 11, 1, 2, 30, 0)}
	def := DefaultPolicy()
	cases := []struct {
		name     string
		policy   Policy
		x        Expected
		segs     []*Segment
		now      time.Time
		attended bool
		seconds  int64
		late     int64 // late seconds flagged, 0: not late
		early    int64 // early seconds flagged, 0: not flagged
	}{
		{name: "exactly half", x: group, now: after, attended: true, seconds: 1800,
			segs: []*Segment{present("g", l(2026, 11, 30, 9, 0, 0), l(2026, 11, 30, 9, 30, 0))}, early: 1800},
		{name: "one second short of half", x: group, now: after, seconds: 1799,
			segs: []*Segment{present("g", l(2026, 11, 30, 9, 0, 1), l(2026, 11, 30, 9, 30, 0))}, early: 1800},
		{name: "30 s before the start only (finding 5)", x: group, now: after, seconds: 0,
			segs: []*Segment{present("g", l(2026, 11, 30, 8, 59, 30), l(2026, 11, 30, 9, 0, 0))}},
		{name: "early arrival counts from the start", x: group, now: after, attended: true, seconds: 3600,
			segs: []*Segment{present("g", l(2026, 11, 30, 8, 50, 0), l(2026, 11, 30, 10, 5, 0))}},
		{name: "10 minutes late is within the margin", x: group, now: after, attended: true, seconds: 3000,
			segs: []*Segment{present("g", l(2026, 11, 30, 9, 10, 0), l(2026, 11, 30, 10, 0, 0))}},
		{name: "11 minutes late is flagged", x: group, now: after, attended: true, seconds: 2940, late: 660,
			segs: []*Segment{present("g", l(2026, 11, 30, 9, 11, 0), l(2026, 11, 30, 10, 0, 0))}},
		{name: "left 11 minutes early is flagged", x: group, now: after, attended: true, seconds: 2940, early: 660,
			segs: []*Segment{present("g", l(2026, 11, 30, 9, 0, 0), l(2026, 11, 30, 9, 49, 0))}},
		{name: "no early flag while the session runs", x: group, now: l(2026, 11, 30, 9, 30, 0), attended: true, seconds: 1800,
			segs: []*Segment{present("g", l(2026, 11, 30, 9, 0, 0), time.Time{})}},
		{name: "a gap does not count", x: group, now: after, seconds: 1500,
			segs: []*Segment{present("g", l(2026, 11, 30, 9, 0, 0), l(2026, 11, 30, 10, 0, 0),
				Gap{From: l(2026, 11, 30, 9, 10, 0), To: l(2026, 11, 30, 9, 45, 0)})}},
		{name: "arrival after a gap at the start is late", x: group, now: after, attended: true, seconds: 2400, late: 1200,
			segs: []*Segment{present("g", l(2026, 11, 30, 8, 55, 0), l(2026, 11, 30, 10, 0, 0),
				Gap{From: l(2026, 11, 30, 8, 58, 0), To: l(2026, 11, 30, 9, 20, 0)})}},
		{name: "two segments add up", x: group, now: after, attended: true, seconds: 2400,
			segs: []*Segment{present("g", l(2026, 11, 30, 9, 0, 0), l(2026, 11, 30, 9, 20, 0)),
				present("g", l(2026, 11, 30, 9, 40, 0), l(2026, 11, 30, 10, 0, 0))}},
		{name: "time without a clinician does not count", x: group, now: after, seconds: 1200, early: 1200,
			segs: []*Segment{{ID: "nc", Room: "g", Sub: "c1", Start: l(2026, 11, 30, 9, 0, 0).UTC(), End: l(2026, 11, 30, 9, 40, 0).UTC(),
				Media: []MediaChange{{At: l(2026, 11, 30, 9, 0, 0).UTC(), Audio: true, Video: true, NoClinician: true},
					{At: l(2026, 11, 30, 9, 20, 0).UTC(), Audio: true, Video: true}}}}},
		{name: "another room does not count", x: group, now: after, seconds: 0,
			segs: []*Segment{present("other", l(2026, 11, 30, 9, 0, 0), l(2026, 11, 30, 10, 0, 0))}},
		{name: "a stricter share", policy: Policy{SessionShare: 0.75}, x: group, now: after, seconds: 2700, attended: true, early: 900,
			segs: []*Segment{present("g", l(2026, 11, 30, 9, 0, 0), l(2026, 11, 30, 9, 45, 0))}},
		{name: "a wider margin", policy: Policy{LateMargin: 20 * time.Minute}, x: group, now: after, seconds: 2340, attended: true,
			segs: []*Segment{present("g", l(2026, 11, 30, 9, 15, 0), l(2026, 11, 30, 9, 54, 0))}},
		{name: "spring forward: half of one real hour", x: spring, now: l(2026, 3, 8, 12, 0, 0), attended: true, seconds: 1800, early: 1800,
			segs: []*Segment{present("g", l(2026, 3, 8, 1, 30, 0), l(2026, 3, 8, 3, 0, 0))}},
		{name: "fall back: a second short of half of three real hours", x: fall, now: l(2026, 11, 1, 12, 0, 0), seconds: 5399, early: 5400,
			segs: []*Segment{present("g", l(2026, 11, 1, 0, 30, 1), l(2026, 11, 1, 1, 0, 0).Add(time.Hour))}},
		{name: "fall back: the repeated hour counts twice", x: fall, now: l(2026, 11, 1, 12, 0, 0), attended: true, seconds: 5400, early: 5400,
			segs: []*Segment{present("g", l(2026, 11, 1, 0, 30, 0), l(2026, 11, 1, 1, 0, 0).Add(time.Hour))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.policy
			if p == (Policy{}) {
				p = def
			}
			got := p.Judge(c.x, c.segs, c.now)
			if got.Attended != c.attended || got.Seconds != c.seconds {
				t.Errorf("attended %v with %d s (needed %d), want %v with %d s", got.Attended, got.Seconds, got.Needed, c.attended, c.seconds)
			}
			if got.Late != (c.late > 0) || got.LateSeconds != c.late {
				t.Errorf("late %v (%d s), want %d s", got.Late, got.LateSeconds, c.late)
			}
			if got.LeftEarly != (c.early > 0) || got.EarlySeconds != c.early {
				t.Errorf("left early %v (%d s), want %d s", got.LeftEarly, got.EarlySeconds, c.early)
			}
		})
	}
}

// TestPolicyDayMinimum: a day counts toward the target days only with the
// policy's minimum, on a 23-hour day too; 9 h on Monday and a second on two
// other days is no longer on track (finding 5).
func TestPolicyDayMinimum(t *testing.T) {
	ny := newYork(t)
	l := func(m time.Month, d, hh, mm int) time.Time { return time.Date(2026, m, d, hh, mm, 0, 0, ny) }
	cases := []struct {
		name    string
		segs    []*Segment
		minimum time.Duration
		days    int
	}{
		{name: "across the spring-forward midnight: 30 min and 45 min", minimum: time.Hour, days: 0,
			segs: []*Segment{present("g", l(3, 7, 23, 30), l(3, 8, 0, 45))}},
		{name: "the same with any second counting", minimum: 0, days: 2,
			segs: []*Segment{present("g", l(3, 7, 23, 30), l(3, 8, 0, 45))}},
		{name: "an hour on the 23-hour day, across the missing hour", minimum: time.Hour, days: 1,
			segs: []*Segment{present("g", l(3, 8, 1, 30), l(3, 8, 3, 30))}},
		{name: "an hour on the 25-hour day, in the repeated hour", minimum: time.Hour, days: 1,
			segs: []*Segment{present("g", l(11, 1, 1, 0), l(11, 1, 1, 0).Add(time.Hour))}},
		{name: "59 minutes", minimum: time.Hour, days: 0,
			segs: []*Segment{present("g", l(11, 30, 9, 0), l(11, 30, 9, 59))}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			led := NewLedger(ny)
			for _, s := range c.segs {
				led.AddSegment(s, s.End)
			}
			days := 0
			for _, tot := range led.Weeks {
				days += tot.DaysReaching(c.minimum)
			}
			if days != c.days {
				t.Errorf("%d days counted, want %d", days, c.days)
			}
		})
	}

	w := Week{Year: 2026, Num: 49}
	in := StatusInput{
		Now: l(12, 7, 12, 0), Loc: ny, Week: w, Targets: Targets{Hours: 9, Days: 3},
		Totals:     totals(map[string]int64{"2026-11-30": 9 * 3600, "2026-12-01": 1, "2026-12-02": 1}),
		DayMinimum: DefaultPolicy().DayMinimum,
	}
	if got := WeeklyStatus(in); got != StatusBelow {
		t.Errorf("9 h on Monday and 1 s on two days: %s, want below", got)
	}
	in.Totals = totals(map[string]int64{"2026-11-30": 7 * 3600, "2026-12-01": 3600, "2026-12-02": 3600})
	if got := WeeklyStatus(in); got != StatusOnTrack {
		t.Errorf("7 h, 1 h, 1 h: %s, want on_track", got)
	}
	// Mid-week with a schedule: a day can still count only if what is
	// left of its sessions reaches the minimum.
	in.Now, in.Scheduled = l(12, 2, 8, 0), true
	in.Totals = totals(map[string]int64{"2026-11-30": 9 * 3600, "2026-12-01": 3600})
	in.Expected = []Expected{{Room: "short", Start: l(12, 3, 9, 0), End: l(12, 3, 9, 45)}}
	if got := WeeklyStatus(in); got != StatusAtRisk {
		t.Errorf("a third day with only a 45-minute session left: %s, want at_risk", got)
	}
	in.Expected = append(in.Expected, Expected{Room: "long", Start: l(12, 3, 10, 0), End: l(12, 3, 11, 0)})
	if got := WeeklyStatus(in); got != StatusOnTrack {
		t.Errorf("a third day with 1 h 45 min of sessions left: %s, want on_track", got)
	}
}

// BenchmarkJudge is the policy's cost per scheduled session: a week report
// judges each of a client's sessions (about 9 to 15) against their
// segments.
func BenchmarkJudge(b *testing.B) {
	ny := newYork(b)
	l := func(hh, mm int) time.Time { return time.Date(2026, 11, 30, hh, mm, 0, 0, ny) }
	x := Expected{Room: "g", Start: l(9, 0), End: l(10, 0)}
	var segs []*Segment
	for i := 0; i < 12; i++ { // a week of sessions, some in this room with drops
		room := "other"
		if i%4 == 0 {
			room = "g"
		}
		segs = append(segs, present(room, l(8, 55+i), l(9, 30+i), Gap{From: l(9, 10+i), To: l(9, 12+i)}))
	}
	p := DefaultPolicy()
	b.ReportAllocs()
	for b.Loop() {
		if a := p.Judge(x, segs, l(12, 0)); a.Seconds == 0 {
			b.Fatal("nothing counted")
		}
	}
}
