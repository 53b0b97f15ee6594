package attendance

import (
	"fmt"
	"testing"
	"time"
)

// track returns the expected sessions of a track in a week: days at
// hh:00 for 3 hours, rooms named track-date.
func track(loc *time.Location, w Week, name string, hh int, days ...time.Weekday) []Expected {
	var out []Expected
	for _, d := range w.Dates() {
		for _, wd := range days {
			if d.Weekday() == wd {
				start := time.Date(d.Year, d.Month, d.Day, hh, 0, 0, 0, loc)
				out = append(out, Expected{Room: name + "-" + d.String(), Start: start.UTC(), End: start.Add(3 * time.Hour).UTC()})
			}
		}
	}
	return out
}

func dayTrack(loc *time.Location, w Week) []Expected {
	return track(loc, w, "day", 9, time.Monday, time.Wednesday, time.Friday)
}

func eveningTrack(loc *time.Location, w Week) []Expected {
	return track(loc, w, "eve", 18, time.Monday, time.Tuesday, time.Thursday)
}

// totals builds week totals from seconds per date, all of it with a
// therapist in the room.
func totals(days map[string]int64) *Totals {
	t := &Totals{}
	for d, s := range days {
		date, _ := ParseDate(d)
		t.add("room-"+d, Piece{Date: date, Amount: Amount{Seconds: s, DirectSeconds: s}})
	}
	return t
}

func TestWeeklyStatus(t *testing.T) {
	ny := newYork(t)
	w44 := Week{Year: 2026, Num: 44}
	nine := Targets{Hours: 9, Days: 3}
	day := dayTrack(ny, w44)
	cases := []struct {
		name      string
		now       time.Time
		totals    *Totals
		targets   Targets
		scheduled bool
		expected  []Expected
		want      Status
	}{{
		name:    "targets met exactly: 3 x 3 h",
		now:     at(ny, 2026, 10, 29, 21, 0, 0),
		totals:  totals(map[string]int64{"2026-10-26": 10800, "2026-10-27": 10800, "2026-10-29": 10800}),
		targets: nine, want: StatusOnTrack,
	}, {
		// Mon 3 h + Wed 2 h 54 min 30 s = 21270 s by Thursday noon; the
		// only session left is Friday's 3 h: 21270 + 10800 = 32070 s <
		// 32400 s (9 h), 330 s short.
		name:    "day track, late on Wednesday: Friday alone cannot make 9 h",
		now:     at(ny, 2026, 10, 29, 12, 0, 0),
		totals:  totals(map[string]int64{"2026-10-26": 10800, "2026-10-28": 10470}),
		targets: nine, scheduled: true, expected: day, want: StatusAtRisk,
	}, {
		name:    "the same client with no schedule known: four days of up to 4 h remain",
		now:     at(ny, 2026, 10, 29, 12, 0, 0),
		totals:  totals(map[string]int64{"2026-10-26": 10800, "2026-10-28": 10470}),
		targets: nine, want: StatusOnTrack,
	}, {
		name:    "day track on time so far: Friday makes 9 h and the third day",
		now:     at(ny, 2026, 10, 29, 12, 0, 0),
		totals:  totals(map[string]int64{"2026-10-26": 10800, "2026-10-28": 10800}),
		targets: nine, scheduled: true, expected: day, want: StatusOnTrack,
	}, {
		name:    "Friday's session in progress: what is left of it still counts",
		now:     at(ny, 2026, 10, 30, 10, 0, 0),
		totals:  totals(map[string]int64{"2026-10-26": 10800, "2026-10-28": 10800, "2026-10-30": 3600}),
		targets: nine, scheduled: true, expected: day, want: StatusOnTrack,
	}, {
		name:    "hours can be reached but not the days",
		now:     at(ny, 2026, 10, 30, 8, 0, 0),
		totals:  totals(map[string]int64{"2026-10-26": 14400}),
		targets: Targets{Hours: 6, Days: 3}, scheduled: true, expected: day, want: StatusAtRisk,
	}, {
		name:    "week over, 8 h 24 min 30 s of 9 h",
		now:     at(ny, 2026, 11, 2, 0, 0, 0),
		totals:  totals(map[string]int64{"2026-10-26": 10800, "2026-10-28": 10470, "2026-10-30": 9000}),
		targets: nine, want: StatusBelow,
	}, {
		name:    "week over one second before its end is not over",
		now:     at(ny, 2026, 11, 1, 23, 59, 59),
		totals:  totals(map[string]int64{"2026-10-26": 10800}),
		targets: nine, want: StatusAtRisk,
	}, {
		// 3 x 3 h present, but the last 20 minutes of each day without a
		// therapist: 8 h of direct service, so the 9 h are not met.
		name: "hours count direct service only",
		now:  at(ny, 2026, 11, 2, 0, 0, 0),
		totals: func() *Totals {
			t := &Totals{}
			for _, d := range []string{"2026-10-26", "2026-10-27", "2026-10-29"} {
				date, _ := ParseDate(d)
				t.add("room-"+d, Piece{Date: date, Amount: Amount{Seconds: 10800, DirectSeconds: 9600}})
			}
			return t
		}(),
		targets: nine, want: StatusBelow,
	}, {
		name:    "a per-client target of 6 h over 3 days, met",
		now:     at(ny, 2026, 11, 3, 0, 0, 0),
		totals:  totals(map[string]int64{"2026-10-26": 7200, "2026-10-27": 7200, "2026-10-29": 7200}),
		targets: Targets{Hours: 6, Days: 3}, want: StatusOnTrack,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := WeeklyStatus(StatusInput{
				Now: c.now, Loc: ny, Week: w44, Totals: c.totals, Targets: c.targets,
				MaxDaily: 4 * time.Hour, Scheduled: c.scheduled, Expected: c.expected,
			})
			if got != c.want {
				t.Errorf("status %s, want %s", got, c.want)
			}
		})
	}
}

