package schedule

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"iop/rooms"
)

// idPattern is what program, track and session ids look like: they end up
// in room ids, URLs and Redis keys.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// consentVersion is what a telehealth consent's version looks like.
var consentVersion = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)

// Longest ids, so that a room id stays well under signaling's 128 bytes.
const (
	maxProgramID = 32
	maxSessionID = 48
	maxSubLen    = 128
)

func checkID(what, id string, maxLen int) string {
	if !idPattern.MatchString(id) || len(id) > maxLen {
		return fmt.Sprintf("%s id %q: want 1 to %d lower-case letters, digits, '-' or '_'", what, id, maxLen)
	}
	return ""
}

func checkSub(what, sub string) string {
	if sub == "" || len(sub) > maxSubLen || strings.ContainsFunc(sub, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Sprintf("%s %q: want a person id of 1 to %d printable characters", what, sub, maxSubLen)
	}
	return ""
}

// problems collects what is wrong, so that one error lists every fix.
type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }
func (p *problems) addIf(s string) {
	if s != "" {
		*p = append(*p, s)
	}
}

func (p problems) err(subject string) error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w: %s", subject, ErrInvalid, strings.Join(p, "; "))
}

// Validate checks the program against the rules of the domain with the
// kinds' caps of pol (nil: rooms.DefaultPolicies): a known time zone, ids
// that fit room ids, recurring sessions of the group kinds within a day and
// within their kind's cap, no therapist in two sessions at once, no two
// sessions of one track at once (unless they are for different cohorts),
// and cancellations of sessions that exist. The error wraps ErrInvalid and
// lists every problem.
func (p *Program) Validate(pol rooms.Policies) error {
	if pol == nil {
		pol = rooms.DefaultPolicies()
	}
	var bad problems
	bad.addIf(checkID("program", p.ID, maxProgramID))
	if _, err := p.Location(); err != nil {
		bad.add("unknown time zone %q: want an IANA zone such as America/New_York", p.TimeZone)
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"join_before", p.JoinBefore}, {"join_grace", p.JoinGrace}, {"staff_join_before", p.StaffJoinBefore}} {
		if d.v < 0 || d.v.D() > MaxJoinWindow {
			bad.add("%s %s: want 0 (the default) to %s", d.name, d.v, Duration(MaxJoinWindow))
		}
	}
	if c := p.Telehealth.Consent; c != nil {
		if !consentVersion.MatchString(c.Version) {
			bad.add("telehealth consent version %.40q: want 1 to 32 letters, digits, '.', '-' or '_'", c.Version)
		}
		if strings.TrimSpace(c.Text) == "" || len(c.Text) > MaxConsentText || !utf8.ValidString(c.Text) {
			bad.add("telehealth consent text: want 1 to %d bytes of text", MaxConsentText)
		}
	}
	if err := p.Attendance.Policy().Check(); err != nil {
		bad.add("attendance: %v", err)
	}
	if err := p.Billing.Billing().Check(); err != nil {
		bad.add("billing: %v", err)
	}
	for _, h := range p.Holidays {
		if h.IsZero() {
			bad.add("a holiday without a date")
		}
	}

	seen := map[string]string{} // session id -> where
	trackIDs := map[string]bool{}
	for _, t := range p.Tracks {
		bad.addIf(checkID("track", t.ID, maxSessionID))
		if trackIDs[t.ID] {
			bad.add("track %q appears twice", t.ID)
		}
		trackIDs[t.ID] = true
		for i := range t.Sessions {
			p.validateSession(&bad, &t.Sessions[i], "track "+t.ID, seen, pol)
		}
		clientOverlaps(&bad, "track "+t.ID, t.Sessions)
	}
	for i := range p.Shared {
		p.validateSession(&bad, &p.Shared[i], "shared sessions", seen, pol)
	}
	clientOverlaps(&bad, "shared sessions", p.Shared)
	therapistOverlaps(&bad, p.all())

	for _, c := range p.Cancellations {
		if c.Date.IsZero() {
			bad.add("cancellation of %q without a date", c.Session)
		} else if s, _ := p.session(c.Session); s == nil {
			bad.add("cancellation on %s of unknown session %q", c.Date, c.Session)
		} else if !s.meetsOn(c.Date.Weekday()) {
			bad.add("cancellation on %s of %q, which does not meet on a %s", c.Date, c.Session, c.Date.Weekday())
		}
	}
	return bad.err("program " + p.ID)
}

