package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/schedule"
	"iop/signaling/protocol"
)

// Body limits of the schedule endpoints: a whole program may be long, any
// other body is small.
const (
	maxProgramBody  = 1 << 20
	maxScheduleBody = 64 << 10
)

// maxOccurrenceRange bounds GET .../occurrences (a few months is cheap).
const maxOccurrenceRange = 92 * 24 * time.Hour

// decode reads the request's JSON body into v, refusing unknown fields (a
// typo would otherwise drop a setting silently). An empty body leaves v as
// it is when optional.
func decode(c *call, v any, limit int64, optional bool) error {
	dec := json.NewDecoder(io.LimitReader(c.r.Body, limit))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) && optional:
		return nil
	case errors.Is(err, io.EOF):
		return refuse(protocol.CodeBadMessage, "a JSON body is required")
	}
	return refuse(protocol.CodeBadMessage, "body: %v", err)
}

// pathID fills *id from the path when the body leaves it empty, and
// refuses a body that names another one.
func pathID(what string, id *string, path string) error {
	if *id == "" {
		*id = path
	}
	if *id != path {
		return refuse(protocol.CodeBadMessage, "the body's %s %q is not the path's %q", what, *id, path)
	}
	return nil
}

// pathDate reads the {date} of the path.
func pathDate(c *call) (schedule.Date, error) {
	d, err := schedule.ParseDate(c.r.PathValue("date"))
	if err != nil {
		return schedule.Date{}, refuse(protocol.CodeBadMessage, "%v", err)
	}
	return d, nil
}

func (s *Server) getProgram(c *call) (any, error) {
	return s.cfg.Schedule.Program(c.ctx, c.program)
}

// putProgram stores a whole program, and makes attendance count its days
// and weeks in the program's time zone.
func (s *Server) putProgram(c *call) (any, error) {
	var p schedule.Program
	if err := decode(c, &p, maxProgramBody, false); err != nil {
		return nil, err
	}
	if err := pathID("id", &p.ID, c.program); err != nil {
		return nil, err
	}
	if err := s.cfg.Schedule.PutProgram(c.ctx, p); err != nil {
		return nil, err
	}
	if s.cfg.Attendance != nil {
		if err := s.cfg.Attendance.SetProgramZone(c.ctx, c.program, p.TimeZone); err != nil {
			return nil, err
		}
	}
	return s.cfg.Schedule.Program(c.ctx, c.program)
}

func (s *Server) putTrack(c *call) (any, error) {
	var t schedule.Track
	if err := decode(c, &t, maxProgramBody, false); err != nil {
		return nil, err
	}
	if err := pathID("track id", &t.ID, c.r.PathValue("track")); err != nil {
		return nil, err
	}
	return t, s.cfg.Schedule.PutTrack(c.ctx, c.program, t)
}

func (s *Server) deleteTrack(c *call) (any, error) {
	return nil, s.cfg.Schedule.DeleteTrack(c.ctx, c.program, c.r.PathValue("track"))
}

// putSession stores a recurring session in the track of ?track=, or among
// the shared sessions without it.
func (s *Server) putSession(c *call) (any, error) {
	var rs schedule.RecurringSession
	if err := decode(c, &rs, maxScheduleBody, false); err != nil {
		return nil, err
	}
	if err := pathID("session id", &rs.ID, c.r.PathValue("session")); err != nil {
		return nil, err
	}
	return rs, s.cfg.Schedule.PutSession(c.ctx, c.program, c.r.URL.Query().Get("track"), rs)
}

func (s *Server) deleteSession(c *call) (any, error) {
	return nil, s.cfg.Schedule.DeleteSession(c.ctx, c.program, c.r.PathValue("session"))
}

func (s *Server) holiday(add bool) func(*call) (any, error) {
	return func(c *call) (any, error) {
		d, err := pathDate(c)
		if err != nil {
			return nil, err
		}
		if add {
			return nil, s.cfg.Schedule.AddHoliday(c.ctx, c.program, d)
		}
		return nil, s.cfg.Schedule.RemoveHoliday(c.ctx, c.program, d)
	}
}

