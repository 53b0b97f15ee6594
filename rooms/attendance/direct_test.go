package attendance

import (
	"testing"
	"time"

	"iop/rooms"
)

// TestFollowClinician: a correction of a therapist's presence recomputes
// the others' direct service where it moved whether a therapist was
// there, and nowhere else.
func TestFollowClinician(t *testing.T) {
	ny := newYork(t)
	hm := func(hh, mm int) time.Time { return at(ny, 2026, 11, 3, hh, mm, 0).UTC() }
	person := func(id string, role rooms.Role, from, to time.Time, media ...MediaChange) *Segment {
		if len(media) == 0 {
			media = []MediaChange{{At: from, Audio: true, Video: true}}
		}
		return &Segment{ID: id, Room: "r", Role: role, Sub: id, Start: from, End: to, Counted: to, Media: media}
	}
	noClinFrom := func(from, t time.Time) []MediaChange {
		return []MediaChange{{At: from, Audio: true, Video: true}, {At: t, Audio: true, Video: true, NoClinician: true}}
	}
	cases := []struct {
		name          string
		before, after *Segment
		others        []*Segment
		direct        map[string]int64 // sub -> direct seconds after; absent: unchanged
	}{{
		name:   "stayed longer: the clients' time after the recorded leave becomes direct",
		before: person("th", rooms.RoleTherapist, hm(18, 0), hm(18, 30)),
		after:  person("th", rooms.RoleTherapist, hm(18, 0), hm(19, 0)),
		others: []*Segment{
			person("c1", rooms.RoleClient, hm(18, 0), hm(19, 0), noClinFrom(hm(18, 0), hm(18, 30))...),
			person("st", rooms.RoleStaff, hm(18, 15), hm(18, 45), noClinFrom(hm(18, 15), hm(18, 30))...),
		},
		direct: map[string]int64{"c1": 3600, "st": 1800},
	}, {
		name:   "voided: nobody had a clinician",
		before: person("th", rooms.RoleTherapist, hm(18, 0), hm(19, 0)),
		after:  person("th", rooms.RoleTherapist, hm(18, 0), hm(18, 0)),
		others: []*Segment{person("c1", rooms.RoleClient, hm(18, 0), hm(19, 0)), person("f1", rooms.RoleFamily, hm(18, 30), hm(19, 0))},
		direct: map[string]int64{"c1": 0, "f1": 0},
	}, {
		name:   "a co-therapist was there: nothing moves",
		before: person("th", rooms.RoleTherapist, hm(18, 0), hm(19, 0)),
		after:  person("th", rooms.RoleTherapist, hm(18, 0), hm(18, 30)),
		others: []*Segment{person("th2", rooms.RoleTherapist, hm(18, 20), hm(19, 0)), person("c1", rooms.RoleClient, hm(18, 0), hm(19, 0))},
	}, {
		name:   "started later: only the stretch it moved, the co-therapist's gap counts",
		before: person("th", rooms.RoleTherapist, hm(18, 0), hm(19, 0)),
		after:  person("th", rooms.RoleTherapist, hm(18, 40), hm(19, 0)),
		others: []*Segment{
			func() *Segment {
				s := person("th2", rooms.RoleTherapist, hm(18, 0), hm(19, 0))
				s.Gaps = []Gap{{From: hm(18, 10), To: hm(18, 20)}}
				return s
			}(),
			person("c1", rooms.RoleClient, hm(18, 0), hm(19, 0)),
		},
		direct: map[string]int64{"c1": 3000},
	}, {
		name:   "a new presence: direct where it is, the rest as recorded",
		after:  person("th9", rooms.RoleTherapist, hm(18, 30), hm(18, 45)),
		others: []*Segment{person("c1", rooms.RoleClient, hm(18, 0), hm(19, 0), MediaChange{At: hm(18, 0), Audio: true, NoClinician: true})},
		direct: map[string]int64{"c1": 900},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			room := append([]*Segment(nil), c.others...)
			if c.before != nil {
				room = append(room, c.before)
			}
			got := map[string]int64{}
			for _, r := range followClinician(c.before, c.after, room, ny) {
				if r.seg.Role == rooms.RoleTherapist {
					t.Errorf("a therapist's segment %s changed", r.seg.ID)
				}
				var un, in Amount
				for _, p := range r.unpieces {
					un = un.Add(p.Amount)
				}
				for _, p := range r.pieces {
					in = in.Add(p.Amount)
				}
				if un.Seconds != in.Seconds || un.VideoSeconds != in.VideoSeconds {
					t.Errorf("%s: a correction of the clinician moved presence or media: %+v -> %+v", r.seg.ID, un, in)
				}
				got[r.seg.Sub] = in.DirectSeconds
			}
			if len(got) != len(c.direct) {
				t.Errorf("changed %v, want %v", got, c.direct)
			}
			for sub, want := range c.direct {
				if got[sub] != want {
					t.Errorf("%s: %d s direct, want %d", sub, got[sub], want)
				}
			}
		})
	}
}