func (p *Program) validateSession(bad *problems, s *RecurringSession, where string, seen map[string]string, pol rooms.Policies) {
	name := fmt.Sprintf("session %q (%s)", s.ID, where)
	bad.addIf(checkID("session", s.ID, maxSessionID))
	if w, ok := seen[s.ID]; ok {
		bad.add("session id %q is used twice (%s and %s)", s.ID, w, where)
	}
	seen[s.ID] = where
	if strings.TrimSpace(s.Title) == "" {
		bad.add("%s: a title is required", name)
	}
	switch s.Kind {
	case rooms.KindGroup, rooms.KindComplementary, rooms.KindSupport:
	case rooms.KindIndividual, rooms.KindFamily:
		bad.add("%s: %s sessions are booked one at a time, not recurring", name, s.Kind)
	default:
		bad.add("%s: unknown kind %q: want group, complementary or support", name, s.Kind)
	}
	if len(s.Weekdays) == 0 {
		bad.add("%s: no weekdays", name)
	}
	for i, w := range s.Weekdays {
		if w < 0 || w > 6 {
			bad.add("%s: %s is not a weekday", name, w)
		} else if slices.Contains(s.Weekdays[:i], w) {
			bad.add("%s: %s appears twice", name, w)
		}
	}
	if s.Start < 0 || s.Start >= 24*60 {
		bad.add("%s: start %d minutes is not a time of day", name, int(s.Start))
	}
	if s.Length <= 0 || s.Length.D()%time.Minute != 0 {
		bad.add("%s: length %s: want whole minutes, more than 0", name, s.Length)
	} else if s.end() > 24*60 {
		bad.add("%s: %s plus %s ends after midnight", name, s.Start, s.Length)
	}
	if max := pol.For(s.Kind).MaxClients; s.Cap < 0 || s.Cap > max {
		bad.add("%s: cap %d is above the %s maximum of %d", name, s.Cap, s.Kind, max)
	}
	if s.Cohort != "" && strings.TrimSpace(s.Cohort) != s.Cohort {
		bad.add("%s: cohort %q has surrounding spaces", name, s.Cohort)
	}
	for i, th := range s.Therapists {
		bad.addIf(checkSub(name+": therapist", th))
		if slices.Contains(s.Therapists[:i], th) {
			bad.add("%s: therapist %q appears twice", name, th)
		}
	}
}

// all returns every recurring session of the program.
func (p *Program) all() []*RecurringSession {
	var out []*RecurringSession
	for i := range p.Tracks {
		for j := range p.Tracks[i].Sessions {
			out = append(out, &p.Tracks[i].Sessions[j])
		}
	}
	for j := range p.Shared {
		out = append(out, &p.Shared[j])
	}
	return out
}

// overlapDay returns a weekday on which a and b both meet at overlapping
// local times.
func overlapDay(a, b *RecurringSession) (Weekday, bool) {
	if int(a.Start) >= b.end() || int(b.Start) >= a.end() {
		return 0, false
	}
	for _, w := range a.Weekdays {
		if slices.Contains(b.Weekdays, w) {
			return w, true
		}
	}
	return 0, false
}

// therapistOverlaps refuses a therapist in two recurring sessions at once.
func therapistOverlaps(bad *problems, all []*RecurringSession) {
	for i, a := range all {
		for _, b := range all[i+1:] {
			w, ok := overlapDay(a, b)
			if !ok {
				continue
			}
			for _, th := range a.Therapists {
				if slices.Contains(b.Therapists, th) {
					bad.add("therapist %q would be in %q (%s-%s) and %q (%s-%s) at once on %s",
						th, a.ID, a.Start, Clock(a.end()), b.ID, b.Start, Clock(b.end()), w)
				}
			}
		}
	}
}

// clientOverlaps refuses two sessions of one track at once: a client of
// the track could not attend both. Sessions for two different cohorts (a
// women's and a men's group) may run side by side.
func clientOverlaps(bad *problems, where string, sessions []RecurringSession) {
	for i := range sessions {
		for j := i + 1; j < len(sessions); j++ {
			a, b := &sessions[i], &sessions[j]
			if a.Cohort != "" && b.Cohort != "" && a.Cohort != b.Cohort {
				continue
			}
			if w, ok := overlapDay(a, b); ok {
				bad.add("%s: %q (%s-%s) and %q (%s-%s) overlap on %s", where, a.ID, a.Start, Clock(a.end()), b.ID, b.Start, Clock(b.end()), w)
			}
		}
	}
}

