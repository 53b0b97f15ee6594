package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// Enrollment returns sub's enrollment in program, or an error wrapping
// ErrNotFound.
func (st *Store) Enrollment(ctx context.Context, program, sub string) (*Enrollment, error) {
	b, err := st.rdb.HGet(ctx, enrollmentsKey(program), sub).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("enrollment in %s: %w", program, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read enrollment: %w", err)
	}
	var e Enrollment
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("decode enrollment: %w", err)
	}
	return &e, nil
}

// Enrollments returns every enrollment of program, ended ones included,
// sorted by sub.
func (st *Store) Enrollments(ctx context.Context, program string) ([]Enrollment, error) {
	m, err := hashJSON[Enrollment](ctx, st.rdb, enrollmentsKey(program))
	if err != nil {
		return nil, err
	}
	return sortedValues(m), nil
}

// updateEnrollment changes (or creates) sub's enrollment with fn in a
// transaction, validates it against the program and the client's bookings
// not yet over, and stores it. Bookings fn drops are deleted.
func (st *Store) updateEnrollment(ctx context.Context, program, sub string, fn func(p *Program, e *Enrollment, bookings *[]Booking) error) (*Enrollment, error) {
	var out *Enrollment
	err := st.txn(ctx, func(tx *redis.Tx) error {
		p, err := st.program(ctx, tx, program)
		if err != nil {
			return err
		}
		var e *Enrollment
		if b, err := tx.HGet(ctx, enrollmentsKey(program), sub).Bytes(); err == nil {
			e = new(Enrollment)
			if err := json.Unmarshal(b, e); err != nil {
				return fmt.Errorf("decode enrollment: %w", err)
			}
		} else if !errors.Is(err, redis.Nil) {
			return fmt.Errorf("read enrollment: %w", err)
		}
		mine, err := st.personBookings(ctx, tx, program, sub)
		if err != nil {
			return err
		}
		var clientOf []Booking
		for _, b := range mine {
			if b.Client == sub {
				clientOf = append(clientOf, b)
			}
		}
		kept := slices.Clone(clientOf)
		if e == nil {
			e = &Enrollment{}
		}
		if err := fn(p, e, &kept); err != nil {
			return err
		}
		e.Program = program
		if err := e.Validate(p); err != nil {
			return err
		}
		s, err := New(*p, []Enrollment{*e}, kept, st.Policies)
		if err != nil {
			return err
		}
		if err := s.checkFutureBookings(st.now(), false, true); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.HSet(ctx, enrollmentsKey(program), e.Sub, mustJSON(*e))
			for _, b := range clientOf {
				if !slices.ContainsFunc(kept, func(k Booking) bool { return k.ID == b.ID }) {
					pipe.HDel(ctx, bookingsKey(program), b.ID)
					pipe.SRem(ctx, personBookingsKey(program, b.Client), b.ID)
					pipe.SRem(ctx, personBookingsKey(program, b.Therapist), b.ID)
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store enrollment: %w", err)
		}
		out = e
		return nil
	}, programKey(program), enrollmentsKey(program), personBookingsKey(program, sub))
	return out, err
}

// Enroll creates or replaces enrollment e (e.Program names the program;
// defaults for planned length and targets are filled in). It is refused
// when e is invalid or when one of the client's bookings would clash with
// their track.
func (st *Store) Enroll(ctx context.Context, e Enrollment) error {
	if e.Program == "" {
		return fmt.Errorf("enrollment of %s: %w: the program is required", e.Sub, ErrInvalid)
	}
	if msg := checkSub("client", e.Sub); msg != "" {
		return fmt.Errorf("enrollment: %w: %s", ErrInvalid, msg)
	}
	_, err := st.updateEnrollment(ctx, e.Program, e.Sub, func(_ *Program, cur *Enrollment, _ *[]Booking) error {
		*cur = e.WithDefaults()
		return nil
	})
	return err
}

// ChangeTrack moves client sub to track from date effective on, recording
// the change (the track as of earlier dates is kept). A change on the same
// date as the last one replaces it.
func (st *Store) ChangeTrack(ctx context.Context, program, sub, track string, effective Date, reason string) error {
	_, err := st.updateEnrollment(ctx, program, sub, func(_ *Program, e *Enrollment, _ *[]Booking) error {
		if e.Sub == "" {
			return fmt.Errorf("enrollment of %s in %s: %w", sub, program, ErrNotFound)
		}
		if n := len(e.Changes); n > 0 && e.Changes[n-1].Effective == effective {
			e.Changes = e.Changes[:n-1]
		}
		if e.TrackOn(effective) == track {
			return fmt.Errorf("track change: %w: the client is in track %q on %s already", ErrInvalid, track, effective)
		}
		e.Changes = append(e.Changes, TrackChange{Track: track, Effective: effective, Reason: reason})
		return nil
	})
	return err
}

// EndEnrollment ends client sub's enrollment after date end (their last
// day) for reason. Their bookings after that day are deleted and their
// calendar feed is revoked.
func (st *Store) EndEnrollment(ctx context.Context, program, sub string, end Date, reason EndReason) error {
	_, err := st.updateEnrollment(ctx, program, sub, func(p *Program, e *Enrollment, bookings *[]Booking) error {
		if e.Sub == "" {
			return fmt.Errorf("enrollment of %s in %s: %w", sub, program, ErrNotFound)
		}
		e.End, e.EndReason = end, reason
		loc, err := p.Location()
		if err != nil {
			return err
		}
		*bookings = slices.DeleteFunc(*bookings, func(b Booking) bool { return DateOf(b.Start, loc).After(end) })
		return nil
	})
	if err != nil {
		return err
	}
	return st.RevokeFeed(ctx, program, sub)
}

// DeleteEnrollment erases client sub's enrollment (a mistake; ending one
// is EndEnrollment), with their bookings and calendar feed.
func (st *Store) DeleteEnrollment(ctx context.Context, program, sub string) error {
	mine, err := st.personBookings(ctx, st.rdb, program, sub)
	if err != nil {
		return err
	}
	n, err := st.rdb.HDel(ctx, enrollmentsKey(program), sub).Result()
	if err != nil {
		return fmt.Errorf("delete enrollment: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("enrollment in %s: %w", program, ErrNotFound)
	}
	for _, b := range mine {
		if b.Client == sub {
			if err := st.CancelBooking(ctx, program, b.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return st.RevokeFeed(ctx, program, sub)
}
