package telehealth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"iop/rooms"
	"iop/rooms/schedule"
	"iop/rooms/store"
)

// fixture is the example program (which asks for check-in and consent
// "2026-01") under a program id of its own, on the test Redis.
func fixture(t testing.TB) (*Store, *schedule.Store, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, os.Getenv("IOP_TEST_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	f, err := schedule.LoadYAML(bytes.NewReader(schedule.Example))
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	f.Program.ID = "th" + hex.EncodeToString(b)
	sch := schedule.NewStore(st.Redis)
	if err := sch.Seed(ctx, f); err != nil {
		t.Fatal(err)
	}
	return New(st.Redis, sch), sch, f.Program.ID
}

// TestConsentPerEnrollmentAndVersion: a client owes the consent until
// they acknowledge its current version; a new version, or a new
// enrollment, asks again; every acknowledgement stays readable.
func TestConsentPerEnrollmentAndVersion(t *testing.T) {
	ctx := context.Background()
	th, sch, program := fixture(t)
	owes := func(sub string) string {
		t.Helper()
		req, err := th.For(ctx, program, sub)
		if err != nil {
			t.Fatal(err)
		}
		if !req.CheckIn {
			t.Errorf("the example program asks for a check-in")
		}
		if req.Consent == nil {
			return ""
		}
		return req.Consent.Version
	}
	if v := owes("demo-client-1"); v != "2026-01" {
		t.Fatalf("before acknowledging: owes %q, want 2026-01", v)
	}
	if _, err := th.Acknowledge(ctx, program, "demo-client-1", "2025-12"); !errors.Is(err, ErrStaleConsent) {
		t.Errorf("an old version: %v, want ErrStaleConsent", err)
	}
	if v := owes("demo-client-1"); v != "2026-01" {
		t.Errorf("after a refused acknowledgement: owes %q", v)
	}
	a, err := th.Acknowledge(ctx, program, "demo-client-1", "2026-01")
	if err != nil || a.EnrollmentStart != "2026-01-05" {
		t.Fatalf("acknowledge: %+v %v, want it tied to the enrollment of 2026-01-05", a, err)
	}
	if v := owes("demo-client-1"); v != "" {
		t.Errorf("after acknowledging: owes %q", v)
	}
	if v := owes("demo-client-2"); v != "2026-01" {
		t.Errorf("another client: owes %q, want 2026-01", v)
	}

	// Enrolled again (a new start): consent again.
	e, err := sch.Enrollment(ctx, program, "demo-client-1")
	if err != nil {
		t.Fatal(err)
	}
	e.Start = schedule.DateOf(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.UTC)
	if err := sch.Enroll(ctx, *e); err != nil {
		t.Fatal(err)
	}
	if v := owes("demo-client-1"); v != "2026-01" {
		t.Errorf("in a new enrollment: owes %q, want 2026-01 again", v)
	}
	if _, err := th.Acknowledge(ctx, program, "demo-client-1", "2026-01"); err != nil {
		t.Fatal(err)
	}

	// A new version of the text.
	if _, err := sch.UpdateProgram(ctx, program, func(p *schedule.Program) error {
		p.Telehealth.Consent = &schedule.Consent{Version: "2026-07", Text: "New text."}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if v := owes("demo-client-1"); v != "2026-07" {
		t.Errorf("after the text changed: owes %q, want 2026-07", v)
	}
	list, err := th.Consents(ctx, program)
	if err != nil || len(list) != 2 || list[0].EnrollmentStart != "2026-01-05" || list[1].EnrollmentStart != "2026-06-01" {
		t.Errorf("every acknowledgement: %+v %v, want both enrollments'", list, err)
	}

	// A program with no consent asks for none and takes none.
	if _, err := sch.UpdateProgram(ctx, program, func(p *schedule.Program) error {
		p.Telehealth = schedule.Telehealth{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if req, err := th.For(ctx, program, "demo-client-2"); err != nil || req.Consent != nil || req.CheckIn {
		t.Errorf("a program that asks nothing: %+v %v", req, err)
	}
	if _, err := th.Acknowledge(ctx, program, "demo-client-2", "2026-01"); !errors.Is(err, ErrNoConsent) {
		t.Errorf("acknowledging where there is none: %v, want ErrNoConsent", err)
	}
}

// TestCheckInsKeptPerSession: a session's check-ins are kept per person
// (a rejoin replaces the earlier one), apart from other sessions and
// programs, and expire after the retention.
func TestCheckInsKeptPerSession(t *testing.T) {
	ctx := context.Background()
	th, _, program := fixture(t)
	th.Retention = time.Hour
	room := rooms.Ref{Program: program, ID: "room-1"}
	first := rooms.CheckIn{Location: "NY", Phone: "555 014 7391"}
	moved := rooms.CheckIn{Location: "NJ", Private: true, Phone: "555 014 7391"}
	for _, c := range []rooms.CheckIn{first, moved} {
		if err := th.SaveCheckIn(ctx, room, "c-1", "Alex", c); err != nil {
			t.Fatal(err)
		}
	}
	if err := th.SaveCheckIn(ctx, rooms.Ref{Program: program, ID: "room-2"}, "c-2", "Sam", first); err != nil {
		t.Fatal(err)
	}
	if err := th.SaveCheckIn(ctx, rooms.Ref{Program: "other" + program, ID: "room-1"}, "c-3", "Jo", first); err != nil {
		t.Fatal(err)
	}
	list, err := th.CheckIns(ctx, room)
	if err != nil || len(list) != 1 || list[0].CheckIn != moved || list[0].Sub != "c-1" || list[0].Name != "Alex" {
		t.Fatalf("check-ins of room-1: %+v %v, want Alex's latest only", list, err)
	}
	ttl := th.rdb.TTL(ctx, checkinsKey(room)).Val()
	if ttl <= 0 || ttl > time.Hour {
		t.Errorf("check-ins expire in %s, want within the retention of 1h", ttl)
	}
}

// BenchmarkJoinCost is what telehealth adds to a client's join: reading
// what they owe (the program, their consent, their enrollment) and keeping
// their check-in.
func BenchmarkJoinCost(b *testing.B) {
	ctx := context.Background()
	th, _, program := fixture(b)
	if _, err := th.Acknowledge(ctx, program, "demo-client-1", "2026-01"); err != nil {
		b.Fatal(err)
	}
	room := rooms.Ref{Program: program, ID: "bench"}
	c := rooms.CheckIn{Location: "NY", Private: true, Phone: "555 014 7391"}
	b.ResetTimer()
	for b.Loop() {
		req, err := th.For(ctx, program, "demo-client-1")
		if err != nil || req.Consent != nil {
			b.Fatal(req, err)
		}
		if err := th.SaveCheckIn(ctx, room, "demo-client-1", "Alex", c); err != nil {
			b.Fatal(err)
		}
	}
}
