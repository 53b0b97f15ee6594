package schedule

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"iop/rooms"
	"iop/rooms/civil"
)

// Defaults of the schedule (docs/api.md, "Schedule and enrollment"); every
// one is configuration.
const (
	// DefaultJoinBefore is how long before its start a session's room
	// opens to clients and family.
	DefaultJoinBefore = 10 * time.Minute
	// DefaultJoinGrace is how long after its end a session still takes
	// joins (a client who reconnects late, a therapist running over).
	DefaultJoinGrace = 15 * time.Minute
	// DefaultStaffJoinBefore is how long before its start therapists and
	// staff may open a session's room to prepare.
	DefaultStaffJoinBefore = 30 * time.Minute
	// DefaultPlannedDays is the planned length of an enrollment.
	DefaultPlannedDays = 90
	// DefaultTargetHours is the weekly hours target of an adult in IOP
	// (ASAM level 2.1: 9 to 19 hours).
	DefaultTargetHours = 9
	// DefaultTargetDays is the weekly days target (3 to 5).
	DefaultTargetDays = 3
)

// Limits of the values a schedule may hold.
const (
	MinTargetHours = 6  // adolescents
	MaxTargetHours = 19 // 20 and more is partial hospitalization
	MinTargetDays  = 3
	MaxTargetDays  = 5
	// MaxBookingLength is the longest individual or family session.
	MaxBookingLength = 4 * time.Hour
	// MaxJoinWindow bounds JoinBefore, JoinGrace and StaffJoinBefore.
	MaxJoinWindow = 2 * time.Hour
)

// The timetable is written in the domain's one civil calendar (package
// civil), shared with attendance: these names are the same types.
type (
	// Date is a calendar date in a program's time zone, written 2006-01-02.
	Date = civil.Date
	// Clock is a local time of day in minutes after midnight, written 15:04.
	Clock = civil.Clock
)

// DateOf returns the date of t in loc (civil.DateOf).
func DateOf(t time.Time, loc *time.Location) Date { return civil.DateOf(t, loc) }

// ParseDate reads a date written as 2006-01-02 (civil.ParseDate).
func ParseDate(s string) (Date, error) { return civil.ParseDate(s) }

// ParseClock reads a time of day written as 15:04 (civil.ParseClock).
func ParseClock(s string) (Clock, error) { return civil.ParseClock(s) }

// compact writes the date as 20060102, as in occurrence ids.
func compact(d Date) string { return fmt.Sprintf("%04d%02d%02d", d.Year, d.Month, d.Day) }

// Duration is a length of time written as Go writes durations, without
// zero units ("1h", "45m", "1h30m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes the duration as "1h30m", "45m", "90s" or "0s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalText writes the duration as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration such as "1h", "45m" or "1h30m".
func (d *Duration) UnmarshalText(b []byte) error {
	x, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(x)
	return nil
}

// Weekday is a day of the week, written mon, tue, ... sun.
type Weekday time.Weekday

