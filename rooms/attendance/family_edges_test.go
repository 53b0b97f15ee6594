package attendance

import (
	"context"
	"strings"
	"testing"
	"time"

	"iop/rooms"
)

// TestFamilyCodeEdges: the family codes by who came to a scheduled
// family session (14:00 to 15:00, a therapist throughout): 90847 when the
// client was there with a family member, for all of it or part of it,
// once the session was attended (by the client or by the family); 90846
// when a family member attended and the client never came; no family
// code for the client alone, nor when client and family came at
// different times.
func TestFamilyCodeEdges(t *testing.T) {
	ny := newYork(t)
	d := func(hh, mm int) time.Time { return at(ny, 2026, 11, 2, hh, mm, 0) }
	type stay struct {
		sub      string
		role     rooms.Role
		from, to time.Time
	}
	cases := []struct {
		name    string
		stays   []stay
		codes   string // on the client's line; "-" for no line
		seconds int64  // the client's direct seconds on the line
	}{
		{"client and family throughout", []stay{{"c1", rooms.RoleClient, d(14, 0), d(15, 0)}, {"fam", rooms.RoleFamily, d(14, 0), d(15, 0)}}, "90847", 3600},
		{"client throughout, family for ten minutes", []stay{{"c1", rooms.RoleClient, d(14, 0), d(15, 0)}, {"fam", rooms.RoleFamily, d(14, 20), d(14, 30)}}, "90847", 3600},
		{"family throughout, client for ten minutes", []stay{{"c1", rooms.RoleClient, d(14, 40), d(14, 50)}, {"fam", rooms.RoleFamily, d(14, 0), d(15, 0)}}, "90847", 600},
		{"the client alone (family absent)", []stay{{"c1", rooms.RoleClient, d(14, 0), d(15, 0)}}, "", 3600},
		{"the family without the client", []stay{{"fam", rooms.RoleFamily, d(14, 0), d(15, 0)}}, "90846", 0},
		{"the family for ten minutes, no client", []stay{{"fam", rooms.RoleFamily, d(14, 0), d(14, 10)}}, "-", 0},
		{"client and family at different times", []stay{{"c1", rooms.RoleClient, d(14, 0), d(14, 35)}, {"fam", rooms.RoleFamily, d(14, 35), d(15, 0)}}, "", 2100},
		{"client for ten minutes alone, no family", []stay{{"c1", rooms.RoleClient, d(14, 0), d(14, 10)}}, "", 600},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sched := fakeSchedule{"c1": {{Room: "fam-1", Kind: rooms.KindFamily, Start: d(14, 0), End: d(15, 0)}}}
			st, program, clk := newStore(t, Options{Schedule: sched, Roster: sched})
			clk.Set(d(20, 0))
			b := &billingEvents{t: t, st: st, program: program}
			b.stay("th", "fam-1", rooms.KindFamily, "th1", rooms.RoleTherapist, d(14, 0), d(15, 0), onVideo)
			for _, s := range c.stays {
				b.stay(s.sub+s.from.Format("1504"), "fam-1", rooms.KindFamily, s.sub, s.role, s.from, s.to, onVideo)
			}
			x, err := st.BillingRange(context.Background(), program, DateRange{From: DateOf(d(12, 0), ny), To: DateOf(d(12, 0), ny)})
			if err != nil {
				t.Fatal(err)
			}
			l := lineOf(t, x, "2026-11-02", "c1")
			if c.codes == "-" {
				if l != nil {
					t.Errorf("a line %+v, want none", l)
				}
				return
			}
			if l == nil {
				t.Fatalf("no line for the client")
			}
			if got := strings.Join(l.Codes, ";"); got != c.codes || l.DirectSeconds != c.seconds {
				t.Errorf("codes %q with %d s direct, want %q with %d s", got, l.DirectSeconds, c.codes, c.seconds)
			}
		})
	}
}
