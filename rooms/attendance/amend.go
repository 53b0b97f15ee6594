package attendance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"iop/rooms"
)

// AbsenceReason is why a client did not attend a scheduled session, as
// staff record it.
type AbsenceReason string

// The absence reasons.
const (
	// AbsenceExcused: the client told the program beforehand and had a
	// reason the program accepts.
	AbsenceExcused AbsenceReason = "excused"
	// AbsenceNoShow: the client did not come and did not say.
	AbsenceNoShow AbsenceReason = "no_show"
	// AbsenceCancelled: the program cancelled the session for this client
	// (the session is then not expected of them: no missed session, no
	// flag).
	AbsenceCancelled AbsenceReason = "cancelled"
)

// AbsenceReasons lists the reasons staff may record.
var AbsenceReasons = []AbsenceReason{AbsenceExcused, AbsenceNoShow, AbsenceCancelled}

// Valid reports whether r is one of AbsenceReasons.
func (r AbsenceReason) Valid() bool {
	for _, x := range AbsenceReasons {
		if r == x {
			return true
		}
	}
	return false
}

// Absence is a recorded absence reason.
type Absence struct {
	Reason AbsenceReason `json:"reason"`
	Author string        `json:"author"`
	At     time.Time     `json:"at"`
	Seq    int64         `json:"seq"` // the event in the chain
}

func absenceValue(e *Event) string {
	b, _ := json.Marshal(Absence{Reason: AbsenceReason(e.Reason), Author: e.Author, At: e.At, Seq: e.Seq})
	return string(b)
}

