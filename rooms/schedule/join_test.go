package schedule

import (
	"errors"
	"strings"
	"testing"
	"time"

	"iop/rooms"
)

// withBooking returns the example schedule with an individual session
// booked for demo-client-1 with demo-therapist on Tuesday 2026-12-01 at
// 14:00 EST (19:00Z) for 50 minutes, and demo-client-2 discharged after
// 2026-11-20.
func withBooking(t *testing.T) *Schedule {
	t.Helper()
	s := example(t)
	s.Bookings = append(s.Bookings, Booking{
		ID: "example-b000000000001", Kind: rooms.KindIndividual,
		Start: local(t, "2026-12-01 14:00"), Length: Duration(50 * time.Minute),
		Client: "demo-client-1", Therapist: "demo-therapist",
	})
	if err := s.checkBooking(&s.Bookings[len(s.Bookings)-1]); err != nil {
		t.Fatalf("the test booking is not valid: %v", err)
	}
	e := *s.Enrollments["demo-client-2"]
	e.End, e.EndReason = Date{Year: 2026, Month: 11, Day: 20}, EndDischarge
	s.Enrollments["demo-client-2"] = &e
	return s
}

// TestCheck: who may join which session when. Monday 2026-11-30 (EST):
// day relapse prevention 09:00-10:00, evening relapse prevention
// 18:00-19:00; the window opens 10 minutes before (30 for therapists) and
// closes 15 minutes after the end.
func TestCheck(t *testing.T) {
	s := withBooking(t)
	const (
		dayRP   = "example-day-relapse-prevention-20261130"
		eveRP   = "example-eve-relapse-prevention-20261130"
		women   = "example-womens-group-20261205"
		booking = "example-b000000000001"
	)
	cases := []struct {
		name       string
		room, sub  string
		role       rooms.Role
		now        string // local
		code       string // "" for accepted
		next       string // the refusal's next session id ("" for none)
		nextLocal  string // its local start
		notSchedul bool
	}{
		{"day-track client at an evening session", "example-eve-relapse-prevention-20261207", "demo-client-1", rooms.RoleClient, "2026-12-07 17:55", CodeWrongTrack,
			"example-day-relapse-prevention-20261209", "Wed 9 Dec 09:00 EST", false},
		{"11 minutes early", dayRP, "demo-client-1", rooms.RoleClient, "2026-11-30 08:49", CodeTooEarly,
			dayRP, "Mon 30 Nov 09:00 EST", false},
		{"10 minutes early: the room has just opened", dayRP, "demo-client-1", rooms.RoleClient, "2026-11-30 08:50", "", "", "", false},
		{"9 minutes early", dayRP, "demo-client-1", rooms.RoleClient, "2026-11-30 08:51", "", "", "", false},
		{"during the session", dayRP, "demo-client-1", rooms.RoleClient, "2026-11-30 09:40", "", "", "", false},
		{"14 minutes after the end: within the grace", dayRP, "demo-client-1", rooms.RoleClient, "2026-11-30 10:14", "", "", "", false},
		{"15 minutes after the end: too late", dayRP, "demo-client-1", rooms.RoleClient, "2026-11-30 10:15", CodeTooLate,
			"example-day-stress-management-20261130", "Mon 30 Nov 10:00 EST", false},
		{"evening client at their own session", eveRP, "demo-client-3", rooms.RoleClient, "2026-11-30 17:55", "", "", "", false},
		{"a client who changed to evening, at a day session", dayRP, "demo-client-3", rooms.RoleClient, "2026-11-30 08:55", CodeWrongTrack,
			eveRP, "Mon 30 Nov 18:00 EST", false},
		{"the same client at a day session before the change", "example-day-relapse-prevention-20260227", "demo-client-3", rooms.RoleClient, "2026-02-27 08:55", "", "", "", false},
		{"not enrolled at all", dayRP, "stranger", rooms.RoleClient, "2026-11-30 08:55", CodeNotEnrolled, "", "", false},
		{"discharged", eveRP, "demo-client-2", rooms.RoleClient, "2026-11-30 17:55", CodeNotEnrolled, "", "", false},
		{"before the enrollment starts", "example-eve-relapse-prevention-20260105", "demo-client-2", rooms.RoleClient, "2026-01-05 17:55", CodeNotEnrolled,
			"example-eve-relapse-prevention-20260106", "Tue 6 Jan 18:00 EST", false},
		{"cohort group, in the cohort", women, "demo-client-1", rooms.RoleClient, "2026-12-05 09:55", "", "", "", false},
		{"cohort group, not in the cohort", women, "demo-client-3", rooms.RoleClient, "2026-12-05 09:55", CodeNotEnrolled,
			"example-peer-support-20261205", "Sat 5 Dec 11:00 EST", false},
		{"a holiday", "example-eve-relapse-prevention-20261126", "demo-client-3", rooms.RoleClient, "2026-11-26 17:55", CodeCancelled,
			"example-peer-support-20261128", "Sat 28 Nov 11:00 EST", false},
		{"therapist 25 minutes early", dayRP, "demo-therapist", rooms.RoleTherapist, "2026-11-30 08:35", "", "", "", false},
		{"therapist 31 minutes early", dayRP, "demo-therapist", rooms.RoleTherapist, "2026-11-30 08:29", CodeTooEarly, dayRP, "Mon 30 Nov 09:00 EST", false},
		{"a therapist not assigned may cover", dayRP, "demo-art-therapist", rooms.RoleTherapist, "2026-11-30 08:55", "", "", "", false},
		{"therapist too late", dayRP, "demo-therapist", rooms.RoleTherapist, "2026-11-30 10:16", CodeTooLate,
			"example-day-stress-management-20261130", "Mon 30 Nov 10:00 EST", false},
		{"staff within the window", dayRP, "case-manager", rooms.RoleStaff, "2026-11-30 08:40", "", "", "", false},
		{"family in a group session by invitation", dayRP, "aunt", rooms.RoleFamily, "2026-11-30 08:55", "", "", "", false},
		{"an unknown role", dayRP, "x", rooms.Role("admin"), "2026-11-30 08:55", CodeForbidden, "", "", false},

		{"booked client", booking, "demo-client-1", rooms.RoleClient, "2026-12-01 13:55", "", "", "", false},
		{"booked therapist", booking, "demo-therapist", rooms.RoleTherapist, "2026-12-01 13:55", "", "", "", false},
		{"another client at someone's individual session", booking, "demo-client-3", rooms.RoleClient, "2026-12-01 13:55", CodeNotEnrolled,
			"example-eve-relapse-prevention-20261201", "Tue 1 Dec 18:00 EST", false},
		{"another therapist at someone's individual session", booking, "demo-art-therapist", rooms.RoleTherapist, "2026-12-01 13:55", CodeForbidden,
			"example-day-music-art-20261202", "Wed 2 Dec 12:15 EST", false},
		{"family at an individual session", booking, "aunt", rooms.RoleFamily, "2026-12-01 13:55", CodeForbidden, "", "", false},
		{"booked client too early", booking, "demo-client-1", rooms.RoleClient, "2026-12-01 13:45", CodeTooEarly, booking, "Tue 1 Dec 14:00 EST", false},

		{"an ad-hoc room", "demo", "demo-client-1", rooms.RoleClient, "2026-11-30 08:55", "", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.Check(c.room, c.sub, c.role, local(t, c.now))
			if c.notSchedul {
				if !errors.Is(err, ErrNotScheduled) {
					t.Fatalf("got %v, want ErrNotScheduled", err)
				}
				return
			}
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var je *JoinError
			if !errors.As(err, &je) {
				t.Fatalf("got %v, want a JoinError with %s", err, c.code)
			}
			if je.Code != c.code || !errors.Is(err, sentinelOf[c.code]) {
				t.Fatalf("code %s (%v), want %s", je.Code, err, c.code)
			}
			switch {
			case c.next == "" && je.Next != nil:
				t.Errorf("next = %s, want none", je.Next.ID)
			case c.next != "" && je.Next == nil:
				t.Errorf("no next session, want %s", c.next)
			case c.next != "":
				if je.Next.ID != c.next {
					t.Errorf("next = %s, want %s", je.Next.ID, c.next)
				}
				if got := je.Next.StartLocal.Format("Mon 2 Jan 15:04 MST"); got != c.nextLocal {
					t.Errorf("next starts %s, want %s", got, c.nextLocal)
				}
				if !strings.Contains(err.Error(), c.nextLocal) {
					t.Errorf("the message %q does not say when the next session is", err)
				}
			}
		})
	}
}

