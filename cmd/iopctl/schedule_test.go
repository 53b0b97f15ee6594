package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"iop/rooms/schedule"
	"iop/signaling/token"
)

// testRedis returns the URL of a Redis for one test: IOP_TEST_REDIS_URL
// when set (CI), else an embedded one that lives as long as the test.
func testRedis(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("IOP_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://" + miniredis.RunT(t).Addr()
}

// exampleFile writes the built-in example program under a program id of
// its own (tests may share a real Redis) and returns the file and the id.
func exampleFile(t *testing.T) (path, program string) {
	t.Helper()
	program = "example-" + token.RandomID(3)
	b := bytes.Replace(schedule.Example, []byte("\n  id: example\n"), []byte("\n  id: "+program+"\n"), 1)
	if bytes.Equal(b, schedule.Example) {
		t.Fatal("the example program's id line moved")
	}
	path = filepath.Join(t.TempDir(), "program.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, program
}

// contains fails the test unless out holds every want (and none of not).
func contains(t *testing.T, what, out string, want []string, not ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
	for _, n := range not {
		if strings.Contains(out, n) {
			t.Errorf("%s shows %q:\n%s", what, n, out)
		}
	}
}

// TestIopctlSchedule: the example program is checked, seeded and shown
// week by week (holidays and cancellations included); holidays,
// cancellations, enrollment, a booking and a calendar feed are managed
// from the command line.
func TestIopctlSchedule(t *testing.T) {
	vars := map[string]string{"IOP_REDIS_URL": testRedis(t)}
	file, p := exampleFile(t)

	out := mustRun(t, nil, "schedule", "check", file)
	contains(t, "check", out, []string{"ok: program " + p + " (America/New_York): 2 tracks, 9 recurring sessions, 8 holidays, 3 enrollments, 0 bookings"})
	out = mustRun(t, vars, "schedule", "seed", file)
	contains(t, "seed", out, []string{"seeded program " + p})

	room := func(session, date string) string { return p + "-" + session + "-" + date }
	out = mustRun(t, vars, "schedule", "show", p, "-week", "2026-W49")
	contains(t, "week 49", out, []string{
		"Example IOP (" + p + "), week 2026-W49: 2026-11-30 to 2026-12-06, America/New_York",
		"Mon 30 Nov  09:00-10:00  group",
		"Relapse prevention",
		"demo-therapist",
		room("day-relapse-prevention", "20261130"),
		room("eve-process-group", "20261203"),
		"shared (women)",
		room("womens-group", "20261205"),
	})
	if n := strings.Count(out, p+"-"); n != 3*3+1+3*3+2 {
		t.Errorf("week 49 has %d sessions, want 21:\n%s", n, out)
	}
	out = mustRun(t, vars, "schedule", "show", "-week", "2026-W48", p)
	contains(t, "Thanksgiving week", out, []string{"holiday 2026-11-26: no recurring session meets", "Tue 24 Nov"}, "Thu 26 Nov")
	out = mustRun(t, vars, "schedule", "show", p, "-week", "2026-W53")
	contains(t, "New Year's week", out, []string{"cancelled eve-process-group on 2026-12-31: New Year's Eve"}, room("eve-process-group", "20261231"))

	mustRun(t, vars, "schedule", "holiday", "add", p, "2026-12-02")
	mustRun(t, vars, "schedule", "cancel", p, "day-relapse-prevention", "2026-11-30", "-reason", "therapist ill")
	out = mustRun(t, vars, "schedule", "show", p, "-week", "2026-W49")
	contains(t, "with a holiday and a cancellation", out,
		[]string{"holiday 2026-12-02", "cancelled day-relapse-prevention on 2026-11-30: therapist ill"},
		room("day-relapse-prevention", "20261130"), "Wed 2 Dec")
	mustRun(t, vars, "schedule", "holiday", "rm", p, "2026-12-02")
	mustRun(t, vars, "schedule", "uncancel", p, "day-relapse-prevention", "2026-11-30")
	if _, err := iopctl(t, vars, "schedule", "holiday", "rm", p, "2026-12-02"); !errors.Is(err, schedule.ErrNotFound) {
		t.Errorf("removing a holiday twice: %v", err)
	}

	out = mustRun(t, vars, "enroll", p, "c9", "-track", "day", "-start", "2026-11-02", "-target-hours", "12", "-target-days", "4", "-cohort", "women")
	contains(t, "enroll", out, []string{"enrolled c9 in " + p + ": track day from 2026-11-02, targets 12h and 4 days a week, review 2027-01-30"})
	out = mustRun(t, vars, "schedule", "book", p, "-client", "c9", "-therapist", "demo-therapist", "-start", "2026-12-01 14:00", "-length", "50m")
	contains(t, "book", out, []string{"booked " + p + "-b", "individual Tue 1 Dec 2026 14:00, 50m (America/New_York), demo-therapist with c9"})
	out = mustRun(t, vars, "schedule", "show", p, "-week", "2026-W49")
	contains(t, "week with a booking", out, []string{"Tue 1 Dec   14:00-14:50  individual     booked", "demo-therapist with c9"})
	if _, err := iopctl(t, vars, "schedule", "book", p, "-client", "c9", "-therapist", "demo-therapist", "-start", "2026-11-30 09:30"); !errors.Is(err, schedule.ErrInvalid) || !strings.Contains(err.Error(), "day-relapse-prevention") {
		t.Errorf("a booking during the therapist's group: %v", err)
	}
	out = mustRun(t, vars, "enroll", "track", p, "c9", "evening", "-effective", "2026-12-07", "-reason", "day job")
	contains(t, "track change", out, []string{"moved c9", "track evening from 2026-12-07"})
	out = mustRun(t, vars, "enroll", "end", p, "c9", "-date", "2026-12-31", "-reason", "completion")
	contains(t, "end", out, []string{"ended c9", "ends 2026-12-31 (completion)"})
	if _, err := iopctl(t, vars, "enroll", "end", p, "c9", "-date", "2026-12-31", "-reason", "bored"); !errors.Is(err, schedule.ErrInvalid) {
		t.Errorf("an unknown end reason: %v", err)
	}

	url := strings.TrimSpace(mustRun(t, vars, "schedule", "feed", p, "demo-client-1", "-url", "https://iop.example.org/"))
	if !strings.HasPrefix(url, "https://iop.example.org/v1/calendar/") || !strings.HasSuffix(url, ".ics") {
		t.Errorf("feed url %q", url)
	}
	if again := strings.TrimSpace(mustRun(t, vars, "schedule", "feed", p, "demo-client-1", "-url", "https://iop.example.org")); again != url {
		t.Errorf("the feed address changed without -rotate: %q, %q", url, again)
	}
	if rotated := strings.TrimSpace(mustRun(t, vars, "schedule", "feed", p, "demo-client-1", "-rotate", "-url", "https://iop.example.org")); rotated == url {
		t.Error("-rotate kept the address")
	}
	contains(t, "revoke", mustRun(t, vars, "schedule", "feed", p, "demo-client-1", "-revoke"), []string{"revoked"})
}

// TestIopctlScheduleErrors: refusals name what is wrong, and nothing
// reaches Redis without a URL.
func TestIopctlScheduleErrors(t *testing.T) {
	vars := map[string]string{"IOP_REDIS_URL": testRedis(t)}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("program: {id: x, name: X, time_zone: Mars/Olympus, tracks: []}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{vars, []string{"schedule", "check", bad}, `unknown time zone "Mars/Olympus"`},
		{vars, []string{"schedule", "seed", bad}, `unknown time zone "Mars/Olympus"`},
		{nil, []string{"schedule", "show", "example"}, "no Redis"},
		{vars, []string{"schedule", "show", "nope-" + token.RandomID(3)}, "not found"},
		{vars, []string{"schedule", "show"}, "want PROGRAM"},
		{vars, []string{"schedule", "show", "a", "b"}, "want PROGRAM"},
		{vars, []string{"schedule", "show", "x", "-week", "49"}, "-week"},
		{vars, []string{"schedule", "holiday", "move", "x", "2026-12-24"}, "want add or rm"},
		{vars, []string{"schedule", "book", "x", "-client", "c"}, "required"},
		{vars, []string{"schedule", "frobnicate"}, "unknown"},
		{vars, []string{"enroll", "x", "c1"}, "-track and -start are required"},
		{vars, []string{"enroll", "track", "x", "c1", "day"}, "-effective"},
	} {
		_, err := iopctl(t, tc.vars, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("iopctl %s: %v, want an error with %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	out, err := iopctl(t, nil, "schedule", "show", "-h")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "usage: iopctl schedule show PROGRAM") || !strings.Contains(out, "-week") {
		t.Errorf("schedule show -h: %v\n%s", err, out)
	}
}

// TestIopctlScheduleExample: `iopctl schedule example` prints the example
// program dev mode runs, byte for byte, and what it prints is a valid
// schedule file.
func TestIopctlScheduleExample(t *testing.T) {
	out := mustRun(t, nil, "schedule", "example")
	if out != string(schedule.Example) {
		t.Fatalf("schedule example printed %d bytes, not the %d of the example program", len(out), len(schedule.Example))
	}
	path := filepath.Join(t.TempDir(), "program.yaml")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	contains(t, "check", mustRun(t, nil, "schedule", "check", path), []string{"ok: program example (America/New_York)"})
	if _, err := iopctl(t, nil, "schedule", "example", "extra"); err == nil {
		t.Error("schedule example took an argument it does not use")
	}
}
