package schedule

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"go.yaml.in/yaml/v3"

	"iop/rooms"
)

// File is a schedule written in YAML: one program with its tracks and
// sessions, and optionally enrollments and bookings. Example is one
// (`iopctl schedule example` prints it).
type File struct {
	Program     Program      `yaml:"program"`
	Enrollments []Enrollment `yaml:"enrollments,omitempty"`
	Bookings    []Booking    `yaml:"bookings,omitempty"`
}

// Example is the example program, program.example.yaml next to this file
// ("Example IOP" in America/New_York, a day and an evening track, demo
// enrollments), built into the binary: dev mode runs it and `iopctl
// schedule example` prints it.
//
//go:embed program.example.yaml
var Example []byte

// LoadYAML reads a schedule file. Unknown fields are refused (a typo would
// otherwise silently drop a setting); the contents are validated with the
// default policies, every enrollment must name a track of the program, and
// bookings must not conflict. Enrollments take the file's program.
func LoadYAML(r io.Reader) (*File, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("schedule file: empty: %w", ErrInvalid)
		}
		return nil, fmt.Errorf("schedule file: %w", errors.Join(ErrInvalid, err))
	}
	if _, err := f.Schedule(nil); err != nil {
		return nil, fmt.Errorf("schedule file: %w", err)
	}
	return &f, nil
}

// Schedule validates the file with the kinds' caps of pol (nil: defaults)
// and returns its schedule. Bookings without an id get one derived from
// their contents, so that seeding the same file twice books nothing twice.
func (f *File) Schedule(pol rooms.Policies) (*Schedule, error) {
	p := &f.Program
	if err := p.Validate(pol); err != nil {
		return nil, err
	}
	bad := enrollmentProblems(p, f.Enrollments)
	ids := map[string]bool{}
	for i := range f.Bookings {
		b := &f.Bookings[i]
		if b.ID == "" {
			b.ID = seededBookingID(p.ID, b)
		}
		if ids[b.ID] {
			bad.add("booking %s appears twice", b.ID)
		}
		ids[b.ID] = true
	}
	if err := bad.err("program " + p.ID); err != nil {
		return nil, err
	}
	s, err := New(*p, f.Enrollments, f.Bookings, pol)
	if err != nil {
		return nil, err
	}
	for i := range s.Bookings {
		if err := s.checkBooking(&s.Bookings[i]); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// seededBookingID derives a booking id from what the booking is, for
// bookings written in a file without one.
func seededBookingID(program string, b *Booking) string {
	h := sha256.Sum256([]byte(b.Client + "\x00" + b.Therapist + "\x00" + string(b.Kind) + "\x00" + b.Start.UTC().Format(time.RFC3339)))
	return program + "-b" + hex.EncodeToString(h[:6])
}
