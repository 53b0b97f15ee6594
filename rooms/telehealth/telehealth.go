// Package telehealth keeps what a program's clients confirm for telehealth:
// the check-in of every session (where they are, whether it is private, a
// callback phone: rooms.CheckIn) and their acknowledgements of the
// program's versioned consent text (schedule.Telehealth). Both live in
// Redis, keyed by program; they are read by the program's therapists and
// staff only and are never logged.
//
// Keys (the program in braces, one Redis Cluster slot per program):
//
//	iop:th:{program}:checkins:<room>  hash  sub -> CheckInRecord (JSON); expires Retention after its last write
//	iop:th:{program}:consent          hash  sub -> Acknowledgement (JSON): the latest
//	iop:th:{program}:consents         hash  ["sub","version","enrollment start"] -> Acknowledgement (JSON): every one, first time
package telehealth

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms"
	"iop/rooms/schedule"
)

// DefaultRetention is how long a session's check-ins are kept: six years,
// the documentation period of HIPAA (45 CFR 164.316(b)(2)), as the audit
// trail. Attendance itself is kept without end.
const DefaultRetention = 2192 * 24 * time.Hour

// Refusals of a client's join (mapped to checkin_required and
// consent_required) and of an acknowledgement.
var (
	ErrCheckInRequired = errors.New("this program asks you to check in before every session: your location, whether you are in a private place, and a callback phone")
	ErrConsentRequired = errors.New("this program asks you to read and acknowledge its telehealth consent before you join")
	// ErrNoConsent: the program has no consent text to acknowledge.
	ErrNoConsent = errors.New("this program has no telehealth consent to acknowledge")
	// ErrStaleConsent: the acknowledged version is not the program's
	// current one (the text changed while the page was open).
	ErrStaleConsent = errors.New("the telehealth consent has changed; please read the new version")
)

// Store keeps check-ins and consent acknowledgements.
type Store struct {
	rdb      redis.Cmdable
	schedule *schedule.Store
	// Retention is how long a session's check-ins are kept
	// (DefaultRetention when 0).
	Retention time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New returns a store on rdb that reads each program's requirements from
// its schedule.
func New(rdb redis.Cmdable, sch *schedule.Store) *Store {
	return &Store{rdb: rdb, schedule: sch}
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func checkinsKey(ref rooms.Ref) string {
	return "iop:th:{" + rooms.KeyPart(ref.Program) + "}:checkins:" + rooms.KeyPart(ref.ID)
}
func consentKey(program string) string  { return "iop:th:{" + rooms.KeyPart(program) + "}:consent" }
func consentsKey(program string) string { return "iop:th:{" + rooms.KeyPart(program) + "}:consents" }

// Requirements is what a client still owes before joining a session of
// their program.
type Requirements struct {
	// CheckIn: the join must carry a check-in.
	CheckIn bool
	// Consent is the consent text to acknowledge first; nil when the
	// program has none or the client acknowledged its current version in
	// their current enrollment.
	Consent *schedule.Consent
}

// For returns what client sub of program owes. A program without a stored
// schedule asks nothing.
func (s *Store) For(ctx context.Context, program, sub string) (Requirements, error) {
	p, err := s.schedule.Program(ctx, program)
	if errors.Is(err, schedule.ErrNotFound) {
		return Requirements{}, nil
	}
	if err != nil {
		return Requirements{}, err
	}
	req := Requirements{CheckIn: p.Telehealth.CheckIn}
	c := p.Telehealth.Consent
	if c == nil {
		return req, nil
	}
	ack, err := s.Consent(ctx, program, sub)
	if err != nil {
		return Requirements{}, err
	}
	start, err := s.enrollmentStart(ctx, program, sub)
	if err != nil {
		return Requirements{}, err
	}
	if ack == nil || ack.Version != c.Version || ack.EnrollmentStart != start {
		req.Consent = c
	}
	return req, nil
}

// enrollmentStart is the first day of sub's current enrollment, "" when
// they have none: an acknowledgement holds for one enrollment.
func (s *Store) enrollmentStart(ctx context.Context, program, sub string) (string, error) {
	e, err := s.schedule.Enrollment(ctx, program, sub)
	if errors.Is(err, schedule.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return e.Start.String(), nil
}

// Acknowledgement is one client's acknowledgement of one version of the
// program's consent.
type Acknowledgement struct {
	Sub     string    `json:"sub"`
	Version string    `json:"version"`
	At      time.Time `json:"at"`
	// EnrollmentStart is the first day of the enrollment it was given in
	// ("" outside any enrollment).
	EnrollmentStart string `json:"enrollment_start,omitempty"`
}

// Acknowledge records that client sub read version of the program's consent
// now. It is refused with ErrNoConsent when the program has none, and
// with ErrStaleConsent when version is not the current one.
func (s *Store) Acknowledge(ctx context.Context, program, sub, version string) (Acknowledgement, error) {
	p, err := s.schedule.Program(ctx, program)
	if errors.Is(err, schedule.ErrNotFound) {
		return Acknowledgement{}, ErrNoConsent
	}
	if err != nil {
		return Acknowledgement{}, err
	}
	c := p.Telehealth.Consent
	if c == nil {
		return Acknowledgement{}, ErrNoConsent
	}
	if version != c.Version {
		return Acknowledgement{}, ErrStaleConsent
	}
	start, err := s.enrollmentStart(ctx, program, sub)
	if err != nil {
		return Acknowledgement{}, err
	}
	a := Acknowledgement{Sub: sub, Version: version, At: s.now().Truncate(time.Second), EnrollmentStart: start}
	b, err := json.Marshal(a)
	if err != nil {
		return Acknowledgement{}, err
	}
	field, err := json.Marshal([]string{sub, version, start})
	if err != nil {
		return Acknowledgement{}, err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, consentKey(program), sub, b)
		p.HSetNX(ctx, consentsKey(program), string(field), b)
		return nil
	})
	if err != nil {
		return Acknowledgement{}, fmt.Errorf("record consent: %w", err)
	}
	return a, nil
}

// Consent returns sub's latest acknowledgement in program, or nil.
func (s *Store) Consent(ctx context.Context, program, sub string) (*Acknowledgement, error) {
	b, err := s.rdb.HGet(ctx, consentKey(program), sub).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read consent: %w", err)
	}
	var a Acknowledgement
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("decode consent: %w", err)
	}
	return &a, nil
}

