package schedule

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
)

// Load returns the whole schedule of program: every enrollment and booking.
// For one person's view (join checks, "my sessions", their calendar),
// LoadFor reads much less.
func (st *Store) Load(ctx context.Context, program string) (*Schedule, error) {
	p, err := st.Program(ctx, program)
	if err != nil {
		return nil, err
	}
	en, err := st.Enrollments(ctx, program)
	if err != nil {
		return nil, err
	}
	bk, err := hashJSON[Booking](ctx, st.rdb, bookingsKey(program))
	if err != nil {
		return nil, err
	}
	return New(*p, en, sortedValues(bk), st.Policies)
}

// LoadFor returns the schedule of program with only the enrollments and
// bookings of the people subs: enough for their sessions, join checks and
// calendars.
func (st *Store) LoadFor(ctx context.Context, program string, subs ...string) (*Schedule, error) {
	p, err := st.Program(ctx, program)
	if err != nil {
		return nil, err
	}
	return st.loadInto(ctx, st.rdb, p, subs...)
}

func (st *Store) loadInto(ctx context.Context, c redis.Cmdable, p *Program, subs ...string) (*Schedule, error) {
	en, err := hashFieldsJSON[Enrollment](ctx, c, enrollmentsKey(p.ID), subs...)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var bk []Booking
	for _, sub := range subs {
		mine, err := st.personBookings(ctx, c, p.ID, sub)
		if err != nil {
			return nil, err
		}
		for _, b := range mine {
			if !seen[b.ID] {
				seen[b.ID] = true
				bk = append(bk, b)
			}
		}
	}
	return New(*p, en, bk, st.Policies)
}

// Check is Schedule.Check on the stored schedule of program: may sub, as
// role, join room at now? It also returns the occurrence when the room is
// a scheduled session (kind, title, cap, cohort, therapists: what the room
// is opened with), refused or not. ErrNotScheduled means an ad-hoc room;
// a program the store does not know is ErrNotFound.
func (st *Store) Check(ctx context.Context, program, room, sub string, role rooms.Role, now time.Time) (Occurrence, error) {
	s, err := st.LoadFor(ctx, program, sub)
	if err != nil {
		return Occurrence{}, err
	}
	if strings.HasPrefix(room, program+"-b") && !slices.ContainsFunc(s.Bookings, func(b Booking) bool { return b.ID == room }) {
		if b, err := st.Booking(ctx, program, room); err == nil {
			s.Bookings = append(s.Bookings, *b)
		} else if !errors.Is(err, ErrNotFound) {
			return Occurrence{}, err
		}
	}
	o, err := s.Find(room)
	if err != nil && !errors.Is(err, ErrCancelled) {
		return Occurrence{}, err
	}
	return o, s.Check(room, sub, role, now)
}

// Upcoming returns sub's next n sessions whose join window (for role) has
// not closed at now: GET /v1/me/sessions.
func (st *Store) Upcoming(ctx context.Context, program, sub string, role rooms.Role, now time.Time, n int) ([]Slot, error) {
	s, err := st.LoadFor(ctx, program, sub)
	if err != nil {
		return nil, err
	}
	return s.Upcoming(sub, role, now, n), nil
}

// Remaining returns client sub's sessions not over at from that start
// before weekEnd; see Schedule.Remaining.
func (st *Store) Remaining(ctx context.Context, program, sub string, from, weekEnd time.Time) ([]Occurrence, error) {
	s, err := st.LoadFor(ctx, program, sub)
	if err != nil {
		return nil, err
	}
	return s.Remaining(sub, from, weekEnd), nil
}
