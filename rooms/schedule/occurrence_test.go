package schedule

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// newYork is the example program's zone; tests rely on the system zoneinfo
// or Go's embedded copy.
func newYork(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatalf("load America/New_York: %v", err)
	}
	return loc
}

// local reads "2026-03-09 09:00" in America/New_York.
func local(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.ParseInLocation("2006-01-02 15:04", s, newYork(t))
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// utc reads "2026-03-09T13:00Z".
func utc(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse("2006-01-02T15:04Z", s)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// example returns the schedule of the example program (Example).
func example(t testing.TB) *Schedule {
	t.Helper()
	f, err := LoadYAML(bytes.NewReader(Example))
	if err != nil {
		t.Fatalf("the example program does not load: %v", err)
	}
	s, err := f.Schedule(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOccurrencesExample: the example program's occurrences on chosen
// days, in America/New_York, worked out by hand. EST is UTC-5 (until
// 2026-03-08 02:00 and from 2026-11-01 02:00), EDT is UTC-4: a 09:00
// session is 14:00Z in winter and 13:00Z in summer, an 18:00 one 23:00Z
// and 22:00Z.
func TestOccurrencesExample(t *testing.T) {
	s := example(t)
	cases := []struct {
		name     string
		from, to string // local, [from, to)
		want     []string
	}{
		{"Friday before spring forward (EST)", "2026-03-06 00:00", "2026-03-07 00:00", []string{
			"day-relapse-prevention-20260306 2026-03-06T14:00Z 1h",
			"day-stress-management-20260306 2026-03-06T15:00Z 1h",
			"day-process-group-20260306 2026-03-06T16:00Z 1h",
		}},
		{"Saturday before spring forward: shared sessions (EST)", "2026-03-07 00:00", "2026-03-08 00:00", []string{
			"womens-group-20260307 2026-03-07T15:00Z 1h",
			"peer-support-20260307 2026-03-07T16:00Z 1h",
		}},
		{"Sunday 2026-03-08, DST starts: nothing meets", "2026-03-08 00:00", "2026-03-09 00:00", nil},
		{"Monday after spring forward (EDT): local times unchanged", "2026-03-09 00:00", "2026-03-10 00:00", []string{
			"day-relapse-prevention-20260309 2026-03-09T13:00Z 1h",
			"day-stress-management-20260309 2026-03-09T14:00Z 1h",
			"day-process-group-20260309 2026-03-09T15:00Z 1h",
			"eve-relapse-prevention-20260309 2026-03-09T22:00Z 1h",
			"eve-coping-skills-20260309 2026-03-09T23:00Z 1h",
			"eve-process-group-20260309 2026-03-10T00:00Z 1h",
		}},
		{"Wednesday: music and art at 12:15 for 45 minutes (EDT)", "2026-03-11 12:00", "2026-03-11 13:00", []string{
			"day-music-art-20260311 2026-03-11T16:15Z 45m",
		}},
		{"Saturday before fall back (EDT)", "2026-10-31 00:00", "2026-11-01 00:00", []string{
			"womens-group-20261031 2026-10-31T14:00Z 1h",
			"peer-support-20261031 2026-10-31T15:00Z 1h",
		}},
		{"Sunday 2026-11-01, DST ends: nothing meets", "2026-11-01 00:00", "2026-11-02 00:00", nil},
		{"Monday after fall back (EST)", "2026-11-02 00:00", "2026-11-03 00:00", []string{
			"day-relapse-prevention-20261102 2026-11-02T14:00Z 1h",
			"day-stress-management-20261102 2026-11-02T15:00Z 1h",
			"day-process-group-20261102 2026-11-02T16:00Z 1h",
			"eve-relapse-prevention-20261102 2026-11-02T23:00Z 1h",
			"eve-coping-skills-20261102 2026-11-03T00:00Z 1h",
			"eve-process-group-20261102 2026-11-03T01:00Z 1h",
		}},
		{"Thursday evening before fall back (EDT)", "2026-10-29 12:00", "2026-10-30 00:00", []string{
			"eve-relapse-prevention-20261029 2026-10-29T22:00Z 1h",
			"eve-coping-skills-20261029 2026-10-29T23:00Z 1h",
			"eve-process-group-20261029 2026-10-30T00:00Z 1h",
		}},
		{"Thanksgiving 2026-11-26 is a holiday: the Thursday evening is skipped", "2026-11-26 00:00", "2026-11-27 00:00", nil},
		{"Labor Day 2026-09-07: neither track meets", "2026-09-07 00:00", "2026-09-08 00:00", nil},
		{"2026-12-31: the cancelled process group is skipped, the others meet", "2026-12-31 12:00", "2027-01-01 00:00", []string{
			"eve-relapse-prevention-20261231 2026-12-31T23:00Z 1h",
			"eve-coping-skills-20261231 2027-01-01T00:00Z 1h",
		}},
		{"range starting mid-session excludes it: occurrences start in [from, to)", "2026-03-09 09:30", "2026-03-09 11:00", []string{
			"day-stress-management-20260309 2026-03-09T14:00Z 1h",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, o := range s.Occurrences(local(t, c.from), local(t, c.to)) {
				got = append(got, fmt.Sprintf("%s %s %s", strings.TrimPrefix(o.ID, "example-"), o.Start.Format("2006-01-02T15:04Z"), Duration(o.Length())))
				if o.Start.Location() != time.UTC || o.End.Location() != time.UTC {
					t.Errorf("%s: start and end must be UTC instants, got %v %v", o.ID, o.Start, o.End)
				}
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("occurrences from %s to %s:\n got %q\nwant %q", c.from, c.to, got, c.want)
			}
		})
	}
}

// TestOccurrencesPerWeek: whole ISO weeks of the example: 10 day-track
// occurrences (3 sessions x Mon/Wed/Fri + music on Wednesday), 9 evening
// ones (3 x Mon/Tue/Thu) and 2 shared on Saturday make 21, less what
// holidays and cancellations skip.
func TestOccurrencesPerWeek(t *testing.T) {
	s := example(t)
	cases := []struct {
		monday string
		want   int
		why    string
	}{
		{"2026-03-02", 21, "a winter week"},
		{"2026-03-09", 21, "the week after spring forward (its Sunday 03-08 is in the week before)"},
		{"2026-10-26", 21, "the week ending with fall back on Sunday 11-01"},
		{"2026-09-07", 15, "Labor Day Monday: 3 day + 3 evening skipped"},
		{"2026-11-23", 18, "Thanksgiving Thursday: 3 evening skipped"},
		{"2026-12-28", 17, "New Year's Eve Thursday: 1 evening session cancelled; New Year's Day Friday 2027-01-01: 3 day skipped"},
	}
	for _, c := range cases {
		from := local(t, c.monday+" 00:00")
		to := from.AddDate(0, 0, 7)
		if got := len(s.Occurrences(from, to)); got != c.want {
			t.Errorf("week of %s (%s): %d occurrences, want %d", c.monday, c.why, got, c.want)
		}
	}
}

// TestFind: a room id leads back to its occurrence; other ids are ad-hoc
// rooms or cancelled sessions.
func TestFind(t *testing.T) {
	s := example(t)
	cases := []struct {
		room  string
		start string
		err   error
	}{
		{"example-day-relapse-prevention-20260309", "2026-03-09T13:00Z", nil},
		{"example-eve-process-group-20261102", "2026-11-03T01:00Z", nil},
		{"example-peer-support-20261031", "2026-10-31T15:00Z", nil},
		{"example-eve-relapse-prevention-20261126", "2026-11-26T23:00Z", ErrCancelled}, // Thanksgiving
		{"example-eve-process-group-20261231", "2027-01-01T01:00Z", ErrCancelled},      // cancelled
		{"example-day-relapse-prevention-20260310", "", ErrNotScheduled},               // a Tuesday
		{"example-day-relapse-prevention-2026030", "", ErrNotScheduled},                // bad date
		{"example-no-such-session-20260309", "", ErrNotScheduled},                      // unknown session
		{"other-day-relapse-prevention-20260309", "", ErrNotScheduled},                 // another program
		{"demo", "", ErrNotScheduled},                                                  // ad-hoc
		{"example-", "", ErrNotScheduled},                                              //
		{"example-day-relapse-prevention-20260230", "", ErrNotScheduled},               // no such date
		{"example-day-relapse-prevention-2026-03-09", "", ErrNotScheduled},             // wrong form
		{"example-day-relapse-prevention-20260309-extra", "", ErrNotScheduled},         //
		{"example-day-relapse-prevention-20260309" + strings.Repeat("x", 3), "", ErrNotScheduled},
	}
	for _, c := range cases {
		o, err := s.Find(c.room)
		if !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Errorf("Find(%q): error %v, want %v", c.room, err, c.err)
			continue
		}
		if c.start != "" {
			if !o.Start.Equal(utc(t, c.start)) || o.ID != c.room {
				t.Errorf("Find(%q) = %s at %s, want it at %s", c.room, o.ID, o.Start, c.start)
			}
			if o.Cancelled != (c.err != nil) {
				t.Errorf("Find(%q).Cancelled = %v", c.room, o.Cancelled)
			}
		}
	}
}

// TestSessionsOfAClient: a client's sessions follow their track as of each
// date and their cohorts; a therapist's are the ones they run.
func TestSessionsOfAClient(t *testing.T) {
	s := example(t)
	ids := func(sub, from, to string) []string {
		var out []string
		for _, o := range s.Sessions(sub, local(t, from), local(t, to)) {
			out = append(out, strings.TrimPrefix(o.ID, "example-"))
		}
		return out
	}
	// demo-client-3 moves from day to evening on Monday 2026-03-02.
	got := ids("demo-client-3", "2026-02-27 00:00", "2026-03-03 00:00")
	want := []string{
		"day-relapse-prevention-20260227", "day-stress-management-20260227", "day-process-group-20260227",
		"peer-support-20260228", // not the women's group: a veteran, not in that cohort
		"eve-relapse-prevention-20260302", "eve-coping-skills-20260302", "eve-process-group-20260302",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("demo-client-3 across the track change:\n got %v\nwant %v", got, want)
	}
	// demo-client-1 is in the women cohort.
	got = ids("demo-client-1", "2026-02-28 00:00", "2026-03-01 00:00")
	if strings.Join(got, " ") != "womens-group-20260228 peer-support-20260228" {
		t.Errorf("demo-client-1 on a Saturday: %v, want the women's group and peer support", got)
	}
	// Before the enrollment starts: nothing.
	if got := ids("demo-client-2", "2026-01-01 00:00", "2026-01-06 00:00"); len(got) != 0 {
		t.Errorf("demo-client-2 before starting on 2026-01-06: %v", got)
	}
	// The art therapist runs only music and art.
	if got := ids("demo-art-therapist", "2026-03-09 00:00", "2026-03-16 00:00"); strings.Join(got, " ") != "day-music-art-20260311" {
		t.Errorf("demo-art-therapist's week: %v", got)
	}
	if got := ids("nobody", "2026-03-09 00:00", "2026-03-16 00:00"); len(got) != 0 {
		t.Errorf("a stranger has sessions: %v", got)
	}
}

// TestRemaining: what a client can still attend this week, for at_risk.
func TestRemaining(t *testing.T) {
	s := example(t)
	weekEnd := local(t, "2026-03-16 00:00")
	cases := []struct {
		sub, from string
		want      int
		why       string
	}{
		{"demo-client-1", "2026-03-09 00:00", 12, "Mon/Wed/Fri x3, music, women's group, peer support"},
		{"demo-client-1", "2026-03-11 09:30", 9, "Wednesday: relapse prevention under way counts, 2 more and music; 3 Friday; 2 Saturday"},
		{"demo-client-1", "2026-03-14 12:00", 0, "after Saturday's last session"},
		{"demo-client-2", "2026-03-09 00:00", 10, "evening Mon/Tue/Thu x3 and peer support"},
		{"nobody", "2026-03-09 00:00", 0, "not enrolled"},
	}
	for _, c := range cases {
		got := s.Remaining(c.sub, local(t, c.from), weekEnd)
		if len(got) != c.want {
			t.Errorf("Remaining(%s, %s) = %d sessions, want %d (%s)", c.sub, c.from, len(got), c.want, c.why)
		}
	}
}

// TestUpcoming: "my next sessions" lists sessions still joinable, with
// their join window in UTC and local times in the program's zone.
func TestUpcoming(t *testing.T) {
	s := example(t)
	now := local(t, "2026-03-09 10:10") // relapse prevention ended 10:00, joinable until 10:15
	got := s.Upcoming("demo-client-1", "client", now, 3)
	if len(got) != 3 {
		t.Fatalf("got %d sessions, want 3", len(got))
	}
	first := got[0]
	if first.ID != "example-day-relapse-prevention-20260309" {
		t.Errorf("first = %s: a session in its grace period is still joinable", first.ID)
	}
	if first.Title != "Relapse prevention" || first.Kind != "group" || first.TimeZone != "America/New_York" {
		t.Errorf("first = %+v", first)
	}
	if !first.JoinOpens.Equal(utc(t, "2026-03-09T12:50Z")) || !first.JoinCloses.Equal(utc(t, "2026-03-09T14:15Z")) {
		t.Errorf("join window %s - %s, want 12:50Z - 14:15Z", first.JoinOpens, first.JoinCloses)
	}
	if first.StartLocal.Format("15:04 -07:00") != "09:00 -04:00" {
		t.Errorf("start_local = %s, want 09:00 in EDT", first.StartLocal)
	}
	if got[2].ID != "example-day-process-group-20260309" {
		t.Errorf("third = %s", got[2].ID)
	}
	th := s.Upcoming("demo-therapist", "therapist", local(t, "2026-03-09 08:00"), 1)
	if len(th) != 1 || !th[0].JoinOpens.Equal(utc(t, "2026-03-09T12:30Z")) {
		t.Errorf("a therapist's window opens 30 minutes early: %+v", th)
	}
}

// TestNextSkipsEnded: the next session a refusal offers is never one that
// is over, even while its join grace lasts.
func TestNextSkipsEnded(t *testing.T) {
	s := example(t)
	now := local(t, "2026-03-09 10:10") // relapse prevention ended 10:00, joinable until 10:15
	next := s.Next("demo-client-1", "client", now)
	if next == nil || next.ID == "example-day-relapse-prevention-20260309" || !next.End.After(now) {
		t.Errorf("next at 10:10: %+v, want a session that has not ended", next)
	}
}