func (s *Server) cancellation(add bool) func(*call) (any, error) {
	return func(c *call) (any, error) {
		d, err := pathDate(c)
		if err != nil {
			return nil, err
		}
		session := c.r.PathValue("session")
		if !add {
			return nil, s.cfg.Schedule.Uncancel(c.ctx, c.program, session, d)
		}
		var body struct {
			Reason string `json:"reason"`
		}
		if err := decode(c, &body, maxScheduleBody, true); err != nil {
			return nil, err
		}
		return nil, s.cfg.Schedule.Cancel(c.ctx, c.program, session, d, body.Reason)
	}
}

// occurrenceLine is an occurrence with its local times.
type occurrenceLine struct {
	schedule.Occurrence
	StartLocal string `json:"start_local"`
	EndLocal   string `json:"end_local"`
}

// occurrencesReply is the answer of GET .../occurrences.
type occurrencesReply struct {
	Program     string           `json:"program"`
	TimeZone    string           `json:"time_zone"`
	From        time.Time        `json:"from"`
	To          time.Time        `json:"to"`
	Occurrences []occurrenceLine `json:"occurrences"`
}

// occurrences lists the program's meetings in [from, to) (?from=&to=, each
// an RFC 3339 instant or a local date; or ?week=2026-W49), by default the
// seven days from today's local midnight.
func (s *Server) occurrences(c *call) (any, error) {
	sch, err := s.cfg.Schedule.Load(c.ctx, c.program)
	if err != nil {
		return nil, err
	}
	loc := sch.Location()
	from, to, err := occurrenceRange(c.r, loc, time.Now())
	if err != nil {
		return nil, err
	}
	rep := occurrencesReply{Program: c.program, TimeZone: loc.String(), From: from.UTC(), To: to.UTC(), Occurrences: []occurrenceLine{}}
	for _, o := range sch.Occurrences(from, to) {
		rep.Occurrences = append(rep.Occurrences, occurrenceLine{
			Occurrence: o, StartLocal: o.Start.In(loc).Format(time.RFC3339), EndLocal: o.End.In(loc).Format(time.RFC3339),
		})
	}
	return rep, nil
}

// occurrenceRange reads ?week= or ?from=&to= in loc.
func occurrenceRange(r *http.Request, loc *time.Location, now time.Time) (from, to time.Time, err error) {
	q := r.URL.Query()
	if wk := q.Get("week"); wk != "" {
		w, err := attendance.ParseWeek(wk)
		if err != nil {
			return from, to, refuse(protocol.CodeBadMessage, "week must look like 2026-W49")
		}
		return w.Start(loc), w.End(loc), nil
	}
	y, m, d := now.In(loc).Date()
	from = time.Date(y, m, d, 0, 0, 0, 0, loc)
	if v := q.Get("from"); v != "" {
		if from, err = instantOrDate(v, loc); err != nil {
			return from, to, refuse(protocol.CodeBadMessage, "from: %v", err)
		}
	}
	to = from.AddDate(0, 0, 7)
	if v := q.Get("to"); v != "" {
		if to, err = instantOrDate(v, loc); err != nil {
			return from, to, refuse(protocol.CodeBadMessage, "to: %v", err)
		}
	}
	if !from.Before(to) || to.Sub(from) > maxOccurrenceRange {
		return from, to, refuse(protocol.CodeBadMessage, "from must be before to, at most 92 days apart")
	}
	return from, to, nil
}

// instantOrDate reads an RFC 3339 instant, or a date as its local midnight
// in loc.
func instantOrDate(v string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := schedule.ParseDate(v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 time or a date yyyy-mm-dd", v)
	}
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc), nil
}

func (s *Server) enrollments(c *call) (any, error) {
	list, err := s.cfg.Schedule.Enrollments(c.ctx, c.program)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []schedule.Enrollment{}
	}
	return map[string]any{"enrollments": list}, nil
}

// enroll creates or replaces a client's enrollment.
func (s *Server) enroll(c *call) (any, error) {
	var e schedule.Enrollment
	if err := decode(c, &e, maxScheduleBody, false); err != nil {
		return nil, err
	}
	if err := pathID("sub", &e.Sub, c.r.PathValue("sub")); err != nil {
		return nil, err
	}
	if err := pathID("program", &e.Program, c.program); err != nil {
		return nil, err
	}
	if err := s.cfg.Schedule.Enroll(c.ctx, e); err != nil {
		return nil, err
	}
	return s.storedEnrollment(c, e.Sub)
}

