package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/audit"
	"iop/rooms/schedule"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// Invitation lifetimes: a day unless the therapist asks otherwise, a week
// at most.
const (
	defaultInviteTTL = 24 * time.Hour
	maxInviteTTL     = 7 * 24 * time.Hour
)

// inviteRequest is the body of POST /v1/rooms/{room}/invites.
type inviteRequest struct {
	Name string `json:"name"`
	TTL  string `json:"ttl,omitempty"`
}

// inviteResponse carries the single-use join link.
type inviteResponse struct {
	URL     string    `json:"url"`
	Token   string    `json:"token"`
	Room    string    `json:"room"`
	Expires time.Time `json:"expires"`
}

// invite mints a single-use family invitation to a family session of the
// bearer's program, for its host or a co-therapist: a scheduled family
// session they may run, or an ad-hoc family session open on this node in
// which they are host or co-therapist.
func (s *Server) invite(c *call) (any, error) {
	room := c.r.PathValue("room")
	if err := rooms.ValidRoomID(room); err != nil {
		return nil, refuse(protocol.CodeBadMessage, "%v", err)
	}
	var req inviteRequest
	if err := json.NewDecoder(io.LimitReader(c.r.Body, 4096)).Decode(&req); err != nil {
		return nil, refuse(protocol.CodeBadMessage, "body must be JSON with a name")
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 64 {
		return nil, refuse(protocol.CodeBadMessage, "name is required (at most 64 characters)")
	}
	ttl := defaultInviteTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > maxInviteTTL {
			return nil, refuse(protocol.CodeBadMessage, "ttl must be a duration up to 168h")
		}
		ttl = d
	}
	if err := s.mayInvite(c, rooms.Ref{Program: c.grant.Program, ID: room}); err != nil {
		return nil, err
	}
	claims := token.Claims{Name: req.Name, Role: rooms.RoleFamily, Room: room, Program: c.grant.Program}
	claims.Subject = "family-" + token.RandomID(8)
	tok, err := s.cfg.Minter.Mint(claims, ttl)
	if err != nil {
		return nil, fmt.Errorf("mint invite: %w", err)
	}
	s.cfg.Logger.Info("family invite created", "room", room, "ttl", ttl.String())
	return created{inviteResponse{
		URL: strings.TrimRight(s.cfg.PublicURL, "/") + "/join#token=" + tok, Token: tok, Room: room,
		Expires: time.Now().Add(ttl).UTC().Truncate(time.Second),
	}}, nil
}

// mayInvite checks the room: a family session, scheduled or open here,
// whose host or co-therapist the bearer is.
func (s *Server) mayInvite(c *call, ref rooms.Ref) error {
	if s.cfg.Schedule != nil {
		occ, err := s.cfg.Schedule.Check(c.ctx, ref.Program, ref.ID, c.grant.Sub, c.grant.Role, time.Now())
		var je *schedule.JoinError
		switch {
		case errors.Is(err, schedule.ErrNotScheduled), errors.Is(err, schedule.ErrNotFound):
			// ad hoc: below
		case errors.As(err, &je) && je.Code == protocol.CodeForbidden:
			return refuse(protocol.CodeForbidden, "only a therapist of this session may invite")
		case err != nil && !errors.As(err, &je):
			return err
		case occ.Kind != rooms.KindFamily:
			return refuse(protocol.CodeForbidden, "invitations are for family sessions")
		default:
			return nil
		}
	}
	room := s.cfg.Rooms.Get(ref)
	switch {
	case room == nil:
		return refuse(protocol.CodeNotFound, "open the family session first, then invite")
	case room.Kind() != rooms.KindFamily:
		return refuse(protocol.CodeForbidden, "invitations are for family sessions")
	case !room.Hosts(c.grant.Sub):
		return refuse(protocol.CodeForbidden, "only the host or a co-therapist in the session may invite")
	}
	return nil
}

// block blocks (or unblocks) a person program-wide; their live sessions on
// every node end within seconds.
func (s *Server) block(on bool) func(*call) (any, error) {
	return func(c *call) (any, error) {
		if s.cfg.Store == nil {
			return nil, errors.New("no store")
		}
		sub := c.r.PathValue("sub")
		if on {
			return nil, s.cfg.Store.Block(c.ctx, c.program, sub)
		}
		return nil, s.cfg.Store.Unblock(c.ctx, c.program, sub)
	}
}

// attendanceRoom is one session's roster with each person's segments, of
// the reader's program only.
func (s *Server) attendanceRoom(c *call) (any, error) {
	return s.cfg.Attendance.Room(c.ctx, c.program, c.r.PathValue("room"))
}