func TestAbsenceFlags(t *testing.T) {
	ny := newYork(t)
	var exp []Expected
	for i := 0; i < 12; i++ {
		exp = append(exp, dayTrack(ny, Week{Year: 2026, Num: 33 + i})...)
	}
	// 36 sessions, weeks 33-44. attended(i) says which were attended.
	run := func(missed ...int) []Flag {
		att := map[string]bool{}
		for _, x := range exp {
			att[x.Room] = true
		}
		for _, i := range missed {
			att[exp[i].Room] = false
		}
		return AbsenceFlags(exp, att, at(ny, 2026, 11, 1, 12, 0, 0), AbsencePolicy{Consecutive: 2, InWindow: 6, Window: 12})
	}
	cases := []struct {
		missed []int
		want   string
	}{
		{nil, "[]"},
		{[]int{35}, "[]"},
		{[]int{34, 35}, "[consecutive:2]"},
		{[]int{33, 34, 35}, "[consecutive:3]"},
		{[]int{20, 21}, "[]"}, // an old streak, since broken
		{[]int{1, 5, 9, 13, 17, 21}, "[frequent:6]"},
		{[]int{1, 5, 9, 13, 17, 34, 35}, "[consecutive:2 frequent:7]"},
	}
	for _, c := range cases {
		got := "["
		for i, f := range run(c.missed...) {
			if i > 0 {
				got += " "
			}
			got += fmt.Sprintf("%s:%d", f.Rule, f.Count)
		}
		got += "]"
		if got != c.want {
			t.Errorf("missed %v: flags %s, want %s", c.missed, got, c.want)
		}
	}
	att := map[string]bool{exp[0].Room: true}
	if got := Absences(exp[:3], att, exp[2].End); len(got) != 2 || got[0].Room != exp[1].Room {
		t.Errorf("Absences = %v, want the second and third sessions", got)
	}
	if got := Absences(exp[:3], att, exp[2].End.Add(-time.Second)); len(got) != 1 {
		t.Errorf("a session still running is not an absence yet: got %v", got)
	}
}

func TestTargetsRange(t *testing.T) {
	r := DefaultRules()
	for _, c := range []struct {
		t  Targets
		ok bool
	}{{Targets{9, 3}, true}, {Targets{6, 5}, true}, {Targets{19, 3}, true}, {Targets{5.5, 3}, false}, {Targets{20, 3}, false}, {Targets{9, 2}, false}, {Targets{9, 6}, false}} {
		if err := r.CheckTargets(c.t); (err == nil) != c.ok {
			t.Errorf("CheckTargets(%+v) = %v, want ok=%v", c.t, err, c.ok)
		}
	}
}
