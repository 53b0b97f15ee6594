package attendance

import (
	"context"
	"fmt"
	"time"

	"iop/rooms"
)

// RoomRef names a session as docs/api.md's room object does (the caller
// may add locked).
type RoomRef struct {
	ID    string     `json:"id"`
	Kind  rooms.Kind `json:"kind,omitempty"`
	Title string     `json:"title,omitempty"`
}

// RoomReport is a session's roster: docs/api.md's
// GET /v1/attendance/rooms/{room}.
type RoomReport struct {
	Program      string  `json:"program"`
	Zone         string  `json:"zone"`
	Room         RoomRef `json:"room"`
	Seconds      int64   `json:"seconds"` // everyone's
	VideoSeconds int64   `json:"video_seconds"`
	Breakdown
	People []*RoomPerson `json:"people"` // in order of first admission
}

// RoomPerson is one person's presence in a session.
type RoomPerson struct {
	Sub          string     `json:"sub"`
	Name         string     `json:"name,omitempty"`
	Role         rooms.Role `json:"role"`
	Seconds      int64      `json:"seconds"`
	VideoSeconds int64      `json:"video_seconds"`
	Breakdown
	Minutes      int64         `json:"minutes"`
	VideoMinutes int64         `json:"video_minutes"`
	Segments     []SegmentLine `json:"segments"`
}

// SegmentLine is one segment in a roster.
type SegmentLine struct {
	ID           string     `json:"id"`
	Start        time.Time  `json:"start"`
	End          *time.Time `json:"end"` // null while open
	StartLocal   string     `json:"start_local"`
	EndLocal     *string    `json:"end_local"`
	Seconds      int64      `json:"seconds"` // gaps of resumed drops excluded
	VideoSeconds int64      `json:"video_seconds"`
	Breakdown
	Modality Modality `json:"modality"`
	Reason   string   `json:"reason,omitempty"` // why it closed
	Gaps     []Gap    `json:"gaps,omitempty"`
}

// Room returns the roster of a session: each person's segments with their
// seconds (open ones up to now) and modality, and the totals.
func (s *Store) Room(ctx context.Context, program, room string) (*RoomReport, error) {
	v, err := s.view(ctx, program)
	if err != nil {
		return nil, err
	}
	ids, err := s.rdb.SMembers(ctx, v.gp+roomKey(room)).Result()
	if err != nil {
		return nil, fmt.Errorf("read room segments: %w", err)
	}
	segs, err := s.segments(ctx, v, ids)
	if err != nil {
		return nil, err
	}
	rep := &RoomReport{Program: program, Zone: v.loc.String(), Room: RoomRef{ID: room}, People: []*RoomPerson{}}
	bySub := map[string]*RoomPerson{}
	person := map[*RoomPerson]Amount{}
	var all Amount
	for _, seg := range segs {
		if rep.Room.Kind == "" {
			rep.Room.Kind, rep.Room.Title = seg.Kind, seg.Title
		}
		p := bySub[seg.Sub]
		if p == nil {
			p = &RoomPerson{Sub: seg.Sub, Name: seg.Name, Role: seg.Role, Segments: []SegmentLine{}}
			bySub[seg.Sub] = p
			rep.People = append(rep.People, p)
		}
		a := seg.Measure(v.now)
		l := SegmentLine{
			ID: seg.ID, Start: seg.Start, StartLocal: localTime(seg.Start, v.loc),
			Seconds: a.Seconds, VideoSeconds: a.VideoSeconds, Breakdown: a.Breakdown(), Modality: seg.Modality(v.now),
			Reason: seg.Reason, Gaps: seg.Gaps,
		}
		if !seg.Open() {
			end, el := seg.End, localTime(seg.End, v.loc)
			l.End, l.EndLocal = &end, &el
		}
		p.Segments = append(p.Segments, l)
		person[p] = person[p].Add(a)
		all = all.Add(a)
	}
	for _, p := range rep.People {
		a := person[p]
		p.Seconds, p.VideoSeconds, p.Breakdown = a.Seconds, a.VideoSeconds, a.Breakdown()
		p.Minutes, p.VideoMinutes = Minutes(p.Seconds), Minutes(p.VideoSeconds)
	}
	rep.Seconds, rep.VideoSeconds, rep.Breakdown = all.Seconds, all.VideoSeconds, all.Breakdown()
	return rep, nil
}

// Day returns one person's local day from the day rollup, open segments
// counted up to now.
func (s *Store) Day(ctx context.Context, program, sub string, d Date) (DayLine, error) {
	v, err := s.view(ctx, program)
	if err != nil {
		return DayLine{}, err
	}
	t, _, err := s.readTotals(ctx, v.gp+dayKey(sub, d))
	if err != nil {
		return DayLine{}, err
	}
	open, err := s.openSegments(ctx, v)
	if err != nil {
		return DayLine{}, err
	}
	for _, seg := range open {
		if seg.Sub != sub {
			continue
		}
		for _, p := range seg.piecesBetween(v.loc, seg.Counted, v.now) {
			if p.Date == d {
				t.add(seg.Room, p)
			}
		}
	}
	pol, err := s.policy(ctx, program)
	if err != nil {
		return DayLine{}, err
	}
	return DayLine{
		Date: d, Seconds: t.Seconds, VideoSeconds: t.VideoSeconds, Breakdown: t.Amount.Breakdown(), Minutes: Minutes(t.Seconds),
		VideoMinutes: Minutes(t.VideoSeconds), Sessions: t.Sessions(),
		Billable: billableDay(t.Amount, s.opts.Rules.BillableDay),
		Counts:   billableDay(t.Amount, pol.DayMinimum),
	}, nil
}