// attendancePerson is one person's ISO week against their targets.
func (s *Server) attendancePerson(c *call) (any, error) {
	week, err := attendance.ParseWeek(c.r.PathValue("week"))
	if err != nil {
		return nil, refuse(protocol.CodeBadMessage, "week must look like 2026-W48")
	}
	return s.cfg.Attendance.Week(c.ctx, c.program, c.r.PathValue("sub"), week)
}

// attendanceProgram is everyone's week, as JSON or (with .csv) the billing
// export.
func (s *Server) attendanceProgram(c *call) (any, error) {
	raw, csv := strings.CutSuffix(c.r.PathValue("week"), ".csv")
	week, err := attendance.ParseWeek(raw)
	if err != nil {
		return nil, refuse(protocol.CodeBadMessage, "week must look like 2026-W48")
	}
	if !csv {
		return s.cfg.Attendance.ProgramWeek(c.ctx, c.program, week)
	}
	x, err := s.cfg.Attendance.WeekExport(c.ctx, c.program, week)
	if err != nil {
		return nil, err
	}
	return download{
		contentType: "text/csv; charset=utf-8",
		filename:    "attendance-" + c.program + "-" + raw + ".csv",
		write:       x.WriteCSV,
		trace:       x.Head.Point(),
	}, nil
}

// auditPage is the answer of GET /v1/audit/programs/{program}.
type auditPage struct {
	Entries []audit.Entry `json:"entries"`
	Next    string        `json:"next"` // "" on the last page
}

// auditTrail pages through the program's audit trail, oldest first.
func (s *Server) auditTrail(c *call) (any, error) {
	if s.cfg.Audit == nil {
		return nil, errors.New("no audit trail configured")
	}
	q := c.r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, refuse(protocol.CodeBadMessage, "limit must be 1 to 500")
		}
		limit = min(n, 500)
	}
	entries, next, err := s.cfg.Audit.Page(c.ctx, c.program, q.Get("after"), limit)
	if err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	return auditPage{Entries: entries, Next: next}, nil
}

// mySessions lists the bearer's next sessions with their join windows.
func (s *Server) mySessions(c *call) (any, error) {
	slots := []schedule.Slot{}
	if s.cfg.Schedule != nil {
		got, err := s.cfg.Schedule.Upcoming(c.ctx, c.program, c.grant.Sub, c.grant.Role, time.Now(), 10)
		if err != nil && !errors.Is(err, schedule.ErrNotFound) {
			return nil, err
		}
		slots = append(slots, got...)
	}
	return map[string]any{"sessions": slots}, nil
}

type calendarOp int

const (
	calendarGet calendarOp = iota
	calendarRotate
	calendarRevoke
)

// myCalendar gives the bearer the secret address of their calendar feed, a
// new one (the old stops working), or none.
func (s *Server) myCalendar(op calendarOp) func(*call) (any, error) {
	return func(c *call) (any, error) {
		if s.cfg.Schedule == nil {
			return nil, refuse(protocol.CodeNotFound, "no schedule for this program")
		}
		var secret string
		var err error
		switch op {
		case calendarGet:
			secret, err = s.cfg.Schedule.FeedSecret(c.ctx, c.program, c.grant.Sub)
		case calendarRotate:
			secret, err = s.cfg.Schedule.RotateFeed(c.ctx, c.program, c.grant.Sub)
		case calendarRevoke:
			return nil, s.cfg.Schedule.RevokeFeed(c.ctx, c.program, c.grant.Sub)
		}
		if err != nil {
			return nil, err
		}
		return map[string]string{"url": strings.TrimRight(s.cfg.PublicURL, "/") + "/v1/calendar/" + secret + ".ics"}, nil
	}
}

// calendarFeed serves a client's sessions as iCalendar to whoever holds the
// secret address (a calendar app); it names no program and no topic.
func (s *Server) calendarFeed(c *call) (any, error) {
	secret, ok := strings.CutSuffix(c.r.PathValue("file"), ".ics")
	if !ok || s.cfg.Schedule == nil {
		return nil, refuse(protocol.CodeNotFound, "no such calendar")
	}
	feed, err := s.cfg.Schedule.Feed(c.ctx, secret, time.Now(), schedule.FeedOptions{JoinURL: strings.TrimRight(s.cfg.PublicURL, "/") + "/join"})
	switch {
	case errors.Is(err, schedule.ErrNotFound):
		return nil, refuse(protocol.CodeNotFound, "no such calendar")
	case err != nil:
		return nil, err
	}
	return download{
		contentType: schedule.FeedContentType,
		write:       func(w io.Writer) error { _, err := w.Write(feed); return err },
	}, nil
}
