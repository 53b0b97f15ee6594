package schedule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	ics "github.com/arran4/golang-ical"

	"iop/rooms"
	"iop/rooms/store"
)

// openStore opens the Redis of IOP_TEST_REDIS_URL (CI: a real
// redis-server) or the embedded one, and seeds the example program under a
// program id of its own, removed when the test ends. The store's clock is
// Wednesday 2026-11-25 noon in New York.
func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	ctx := context.Background()
	rs, err := store.Open(ctx, os.Getenv("IOP_TEST_REDIS_URL"))
	if err != nil {
		t.Fatalf("open Redis: %v", err)
	}
	t.Cleanup(rs.Close)
	st := NewStore(rs.Redis)
	now := local(t, "2026-11-25 12:00")
	st.Now = func() time.Time { return now }

	f, err := LoadYAML(bytes.NewReader(Example))
	if err != nil {
		t.Fatal(err)
	}
	id := "t" + randomHex(6)
	f.Program.ID = id
	if err := st.Seed(ctx, f); err != nil {
		t.Fatalf("seed the example program: %v", err)
	}
	t.Cleanup(func() {
		if err := st.DeleteProgram(context.Background(), id); err != nil {
			t.Errorf("delete program: %v", err)
		}
	})
	return st, id
}

func room(program, rest string) string { return program + "-" + rest }

