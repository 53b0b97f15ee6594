package schedule

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
)

// Redis keys. A program's keys share the hash tag {program}, so that one
// transaction may touch them all on a cluster too.
//
//	iop:sched:programs                       set of program ids
//	iop:sched:{p}:program                    JSON Program (tracks, sessions, holidays, cancellations)
//	iop:sched:{p}:enrollments                hash sub -> JSON Enrollment
//	iop:sched:{p}:bookings                   hash booking id -> JSON Booking
//	iop:sched:{p}:person:<sub>:bookings      set of the booking ids a person is client or therapist of
//	iop:sched:{p}:feed:<sub>                 the person's calendar feed secret
//	iop:sched:{p}:feeds                      set of subs with a feed secret
//	iop:feed:<sha256(secret)>                JSON {program, sub}: the feed index
const programsKey = "iop:sched:programs"

func programKey(p string) string     { return "iop:sched:{" + p + "}:program" }
func enrollmentsKey(p string) string { return "iop:sched:{" + p + "}:enrollments" }
func bookingsKey(p string) string    { return "iop:sched:{" + p + "}:bookings" }
func personBookingsKey(p, sub string) string {
	return "iop:sched:{" + p + "}:person:" + keyPart(sub) + ":bookings"
}
func feedOfKey(p, sub string) string { return "iop:sched:{" + p + "}:feed:" + keyPart(sub) }
func feedsKey(p string) string       { return "iop:sched:{" + p + "}:feeds" }
func feedKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return "iop:feed:" + hex.EncodeToString(h[:])
}

// keyPart escapes a person id inside a key name (rooms.KeyPart, the one
// escaper every store uses).
var keyPart = rooms.KeyPart

// maxTxRetries bounds optimistic transactions that lose a race.
const maxTxRetries = 20

// Store keeps schedules, enrollments, bookings and calendar feed secrets in
// Redis, shared by every iopd node. Every write is validated and either
// stored whole or not at all.
type Store struct {
	rdb redis.UniversalClient
	// Policies give the kinds' caps that recurring sessions may not exceed
	// (nil: rooms.DefaultPolicies).
	Policies rooms.Policies
	// Now is the clock (nil: time.Now); bookings that have ended are not
	// checked for conflicts again.
	Now func() time.Time
}

// NewStore returns a store on the Redis client rdb (e.g. store.Store.Redis).
func NewStore(rdb redis.UniversalClient) *Store { return &Store{rdb: rdb} }

func (st *Store) now() time.Time {
	if st.Now != nil {
		return st.Now()
	}
	return time.Now()
}

// txn runs fn in an optimistic transaction watching keys, retrying when
// another writer changed them first.
func (st *Store) txn(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	for range maxTxRetries {
		err := st.rdb.Watch(ctx, fn, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return fmt.Errorf("schedule write: gave up after %d conflicting writes", maxTxRetries)
}

func getJSON[T any](ctx context.Context, c redis.Cmdable, key string) (*T, error) {
	b, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("decode %s: %w", key, err)
	}
	return &v, nil
}

func hashJSON[T any](ctx context.Context, c redis.Cmdable, key string) (map[string]T, error) {
	m, err := c.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	out := make(map[string]T, len(m))
	for k, b := range m {
		var v T
		if err := json.Unmarshal([]byte(b), &v); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", key, k, err)
		}
		out[k] = v
	}
	return out, nil
}

func hashFieldsJSON[T any](ctx context.Context, c redis.Cmdable, key string, fields ...string) ([]T, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	vals, err := c.HMGet(ctx, key, fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	var out []T
	for i, x := range vals {
		s, ok := x.(string)
		if !ok {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("decode %s %s: %w", key, fields[i], err)
		}
		out = append(out, v)
	}
	return out, nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("schedule: encode %T: %v", v, err)) // plain data: cannot fail
	}
	return string(b)
}

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

// Seed stores the schedule file f: its program (replacing the stored one),
// its enrollments and its bookings (replacing those with the same sub or
// id). Enrollments and bookings already stored and not in f are kept and
// must stay valid. Nothing is stored if anything is invalid.
func (st *Store) Seed(ctx context.Context, f *File) error {
	if _, err := f.Schedule(st.Policies); err != nil {
		return err
	}
	_, err := st.updateWhole(ctx, f.Program.ID, true, func(w *whole) error {
		p := f.Program
		w.prog = &p
		for _, e := range f.Enrollments {
			e.Program = p.ID
			w.enrollments[e.Sub] = e.WithDefaults()
		}
		for _, b := range f.Bookings {
			w.bookings[b.ID] = b
		}
		return nil
	})
	return err
}

// SeedFile reads the schedule file at path (LoadYAML) and stores it (Seed).
func (st *Store) SeedFile(ctx context.Context, path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("schedule file: %w", err)
	}
	defer fh.Close()
	f, err := LoadYAML(fh)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := st.Seed(ctx, f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}
