package schedule

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
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
