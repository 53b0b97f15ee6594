package schedule

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"iop/rooms"
)

// UpcomingHorizon is how far ahead Upcoming and the next session of a
// refusal look.
const UpcomingHorizon = 35 * 24 * time.Hour

// Occurrence is one concrete meeting of a session: a recurring session on
// one date, or a booking. Its ID is the room id.
type Occurrence struct {
	// ID is the room id: "<program>-<session>-<yyyymmdd>" (local date) for
	// a recurring session, the booking's id for a booking.
	ID      string `json:"id"`
	Program string `json:"program"`
	// Session is the recurring session's id, or the booking's id.
	Session string     `json:"session"`
	Title   string     `json:"title"`
	Kind    rooms.Kind `json:"kind"`
	// Track is the track it belongs to; "" for shared sessions and
	// bookings.
	Track  string `json:"track,omitempty"`
	Cohort string `json:"cohort,omitempty"`
	// Cap is how many clients it seats (the kind's cap when the session
	// sets none).
	Cap int `json:"cap"`
	// Date is the local date it meets on.
	Date Date `json:"date"`
	// Start and End are UTC instants; the local start time is the same on
	// either side of a DST change.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Therapists run it: the assigned ones, or the booking's therapist.
	Therapists []string `json:"therapists,omitempty"`
	// AutoAdmit: its clients come in on arrival while a therapist is there.
	AutoAdmit bool `json:"auto_admit,omitempty"`
	// Client is the client a booking is for.
	Client string `json:"client,omitempty"`
	// Booked marks a booking (individual or family session).
	Booked bool `json:"booked,omitempty"`
	// Cancelled marks an occurrence skipped for a holiday or a
	// cancellation; only Find and the calendar feed return them.
	Cancelled bool `json:"cancelled,omitempty"`
}

// Length returns how long the occurrence lasts.
func (o *Occurrence) Length() time.Duration { return o.End.Sub(o.Start) }

// OccurrenceID returns the room id of the occurrence of session on local
// date d in program.
func OccurrenceID(program, session string, d Date) string {
	return program + "-" + session + "-" + compact(d)
}

// Schedule is one program's timetable together with enrollments and
// bookings: everything needed to list occurrences, check joins and write
// calendars, without Redis. Store.Load builds one; so can tests and tools.
// A Schedule is not changed by its methods and may be shared.
type Schedule struct {
	Program Program
	// Enrollments by sub.
	Enrollments map[string]*Enrollment
	Bookings    []Booking
	// Policies give the kinds' caps (nil: rooms.DefaultPolicies).
	Policies rooms.Policies

	loc *time.Location
}

// New returns the schedule of program p with the enrollments and bookings
// given (which may be only one person's). It loads the time zone but does
// not validate p: Store validates on every write, and Program.Validate is
// there for other sources.
func New(p Program, enrollments []Enrollment, bookings []Booking, pol rooms.Policies) (*Schedule, error) {
	loc, err := p.Location()
	if err != nil {
		return nil, err
	}
	if pol == nil {
		pol = rooms.DefaultPolicies()
	}
	s := &Schedule{Program: p, Enrollments: make(map[string]*Enrollment, len(enrollments)), Bookings: bookings, Policies: pol, loc: loc}
	for i := range enrollments {
		e := enrollments[i].WithDefaults()
		s.Enrollments[e.Sub] = &e
	}
	return s, nil
}

// Location returns the program's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// Enrollment returns sub's enrollment, or nil.
func (s *Schedule) Enrollment(sub string) *Enrollment { return s.Enrollments[sub] }

// Occurrences returns every occurrence that starts in [from, to): the
// recurring sessions of every track and the shared ones, except on holidays
// and cancelled dates, and the bookings; soonest first.
func (s *Schedule) Occurrences(from, to time.Time) []Occurrence {
	return s.occurrences(from, to, false)
}