// TestStoreSeedAndLoad: the seeded example reads back as the same
// schedule, enrollments with their defaults; seeding again changes nothing.
func TestStoreSeedAndLoad(t *testing.T) {
	st, id := openStore(t)
	ctx := context.Background()
	s, err := st.Load(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	from, to := local(t, "2026-03-02 00:00"), local(t, "2026-03-16 00:00")
	var got, want []string
	for _, o := range s.Occurrences(from, to) {
		got = append(got, strings.TrimPrefix(o.ID, id)+" "+o.Start.String())
	}
	for _, o := range example(t).Occurrences(from, to) {
		want = append(want, strings.TrimPrefix(o.ID, "example")+" "+o.Start.String())
	}
	if len(got) != 42 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stored schedule differs from the file's: %d occurrences, want 42\n%v\n%v", len(got), got, want)
	}
	en, err := st.Enrollments(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(en) != 3 || en[0].Sub != "demo-client-1" || en[0].TargetHours != 9 || en[0].TargetDays != 3 || en[0].PlannedDays != 90 || en[0].Program != id {
		t.Errorf("enrollments read back as %+v", en)
	}
	ids, err := st.Programs(ctx)
	if err != nil || !strings.Contains(strings.Join(ids, ","), id) {
		t.Errorf("Programs() = %v, %v: the seeded program is missing", ids, err)
	}
	f, _ := LoadYAML(bytes.NewReader(Example))
	f.Program.ID = id
	if err := st.Seed(ctx, f); err != nil {
		t.Errorf("seeding the same file again: %v", err)
	}
	if _, err := st.Program(ctx, "no-such-program"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown program: %v, want ErrNotFound", err)
	}
}

// TestStoreRefusesInvalid: invalid schedules are refused with a clear
// error and nothing is stored, neither a new program nor a change.
func TestStoreRefusesInvalid(t *testing.T) {
	st, id := openStore(t)
	ctx := context.Background()
	before, err := st.Program(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		change func(p *Program)
		says   string
	}{
		{"a therapist in two sessions at once", func(p *Program) {
			p.Tracks[1].Sessions = append(p.Tracks[1].Sessions, RecurringSession{ID: "eve-extra", Title: "Extra", Kind: rooms.KindGroup,
				Weekdays: []Weekday{1}, Start: 9*60 + 30, Length: Duration(time.Hour), Therapists: []string{"demo-therapist"}})
		}, `therapist "demo-therapist" would be in "day-relapse-prevention" (09:00-10:00) and "eve-extra" (09:30-10:30) at once on mon`},
		{"an unknown time zone", func(p *Program) { p.TimeZone = "America/Nowhere" }, `unknown time zone "America/Nowhere"`},
		{"no time zone", func(p *Program) { p.TimeZone = "" }, `unknown time zone ""`},
		{"a cap above the kind's maximum", func(p *Program) { p.Tracks[0].Sessions[0].Cap = 16 },
			`cap 16 is above the group maximum of 15`},
		{"two sessions of one track at once", func(p *Program) { p.Tracks[0].Sessions[1].Start = 9*60 + 30 },
			`track day: "day-relapse-prevention" (09:00-10:00) and "day-stress-management" (09:30-10:30) overlap on mon`},
		{"an individual session as a recurring one", func(p *Program) { p.Shared[1].Kind = rooms.KindIndividual },
			"individual sessions are booked one at a time"},
		{"a session past midnight", func(p *Program) { p.Tracks[1].Sessions[2].Start = 23*60 + 30 }, "ends after midnight"},
		{"a track an enrollment is in removed", func(p *Program) { p.Tracks, p.Cancellations = p.Tracks[:1], nil }, `unknown track "evening"`},
		{"a cancellation of no session", func(p *Program) {
			p.Cancellations = append(p.Cancellations, Cancellation{Date: Date{Year: 2026, Month: 12, Day: 1}, Session: "nope"})
		}, `unknown session "nope"`},
		{"a bad session id", func(p *Program) { p.Shared[0].ID = "Women's group" }, `session id "Women's group"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := st.UpdateProgram(ctx, id, func(p *Program) error { c.change(p); return nil })
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("change refused with %v\nwant ErrInvalid saying %q", err, c.says)
			}
			after, err := st.Program(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := mustJSON(after), mustJSON(before); a != b {
				t.Errorf("a refused change was stored:\n%s\n%s", a, b)
			}
			if c.name == "a track an enrollment is in removed" {
				return // needs the enrollments: a new program has none
			}
			p := *before
			p.Tracks = append([]Track(nil), before.Tracks...)
			for i := range p.Tracks {
				p.Tracks[i].Sessions = append([]RecurringSession(nil), before.Tracks[i].Sessions...)
			}
			p.Shared = append([]RecurringSession(nil), before.Shared...)
			p.ID = id + "new"
			c.change(&p)
			if err := st.PutProgram(ctx, p); !errors.Is(err, ErrInvalid) {
				t.Errorf("new program: %v, want ErrInvalid", err)
			}
			if _, err := st.Program(ctx, p.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("a refused new program was stored: %v", err)
			}
		})
	}
	// The file path refuses the same, naming the problem.
	bad := strings.Replace(string(Example), "time_zone: America/New_York", "time_zone: Mars/Olympus_Mons", 1)
	if _, err := LoadYAML(strings.NewReader(bad)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Mars/Olympus_Mons") {
		t.Errorf("a file with an unknown zone: %v", err)
	}
}

// TestStoreBooking: a therapist books an individual session for a client;
// only that client and that therapist can join it; double bookings are
// refused.
func TestStoreBooking(t *testing.T) {
	st, id := openStore(t)
	ctx := context.Background()
	b, err := st.Book(ctx, id, Booking{Kind: rooms.KindIndividual, Start: local(t, "2026-12-01 14:00"), Length: Duration(50 * time.Minute),
		Client: "demo-client-1", Therapist: "demo-therapist"})
	if err != nil {
		t.Fatalf("book: %v", err)
	}
	if !strings.HasPrefix(b.ID, id+"-b") {
		t.Errorf("booking id %q", b.ID)
	}
	at := local(t, "2026-12-01 13:55")
	for _, c := range []struct {
		sub  string
		role rooms.Role
		code string
	}{
		{"demo-client-1", rooms.RoleClient, ""},
		{"demo-therapist", rooms.RoleTherapist, ""},
		{"demo-client-3", rooms.RoleClient, CodeNotEnrolled},
		{"demo-art-therapist", rooms.RoleTherapist, CodeForbidden},
	} {
		occ, err := st.Check(ctx, id, b.ID, c.sub, c.role, at)
		var je *JoinError
		switch {
		case c.code == "" && err != nil:
			t.Errorf("%s: refused: %v", c.sub, err)
		case c.code != "" && (!errors.As(err, &je) || je.Code != c.code):
			t.Errorf("%s: %v, want %s", c.sub, err, c.code)
		}
		if occ.ID != b.ID || occ.Kind != rooms.KindIndividual || occ.Cap != 1 || occ.Title != "Individual session" {
			t.Errorf("%s: the occurrence to open the room with is %+v", c.sub, occ)
		}
	}

	refused := []struct {
		name string
		b    Booking
		says string
	}{
		{"the therapist is booked then", Booking{Kind: rooms.KindIndividual, Start: local(t, "2026-12-01 14:30"), Length: Duration(time.Hour),
			Client: "demo-client-2", Therapist: "demo-therapist"}, `therapist "demo-therapist" is in ` + b.ID},
		{"the therapist runs a group then", Booking{Kind: rooms.KindFamily, Start: local(t, "2026-11-30 09:30"), Length: Duration(time.Hour),
			Client: "demo-client-2", Therapist: "demo-therapist"}, `therapist "demo-therapist" is in ` + room(id, "day-relapse-prevention-20261130")},
		{"the client is in a group then", Booking{Kind: rooms.KindIndividual, Start: local(t, "2026-11-30 11:30"), Length: Duration(time.Hour),
			Client: "demo-client-1", Therapist: "demo-art-therapist"}, `client "demo-client-1" is in ` + room(id, "day-process-group-20261130")},
		{"a client not enrolled", Booking{Kind: rooms.KindIndividual, Start: local(t, "2026-12-01 10:00"), Length: Duration(time.Hour),
			Client: "stranger", Therapist: "demo-therapist"}, `client "stranger" is not enrolled on 2026-12-01`},
		{"a group kind", Booking{Kind: rooms.KindGroup, Start: local(t, "2026-12-01 10:00"), Length: Duration(time.Hour),
			Client: "demo-client-1", Therapist: "demo-therapist"}, `kind "group": want individual or family`},
		{"too long", Booking{Kind: rooms.KindIndividual, Start: local(t, "2026-12-01 10:00"), Length: Duration(5 * time.Hour),
			Client: "demo-client-1", Therapist: "demo-therapist"}, "want whole minutes up to 4h"},
	}
	for _, c := range refused {
		if _, err := st.Book(ctx, id, c.b); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v\nwant ErrInvalid saying %q", c.name, err, c.says)
		}
	}
	// A new recurring session may not clash with the booking either.
	_, err = st.UpdateProgram(ctx, id, func(p *Program) error {
		p.Shared = append(p.Shared, RecurringSession{ID: "tue-lunch", Title: "Lunch group", Kind: rooms.KindSupport,
			Weekdays: []Weekday{2}, Start: 14 * 60, Length: Duration(time.Hour), Therapists: []string{"demo-therapist"}})
		return nil
	})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "booking "+b.ID) {
		t.Errorf("a session clashing with a booking: %v", err)
	}

	list, err := st.Bookings(ctx, id, "demo-client-1")
	if err != nil || len(list) != 1 || list[0].ID != b.ID {
		t.Errorf("Bookings(demo-client-1) = %v, %v", list, err)
	}
	if err := st.CancelBooking(ctx, id, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Check(ctx, id, b.ID, "demo-client-1", rooms.RoleClient, at); !errors.Is(err, ErrNotScheduled) {
		t.Errorf("a cancelled booking: %v, want ErrNotScheduled", err)
	}
	if err := st.CancelBooking(ctx, id, b.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("cancelling twice: %v, want ErrNotFound", err)
	}
}

// TestStoreConcurrentBookings: therapists on several nodes booking the same
// therapist at the same time: exactly one booking is stored.
func TestStoreConcurrentBookings(t *testing.T) {
	st, id := openStore(t)
	ctx := context.Background()
	const n = 8
	for i := range n {
		if err := st.Enroll(ctx, Enrollment{Program: id, Sub: fmt.Sprintf("c%d", i), Track: "evening", Start: Date{Year: 2026, Month: 11, Day: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	start := local(t, "2026-12-01 14:00")
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = st.Book(ctx, id, Booking{Kind: rooms.KindIndividual, Start: start.Add(time.Duration(i) * time.Minute),
				Length: Duration(50 * time.Minute), Client: fmt.Sprintf("c%d", i), Therapist: "demo-therapist"})
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrInvalid):
			t.Errorf("booking %d: %v", i, err)
		}
	}
	list, err := st.Bookings(ctx, id, "demo-therapist")
	if err != nil {
		t.Fatal(err)
	}
	if ok != 1 || len(list) != 1 {
		t.Errorf("%d bookings succeeded and %d are stored, want 1 and 1", ok, len(list))
	}
}

// TestStoreEnrollment: enrolling, changing track from a date, ending.
func TestStoreEnrollment(t *testing.T) {
	st, id := openStore(t)
	ctx := context.Background()
	sub := "client-" + randomHex(3)
	if err := st.Enroll(ctx, Enrollment{Program: id, Sub: sub, Track: "day", Start: Date{Year: 2026, Month: 11, Day: 2}, Cohorts: []string{"women"}}); err != nil {
		t.Fatal(err)
	}
	check := func(rest, now, code string) {
		t.Helper()
		_, err := st.Check(ctx, id, room(id, rest), sub, rooms.RoleClient, local(t, now))
		var je *JoinError
		switch {
		case code == "" && err != nil:
			t.Errorf("%s at %s: refused: %v", rest, now, err)
		case code != "" && (!errors.As(err, &je) || je.Code != code):
			t.Errorf("%s at %s: %v, want %s", rest, now, err, code)
		}
	}
	check("day-relapse-prevention-20261109", "2026-11-09 08:55", "")
	check("eve-relapse-prevention-20261109", "2026-11-09 17:55", CodeWrongTrack)

	if err := st.ChangeTrack(ctx, id, sub, "evening", Date{Year: 2026, Month: 11, Day: 16}, "new job"); err != nil {
		t.Fatal(err)
	}
	check("day-relapse-prevention-20261109", "2026-11-09 08:55", "") // history kept
	check("day-relapse-prevention-20261116", "2026-11-16 08:55", CodeWrongTrack)
	check("eve-relapse-prevention-20261116", "2026-11-16 17:55", "")
	e, err := st.Enrollment(ctx, id, sub)
	if err != nil || len(e.Changes) != 1 || e.TrackOn(Date{Year: 2026, Month: 11, Day: 15}) != "day" || e.TrackOn(Date{Year: 2026, Month: 11, Day: 16}) != "evening" {
		t.Errorf("enrollment after the change: %+v, %v", e, err)
	}

	for _, c := range []struct {
		name string
		do   func() error
	}{
		{"unknown track", func() error { return st.ChangeTrack(ctx, id, sub, "night", Date{Year: 2026, Month: 11, Day: 30}, "") }},
		{"the same track again", func() error { return st.ChangeTrack(ctx, id, sub, "evening", Date{Year: 2026, Month: 11, Day: 30}, "") }},
		{"a change before the last", func() error { return st.ChangeTrack(ctx, id, sub, "day", Date{Year: 2026, Month: 11, Day: 10}, "") }},
		{"20 hours a week", func() error {
			return st.Enroll(ctx, Enrollment{Program: id, Sub: "x", Track: "day", Start: Date{Year: 2026, Month: 11, Day: 2}, TargetHours: 20})
		}},
		{"no start", func() error { return st.Enroll(ctx, Enrollment{Program: id, Sub: "x", Track: "day"}) }},
		{"an end reason without an end", func() error {
			return st.Enroll(ctx, Enrollment{Program: id, Sub: "x", Track: "day", Start: Date{Year: 2026, Month: 11, Day: 2}, EndReason: EndDischarge})
		}},
		{"delete a track someone is in", func() error { return st.DeleteTrack(ctx, id, "evening") }},
		{"end for no reason", func() error { return st.EndEnrollment(ctx, id, sub, Date{Year: 2026, Month: 11, Day: 20}, "bored") }},
	} {
		if err := c.do(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.name, err)
		}
	}
	if _, err := st.Enrollment(ctx, id, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused enrollment was stored: %v", err)
	}

	// A booking on a Wednesday is fine for an evening client; moving them
	// to the day track would clash with it.
	b, err := st.Book(ctx, id, Booking{Kind: rooms.KindIndividual, Start: local(t, "2026-12-02 09:00"), Length: Duration(50 * time.Minute),
		Client: sub, Therapist: "demo-art-therapist"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ChangeTrack(ctx, id, sub, "day", Date{Year: 2026, Month: 11, Day: 30}, ""); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), b.ID) {
		t.Errorf("a track change clashing with a booking: %v", err)
	}
	secret, err := st.FeedSecret(ctx, id, sub)
	if err != nil {
		t.Fatal(err)
	}

	// Discharged after 2026-11-27: later sessions and bookings are gone,
	// and so is the calendar feed.
	if err := st.EndEnrollment(ctx, id, sub, Date{Year: 2026, Month: 11, Day: 27}, EndDischarge); err != nil {
		t.Fatal(err)
	}
	check("eve-relapse-prevention-20261124", "2026-11-24 17:55", "")
	check("eve-relapse-prevention-20261130", "2026-11-30 17:55", CodeNotEnrolled)
	if _, err := st.Booking(ctx, id, b.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("a booking after the discharge is kept: %v", err)
	}
	if _, _, err := st.LookupFeed(ctx, secret); !errors.Is(err, ErrNotFound) {
		t.Errorf("the feed of a discharged client still works: %v", err)
	}
	if err := st.DeleteEnrollment(ctx, id, sub); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Enrollment(ctx, id, sub); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted enrollment: %v", err)
	}
}

// TestStoreEdits: holidays, cancellations, sessions and tracks through the
// staff CRUD, seen in the occurrences.
func TestStoreEdits(t *testing.T) {
	st, id := openStore(t)
	ctx := context.Background()
	count := func() int {
		t.Helper()
		s, err := st.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return len(s.Occurrences(local(t, "2026-12-07 00:00"), local(t, "2026-12-14 00:00")))
	}
	mon := Date{Year: 2026, Month: 12, Day: 7}
	steps := []struct {
		name string
		do   func() error
		want int
	}{
		{"a full week", func() error { return nil }, 21},
		{"a holiday on Monday", func() error { return st.AddHoliday(ctx, id, mon) }, 15},
		{"the holiday again", func() error { return st.AddHoliday(ctx, id, mon) }, 15},
		{"no holiday", func() error { return st.RemoveHoliday(ctx, id, mon) }, 21},
		{"cancel Monday's process group", func() error { return st.Cancel(ctx, id, "day-process-group", mon, "therapist ill") }, 20},
		{"restore it", func() error { return st.Uncancel(ctx, id, "day-process-group", mon) }, 21},
		{"a Sunday session for everyone", func() error {
			return st.PutSession(ctx, id, "", RecurringSession{ID: "sunday-support", Title: "Sunday support", Kind: rooms.KindSupport,
				Weekdays: []Weekday{0}, Start: 16 * 60, Length: Duration(time.Hour)})
		}, 22},
		{"moved to the evening track and to Tuesday and Sunday", func() error {
			return st.PutSession(ctx, id, "evening", RecurringSession{ID: "sunday-support", Title: "Sunday support", Kind: rooms.KindSupport,
				Weekdays: []Weekday{0, 2}, Start: 16 * 60, Length: Duration(time.Hour)})
		}, 23},
		{"removed", func() error { return st.DeleteSession(ctx, id, "sunday-support") }, 21},
		{"a weekend track", func() error {
			return st.PutTrack(ctx, id, Track{ID: "weekend", Name: "Weekend", Sessions: []RecurringSession{{ID: "wk-group", Title: "Weekend group",
				Kind: rooms.KindGroup, Weekdays: []Weekday{6}, Start: 13 * 60, Length: Duration(3 * time.Hour)}}})
		}, 22},
		{"no weekend track", func() error { return st.DeleteTrack(ctx, id, "weekend") }, 21},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := count(); got != s.want {
			t.Errorf("%s: %d occurrences in the week, want %d", s.name, got, s.want)
		}
	}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"remove a holiday that is not", st.RemoveHoliday(ctx, id, mon)},
		{"restore what is not cancelled", st.Uncancel(ctx, id, "day-process-group", mon)},
		{"delete an unknown session", st.DeleteSession(ctx, id, "nope")},
		{"a session in an unknown track", st.PutSession(ctx, id, "night", RecurringSession{ID: "x"})},
		{"delete an unknown track", st.DeleteTrack(ctx, id, "night")},
		{"edit an unknown program", st.AddHoliday(ctx, "no-such-program", mon)},
	} {
		if !errors.Is(c.err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", c.name, c.err)
		}
	}
	if err := st.Cancel(ctx, id, "nope", mon, ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("cancel an unknown session: %v, want ErrInvalid", err)
	}
}

// TestStoreFeed: a secret per person, stable until rotated; a revoked or
// rotated secret answers not found (404); the feed parses.
func TestStoreFeed(t *testing.T) {
	st, id := openStore(t)
	ctx := context.Background()
	secret, err := st.FeedSecret(ctx, id, "demo-client-2")
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.FeedSecret(ctx, id, "demo-client-2")
	if err != nil || again != secret {
		t.Errorf("the secret changed between two calls: %q %q %v", secret, again, err)
	}
	if len(secret) != feedSecretLen || strings.ContainsAny(secret, "+/=") {
		t.Errorf("secret %q is not 43 URL-safe characters", secret)
	}
	other, _ := st.FeedSecret(ctx, id, "demo-client-1")
	if other == secret {
		t.Error("two people share a secret")
	}
	program, sub, err := st.LookupFeed(ctx, secret)
	if err != nil || program != id || sub != "demo-client-2" {
		t.Errorf("LookupFeed = %q, %q, %v", program, sub, err)
	}
	doc, err := st.Feed(ctx, secret, local(t, "2026-11-25 12:00"), FeedOptions{JoinURL: "https://iop.test/join"})
	if err != nil {
		t.Fatal(err)
	}
	cal, err := ics.ParseCalendar(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("the stored feed does not parse: %v", err)
	}
	if n := len(cal.Events()); n < 30 {
		t.Errorf("%d events for an evening client over 14 days back and 90 ahead", n)
	}

	rotated, err := st.RotateFeed(ctx, id, "demo-client-2")
	if err != nil || rotated == secret {
		t.Fatalf("rotate: %q, %v", rotated, err)
	}
	if _, _, err := st.LookupFeed(ctx, secret); !errors.Is(err, ErrNotFound) {
		t.Errorf("the old secret after rotation: %v, want ErrNotFound", err)
	}
	if _, _, err := st.LookupFeed(ctx, rotated); err != nil {
		t.Errorf("the new secret: %v", err)
	}
	if err := st.RevokeFeed(ctx, id, "demo-client-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Feed(ctx, rotated, time.Now(), FeedOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("a revoked feed: %v, want ErrNotFound", err)
	}
	if err := st.RevokeFeed(ctx, id, "demo-client-2"); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	fresh, err := st.FeedSecret(ctx, id, "demo-client-2")
	if err != nil || fresh == rotated || fresh == secret {
		t.Errorf("a new secret after revocation: %q, %v", fresh, err)
	}
	for _, junk := range []string{"", "x", strings.Repeat("A", 43), strings.Repeat("!", 43), secret + "x"} {
		if _, _, err := st.LookupFeed(ctx, junk); !errors.Is(err, ErrNotFound) {
			t.Errorf("LookupFeed(%q): %v, want ErrNotFound", junk, err)
		}
	}
	if err := st.DeleteProgram(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.LookupFeed(ctx, other); !errors.Is(err, ErrNotFound) {
		t.Errorf("a feed of a deleted program: %v", err)
	}
}

// TestStoreUpcoming: "my next sessions" through the store, as JSON.
func TestStoreUpcoming(t *testing.T) {
	st, id := openStore(t)
	ctx := context.Background()
	slots, err := st.Upcoming(ctx, id, "demo-client-2", rooms.RoleClient, local(t, "2026-11-30 12:00"), 2)
	if err != nil || len(slots) != 2 {
		t.Fatalf("Upcoming = %v, %v", slots, err)
	}
	b, _ := json.Marshal(slots[0])
	want := `{"id":"` + id + `-eve-relapse-prevention-20261130","title":"Relapse prevention","kind":"group",` +
		`"start":"2026-11-30T23:00:00Z","end":"2026-12-01T00:00:00Z",` +
		`"start_local":"2026-11-30T18:00:00-05:00","end_local":"2026-11-30T19:00:00-05:00",` +
		`"join_opens":"2026-11-30T22:50:00Z","join_closes":"2026-12-01T00:15:00Z","time_zone":"America/New_York"}`
	if string(b) != want {
		t.Errorf("slot JSON:\n got %s\nwant %s", b, want)
	}
	rem, err := st.Remaining(ctx, id, "demo-client-2", local(t, "2026-11-30 12:00"), local(t, "2026-12-07 00:00"))
	if err != nil || len(rem) != 10 {
		t.Errorf("Remaining = %d, %v; want 10 (3 x Mon/Tue/Thu evening, peer support)", len(rem), err)
	}
}
