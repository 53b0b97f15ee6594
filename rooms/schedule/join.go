package schedule

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"iop/rooms"
)

// Check decides whether sub, joining as role at now, may enter the room of
// the scheduled session room. It returns nil, a *JoinError (matching one of
// the join sentinels with errors.Is), or ErrNotScheduled when the schedule
// does not know the room (an ad-hoc room: no window, track or enrollment
// checks).
//
// Who may join:
//   - a client: only while enrolled (not before the start date, not after
//     the end: not_enrolled); a recurring session of their own track as of
//     that date, honouring track changes (else wrong_track) or a shared one,
//     within its cohort (else not_enrolled); a booking only if it is
//     theirs (else not_enrolled);
//   - a therapist: any session of the program, assigned or not (a colleague
//     covers); a booking only if they run it (else forbidden);
//   - family: whatever their single-use invitation grants (the caller
//     checks it), the window still applies;
//   - staff: whatever their token grants (the caller checks it), the
//     window still applies.
//
// Then the window: clients and family from the program's JoinBefore
// before the start (too_early), therapists and staff from
// StaffJoinBefore, everyone until JoinGrace after the end (too_late).
// A session on a holiday or cancelled is refused with code cancelled.
// Every refusal carries the person's next joinable session in Next.
func (s *Schedule) Check(room, sub string, role rooms.Role, now time.Time) error {
	o, err := s.Find(room)
	if errors.Is(err, ErrCancelled) {
		return s.refuse(CodeCancelled, &o, sub, role, now, "", false)
	}
	if err != nil {
		return err
	}
	return s.check(&o, sub, role, now)
}

func (s *Schedule) check(o *Occurrence, sub string, role rooms.Role, now time.Time) error {
	switch role {
	case rooms.RoleClient:
		e := s.Enrollments[sub]
		switch {
		case e == nil:
			return s.refuse(CodeNotEnrolled, o, sub, role, now, "not enrolled in this program", false)
		case !e.ActiveOn(o.Date) && !e.End.IsZero() && o.Date.After(e.End):
			return s.refuse(CodeNotEnrolled, o, sub, role, now, "the enrollment ended on "+e.End.String(), false)
		case !e.ActiveOn(o.Date):
			return s.refuse(CodeNotEnrolled, o, sub, role, now, "the enrollment starts on "+e.Start.String(), false)
		case o.Booked && o.Client != sub:
			return s.refuse(CodeNotEnrolled, o, sub, role, now, "booked for another client", false)
		case o.Cohort != "" && !e.InCohort(o.Cohort):
			return s.refuse(CodeNotEnrolled, o, sub, role, now, "for members of a cohort you are not in", false)
		case o.Track != "" && o.Track != e.TrackOn(o.Date):
			return s.refuse(CodeWrongTrack, o, sub, role, now, "", false)
		}
	case rooms.RoleTherapist:
		if o.Booked && !slices.Contains(o.Therapists, sub) {
			return s.refuse(CodeForbidden, o, sub, role, now, "booked with another therapist", false)
		}
	case rooms.RoleFamily:
		if o.Booked && o.Kind != rooms.KindFamily {
			return s.refuse(CodeForbidden, o, sub, role, now, "an individual session", false)
		}
	case rooms.RoleStaff:
	default:
		return s.refuse(CodeForbidden, o, sub, role, now, fmt.Sprintf("unknown role %q", role), false)
	}
	opens, closes := s.Window(o, role)
	switch {
	case now.Before(opens):
		return s.refuse(CodeTooEarly, o, sub, role, now, "the room opens at "+opens.In(s.loc).Format("15:04 MST"), true)
	case !now.Before(closes):
		return s.refuse(CodeTooLate, o, sub, role, now, "the room closed at "+closes.In(s.loc).Format("15:04 MST"), true)
	}
	return nil
}

// refuse builds the JoinError, with the refused session's window when it
// is the person's own and their next joinable session.
func (s *Schedule) refuse(code string, o *Occurrence, sub string, role rooms.Role, now time.Time, detail string, own bool) *JoinError {
	e := &JoinError{Code: code, Room: o.ID, detail: detail, Next: s.Next(sub, role, now)}
	if own {
		e.Opens, e.Closes = s.Window(o, role)
	}
	return e
}