func (s *Schedule) occurrences(from, to time.Time, withCancelled bool) []Occurrence {
	var out []Occurrence
	if !from.Before(to) {
		return out
	}
	p := &s.Program
	last := DateOf(to, s.loc).AddDays(1)
	for d := DateOf(from, s.loc).AddDays(-1); !d.After(last); d = d.AddDays(1) {
		holiday := p.isHoliday(d)
		add := func(rs *RecurringSession, track string) {
			if !rs.meetsOn(d.Weekday()) {
				return
			}
			o := s.recurring(rs, track, d)
			if o.Start.Before(from) || !o.Start.Before(to) {
				return
			}
			o.Cancelled = holiday || p.isCancelled(rs.ID, d)
			if o.Cancelled && !withCancelled {
				return
			}
			out = append(out, o)
		}
		for i := range p.Tracks {
			for j := range p.Tracks[i].Sessions {
				add(&p.Tracks[i].Sessions[j], p.Tracks[i].ID)
			}
		}
		for j := range p.Shared {
			add(&p.Shared[j], "")
		}
	}
	for i := range s.Bookings {
		if b := &s.Bookings[i]; !b.Start.Before(from) && b.Start.Before(to) {
			out = append(out, s.booked(b))
		}
	}
	sortOccurrences(out)
	return out
}

func sortOccurrences(out []Occurrence) {
	slices.SortFunc(out, func(a, b Occurrence) int {
		return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.ID, b.ID))
	})
}

// recurring returns the occurrence of rs on local date d.
func (s *Schedule) recurring(rs *RecurringSession, track string, d Date) Occurrence {
	start := d.At(rs.Start, s.loc)
	capacity := rs.Cap
	if capacity == 0 {
		capacity = s.Policies.For(rs.Kind).MaxClients
	}
	return Occurrence{
		ID:         OccurrenceID(s.Program.ID, rs.ID, d),
		Program:    s.Program.ID,
		Session:    rs.ID,
		Title:      rs.Title,
		Kind:       rs.Kind,
		Track:      track,
		Cohort:     rs.Cohort,
		Cap:        capacity,
		Date:       d,
		Start:      start.UTC(),
		End:        start.Add(rs.Length.D()).UTC(),
		Therapists: rs.Therapists,
		AutoAdmit:  rs.AutoAdmit || s.trackAutoAdmits(track),
	}
}

// trackAutoAdmits reports whether the track with id admits on arrival.
func (s *Schedule) trackAutoAdmits(id string) bool {
	i := slices.IndexFunc(s.Program.Tracks, func(t Track) bool { return t.ID == id })
	return i >= 0 && s.Program.Tracks[i].AutoAdmit
}

// booked returns the occurrence of booking b.
func (s *Schedule) booked(b *Booking) Occurrence {
	return Occurrence{
		ID:         b.ID,
		Program:    s.Program.ID,
		Session:    b.ID,
		Title:      b.title(),
		Kind:       b.Kind,
		Cap:        s.Policies.For(b.Kind).MaxClients,
		Date:       DateOf(b.Start, s.loc),
		Start:      b.Start.UTC(),
		End:        b.Start.Add(b.Length.D()).UTC(),
		Therapists: []string{b.Therapist},
		Client:     b.Client,
		Booked:     true,
	}
}

func (b *Booking) title() string {
	if b.Title != "" {
		return b.Title
	}
	return neutralSummary(b.Kind)
}

// Find returns the occurrence whose room id is room. A room id the schedule
// does not know is ErrNotScheduled (an ad-hoc room); an occurrence on a
// holiday or cancelled is returned with Cancelled set and an error that
// wraps ErrCancelled.
func (s *Schedule) Find(room string) (Occurrence, error) {
	for i := range s.Bookings {
		if s.Bookings[i].ID == room {
			return s.booked(&s.Bookings[i]), nil
		}
	}
	p := &s.Program
	rest, ok := strings.CutPrefix(room, p.ID+"-")
	if !ok || len(rest) < 10 || rest[len(rest)-9] != '-' {
		return Occurrence{}, fmt.Errorf("room %q: %w", room, ErrNotScheduled)
	}
	id, compact := rest[:len(rest)-9], rest[len(rest)-8:]
	t, err := time.Parse("20060102", compact)
	rs, track := p.session(id)
	if err != nil || rs == nil {
		return Occurrence{}, fmt.Errorf("room %q: %w", room, ErrNotScheduled)
	}
	d := DateOf(t, time.UTC)
	if !rs.meetsOn(d.Weekday()) {
		return Occurrence{}, fmt.Errorf("room %q: %s does not meet on a %s: %w", room, id, d.Weekday(), ErrNotScheduled)
	}
	o := s.recurring(rs, track, d)
	if p.isHoliday(d) || p.isCancelled(id, d) {
		o.Cancelled = true
		return o, fmt.Errorf("room %q: %w", room, ErrCancelled)
	}
	return o, nil
}

