package attendance

import (
	"errors"
	"fmt"
	"time"

	"iop/rooms"
)

// EventKind names an attendance event.
type EventKind string

// The attendance events. Heartbeats are not events: they only move an open
// segment's last-seen time (see Store.Heartbeat).
const (
	// KindAdmit opens a segment: the person was admitted to the room.
	// It carries the room, kind, title, person, role and media state.
	KindAdmit EventKind = "admit"
	// KindMedia records the segment's state (media received, clinician
	// present) from At on. On a
	// segment the sweeper closed as lost it also revives the segment from
	// where it was closed: the recorder that sends it vouches that the
	// person stayed connected (a node cut off from Redis, not a dead one).
	KindMedia EventKind = "media"
	// KindLeave closes the segment at At for Reason (left, dropped,
	// removed, ended, lost, shutdown). On a segment closed as lost it
	// extends it to At, as KindMedia revives it.
	KindLeave EventKind = "leave"
	// KindResume reopens a closed segment: the person reconnected within
	// the grace period after a drop. The time between the close and At is
	// a Gap and not counted. On an unknown segment it acts as KindAdmit.
	KindResume EventKind = "resume"
	// KindAbsence records why a client did not attend a scheduled session
	// (Room is the session, Sub the client, Reason an AbsenceReason, ""
	// to clear it), set by staff (Author). It touches no segment.
	KindAbsence EventKind = "absence"
	// KindCorrect corrects the record, never by editing it: Start and End
	// become the bounds of the closed segment Segment (equal bounds void
	// it), or, for a segment the chain does not know, of a presence that
	// was not recorded (Room, Sub, Role...). Author and Reason say who
	// and why; the segment keeps the list of its corrections.
	KindCorrect EventKind = "correct"
)

// Close reasons beyond rooms' leave reasons.
const (
	// ReasonLost: the sweeper closed a segment whose node stopped sending
	// heartbeats, at its last-seen time.
	ReasonLost = "lost"
	// ReasonShutdown: the recorder closed its segments as its node shut
	// down.
	ReasonShutdown = "shutdown"
)