// Validate checks the enrollment against program p: a known track (also
// in each change), dates in order, targets in range, a known end reason.
// The error wraps ErrInvalid.
func (e *Enrollment) Validate(p *Program) error {
	return e.problems(p).err("enrollment of " + e.Sub)
}

func (e *Enrollment) problems(p *Program) problems {
	var bad problems
	bad.addIf(checkSub("client", e.Sub))
	if e.Program != "" && e.Program != p.ID {
		bad.add("enrollment is for program %q, not %q", e.Program, p.ID)
	}
	if p.track(e.Track) == nil {
		bad.add("unknown track %q (the program has %s)", e.Track, p.trackList())
	}
	if e.Start.IsZero() {
		bad.add("a start date is required")
	}
	if e.PlaceOfService != "" && e.PlaceOfService != "02" && e.PlaceOfService != "10" {
		bad.add("place_of_service %q: want 02 or 10", e.PlaceOfService)
	}
	if e.PlannedDays < 0 || e.PlannedDays > 366 {
		bad.add("planned_days %d: want 1 to 366 (0: %d)", e.PlannedDays, DefaultPlannedDays)
	}
	if e.TargetHours != 0 && (e.TargetHours < MinTargetHours || e.TargetHours > MaxTargetHours) {
		bad.add("target_hours %g: want %d to %d (20 and more is partial hospitalization)", e.TargetHours, MinTargetHours, MaxTargetHours)
	}
	if e.TargetDays != 0 && (e.TargetDays < MinTargetDays || e.TargetDays > MaxTargetDays) {
		bad.add("target_days %d: want %d to %d", e.TargetDays, MinTargetDays, MaxTargetDays)
	}
	for i, c := range e.Cohorts {
		if strings.TrimSpace(c) == "" || strings.TrimSpace(c) != c {
			bad.add("cohort %q: want a name without surrounding spaces", c)
		} else if slices.Contains(e.Cohorts[:i], c) {
			bad.add("cohort %q appears twice", c)
		}
	}
	prev := e.Start
	for _, c := range e.Changes {
		switch {
		case p.track(c.Track) == nil:
			bad.add("track change on %s to unknown track %q", c.Effective, c.Track)
		case c.Effective.IsZero():
			bad.add("track change to %q without an effective date", c.Track)
		case !c.Effective.After(prev):
			bad.add("track change to %q on %s: want a date after %s", c.Track, c.Effective, prev)
		}
		prev = c.Effective
	}
	if !e.End.IsZero() {
		if e.End.Before(e.Start) {
			bad.add("end %s is before start %s", e.End, e.Start)
		}
		if !e.EndReason.Valid() {
			bad.add("end reason %q: want discharge, completion or step_down", e.EndReason)
		}
	} else if e.EndReason != "" {
		bad.add("end reason %q without an end date", e.EndReason)
	}
	return bad
}

// enrollmentProblems lists the problems of every enrollment, each named.
func enrollmentProblems(p *Program, list []Enrollment) problems {
	var bad problems
	subs := map[string]bool{}
	for i := range list {
		e := &list[i]
		if subs[e.Sub] {
			bad.add("%q is enrolled twice", e.Sub)
		}
		subs[e.Sub] = true
		for _, msg := range e.problems(p) {
			bad.add("enrollment of %s: %s", e.Sub, msg)
		}
	}
	return bad
}

func (p *Program) trackList() string {
	if len(p.Tracks) == 0 {
		return "no tracks"
	}
	ids := make([]string, len(p.Tracks))
	for i, t := range p.Tracks {
		ids[i] = t.ID
	}
	return strings.Join(ids, ", ")
}

// validateShape checks what a booking must be on its own.
func (b *Booking) validateShape(p *Program) error {
	var bad problems
	if b.Kind != rooms.KindIndividual && b.Kind != rooms.KindFamily {
		bad.add("kind %q: want individual or family", b.Kind)
	}
	if b.Start.IsZero() {
		bad.add("a start time is required")
	}
	if b.Length <= 0 || b.Length.D() > MaxBookingLength || b.Length.D()%time.Minute != 0 {
		bad.add("length %s: want whole minutes up to %s", b.Length, Duration(MaxBookingLength))
	}
	bad.addIf(checkSub("client", b.Client))
	bad.addIf(checkSub("therapist", b.Therapist))
	if b.ID != "" && !strings.HasPrefix(b.ID, p.ID+"-b") {
		bad.add("booking id %q: ids are assigned by the schedule", b.ID)
	}
	return bad.err("booking")
}
