package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
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

// API returns the staff REST API (docs/api.md), mounted under /v1/. Every
// call carries Authorization: Bearer with a token the same Verifier checks.
func (s *Server) API() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/rooms/{room}/invites", s.invite)
	mux.HandleFunc("PUT /v1/programs/{program}/blocks/{sub}", s.block(true))
	mux.HandleFunc("DELETE /v1/programs/{program}/blocks/{sub}", s.block(false))
	mux.HandleFunc("GET /v1/attendance/rooms/{room}", s.attendanceRoom)
	mux.HandleFunc("GET /v1/attendance/people/{sub}/weeks/{week}", s.attendancePerson)
	mux.HandleFunc("GET /v1/attendance/programs/{program}/weeks/{week}", s.attendanceProgram)
	mux.HandleFunc("GET /v1/me/sessions", s.mySessions)
	mux.HandleFunc("GET /v1/me/calendar", s.myCalendar(calendarGet))
	mux.HandleFunc("POST /v1/me/calendar", s.myCalendar(calendarRotate))
	mux.HandleFunc("DELETE /v1/me/calendar", s.myCalendar(calendarRevoke))
	mux.HandleFunc("GET /v1/calendar/{file}", s.calendarFeed)
	s.scheduleRoutes(mux)
	s.connectivityRoutes(mux)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, protocol.CodeNotFound, "no such endpoint")
	})
	return mux
}

// apiError is the JSON error body of the HTTP API.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with the protocol code and its HTTP status.
func writeError(w http.ResponseWriter, code, msg string) {
	status := http.StatusUnprocessableEntity
	switch code {
	case protocol.CodeUnauthorized:
		status = http.StatusUnauthorized
		w.Header().Set("WWW-Authenticate", `Bearer realm="iop"`)
	case protocol.CodeForbidden, protocol.CodeRemoved:
		status = http.StatusForbidden
	case protocol.CodeNotFound:
		status = http.StatusNotFound
	case protocol.CodeRateLimited:
		status = http.StatusTooManyRequests
	case protocol.CodeInternal:
		status = http.StatusInternalServerError
		msg = "internal error"
	}
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

// bearer verifies the request's token, answering 401 itself when it fails.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) *token.Claims {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		writeError(w, protocol.CodeUnauthorized, "Authorization: Bearer token missing")
		return nil
	}
	c, err := s.cfg.Verifier.Verify(strings.TrimSpace(raw))
	if err != nil {
		writeError(w, protocol.CodeUnauthorized, err.Error())
		return nil
	}
	return c
}

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

// invite mints a single-use family invitation to a room for a therapist
// whose token grants that room.
func (s *Server) invite(w http.ResponseWriter, r *http.Request) {
	c := s.bearer(w, r)
	if c == nil {
		return
	}
	room := r.PathValue("room")
	if !c.Role.Can(rooms.ActInvite) || (c.Room != token.AnyRoom && c.Room != room) {
		writeError(w, protocol.CodeForbidden, "only a therapist of this session may invite")
		return
	}
	var req inviteRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		writeError(w, protocol.CodeBadMessage, "body must be JSON with a name")
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 64 {
		writeError(w, protocol.CodeBadMessage, "name is required (at most 64 characters)")
		return
	}
	if len(room) > 128 {
		writeError(w, protocol.CodeBadMessage, "room id too long")
		return
	}
	ttl := defaultInviteTTL
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > maxInviteTTL {
			writeError(w, protocol.CodeBadMessage, "ttl must be a duration up to 168h")
			return
		}
		ttl = d
	}
	claims := token.Claims{Name: req.Name, Role: rooms.RoleFamily, Room: room, Program: c.Program}
	claims.Subject = "family-" + token.RandomID(8)
	tok, err := s.cfg.Minter.Mint(claims, ttl)
	if err != nil {
		s.cfg.Logger.Error("mint invite", "err", err)
		writeError(w, protocol.CodeInternal, "")
		return
	}
	s.cfg.Logger.Info("family invite created", "room", room, "ttl", ttl.String())
	writeJSON(w, http.StatusCreated, inviteResponse{
		URL: strings.TrimRight(s.cfg.PublicURL, "/") + "/join#token=" + tok, Token: tok, Room: room,
		Expires: time.Now().Add(ttl).UTC().Truncate(time.Second),
	})
}