// Correction is one correction of a segment, as the segment lists it.
type Correction struct {
	Seq    int64     `json:"seq"` // the event in the chain
	At     time.Time `json:"at"`  // when it was recorded
	Author string    `json:"author"`
	Reason string    `json:"reason"`
	// Start and End are the bounds the correction replaced (zero for a
	// presence the chain did not know).
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// Amendments refused.
var (
	// ErrAmend: a correction or absence that cannot be recorded (a bad
	// reason, bounds in the future, an open segment). Nothing changed.
	ErrAmend = errors.New("attendance: cannot record that")
	// ErrNoSegment: the segment to correct is not in the program.
	ErrNoSegment = errors.New("attendance: no such segment")
)

// correct applies a correction event (step's KindCorrect).
func correct(prev *Segment, e *Event, loc *time.Location) result {
	note := Correction{Seq: e.Seq, At: e.At, Author: e.Author, Reason: e.Reason}
	var s *Segment
	var unpieces []Piece
	switch {
	case prev == nil:
		if e.Room == "" || e.Sub == "" || !e.Role.Valid() {
			return result{}
		}
		s = &Segment{
			ID: e.Segment, Program: e.Program, Room: e.Room, Kind: e.RoomKind, Title: e.Title,
			Sub: e.Sub, Name: e.Name, Role: e.Role, Node: e.Node,
			// Whether a therapist was there comes from the room's record
			// (clinicAdded); a therapist's own time is direct.
			Media: []MediaChange{{At: e.Start, Audio: e.Audio, Video: e.Video}},
		}
	case prev.Open():
		return result{} // Store.Correct refuses; a replayed one changes nothing
	default:
		s = cloneSegment(prev)
		note.Start, note.End = prev.Start, prev.End
		unpieces = prev.piecesBetween(loc, prev.Start, prev.End)
	}
	s.Start, s.End, s.Counted = e.Start, e.End, e.End
	if s.Reason == "" {
		s.Reason = "corrected"
	}
	s.Corrections = append(s.Corrections, note)
	return result{seg: s, out: corrected, pieces: s.piecesBetween(loc, s.Start, s.End), unpieces: unpieces}
}

// CorrectionInput is a correction staff ask for.
type CorrectionInput struct {
	// Segment is the closed segment to correct; "" records a presence the
	// chain does not know, in Room for Sub with Role.
	Segment string
	Room    string
	Kind    rooms.Kind
	Sub     string
	Name    string
	Role    rooms.Role
	// Video is the new presence's modality: video, or audio only. Whether
	// a therapist was with them is not asked: the record of the room says
	// (see Correct).
	Video bool
	// Start and End are the bounds from now on; equal bounds void the
	// segment.
	Start, End time.Time
	Author     string
	Reason     string
}

// MaxReasonLen is the longest correction reason, in bytes.
const MaxReasonLen = 300

// Correct records a correction as a new event in the program's chain: the
// segment's events stay as they were, the segment and the rollups show the
// corrected bounds, and the segment lists who corrected it, when and why.
// Time a correction adds to a client's, family member's or staff member's
// presence is direct service only where a therapist of the program was
// present in that room by the record (a therapist's presence the record
// lacks is added first, or after: the others' time follows it); a
// therapist's own time is direct.
// It refuses (ErrAmend, ErrNoSegment) an open or unknown segment, bounds in
// the future or reversed, and a reason that is empty, too long or holds
// control characters.
func (s *Store) Correct(ctx context.Context, program string, c CorrectionInput) (Receipt, error) {
	now := s.opts.Now().UTC()
	reason := strings.TrimSpace(c.Reason)
	switch {
	case reason == "" || len(reason) > MaxReasonLen || strings.IndexFunc(reason, unicode.IsControl) >= 0:
		return Receipt{}, fmt.Errorf("%w: a reason of 1 to %d characters, on one line, is required", ErrAmend, MaxReasonLen)
	case c.Author == "":
		return Receipt{}, fmt.Errorf("%w: no author", ErrAmend)
	case c.Start.IsZero() || c.End.Before(c.Start):
		return Receipt{}, fmt.Errorf("%w: the end must not come before the start", ErrAmend)
	case c.End.After(now):
		return Receipt{}, fmt.Errorf("%w: a correction cannot reach into the future", ErrAmend)
	}
	e := Event{ID: "correct:" + randomID(), Kind: KindCorrect, Program: program, At: now,
		Start: c.Start, End: c.End, Author: c.Author, Reason: reason}
	if c.Segment != "" {
		v, err := s.view(ctx, program)
		if err != nil {
			return Receipt{}, err
		}
		segs, err := s.segments(ctx, v, []string{c.Segment})
		if err != nil {
			return Receipt{}, err
		}
		if len(segs) == 0 {
			return Receipt{}, ErrNoSegment
		}
		if segs[0].Open() {
			return Receipt{}, fmt.Errorf("%w: the segment is still open; correct it once it has closed", ErrAmend)
		}
		e.Segment, c.Sub = c.Segment, segs[0].Sub
	} else {
		if c.Room == "" || c.Sub == "" || !c.Role.Valid() {
			return Receipt{}, fmt.Errorf("%w: a new presence needs a session, a person and a role", ErrAmend)
		}
		if c.Start.Equal(c.End) {
			return Receipt{}, fmt.Errorf("%w: a new presence needs some time", ErrAmend)
		}
		e.Segment = "corr-" + randomID()
		e.Room, e.RoomKind, e.Sub, e.Name, e.Role = c.Room, c.Kind, c.Sub, c.Name, c.Role
		e.Audio, e.Video = true, c.Video
	}
	rec, err := s.Append(ctx, e)
	rec.Sub = c.Sub
	return rec, err
}

// SetAbsence records why sub missed the scheduled session room (reason ""
// clears it), as a new event in the chain by author.
func (s *Store) SetAbsence(ctx context.Context, program, sub, room string, reason AbsenceReason, author string) (Receipt, error) {
	if reason != "" && !reason.Valid() {
		return Receipt{}, fmt.Errorf("%w: reason %q is not one of excused, no_show, cancelled", ErrAmend, reason)
	}
	return s.Append(ctx, Event{
		ID: "absence:" + randomID(), Kind: KindAbsence, Program: program, Segment: "absence:" + sub,
		At: s.opts.Now(), Room: room, Sub: sub, Reason: string(reason), Author: author,
	})
}

// Absences returns the absence reasons recorded for sub, by session.
func (s *Store) Absences(ctx context.Context, program, sub string) (map[string]Absence, error) {
	v, err := s.view(ctx, program)
	if err != nil {
		return nil, err
	}
	return s.absences(ctx, v, sub)
}

func (s *Store) absences(ctx context.Context, v *view, sub string) (map[string]Absence, error) {
	h, err := s.rdb.HGetAll(ctx, v.gp+absenceKey(sub)).Result()
	if err != nil {
		return nil, fmt.Errorf("read absences: %w", err)
	}
	out := map[string]Absence{}
	for room, str := range h {
		var a Absence
		if json.Unmarshal([]byte(str), &a) == nil && a.Reason != "" {
			out[room] = a
		}
	}
	return out, nil
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