func (s *Server) changeTrack(c *call) (any, error) {
	var body struct {
		Track     string        `json:"track"`
		Effective schedule.Date `json:"effective"`
		Reason    string        `json:"reason,omitempty"`
	}
	if err := decode(c, &body, maxScheduleBody, false); err != nil {
		return nil, err
	}
	if body.Effective.IsZero() {
		return nil, refuse(protocol.CodeBadMessage, "effective (yyyy-mm-dd) is required")
	}
	sub := c.r.PathValue("sub")
	if err := s.cfg.Schedule.ChangeTrack(c.ctx, c.program, sub, body.Track, body.Effective, body.Reason); err != nil {
		return nil, err
	}
	return s.storedEnrollment(c, sub)
}

func (s *Server) endEnrollment(c *call) (any, error) {
	var body struct {
		End    schedule.Date      `json:"end"`
		Reason schedule.EndReason `json:"reason"`
	}
	if err := decode(c, &body, maxScheduleBody, false); err != nil {
		return nil, err
	}
	if body.End.IsZero() {
		return nil, refuse(protocol.CodeBadMessage, "end (yyyy-mm-dd, the last day) is required")
	}
	sub := c.r.PathValue("sub")
	if err := s.cfg.Schedule.EndEnrollment(c.ctx, c.program, sub, body.End, body.Reason); err != nil {
		return nil, err
	}
	return s.storedEnrollment(c, sub)
}

// deleteEnrollment erases an enrollment and the client's own targets.
func (s *Server) deleteEnrollment(c *call) (any, error) {
	sub := c.r.PathValue("sub")
	if err := s.cfg.Schedule.DeleteEnrollment(c.ctx, c.program, sub); err != nil {
		return nil, err
	}
	if s.cfg.Attendance != nil {
		return nil, schedule.SyncTargets(c.ctx, s.cfg.Attendance, c.program, sub, nil)
	}
	return nil, nil
}

// storedEnrollment reads back sub's enrollment after a change and gives
// attendance its weekly targets.
func (s *Server) storedEnrollment(c *call, sub string) (*schedule.Enrollment, error) {
	return schedule.StoredEnrollment(c.ctx, s.cfg.Schedule, s.cfg.Attendance, c.program, sub)
}

// book books an individual or family session. A therapist books only
// sessions they run themself.
func (s *Server) book(c *call) (any, error) {
	var b schedule.Booking
	if err := decode(c, &b, maxScheduleBody, false); err != nil {
		return nil, err
	}
	if b.ID != "" {
		return nil, refuse(protocol.CodeBadMessage, "id is assigned by the server")
	}
	b.Start = b.Start.UTC()
	if b.Therapist == "" && !c.grant.Manager() {
		b.Therapist = c.grant.Sub
	}
	if err := c.grant.May(rooms.PermBook, rooms.Target{Program: c.program, Sub: b.Therapist}); err != nil {
		return nil, err
	}
	return s.cfg.Schedule.Book(c.ctx, c.program, b)
}

// bookings lists a person's bookings (as client or therapist); therapists
// list their own.
func (s *Server) bookings(c *call) (any, error) {
	sub := c.r.PathValue("sub") // the route asked the grant about this person
	list, err := s.cfg.Schedule.Bookings(c.ctx, c.program, sub)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []schedule.Booking{}
	}
	return map[string]any{"bookings": list}, nil
}

// cancelBooking deletes a booking; therapists cancel only those they run.
func (s *Server) cancelBooking(c *call) (any, error) {
	id := c.r.PathValue("id")
	b, err := s.cfg.Schedule.Booking(c.ctx, c.program, id)
	if err != nil {
		return nil, err
	}
	if err := c.grant.May(rooms.PermBook, rooms.Target{Program: c.program, Sub: b.Therapist}); err != nil {
		return nil, err
	}
	return nil, s.cfg.Schedule.CancelBooking(c.ctx, c.program, id)
}