// Event is one attendance fact in a program's stream. Its ID is unique and
// chosen by the sender: appending an ID a second time changes nothing.
type Event struct {
	ID      string    `json:"id"`
	Seq     int64     `json:"seq"` // position in the program's chain, set by the store
	Kind    EventKind `json:"kind"`
	Program string    `json:"program"`
	Segment string    `json:"segment"`
	At      time.Time `json:"at"` // UTC, truncated to the second by the store

	// Admit and resume: who and where.
	Room     string     `json:"room,omitempty"`
	RoomKind rooms.Kind `json:"room_kind,omitempty"`
	Title    string     `json:"title,omitempty"`
	Sub      string     `json:"sub,omitempty"`
	Name     string     `json:"name,omitempty"`
	Role     rooms.Role `json:"role,omitempty"`
	Node     string     `json:"node,omitempty"`

	// Admit, media and resume: the state from At on: the media the server
	// receives from the person, and whether no therapist of the program is
	// admitted in the room (then the time is not direct service).
	Audio       bool `json:"audio"`
	Video       bool `json:"video"`
	NoClinician bool `json:"no_clinician,omitempty"`

	// Leave: why. Absence: the AbsenceReason. Correct: the author's
	// reason.
	Reason string `json:"reason,omitempty"`

	// Absence and correct: the staff member who recorded it (their sub).
	Author string `json:"author,omitempty"`
	// Correct: the segment's bounds from now on.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// ErrInvalid is returned for an event that can never be stored (missing
// fields, unknown kind); retrying it is pointless.
var ErrInvalid = errors.New("attendance: invalid event")

// check refuses events that can never be applied.
func (e *Event) check() error {
	bad := func(what string) error { return fmt.Errorf("%w %q: %s", ErrInvalid, e.ID, what) }
	switch {
	case e.ID == "":
		return bad("no id")
	case e.Program == "":
		return bad("no program")
	case e.Segment == "":
		return bad("no segment")
	case e.At.IsZero():
		return bad("no time")
	}
	switch e.Kind {
	case KindAdmit, KindResume:
		if e.Room == "" || e.Sub == "" {
			return bad("admit without room or person")
		}
	case KindMedia:
	case KindLeave:
		if e.Reason == "" {
			return bad("leave without reason")
		}
	case KindAbsence:
		if e.Room == "" || e.Sub == "" || e.Author == "" {
			return bad("absence without session, person or author")
		}
		if e.Reason != "" && !AbsenceReason(e.Reason).Valid() {
			return bad("unknown absence reason")
		}
	case KindCorrect:
		if e.Author == "" || e.Reason == "" {
			return bad("correction without author or reason")
		}
		if e.Start.IsZero() || e.End.Before(e.Start) {
			return bad("correction without bounds, or ending before it starts")
		}
	default:
		return bad("unknown kind " + string(e.Kind))
	}
	return nil
}

// outcome says what an event did to its segment.
type outcome int

const (
	ignored   outcome = iota // no change (unknown segment, already closed, no new state)
	opened                   // a new segment
	updated                  // an open segment's media changed
	reopened                 // a closed segment runs again (resume, revival)
	closed                   // the segment closed, pieces are final
	noted                    // an absence reason: no segment changed
	corrected                // a correction: unpieces leave the rollups, pieces enter them
)

// result is the effect of one event on its segment.
type result struct {
	seg    *Segment // the new state (nil when ignored)
	out    outcome
	pieces []Piece // presence that became final, to add to the rollups
	// unpieces is presence a correction takes out of the rollups.
	unpieces []Piece
}

// step applies e to prev (nil when the segment is unknown). It is the one
// place attendance rules live: live appends and Rebuild both run it, in
// stream order, so they cannot disagree.
func step(prev *Segment, e *Event, loc *time.Location) result {
	switch e.Kind {
	case KindAbsence:
		return result{out: noted}
	case KindCorrect:
		return correct(prev, e, loc)
	}
	if prev == nil {
		if e.Kind != KindAdmit && e.Kind != KindResume {
			return result{}
		}
		s := &Segment{
			ID: e.Segment, Program: e.Program, Room: e.Room, Kind: e.RoomKind, Title: e.Title,
			Sub: e.Sub, Name: e.Name, Role: e.Role, Node: e.Node,
			Start: e.At, Counted: e.At,
			Media: []MediaChange{e.state(e.At)},
		}
		return result{seg: s, out: opened}
	}
	s := cloneSegment(prev)
	at := maxTime(e.At, s.last())
	switch e.Kind {
	case KindMedia:
		switch {
		case s.Open():
			before := len(s.Media)
			s.setMedia(at, e.state(at))
			if len(s.Media) == before {
				return result{}
			}
			return result{seg: s, out: updated}
		case s.Reason == ReasonLost && e.At.After(s.End):
			s.End, s.Reason = time.Time{}, ""
			s.setMedia(at, e.state(at))
			return result{seg: s, out: reopened}
		}
	case KindLeave:
		if !s.Open() && s.Reason != ReasonLost {
			return result{}
		}
		if !s.Open() && !e.At.After(s.End) {
			return result{} // a lost segment is only extended forwards
		}
		s.End, s.Reason = at, e.Reason
		pieces := s.piecesBetween(loc, s.Counted, s.End)
		s.Counted = s.End
		return result{seg: s, out: closed, pieces: pieces}
	case KindResume:
		if s.Open() {
			return result{}
		}
		if at.After(s.End) {
			s.Gaps = append(s.Gaps, Gap{From: s.End, To: at})
		}
		s.End, s.Reason, s.Counted = time.Time{}, "", at
		s.setMedia(at, e.state(at))
		return result{seg: s, out: reopened}
	}
	return result{}
}

// state is the MediaChange an admit, media or resume event records.
func (e *Event) state(at time.Time) MediaChange {
	return MediaChange{At: at, Audio: e.Audio, Video: e.Video, NoClinician: e.NoClinician}
}

func cloneSegment(s *Segment) *Segment {
	c := *s
	c.Media = append([]MediaChange(nil), s.Media...)
	c.Gaps = append([]Gap(nil), s.Gaps...)
	c.Corrections = append([]Correction(nil), s.Corrections...)
	return &c
}