// block blocks (or unblocks) a person program-wide; their live sessions on
// every node end within seconds.
func (s *Server) block(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.bearer(w, r)
		if c == nil {
			return
		}
		program, sub := r.PathValue("program"), r.PathValue("sub")
		if !(c.Role.Can(rooms.ActAdmit) || c.Role.Can(rooms.ActManageSchedule)) || c.Program != program {
			writeError(w, protocol.CodeForbidden, "only staff of this program may block")
			return
		}
		if s.cfg.Store == nil {
			writeError(w, protocol.CodeInternal, "")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		var err error
		if on {
			err = s.cfg.Store.Block(ctx, program, sub)
		} else {
			err = s.cfg.Store.Unblock(ctx, program, sub)
		}
		if err != nil {
			s.cfg.Logger.Error("block", "err", err)
			writeError(w, protocol.CodeInternal, "")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// mayReadAttendance reports whether the bearer may read program's attendance:
// its therapists and staff; a client only their own (sub).
func mayReadAttendance(c *token.Claims, program, sub string) bool {
	if programOf(c) != program {
		return false
	}
	return c.Role.Can(rooms.ActReadAttendance) || (sub != "" && c.Subject == sub && c.Role == rooms.RoleClient)
}

// programOf is the program a token belongs to; tokens that name none count
// toward the "default" program (as iopd records their attendance).
func programOf(c *token.Claims) string {
	if c.Program == "" {
		return "default"
	}
	return c.Program
}

// apiCall is one verified attendance request.
type apiCall struct {
	claims *token.Claims
	ctx    context.Context
}

func (s *Server) attendanceCall(w http.ResponseWriter, r *http.Request) (*apiCall, context.CancelFunc) {
	c := s.bearer(w, r)
	if c == nil {
		return nil, nil
	}
	if s.cfg.Attendance == nil {
		writeError(w, protocol.CodeInternal, "")
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	return &apiCall{claims: c, ctx: ctx}, cancel
}

// attendanceRoom is one session's roster with each person's segments.
func (s *Server) attendanceRoom(w http.ResponseWriter, r *http.Request) {
	call, cancel := s.attendanceCall(w, r)
	if call == nil {
		return
	}
	defer cancel()
	program := programOf(call.claims)
	if !mayReadAttendance(call.claims, program, "") {
		writeError(w, protocol.CodeForbidden, "attendance is for the program's therapists and staff")
		return
	}
	rep, err := s.cfg.Attendance.Room(call.ctx, program, r.PathValue("room"))
	if err != nil {
		s.apiFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// attendancePerson is one person's ISO week against their targets.
func (s *Server) attendancePerson(w http.ResponseWriter, r *http.Request) {
	call, cancel := s.attendanceCall(w, r)
	if call == nil {
		return
	}
	defer cancel()
	sub, program := r.PathValue("sub"), programOf(call.claims)
	if !mayReadAttendance(call.claims, program, sub) {
		writeError(w, protocol.CodeForbidden, "you may read only your own attendance")
		return
	}
	week, err := attendance.ParseWeek(r.PathValue("week"))
	if err != nil {
		writeError(w, protocol.CodeBadMessage, "week must look like 2026-W48")
		return
	}
	rep, err := s.cfg.Attendance.Week(call.ctx, program, sub, week)
	if err != nil {
		s.apiFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// attendanceProgram is everyone's week, as JSON or (with .csv) the billing
// export.
func (s *Server) attendanceProgram(w http.ResponseWriter, r *http.Request) {
	call, cancel := s.attendanceCall(w, r)
	if call == nil {
		return
	}
	defer cancel()
	program := r.PathValue("program")
	if !mayReadAttendance(call.claims, program, "") {
		writeError(w, protocol.CodeForbidden, "attendance is for the program's therapists and staff")
		return
	}
	raw, csv := strings.CutSuffix(r.PathValue("week"), ".csv")
	week, err := attendance.ParseWeek(raw)
	if err != nil {
		writeError(w, protocol.CodeBadMessage, "week must look like 2026-W48")
		return
	}
	if csv {
		rows, err := s.cfg.Attendance.WeekRows(call.ctx, program, week)
		if err != nil {
			s.apiFailed(w, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="attendance-`+program+"-"+raw+`.csv"`)
		w.Header().Set("Cache-Control", "no-store")
		_ = attendance.WriteCSV(w, rows)
		return
	}
	rep, err := s.cfg.Attendance.ProgramWeek(call.ctx, program, week)
	if err != nil {
		s.apiFailed(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// apiFailed logs a failure without personal data and answers internal.
func (s *Server) apiFailed(w http.ResponseWriter, err error) {
	s.cfg.Logger.Error("api request failed", "err", err)
	writeError(w, protocol.CodeInternal, "")
}

// mySessions lists the bearer's next sessions with their join windows.
func (s *Server) mySessions(w http.ResponseWriter, r *http.Request) {
	c := s.bearer(w, r)
	if c == nil {
		return
	}
	slots := []schedule.Slot{}
	if s.cfg.Schedule != nil && c.Program != "" {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		got, err := s.cfg.Schedule.Upcoming(ctx, c.Program, c.Subject, c.Role, time.Now(), 10)
		if err != nil && !errors.Is(err, schedule.ErrNotFound) {
			s.apiFailed(w, err)
			return
		}
		slots = append(slots, got...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": slots})
}

type calendarOp int

const (
	calendarGet calendarOp = iota
	calendarRotate
	calendarRevoke
)

// myCalendar gives the bearer the secret address of their calendar feed, a
// new one (the old stops working), or none.
func (s *Server) myCalendar(op calendarOp) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := s.bearer(w, r)
		if c == nil {
			return
		}
		if s.cfg.Schedule == nil || c.Program == "" {
			writeError(w, protocol.CodeNotFound, "no schedule for this program")
			return
		}
		if c.Role != rooms.RoleClient {
			writeError(w, protocol.CodeForbidden, "calendar feeds are for clients")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		var secret string
		var err error
		switch op {
		case calendarGet:
			secret, err = s.cfg.Schedule.FeedSecret(ctx, c.Program, c.Subject)
		case calendarRotate:
			secret, err = s.cfg.Schedule.RotateFeed(ctx, c.Program, c.Subject)
		case calendarRevoke:
			if err = s.cfg.Schedule.RevokeFeed(ctx, c.Program, c.Subject); err == nil {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		if err != nil {
			s.apiFailed(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"url": strings.TrimRight(s.cfg.PublicURL, "/") + "/v1/calendar/" + secret + ".ics"})
	}
}

// calendarFeed serves a client's sessions as iCalendar to whoever holds the
// secret address (a calendar app); it names no program and no topic.
func (s *Server) calendarFeed(w http.ResponseWriter, r *http.Request) {
	secret, ok := strings.CutSuffix(r.PathValue("file"), ".ics")
	if !ok || s.cfg.Schedule == nil {
		writeError(w, protocol.CodeNotFound, "no such calendar")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	feed, err := s.cfg.Schedule.Feed(ctx, secret, time.Now(), schedule.FeedOptions{JoinURL: strings.TrimRight(s.cfg.PublicURL, "/") + "/join"})
	switch {
	case errors.Is(err, schedule.ErrNotFound):
		writeError(w, protocol.CodeNotFound, "no such calendar")
		return
	case err != nil:
		s.apiFailed(w, err)
		return
	}
	w.Header().Set("Content-Type", schedule.FeedContentType)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(feed)
}
