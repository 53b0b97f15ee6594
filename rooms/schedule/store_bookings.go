package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// personBookings returns the bookings sub is client or therapist of.
func (st *Store) personBookings(ctx context.Context, c redis.Cmdable, program, sub string) ([]Booking, error) {
	ids, err := c.SMembers(ctx, personBookingsKey(program, sub)).Result()
	if err != nil {
		return nil, fmt.Errorf("read bookings: %w", err)
	}
	slices.Sort(ids)
	return hashFieldsJSON[Booking](ctx, c, bookingsKey(program), ids...)
}

// Bookings returns the bookings sub is the client or the therapist of,
// soonest first.
func (st *Store) Bookings(ctx context.Context, program, sub string) ([]Booking, error) {
	out, err := st.personBookings(ctx, st.rdb, program, sub)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Booking) int { return a.Start.Compare(b.Start) })
	return out, nil
}

// Booking returns the booking id, or an error wrapping ErrNotFound.
func (st *Store) Booking(ctx context.Context, program, id string) (*Booking, error) {
	out, err := hashFieldsJSON[Booking](ctx, st.rdb, bookingsKey(program), id)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("booking %s: %w", id, ErrNotFound)
	}
	return &out[0], nil
}

// Book books an individual or family session (b.ID is assigned, and is
// the room id). It is refused when the client is not enrolled on that date,
// or when the therapist or the client is in another session at that time.
func (st *Store) Book(ctx context.Context, program string, b Booking) (Booking, error) {
	b.ID = program + "-b" + randomHex(6)
	if err := b.validateShape(&Program{ID: program}); err != nil {
		return Booking{}, err
	}
	err := st.txn(ctx, func(tx *redis.Tx) error {
		p, err := st.program(ctx, tx, program)
		if err != nil {
			return err
		}
		s, err := st.loadInto(ctx, tx, p, b.Client, b.Therapist)
		if err != nil {
			return err
		}
		s.Bookings = append(s.Bookings, b)
		if err := s.checkBooking(&s.Bookings[len(s.Bookings)-1]); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.HSet(ctx, bookingsKey(program), b.ID, mustJSON(b))
			pipe.SAdd(ctx, personBookingsKey(program, b.Client), b.ID)
			pipe.SAdd(ctx, personBookingsKey(program, b.Therapist), b.ID)
			return nil
		})
		if err != nil {
			return fmt.Errorf("store booking: %w", err)
		}
		return nil
	}, programKey(program), enrollmentsKey(program), personBookingsKey(program, b.Client), personBookingsKey(program, b.Therapist))
	if err != nil {
		return Booking{}, err
	}
	return b, nil
}

// CancelBooking deletes booking id.
func (st *Store) CancelBooking(ctx context.Context, program, id string) error {
	b, err := st.Booking(ctx, program, id)
	if err != nil {
		return err
	}
	_, err = st.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.HDel(ctx, bookingsKey(program), id)
		pipe.SRem(ctx, personBookingsKey(program, b.Client), id)
		pipe.SRem(ctx, personBookingsKey(program, b.Therapist), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cancel booking: %w", err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
