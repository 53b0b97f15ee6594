package schedule

import (
	"errors"
	"fmt"
	"time"

	"iop/rooms"
)

// Errors callers branch on. Store and validation errors wrap ErrInvalid or
// ErrNotFound; refused joins are *JoinError, which also matches one of the
// Err* join sentinels below with errors.Is.
var (
	// ErrInvalid: a schedule, enrollment or booking that breaks a rule
	// (unknown time zone, a cap above the kind's maximum, a therapist in
	// two sessions at once, ...). Nothing was stored. API: 422.
	ErrInvalid = errors.New("invalid schedule")
	// ErrNotFound: no such program, track, session, enrollment, booking
	// or calendar feed. API: 404.
	ErrNotFound = errors.New("not found")
	// ErrNotScheduled: the room id is not a session of the program's
	// schedule; the caller treats it as an ad-hoc room (docs/protocol.md, 4.3).
	ErrNotScheduled = errors.New("not a scheduled session")
)

// Refusal codes, the error codes of docs/protocol.md (11) that a refused join
// carries. CodeCancelled is new: a session cancelled or on a holiday.
const (
	CodeTooEarly    = "too_early"
	CodeTooLate     = "too_late"
	CodeWrongTrack  = "wrong_track"
	CodeNotEnrolled = "not_enrolled"
	CodeForbidden   = "forbidden"
	CodeCancelled   = "cancelled"
)

// Join sentinels, one per refusal code; a *JoinError matches its own.
var (
	ErrTooEarly    = errors.New("the session is not open yet")
	ErrTooLate     = errors.New("the session is over")
	ErrWrongTrack  = errors.New("this session belongs to another track")
	ErrNotEnrolled = errors.New("you are not enrolled in this session")
	ErrForbidden   = errors.New("this session is booked for someone else")
	ErrCancelled   = errors.New("this session is cancelled")
)

var sentinelOf = map[string]error{
	CodeTooEarly:    ErrTooEarly,
	CodeTooLate:     ErrTooLate,
	CodeWrongTrack:  ErrWrongTrack,
	CodeNotEnrolled: ErrNotEnrolled,
	CodeForbidden:   ErrForbidden,
	CodeCancelled:   ErrCancelled,
}

// JoinError is a refused join: why (Code), the refused session's join
// window when it is a known session, and the person's next session so that
// the refusal can say when to come.
type JoinError struct {
	// Code is one of the Code* constants (a docs/protocol.md error code).
	Code string
	// Room is the refused room id.
	Room string
	// Opens and Closes are the refused session's join window for this
	// person (zero when the session is not theirs or not known).
	Opens, Closes time.Time
	// Next is the person's next session that is still joinable (the
	// refused one itself when it is theirs and not over), or nil.
	Next *Slot

	detail string
}

// Error says why, with the next session's local start time; it names no
// person and no session title, so it is safe to log.
func (e *JoinError) Error() string {
	msg := sentinelOf[e.Code].Error()
	if e.detail != "" {
		msg += ": " + e.detail
	}
	if e.Next != nil {
		msg += fmt.Sprintf("; your next session starts %s (%s)", e.Next.StartLocal.Format("Mon 2 Jan 15:04 MST"), e.Next.TimeZone)
	}
	return msg
}

// Unwrap lets errors.Is match the code's sentinel, and rooms.ErrNotEnrolled
// and rooms.ErrForbidden for not_enrolled and forbidden, which signaling
// already maps.
func (e *JoinError) Unwrap() []error {
	out := []error{sentinelOf[e.Code]}
	switch e.Code {
	case CodeNotEnrolled:
		out = append(out, rooms.ErrNotEnrolled)
	case CodeForbidden:
		out = append(out, rooms.ErrForbidden)
	}
	return out
}
