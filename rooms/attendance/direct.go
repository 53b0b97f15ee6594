package attendance

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
)

// directAmount counts the direct service in [from, to): the seconds with
// a clinician in the room, split by the media received in them (Seconds
// and DirectSeconds are both the direct seconds). The billing modifier
// follows it, not the time without a clinician, which is never billed.
func (s *Segment) directAmount(from, to time.Time) Amount {
	a := s.tally(from, to, true)
	a.Seconds = a.DirectSeconds
	return a
}

// span is a stretch of time [From, To).
type span struct{ From, To time.Time }

// changedSpans returns where a correction moved a presence: the stretches
// between its old and new bounds (the whole presence when it is new or
// voided).
func changedSpans(before, after *Segment) []span {
	var out []span
	add := func(a, b time.Time) {
		if a.After(b) {
			a, b = b, a
		}
		if b.After(a) {
			out = append(out, span{a, b})
		}
	}
	switch {
	case before == nil:
		add(after.Start, after.End)
	case after.Start.Equal(after.End):
		add(before.Start, before.End)
	default:
		add(before.Start, after.Start)
		add(before.End, after.End)
	}
	return out
}

// clinicianIn reports whether one of the therapists was present at t.
func clinicianIn(therapists []*Segment, t time.Time) bool {
	for _, th := range therapists {
		if t.Before(th.Start) || (!th.Open() && !t.Before(th.End)) {
			continue
		}
		inGap := false
		for _, g := range th.Gaps {
			if !t.Before(g.From) && t.Before(g.To) {
				inGap = true
			}
		}
		if !inGap {
			return true
		}
	}
	return false
}

// followClinician returns what a correction of a therapist's presence
// (before, nil for a new one, and after) does to the others in the room:
// a client's, family member's or staff member's time counts as direct
// service only while a therapist is there (as the recorder marks it), so inside the stretches the correction moved their
// clinician state is recomputed from the therapists' corrected presence
// (outside them it stays as recorded). room holds the room's segments as
// they were before the correction. Each changed segment comes back with
// its rollups moved: the stored part leaves them and enters again with the
// new state.
func followClinician(before, after *Segment, room []*Segment, loc *time.Location) []result {
	if after == nil || after.Role != rooms.RoleTherapist {
		return nil
	}
	spans := changedSpans(before, after)
	if len(spans) == 0 {
		return nil
	}
	var therapists []*Segment
	for _, s := range room {
		if s.Role == rooms.RoleTherapist && s.ID != after.ID {
			therapists = append(therapists, s)
		}
	}
	if !after.Start.Equal(after.End) {
		therapists = append(therapists, after)
	}
	var out []result
	for _, s := range room {
		if s.Role == rooms.RoleTherapist {
			continue // a therapist's own time is direct
		}
		media, changed := s.reclinic(spans, therapists)
		if !changed {
			continue
		}
		n := cloneSegment(s)
		n.Media = media
		out = append(out, result{
			seg: n, out: corrected,
			unpieces: s.piecesBetween(loc, s.Start, s.Counted),
			pieces:   n.piecesBetween(loc, n.Start, n.Counted),
		})
	}
	return out
}

// clinicAdded gives a correction of a client's, family member's or staff
// member's presence (res, from before: nil for a presence the record
// lacked) the clinician state the record holds: in the stretches the
// correction added, their time is direct service only where a therapist of
// the program was present in that room (room: its segments before the
// correction), whatever the staff member believed. What the recorder
// recorded inside the old bounds stays. The result's pieces follow.
func clinicAdded(before *Segment, res result, room []*Segment, loc *time.Location) result {
	s := res.seg
	if s == nil || s.Role == rooms.RoleTherapist || s.Start.Equal(s.End) {
		return res
	}
	var therapists []*Segment
	for _, o := range room {
		if o.Role == rooms.RoleTherapist {
			therapists = append(therapists, o)
		}
	}
	media, changed := s.reclinic(changedSpans(before, s), therapists)
	if !changed {
		return res
	}
	s.Media = media
	res.pieces = s.piecesBetween(loc, s.Start, s.End)
	return res
}

// reclinic returns the segment's states with the clinician state inside
// spans taken from the therapists' presence, and whether that changed
// anything.
func (s *Segment) reclinic(spans []span, therapists []*Segment) ([]MediaChange, bool) {
	if len(s.Media) == 0 {
		return nil, false
	}
	end := s.until(maxTime(s.Counted, s.last()))
	times := []time.Time{s.Start}
	for _, c := range s.Media {
		times = append(times, c.At)
	}
	for _, sp := range spans {
		times = append(times, sp.From, sp.To)
	}
	for _, th := range therapists {
		times = append(times, th.Start, th.End)
		for _, g := range th.Gaps {
			times = append(times, g.From, g.To)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	inSpan := func(t time.Time) bool {
		for _, sp := range spans {
			if !t.Before(sp.From) && t.Before(sp.To) {
				return true
			}
		}
		return false
	}
	var out []MediaChange
	for _, t := range times {
		if t.Before(s.Start) || (!s.Open() && !t.Before(end)) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].At.Equal(t) {
			continue
		}
		c := s.stateAt(t)
		if inSpan(t) {
			c.NoClinician = !clinicianIn(therapists, t)
		}
		c.At = t
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, false
	}
	// The first state holds from Start (measure), so it is written there;
	// a state equal to the one before it is no change.
	compact := out[:1]
	for _, c := range out[1:] {
		if compact[len(compact)-1].state() != c.state() {
			compact = append(compact, c)
		}
	}
	old := append([]MediaChange(nil), s.Media...)
	old[0].At = s.Start
	if len(compact) == len(s.Media) {
		same := true
		for i := range compact {
			same = same && compact[i].At.Equal(old[i].At) && compact[i].state() == old[i].state()
		}
		if same {
			return nil, false
		}
	}
	return compact, true
}

// stateAt returns the recorded state in force at t (the first one before
// it: it holds from Start).
func (s *Segment) stateAt(t time.Time) MediaChange {
	c := s.Media[0]
	for _, m := range s.Media {
		if m.At.After(t) {
			break
		}
		c = m
	}
	return c
}

// roomSegments reads the segments indexed under a room in the generation
// gp, through c (a transaction's reads).
func roomSegments(ctx context.Context, c redis.Cmdable, gp, room string) ([]*Segment, error) {
	ids, err := c.SMembers(ctx, gp+roomKey(room)).Result()
	if err != nil {
		return nil, err
	}
	return readSegments(ctx, c, gp, ids)
}

// readSegments reads segments by id from the generation gp, skipping
// unknown ones, in no particular order.
func readSegments(ctx context.Context, c redis.Cmdable, gp string, ids []string) ([]*Segment, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	vals, err := c.HMGet(ctx, gp+segKey(), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("read segments: %w", err)
	}
	out := make([]*Segment, 0, len(vals))
	for i, x := range vals {
		str, ok := x.(string)
		if !ok {
			continue
		}
		var seg Segment
		if err := json.Unmarshal([]byte(str), &seg); err != nil {
			return nil, fmt.Errorf("decode segment %s: %w", ids[i], err)
		}
		out = append(out, &seg)
	}
	return out, nil
}
