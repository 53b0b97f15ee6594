package schedule

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// Programs returns the ids of the stored programs, sorted.
func (st *Store) Programs(ctx context.Context) ([]string, error) {
	ids, err := st.rdb.SMembers(ctx, programsKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list programs: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}

// Program returns the stored program id, or an error wrapping ErrNotFound.
func (st *Store) Program(ctx context.Context, id string) (*Program, error) {
	return st.program(ctx, st.rdb, id)
}

func (st *Store) program(ctx context.Context, c redis.Cmdable, id string) (*Program, error) {
	if checkID("program", id, maxProgramID) != "" {
		return nil, fmt.Errorf("program %q: %w", id, ErrNotFound)
	}
	p, err := getJSON[Program](ctx, c, programKey(id))
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", id, err)
	}
	if p == nil {
		return nil, fmt.Errorf("program %s: %w", id, ErrNotFound)
	}
	return p, nil
}

// whole is everything stored of one program, read in a transaction.
type whole struct {
	prog        *Program
	enrollments map[string]Enrollment
	bookings    map[string]Booking
}

func (st *Store) readWhole(ctx context.Context, tx *redis.Tx, id string) (*whole, error) {
	p, err := getJSON[Program](ctx, tx, programKey(id))
	if err != nil {
		return nil, err
	}
	en, err := hashJSON[Enrollment](ctx, tx, enrollmentsKey(id))
	if err != nil {
		return nil, err
	}
	bk, err := hashJSON[Booking](ctx, tx, bookingsKey(id))
	if err != nil {
		return nil, err
	}
	return &whole{prog: p, enrollments: en, bookings: bk}, nil
}

// validate checks a whole program: the program, every enrollment against
// it, every booking not yet over against the timetable.
func (st *Store) validate(w *whole) error {
	if err := w.prog.Validate(st.Policies); err != nil {
		return err
	}
	if err := enrollmentProblems(w.prog, sortedValues(w.enrollments)).err("program " + w.prog.ID); err != nil {
		return err
	}
	s, err := New(*w.prog, sortedValues(w.enrollments), sortedValues(w.bookings), st.Policies)
	if err != nil {
		return err
	}
	return s.checkFutureBookings(st.now(), true, true)
}

func sortedValues[T any](m map[string]T) []T {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]T, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// PutProgram creates or replaces program p (its tracks, sessions, holidays
// and cancellations). It is refused, and nothing stored, when p is invalid,
// when an enrollment names a track p no longer has, or when a booking not
// yet over would conflict with the new timetable.
func (st *Store) PutProgram(ctx context.Context, p Program) error {
	_, err := st.updateWhole(ctx, p.ID, true, func(w *whole) error {
		w.prog = &p
		return nil
	})
	return err
}