// Consents returns every acknowledgement given in program (each person's
// first of each version in each enrollment), by person, then time.
func (s *Store) Consents(ctx context.Context, program string) ([]Acknowledgement, error) {
	m, err := s.rdb.HGetAll(ctx, consentsKey(program)).Result()
	if err != nil {
		return nil, fmt.Errorf("read consents: %w", err)
	}
	out := make([]Acknowledgement, 0, len(m))
	for _, v := range m {
		var a Acknowledgement
		if err := json.Unmarshal([]byte(v), &a); err != nil {
			return nil, fmt.Errorf("decode consent: %w", err)
		}
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b Acknowledgement) int {
		return cmp.Or(strings.Compare(a.Sub, b.Sub), a.At.Compare(b.At), strings.Compare(a.EnrollmentStart, b.EnrollmentStart), strings.Compare(a.Version, b.Version))
	})
	return out, nil
}

// CheckInRecord is a client's check-in for one session (room).
type CheckInRecord struct {
	Sub  string    `json:"sub"`
	Name string    `json:"name"`
	At   time.Time `json:"at"`
	rooms.CheckIn
}

// SaveCheckIn keeps client sub's check-in for the session ref, replacing
// an earlier one of the same session (a rejoin checks in again).
func (s *Store) SaveCheckIn(ctx context.Context, ref rooms.Ref, sub, name string, c rooms.CheckIn) error {
	b, err := json.Marshal(CheckInRecord{Sub: sub, Name: name, At: s.now().Truncate(time.Second), CheckIn: c})
	if err != nil {
		return err
	}
	ttl := s.Retention
	if ttl <= 0 {
		ttl = DefaultRetention
	}
	key := checkinsKey(ref)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, sub, b)
		p.Expire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("record check-in: %w", err)
	}
	return nil
}

// CheckIns returns the check-ins of the session ref, by time.
func (s *Store) CheckIns(ctx context.Context, ref rooms.Ref) ([]CheckInRecord, error) {
	m, err := s.rdb.HGetAll(ctx, checkinsKey(ref)).Result()
	if err != nil {
		return nil, fmt.Errorf("read check-ins: %w", err)
	}
	out := make([]CheckInRecord, 0, len(m))
	for _, v := range m {
		var c CheckInRecord
		if err := json.Unmarshal([]byte(v), &c); err != nil {
			return nil, fmt.Errorf("decode check-in: %w", err)
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b CheckInRecord) int {
		return cmp.Or(a.At.Compare(b.At), strings.Compare(a.Sub, b.Sub))
	})
	return out, nil
}