// Sessions returns sub's occurrences that start in [from, to), soonest
// first: as a client, the sessions of their track on each date (honouring
// track changes) and the shared ones, within their enrollment's dates and
// cohorts, and their bookings while enrolled; as a therapist, the sessions
// they are assigned to and the bookings they run.
func (s *Schedule) Sessions(sub string, from, to time.Time) []Occurrence {
	return s.sessions(sub, from, to, false)
}

func (s *Schedule) sessions(sub string, from, to time.Time, withCancelled bool) []Occurrence {
	var out []Occurrence
	for _, o := range s.occurrences(from, to, withCancelled) {
		if s.attends(sub, &o) || slices.Contains(o.Therapists, sub) {
			out = append(out, o)
		}
	}
	return out
}

// attends reports whether o is one of client sub's own sessions.
func (s *Schedule) attends(sub string, o *Occurrence) bool {
	e := s.Enrollments[sub]
	if !e.ActiveOn(o.Date) {
		return false
	}
	if o.Booked {
		return o.Client == sub
	}
	if o.Cohort != "" && !e.InCohort(o.Cohort) {
		return false
	}
	return o.Track == "" || o.Track == e.TrackOn(o.Date)
}

// Remaining returns client sub's sessions not yet over at from that start
// before weekEnd (pass the end of the ISO week in the program's zone):
// what they can still attend this week, for telling on_track from at_risk.
// A session under way at from is included whole.
func (s *Schedule) Remaining(sub string, from, weekEnd time.Time) []Occurrence {
	var out []Occurrence
	for _, o := range s.occurrences(from.Add(-24*time.Hour), weekEnd, false) {
		if o.End.After(from) && s.attends(sub, &o) {
			out = append(out, o)
		}
	}
	return out
}

// Window returns when the occurrence's room takes joins from a person of
// role: from JoinBefore before the start (StaffJoinBefore for therapists
// and staff) until JoinGrace after the end.
func (s *Schedule) Window(o *Occurrence, role rooms.Role) (opens, closes time.Time) {
	before := s.Program.joinBefore()
	if role.Staff() {
		before = s.Program.staffJoinBefore()
	}
	return o.Start.Add(-before), o.End.Add(s.Program.joinGrace())
}

// Slot is an occurrence as the person sees it on their join page: a row of
// GET /v1/me/sessions and the next of a refused join. Times are UTC, with
// the _local ones in the program's zone (RFC 3339 with the offset).
type Slot struct {
	ID         string     `json:"id"`
	Title      string     `json:"title"`
	Kind       rooms.Kind `json:"kind"`
	Start      time.Time  `json:"start"`
	End        time.Time  `json:"end"`
	StartLocal time.Time  `json:"start_local"`
	EndLocal   time.Time  `json:"end_local"`
	// JoinOpens and JoinCloses bound when this person may join.
	JoinOpens  time.Time `json:"join_opens"`
	JoinCloses time.Time `json:"join_closes"`
	TimeZone   string    `json:"time_zone"`
}

// Slot returns o as a person of role sees it.
func (s *Schedule) Slot(o *Occurrence, role rooms.Role) Slot {
	opens, closes := s.Window(o, role)
	return Slot{
		ID: o.ID, Title: o.Title, Kind: o.Kind,
		Start: o.Start.UTC(), End: o.End.UTC(),
		StartLocal: o.Start.In(s.loc), EndLocal: o.End.In(s.loc),
		JoinOpens: opens.UTC(), JoinCloses: closes.UTC(),
		TimeZone: s.Program.TimeZone,
	}
}

// Upcoming returns at most n of sub's sessions whose join window (for
// role) has not closed at now, soonest first, looking UpcomingHorizon
// ahead: "my next sessions".
func (s *Schedule) Upcoming(sub string, role rooms.Role, now time.Time, n int) []Slot {
	var out []Slot
	for _, o := range s.Sessions(sub, now.Add(-24*time.Hour), now.Add(UpcomingHorizon)) {
		if len(out) >= n {
			break
		}
		if _, closes := s.Window(&o, role); closes.After(now) {
			out = append(out, s.Slot(&o, role))
		}
	}
	return out
}

// Next returns sub's next session still joinable at now that has not
// ended (a refusal never offers a session that is over, even within its
// join grace), or nil.
func (s *Schedule) Next(sub string, role rooms.Role, now time.Time) *Slot {
	for _, sl := range s.Upcoming(sub, role, now, 3) {
		if sl.End.After(now) {
			return &sl
		}
	}
	return nil
}