var weekdayNames = [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseWeekday reads a day of the week: its three-letter abbreviation or
// full English name, in any case ("mon", "Monday").
func ParseWeekday(s string) (Weekday, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for i, n := range weekdayNames {
		if l == n || l == strings.ToLower(time.Weekday(i).String()) {
			return Weekday(i), nil
		}
	}
	return 0, fmt.Errorf("weekday %q: want mon, tue, wed, thu, fri, sat or sun", s)
}

// String writes the weekday as mon, tue, ...
func (w Weekday) String() string {
	if w < 0 || int(w) >= len(weekdayNames) {
		return "weekday(" + strconv.Itoa(int(w)) + ")"
	}
	return weekdayNames[w]
}

// MarshalText writes the weekday as mon, tue, ...
func (w Weekday) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText reads a weekday as ParseWeekday does.
func (w *Weekday) UnmarshalText(b []byte) error {
	x, err := ParseWeekday(string(b))
	if err != nil {
		return err
	}
	*w = x
	return nil
}

// Program is one intensive outpatient program: its time zone, its tracks
// with their recurring sessions, and the days it does not meet.
type Program struct {
	// ID names the program in tokens (the program claim), room ids and
	// Redis keys: lower-case letters, digits, '-' and '_'.
	ID string `json:"id" yaml:"id"`
	// Name is shown to staff only: never in calendars, which others see.
	Name string `json:"name" yaml:"name"`
	// TimeZone is the IANA zone the timetable is written in
	// ("America/New_York"); occurrences are computed in it.
	TimeZone string `json:"time_zone" yaml:"time_zone"`
	// JoinBefore is how long before the start clients and family may join
	// (0: DefaultJoinBefore).
	JoinBefore Duration `json:"join_before,omitzero" yaml:"join_before,omitempty"`
	// JoinGrace is how long after the end joins are still taken (0:
	// DefaultJoinGrace).
	JoinGrace Duration `json:"join_grace,omitzero" yaml:"join_grace,omitempty"`
	// StaffJoinBefore is how long before the start therapists and staff
	// may join (0: DefaultStaffJoinBefore; never less than JoinBefore).
	StaffJoinBefore Duration `json:"staff_join_before,omitzero" yaml:"staff_join_before,omitempty"`
	// Holidays are local dates on which no recurring session meets.
	Holidays []Date `json:"holidays,omitempty" yaml:"holidays,omitempty"`
	// Cancellations skip single occurrences of recurring sessions.
	Cancellations []Cancellation `json:"cancellations,omitempty" yaml:"cancellations,omitempty"`
	// Tracks are the day and evening tracks; a client belongs to one.
	Tracks []Track `json:"tracks" yaml:"tracks"`
	// Shared sessions are open to every enrolled client whatever their
	// track (within a cohort, if they name one): e.g. a Saturday peer
	// support group.
	Shared []RecurringSession `json:"shared,omitempty" yaml:"shared,omitempty"`
	// Telehealth is what the program's clients confirm before a session:
	// a check-in at every session, and the program's consent.
	Telehealth Telehealth `json:"telehealth,omitzero" yaml:"telehealth,omitempty"`
	// Attendance is how attendance is judged (nil: the defaults).
	Attendance *AttendancePolicy `json:"attendance,omitempty" yaml:"attendance,omitempty"`
	// Billing are the codes of the billing export (nil: the defaults).
	Billing *BillingCodes `json:"billing,omitempty" yaml:"billing,omitempty"`
}

// Telehealth is a program's telehealth requirements for its clients
// (docs/protocol.md, join; docs/api.md, consent).
type Telehealth struct {
	// CheckIn: every client confirms their location, whether it is
	// private, and a callback phone before each session (rooms.CheckIn);
	// a join without it is refused with checkin_required.
	CheckIn bool `json:"checkin,omitempty" yaml:"checkin,omitempty"`
	// Consent, when set, is the telehealth consent each client acknowledges
	// once per enrollment and again when its version changes; a join
	// without it is refused with consent_required.
	Consent *Consent `json:"consent,omitempty" yaml:"consent,omitempty"`
}

// Consent is one version of a program's telehealth consent text.
type Consent struct {
	// Version names this text ("2026-01"): 1 to 32 letters, digits, '.',
	// '-' or '_'. A new version asks every client to acknowledge again.
	Version string `json:"version" yaml:"version"`
	// Text is what the client reads, plain text (paragraphs separated by
	// blank lines), at most MaxConsentText bytes.
	Text string `json:"text" yaml:"text"`
}

// MaxConsentText bounds a consent text (bytes).
const MaxConsentText = 20000

// Track is a timetable a client follows, e.g. day (Mon/Wed/Fri
// 09:00-12:00) or evening (Mon/Tue/Thu 18:00-21:00).
type Track struct {
	// ID is "day", "evening", ...: letters, digits, '-' and '_'.
	ID string `json:"id" yaml:"id"`
	// Name is shown to staff and to the track's clients.
	Name string `json:"name" yaml:"name"`
	// Sessions meet every week on their weekdays.
	Sessions []RecurringSession `json:"sessions" yaml:"sessions"`
	// AutoAdmit lets the track's clients into each of its sessions on
	// arrival while a therapist is there, without one-by-one admission.
	AutoAdmit bool `json:"auto_admit,omitempty" yaml:"auto_admit,omitempty"`
}

// RecurringSession is a session that meets every week on the same weekdays
// at the same local time.
type RecurringSession struct {
	// ID is unique in the program; occurrence ids are built from it.
	ID string `json:"id" yaml:"id"`
	// Title is shown to participants ("Relapse prevention"), never in
	// calendars.
	Title string `json:"title" yaml:"title"`
	// Kind is group, complementary or support (individual and family
	// sessions are Bookings).
	Kind rooms.Kind `json:"kind" yaml:"kind"`
	// Weekdays it meets on.
	Weekdays []Weekday `json:"weekdays" yaml:"weekdays"`
	// Start is the local time it starts at.
	Start Clock `json:"start" yaml:"start"`
	// Length is how long it lasts; it ends on the day it starts.
	Length Duration `json:"length" yaml:"length"`
	// Cap is how many clients it seats (0: the kind's cap); it may not
	// exceed the kind's cap.
	Cap int `json:"cap,omitempty" yaml:"cap,omitempty"`
	// Cohort, when set, restricts it to clients enrolled in that cohort
	// ("women", "veterans").
	Cohort string `json:"cohort,omitempty" yaml:"cohort,omitempty"`
	// Therapists are the subs of the therapists who run it.
	Therapists []string `json:"therapists,omitempty" yaml:"therapists,omitempty"`
	// AutoAdmit lets its clients in on arrival while a therapist is there
	// (its track's AutoAdmit does the same for every session of the track).
	AutoAdmit bool `json:"auto_admit,omitempty" yaml:"auto_admit,omitempty"`
}

// meetsOn reports whether s meets on weekday w.
func (s *RecurringSession) meetsOn(w time.Weekday) bool {
	return slices.Contains(s.Weekdays, Weekday(w))
}

// end returns the local time s ends at, in minutes after midnight.
func (s *RecurringSession) end() int { return int(s.Start) + int(s.Length.D()/time.Minute) }

// Cancellation skips one occurrence of a recurring session.
type Cancellation struct {
	Date    Date   `json:"date" yaml:"date"`
	Session string `json:"session" yaml:"session"`
	// Reason is for staff ("therapist ill"); clients see only that it
	// is cancelled.
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
}

// Booking is an individual or family session a therapist booked for one
// client.
type Booking struct {
	// ID is the room id, assigned by Store.Book ("<program>-b<hex>").
	ID string `json:"id" yaml:"id"`
	// Kind is individual or family.
	Kind rooms.Kind `json:"kind" yaml:"kind"`
	// Start is the instant it starts.
	Start time.Time `json:"start" yaml:"start"`
	// Length is how long it lasts (at most MaxBookingLength).
	Length Duration `json:"length" yaml:"length"`
	// Client is the sub of the client it is booked for.
	Client string `json:"client" yaml:"client"`
	// Therapist is the sub of the therapist who runs it.
	Therapist string `json:"therapist" yaml:"therapist"`
	// Title is shown to the two of them (default "Individual session" or
	// "Family session"), never in calendars.
	Title string `json:"title,omitempty" yaml:"title,omitempty"`
}

// EndReason is why an enrollment ended.
type EndReason string

// The ways an enrollment ends.
const (
	EndDischarge  EndReason = "discharge"
	EndCompletion EndReason = "completion"
	EndStepDown   EndReason = "step_down" // to a lower level of care
)

// Valid reports whether r is one of the known reasons.
func (r EndReason) Valid() bool {
	return r == EndDischarge || r == EndCompletion || r == EndStepDown
}

// TrackChange moves a client to another track from a date on.
type TrackChange struct {
	Track     string `json:"track" yaml:"track"`
	Effective Date   `json:"effective" yaml:"effective"`
	// Reason is for staff ("started a day job").
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
}

// Enrollment is a client's place in a program: their track (and its
// history), their dates and weekly targets.
type Enrollment struct {
	Sub     string `json:"sub" yaml:"sub"`
	Program string `json:"program" yaml:"program,omitempty"`
	// Track is the track the client started in; Changes move them later.
	Track string `json:"track" yaml:"track"`
	// Start is the first day of the enrollment.
	Start Date `json:"start" yaml:"start"`
	// PlannedDays is the planned length, reviewed at its end (0:
	// DefaultPlannedDays).
	PlannedDays int `json:"planned_days,omitempty" yaml:"planned_days,omitempty"`
	// TargetHours per ISO week (0: DefaultTargetHours; 6 to 19).
	TargetHours float64 `json:"target_hours,omitempty" yaml:"target_hours,omitempty"`
	// TargetDays per ISO week (0: DefaultTargetDays; 3 to 5).
	TargetDays int `json:"target_days,omitempty" yaml:"target_days,omitempty"`
	// Cohorts the client belongs to, for cohort-restricted groups.
	Cohorts []string `json:"cohorts,omitempty" yaml:"cohorts,omitempty"`
	// Changes are the track changes, oldest first.
	Changes []TrackChange `json:"changes,omitempty" yaml:"changes,omitempty"`
	// End is the last day of the enrollment (zero while it runs).
	End       Date      `json:"end,omitzero" yaml:"end,omitempty"`
	EndReason EndReason `json:"end_reason,omitempty" yaml:"end_reason,omitempty"`
	// PlaceOfService is the client's own place of service for billing
	// ("02" or "10"; "": the program's).
	PlaceOfService string `json:"place_of_service,omitempty" yaml:"place_of_service,omitempty"`
}

// ActiveOn reports whether the client is enrolled on date d: from Start
// to End, both included.
func (e *Enrollment) ActiveOn(d Date) bool {
	if e == nil || d.Before(e.Start) {
		return false
	}
	return e.End.IsZero() || !d.After(e.End)
}

// TrackOn returns the client's track on date d, honouring track changes.
func (e *Enrollment) TrackOn(d Date) string {
	t := e.Track
	for _, c := range e.Changes {
		if !d.Before(c.Effective) {
			t = c.Track
		}
	}
	return t
}

// InCohort reports whether the client belongs to cohort.
func (e *Enrollment) InCohort(cohort string) bool { return slices.Contains(e.Cohorts, cohort) }

// PlannedEnd returns the last day of the planned length, for the review.
func (e *Enrollment) PlannedEnd() Date {
	return e.Start.AddDays(e.plannedDays() - 1)
}

func (e *Enrollment) plannedDays() int {
	if e.PlannedDays == 0 {
		return DefaultPlannedDays
	}
	return e.PlannedDays
}

// WithDefaults returns e with unset targets and planned length filled in.
func (e Enrollment) WithDefaults() Enrollment {
	e.PlannedDays = e.plannedDays()
	if e.TargetHours == 0 {
		e.TargetHours = DefaultTargetHours
	}
	if e.TargetDays == 0 {
		e.TargetDays = DefaultTargetDays
	}
	return e
}

// joinBefore, joinGrace and staffJoinBefore apply the defaults.
func (p *Program) joinBefore() time.Duration { return orDefault(p.JoinBefore, DefaultJoinBefore) }
func (p *Program) joinGrace() time.Duration  { return orDefault(p.JoinGrace, DefaultJoinGrace) }
func (p *Program) staffJoinBefore() time.Duration {
	return max(orDefault(p.StaffJoinBefore, DefaultStaffJoinBefore), p.joinBefore())
}

func orDefault(d Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d.D()
}

// track returns the track with id, or nil.
func (p *Program) track(id string) *Track {
	for i := range p.Tracks {
		if p.Tracks[i].ID == id {
			return &p.Tracks[i]
		}
	}
	return nil
}

// session returns the recurring session with id and its track id ("" for
// a shared session), or nil.
func (p *Program) session(id string) (*RecurringSession, string) {
	for i := range p.Tracks {
		for j := range p.Tracks[i].Sessions {
			if p.Tracks[i].Sessions[j].ID == id {
				return &p.Tracks[i].Sessions[j], p.Tracks[i].ID
			}
		}
	}
	for j := range p.Shared {
		if p.Shared[j].ID == id {
			return &p.Shared[j], ""
		}
	}
	return nil, ""
}

// isHoliday reports whether the program does not meet on d.
func (p *Program) isHoliday(d Date) bool { return slices.Contains(p.Holidays, d) }

// isCancelled reports whether the occurrence of session on d is cancelled.
func (p *Program) isCancelled(session string, d Date) bool {
	return slices.ContainsFunc(p.Cancellations, func(c Cancellation) bool {
		return c.Session == session && c.Date == d
	})
}

// Location loads the program's time zone.
func (p *Program) Location() (*time.Location, error) {
	if p.TimeZone == "" || p.TimeZone == "Local" {
		return nil, fmt.Errorf("program %s: time zone: want an IANA zone such as America/New_York: %w", p.ID, ErrInvalid)
	}
	loc, err := civil.LoadZone(p.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", p.ID, errors.Join(ErrInvalid, err))
	}
	return loc, nil
}