// TestJoinErrorMapsToRoomsErrors: signaling maps rooms.ErrNotEnrolled and
// rooms.ErrForbidden already; the schedule's refusals match them.
func TestJoinErrorMapsToRoomsErrors(t *testing.T) {
	s := withBooking(t)
	err := s.Check("example-day-relapse-prevention-20261130", "stranger", rooms.RoleClient, local(t, "2026-11-30 08:55"))
	if !errors.Is(err, rooms.ErrNotEnrolled) || !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("not_enrolled does not match rooms.ErrNotEnrolled: %v", err)
	}
	err = s.Check("example-b000000000001", "demo-art-therapist", rooms.RoleTherapist, local(t, "2026-12-01 13:55"))
	if !errors.Is(err, rooms.ErrForbidden) {
		t.Errorf("forbidden does not match rooms.ErrForbidden: %v", err)
	}
	err = s.Check("example-day-relapse-prevention-20261130", "demo-client-1", rooms.RoleClient, local(t, "2026-11-30 08:00"))
	var je *JoinError
	if !errors.As(err, &je) || !je.Opens.Equal(utc(t, "2026-11-30T13:50Z")) || !je.Closes.Equal(utc(t, "2026-11-30T15:15Z")) {
		t.Errorf("too_early carries the window 13:50Z-15:15Z: %+v", je)
	}
	if strings.Contains(err.Error(), "Relapse") || strings.Contains(err.Error(), "demo-client") {
		t.Errorf("the message names a session title or a person: %q", err)
	}
}

// TestCheckCustomWindow: the program's own window replaces the defaults.
func TestCheckCustomWindow(t *testing.T) {
	s := example(t)
	s.Program.JoinBefore = Duration(5 * time.Minute)
	s.Program.JoinGrace = Duration(1 * time.Minute)
	room := "example-day-relapse-prevention-20261130"
	for _, c := range []struct {
		now  string
		code string
	}{
		{"2026-11-30 08:54", CodeTooEarly},
		{"2026-11-30 08:55", ""},
		{"2026-11-30 10:00", ""},
		{"2026-11-30 10:01", CodeTooLate},
	} {
		err := s.Check(room, "demo-client-1", rooms.RoleClient, local(t, c.now))
		var je *JoinError
		switch {
		case c.code == "" && err != nil:
			t.Errorf("at %s: refused: %v", c.now, err)
		case c.code != "" && (!errors.As(err, &je) || je.Code != c.code):
			t.Errorf("at %s: %v, want %s", c.now, err, c.code)
		}
	}
}
