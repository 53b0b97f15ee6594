package schedule

import (
	"fmt"
	"time"
)

// checkBooking checks booking b against the schedule: its shape, the
// client's enrollment on its date, and that neither its therapist nor its
// client is in another session at the time. Only what s holds is checked:
// load the therapist's and the client's bookings into s first. The error
// wraps ErrInvalid.
func (s *Schedule) checkBooking(b *Booking) error {
	if err := b.validateShape(&s.Program); err != nil {
		return err
	}
	var bad problems
	o := s.booked(b)
	if e := s.Enrollments[b.Client]; !e.ActiveOn(o.Date) {
		bad.add("client %q is not enrolled on %s", b.Client, o.Date)
	}
	bad = append(bad, s.conflicts(&o, true, true)...)
	return bad.err(fmt.Sprintf("booking %s at %s", b.ID, o.Start.In(s.loc).Format("Mon 2 Jan 2006 15:04 MST")))
}

// conflicts lists the sessions that overlap occurrence o for its therapist
// (when therapist is set) and its client (when client is set).
func (s *Schedule) conflicts(o *Occurrence, therapist, client bool) []string {
	var bad []string
	from, to := o.Start.Add(-24*time.Hour), o.End.Add(24*time.Hour)
	overlaps := func(x *Occurrence) bool {
		return x.ID != o.ID && x.Start.Before(o.End) && o.Start.Before(x.End)
	}
	when := func(x *Occurrence) string {
		return x.Start.In(s.loc).Format("15:04") + "-" + x.End.In(s.loc).Format("15:04")
	}
	if therapist {
		for _, th := range o.Therapists {
			for _, x := range s.Sessions(th, from, to) {
				if overlaps(&x) {
					bad = append(bad, fmt.Sprintf("therapist %q is in %s (%s) at that time", th, x.ID, when(&x)))
				}
			}
		}
	}
	if client && o.Client != "" {
		for _, x := range s.occurrences(from, to, false) {
			if overlaps(&x) && s.attends(o.Client, &x) {
				bad = append(bad, fmt.Sprintf("client %q is in %s (%s) at that time", o.Client, x.ID, when(&x)))
			}
		}
	}
	return bad
}

// checkFutureBookings checks every booking that has not ended by now
// against the schedule (after a change to the program or an enrollment),
// listing every conflict. The error wraps ErrInvalid.
func (s *Schedule) checkFutureBookings(now time.Time, therapist, client bool) error {
	var bad problems
	for i := range s.Bookings {
		b := &s.Bookings[i]
		o := s.booked(b)
		if !o.End.After(now) {
			continue
		}
		if e := s.Enrollments[b.Client]; client && !e.ActiveOn(o.Date) {
			bad.add("booking %s: client %q would not be enrolled on %s", b.ID, b.Client, o.Date)
		}
		for _, c := range s.conflicts(&o, therapist, client) {
			bad.add("booking %s: %s", b.ID, c)
		}
	}
	return bad.err("program " + s.Program.ID)
}