// UpdateProgram changes the stored program id with fn, validates the result
// as PutProgram does and stores it; it retries fn when another node wrote
// the program meanwhile. It returns the stored program.
func (st *Store) UpdateProgram(ctx context.Context, id string, fn func(*Program) error) (*Program, error) {
	w, err := st.updateWhole(ctx, id, false, func(w *whole) error {
		if err := fn(w.prog); err != nil {
			return err
		}
		if w.prog.ID != id {
			return fmt.Errorf("program %s: %w: the id cannot change", id, ErrInvalid)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w.prog, nil
}

// updateWhole reads the whole program id in a transaction, lets change
// edit it, validates and writes the program, every enrollment and booking
// change made, and the per-person booking indexes.
func (st *Store) updateWhole(ctx context.Context, id string, create bool, change func(*whole) error) (*whole, error) {
	if msg := checkID("program", id, maxProgramID); msg != "" {
		return nil, fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	var out *whole
	err := st.txn(ctx, func(tx *redis.Tx) error {
		w, err := st.readWhole(ctx, tx, id)
		if err != nil {
			return err
		}
		if w.prog == nil && !create {
			return fmt.Errorf("program %s: %w", id, ErrNotFound)
		}
		before := map[string]string{}
		for k, e := range w.enrollments {
			before["e"+k] = mustJSON(e)
		}
		for k, b := range w.bookings {
			before["b"+k] = mustJSON(b)
		}
		if err := change(w); err != nil {
			return err
		}
		if err := st.validate(w); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, programKey(id), mustJSON(w.prog), 0)
			pipe.SAdd(ctx, programsKey, id)
			for k, e := range w.enrollments {
				if j := mustJSON(e); before["e"+k] != j {
					pipe.HSet(ctx, enrollmentsKey(id), k, j)
				}
				delete(before, "e"+k)
			}
			for k, b := range w.bookings {
				if j := mustJSON(b); before["b"+k] != j {
					pipe.HSet(ctx, bookingsKey(id), k, j)
					pipe.SAdd(ctx, personBookingsKey(id, b.Client), k)
					pipe.SAdd(ctx, personBookingsKey(id, b.Therapist), k)
				}
				delete(before, "b"+k)
			}
			if len(before) > 0 {
				return fmt.Errorf("program %s: enrollments and bookings are not deleted here", id)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store program %s: %w", id, err)
		}
		out = w
		return nil
	}, programKey(id), enrollmentsKey(id), bookingsKey(id))
	return out, err
}

// DeleteProgram removes program id with its enrollments, bookings and
// calendar feeds.
func (st *Store) DeleteProgram(ctx context.Context, id string) error {
	if checkID("program", id, maxProgramID) != "" {
		return fmt.Errorf("program %q: %w", id, ErrNotFound)
	}
	bk, err := hashJSON[Booking](ctx, st.rdb, bookingsKey(id))
	if err != nil {
		return err
	}
	subs, err := st.rdb.SMembers(ctx, feedsKey(id)).Result()
	if err != nil {
		return fmt.Errorf("delete program %s: %w", id, err)
	}
	for _, sub := range subs {
		if err := st.RevokeFeed(ctx, id, sub); err != nil {
			return err
		}
	}
	keys := []string{programKey(id), enrollmentsKey(id), bookingsKey(id), feedsKey(id)}
	for _, b := range bk {
		keys = append(keys, personBookingsKey(id, b.Client), personBookingsKey(id, b.Therapist))
	}
	_, err = st.rdb.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
		pipe.Del(ctx, keys...)
		pipe.SRem(ctx, programsKey, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete program %s: %w", id, err)
	}
	return nil
}

// PutTrack adds track t to program, or replaces the track with its id
// (sessions included).
func (st *Store) PutTrack(ctx context.Context, program string, t Track) error {
	_, err := st.UpdateProgram(ctx, program, func(p *Program) error {
		if old := p.track(t.ID); old != nil {
			*old = t
		} else {
			p.Tracks = append(p.Tracks, t)
		}
		return nil
	})
	return err
}

// DeleteTrack removes a track and its sessions; refused while an
// enrollment names it.
func (st *Store) DeleteTrack(ctx context.Context, program, track string) error {
	_, err := st.UpdateProgram(ctx, program, func(p *Program) error {
		i := slices.IndexFunc(p.Tracks, func(t Track) bool { return t.ID == track })
		if i < 0 {
			return fmt.Errorf("track %q: %w", track, ErrNotFound)
		}
		for _, rs := range p.Tracks[i].Sessions {
			p.Cancellations = slices.DeleteFunc(p.Cancellations, func(c Cancellation) bool { return c.Session == rs.ID })
		}
		p.Tracks = slices.Delete(p.Tracks, i, i+1)
		return nil
	})
	return err
}

// PutSession adds recurring session rs to track ("" for the shared
// sessions), or replaces the session with its id wherever it is (moving it
// between tracks).
func (st *Store) PutSession(ctx context.Context, program, track string, rs RecurringSession) error {
	_, err := st.UpdateProgram(ctx, program, func(p *Program) error {
		list := &p.Shared
		if track != "" {
			t := p.track(track)
			if t == nil {
				return fmt.Errorf("track %q: %w", track, ErrNotFound)
			}
			list = &t.Sessions
		}
		removeSession(p, rs.ID)
		*list = append(*list, rs)
		return nil
	})
	return err
}

func removeSession(p *Program, id string) bool {
	found := false
	drop := func(rs RecurringSession) bool {
		if rs.ID == id {
			found = true
			return true
		}
		return false
	}
	for i := range p.Tracks {
		p.Tracks[i].Sessions = slices.DeleteFunc(p.Tracks[i].Sessions, drop)
	}
	p.Shared = slices.DeleteFunc(p.Shared, drop)
	return found
}

// DeleteSession removes a recurring session (and its cancellations).
func (st *Store) DeleteSession(ctx context.Context, program, session string) error {
	_, err := st.UpdateProgram(ctx, program, func(p *Program) error {
		if !removeSession(p, session) {
			return fmt.Errorf("session %q: %w", session, ErrNotFound)
		}
		p.Cancellations = slices.DeleteFunc(p.Cancellations, func(c Cancellation) bool { return c.Session == session })
		return nil
	})
	return err
}

// AddHoliday makes date d a day on which no recurring session meets.
func (st *Store) AddHoliday(ctx context.Context, program string, d Date) error {
	_, err := st.UpdateProgram(ctx, program, func(p *Program) error {
		if !slices.Contains(p.Holidays, d) {
			p.Holidays = append(p.Holidays, d)
			slices.SortFunc(p.Holidays, Date.Compare)
		}
		return nil
	})
	return err
}

// RemoveHoliday makes date d an ordinary day again.
func (st *Store) RemoveHoliday(ctx context.Context, program string, d Date) error {
	_, err := st.UpdateProgram(ctx, program, func(p *Program) error {
		i := slices.Index(p.Holidays, d)
		if i < 0 {
			return fmt.Errorf("holiday %s: %w", d, ErrNotFound)
		}
		p.Holidays = slices.Delete(p.Holidays, i, i+1)
		return nil
	})
	return err
}

// Cancel skips the occurrence of session on date d (reason is for staff).
func (st *Store) Cancel(ctx context.Context, program, session string, d Date, reason string) error {
	_, err := st.UpdateProgram(ctx, program, func(p *Program) error {
		if p.isCancelled(session, d) {
			return nil
		}
		p.Cancellations = append(p.Cancellations, Cancellation{Date: d, Session: session, Reason: reason})
		return nil
	})
	return err
}

// Uncancel restores a cancelled occurrence.
func (st *Store) Uncancel(ctx context.Context, program, session string, d Date) error {
	_, err := st.UpdateProgram(ctx, program, func(p *Program) error {
		n := len(p.Cancellations)
		p.Cancellations = slices.DeleteFunc(p.Cancellations, func(c Cancellation) bool { return c.Session == session && c.Date == d })
		if len(p.Cancellations) == n {
			return fmt.Errorf("cancellation of %s on %s: %w", session, d, ErrNotFound)
		}
		return nil
	})
	return err
}
