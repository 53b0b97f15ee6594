package attendance

import (
	"context"
	"reflect"
	"testing"
	"time"

	"iop/rooms"
)

// TestAddedPresenceFollowsTheRecord: a presence staff add, or a segment
// they extend, counts as direct service only where the record has a
// therapist of the program in that room (not all of it, not none of it);
// a therapist's own added presence is direct throughout and makes
// the clients' recorded time direct where it is. The live rollups, a
// rebuild and the billing export agree.
func TestAddedPresenceFollowsTheRecord(t *testing.T) {
	ny := newYork(t)
	d := func(hh, mm int) time.Time { return at(ny, 2026, 11, 3, hh, mm, 0) }
	type add struct {
		seg       string // "" for a new presence
		room, sub string
		role      rooms.Role
		from, to  time.Time
	}
	cases := []struct {
		name string
		// The recorded room "grp": therapist th1 18:00-19:00 with a
		// 10-minute drop at 18:20 (resumed), client c0 18:00-19:00.
		adds         []add
		sub          string
		direct, none int64 // sub's seconds on the date
		clinicians   []string
	}{{
		name: "a client added inside the therapist's time",
		adds: []add{{room: "grp", sub: "c1", role: rooms.RoleClient, from: d(18, 30), to: d(18, 50)}},
		sub:  "c1", direct: 1200, clinicians: []string{"th1"},
	}, {
		name: "a client added past the therapist's leave",
		adds: []add{{room: "grp", sub: "c1", role: rooms.RoleClient, from: d(18, 30), to: d(19, 30)}},
		sub:  "c1", direct: 1800, none: 1800, clinicians: []string{"th1"},
	}, {
		name: "a client added over the therapist's drop",
		adds: []add{{room: "grp", sub: "c1", role: rooms.RoleClient, from: d(18, 10), to: d(18, 40)}},
		sub:  "c1", direct: 1200, none: 600, clinicians: []string{"th1"},
	}, {
		name: "a client added in a room no therapist was in",
		adds: []add{{room: "other", sub: "c1", role: rooms.RoleClient, from: d(18, 0), to: d(18, 30)}},
		sub:  "c1", none: 1800,
	}, {
		name: "a recorded client's segment extended past the therapist's leave",
		adds: []add{{seg: "c0", from: d(18, 0), to: d(19, 20)}},
		sub:  "c0", direct: 3000, none: 1800, clinicians: []string{"th1"},
	}, {
		name: "a recorded client's segment extended to before the therapist came",
		adds: []add{{seg: "c0", from: d(17, 40), to: d(19, 0)}},
		sub:  "c0", direct: 3000, none: 1800, clinicians: []string{"th1"},
	}, {
		name: "a therapist's own added presence is direct",
		adds: []add{{room: "other", sub: "th2", role: rooms.RoleTherapist, from: d(18, 0), to: d(18, 30)}},
		sub:  "th2", direct: 1800,
	}, {
		name: "a client added, then the therapist who was with them",
		adds: []add{
			{room: "other", sub: "c1", role: rooms.RoleClient, from: d(18, 0), to: d(18, 45)},
			{room: "other", sub: "th2", role: rooms.RoleTherapist, from: d(18, 15), to: d(18, 45)},
		},
		sub: "c1", direct: 1800, none: 900, clinicians: []string{"th2"},
	}, {
		name: "a therapist added, then a client who came later",
		adds: []add{
			{room: "other", sub: "th2", role: rooms.RoleTherapist, from: d(18, 0), to: d(18, 30)},
			{room: "other", sub: "c1", role: rooms.RoleClient, from: d(18, 20), to: d(18, 50)},
		},
		sub: "c1", direct: 600, none: 1200, clinicians: []string{"th2"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			st, program, clk := newStore(t, Options{})
			clk.Set(at(ny, 2026, 11, 4, 12, 0, 0))
			ev := func(id string, e Event) Event { e.ID, e.Program = id, program; return e }
			appendAll(t, st, []Event{
				ev("1", Event{Kind: KindAdmit, Segment: "th1", Room: "grp", RoomKind: rooms.KindGroup, Sub: "th1", Role: rooms.RoleTherapist, At: d(18, 0), Audio: true, Video: true}),
				ev("2", Event{Kind: KindAdmit, Segment: "c0", Room: "grp", RoomKind: rooms.KindGroup, Sub: "c0", Role: rooms.RoleClient, At: d(18, 0), Audio: true, Video: true}),
				ev("3", Event{Kind: KindLeave, Segment: "th1", At: d(18, 20), Reason: rooms.ReasonDropped}),
				ev("4", Event{Kind: KindMedia, Segment: "c0", At: d(18, 20), Audio: true, Video: true, NoClinician: true}),
				ev("5", Event{Kind: KindResume, Segment: "th1", Room: "grp", RoomKind: rooms.KindGroup, Sub: "th1", Role: rooms.RoleTherapist, At: d(18, 30), Audio: true, Video: true}),
				ev("6", Event{Kind: KindMedia, Segment: "c0", At: d(18, 30), Audio: true, Video: true}),
				ev("7", Event{Kind: KindLeave, Segment: "th1", At: d(19, 0), Reason: rooms.ReasonLeft}),
				ev("8", Event{Kind: KindMedia, Segment: "c0", At: d(19, 0), Audio: true, Video: true, NoClinician: true}),
				ev("9", Event{Kind: KindLeave, Segment: "c0", At: d(19, 0), Reason: rooms.ReasonLeft}),
			})
			for _, a := range c.adds {
				in := CorrectionInput{Segment: a.seg, Room: a.room, Kind: rooms.KindGroup, Sub: a.sub, Name: "Name " + a.sub,
					Role: a.role, Video: true, Start: a.from, End: a.to,
					Author: "staff-1", Reason: "joined by phone during the outage"}
				if _, err := st.Correct(ctx, program, in); err != nil {
					t.Fatal(err)
				}
			}
			check := func(when string) {
				t.Helper()
				day := Date{Year: 2026, Month: 11, Day: 3}
				r, err := st.Week(ctx, program, c.sub, day.Week())
				if err != nil {
					t.Fatal(err)
				}
				var got Breakdown
				for _, x := range r.Daily {
					if x.Date == day {
						got = x.Breakdown
					}
				}
				if got.DirectSeconds != c.direct || got.NoClinicianSeconds != c.none {
					t.Errorf("%s: %s has %d s direct and %d s without a clinician, want %d and %d",
						when, c.sub, got.DirectSeconds, got.NoClinicianSeconds, c.direct, c.none)
				}
				if c.sub[0] != 'c' {
					return
				}
				x, err := st.BillingRange(ctx, program, DateRange{From: day, To: day})
				if err != nil {
					t.Fatal(err)
				}
				l := lineOf(t, x, "2026-11-03", c.sub)
				if l == nil {
					t.Fatalf("%s: no billing line for %s", when, c.sub)
				}
				if l.DirectSeconds != c.direct || l.NoClinician() != c.none || !reflect.DeepEqual(l.Clinicians, c.clinicians) {
					t.Errorf("%s: billing line %d s direct, %d s without, clinicians %v; want %d, %d, %v",
						when, l.DirectSeconds, l.NoClinician(), l.Clinicians, c.direct, c.none, c.clinicians)
				}
			}
			check("live")
			if v, err := st.Verify(ctx, program); err != nil || !v.OK {
				t.Fatalf("verify: %+v %+v, %v", v.First, v.Rollup, err)
			}
			if _, err := st.Rebuild(ctx, program); err != nil {
				t.Fatal(err)
			}
			check("after rebuild")
		})
	}
}
