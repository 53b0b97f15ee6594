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
	"iop/rooms/audit"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// route is one endpoint of the HTTP API: the permission it asks the
// bearer's grant (rooms.Grant.May) and what it leaves in the audit trail.
type route struct {
	pattern string // "METHOD /path/{wildcards}" as http.ServeMux takes it
	perm    rooms.Permission
	handle  func(*call) (any, error)
	// trace is the audit action of a successful call ("" for none);
	// traceFirst writes it before the handler runs and refuses the call if
	// it cannot be written (reads and exports of health records).
	trace      string
	traceFirst bool
}

// call is one authorized API request.
type call struct {
	ctx     context.Context
	r       *http.Request
	grant   rooms.Grant
	program string // the program acted on: the path's, else the grant's
	addr    string
	// refused is why the bearer's token did not verify, on a route that
	// answers that itself (rooms.PermLink); the grant is then empty.
	refused error
	// subject and note, when the handler sets them, name the audit
	// entry's subject (when the path has none) and end its detail.
	subject, note string
}

// created is a handler result answered with 201 Created.
type created struct{ v any }

// download is a handler result written as a file, not JSON.
type download struct {
	contentType string
	filename    string // Content-Disposition attachment name; "" inline
	write       func(io.Writer) error
	trace       string // added to the audit entry's detail (an export's chain head)
}

// routes is the one table of the HTTP API (docs/api.md). Every route names
// the permission it needs; the route-table test walks it for every role of
// the same and of another program.
func (s *Server) routes() []route {
	const p = "/v1/programs/{program}"
	return []route{
		{pattern: "POST /v1/rooms/{room}/invites", perm: rooms.PermInvite, handle: s.invite, trace: audit.ActionInvite},
		{pattern: "PUT " + p + "/blocks/{sub}", perm: rooms.PermBlock, handle: s.block(true), trace: audit.ActionBlock},
		{pattern: "DELETE " + p + "/blocks/{sub}", perm: rooms.PermBlock, handle: s.block(false), trace: audit.ActionUnblock},
		{pattern: "GET /v1/attendance/rooms/{room}", perm: rooms.PermReadAttendance, handle: s.attendanceRoom, trace: audit.ActionAttendanceRead, traceFirst: true},
		{pattern: "GET /v1/attendance/people/{sub}/weeks/{week}", perm: rooms.PermReadAttendance, handle: s.attendancePerson, trace: audit.ActionAttendanceRead, traceFirst: true},
		{pattern: "GET /v1/attendance/programs/{program}/weeks/{week}", perm: rooms.PermReadAttendance, handle: s.attendanceProgram, trace: audit.ActionAttendanceRead, traceFirst: true},
		{pattern: "GET /v1/attendance/programs/{program}/billing/{week}", perm: rooms.PermReadAttendance, handle: s.attendanceBilling, trace: audit.ActionAttendanceRead, traceFirst: true},
		{pattern: "GET /v1/attendance/programs/{program}/billing.csv", perm: rooms.PermReadAttendance, handle: s.attendanceBillingRange, trace: audit.ActionAttendanceRead, traceFirst: true},
		{pattern: "PUT " + p + "/attendance/absences/{sub}/{room}", perm: rooms.PermAmendAttendance, handle: s.absence(true), trace: audit.ActionAbsence},
		{pattern: "DELETE " + p + "/attendance/absences/{sub}/{room}", perm: rooms.PermAmendAttendance, handle: s.absence(false), trace: audit.ActionAbsence},
		{pattern: "POST " + p + "/attendance/corrections", perm: rooms.PermAmendAttendance, handle: s.correct, trace: audit.ActionCorrection},
		{pattern: "GET /v1/audit/programs/{program}", perm: rooms.PermReadAudit, handle: s.auditTrail, trace: audit.ActionAuditRead, traceFirst: true},
		{pattern: "GET /v1/me/sessions", perm: rooms.PermSelf, handle: s.mySessions},
		{pattern: "POST /v1/me/consent", perm: rooms.PermConsent, handle: s.acknowledge, trace: audit.ActionConsent},
		{pattern: "GET " + p + "/consents", perm: rooms.PermReadAttendance, handle: s.consents, trace: audit.ActionAttendanceRead, traceFirst: true},
		{pattern: "GET " + p + "/rooms/{room}/checkins", perm: rooms.PermReadAttendance, handle: s.checkIns, trace: audit.ActionAttendanceRead, traceFirst: true},
		{pattern: "GET /v1/me/calendar", perm: rooms.PermCalendar, handle: s.myCalendar(calendarGet)},
		{pattern: "POST /v1/me/calendar", perm: rooms.PermCalendar, handle: s.myCalendar(calendarRotate)},
		{pattern: "DELETE /v1/me/calendar", perm: rooms.PermCalendar, handle: s.myCalendar(calendarRevoke)},
		{pattern: "GET /v1/calendar/{file}", perm: rooms.PermSecret, handle: s.calendarFeed},
		{pattern: "GET /v1/link", perm: rooms.PermLink, handle: s.checkLink},
		{pattern: "GET /v1/connectivity", perm: rooms.PermCheck, handle: s.connectivity},
		{pattern: "POST /v1/connectivity", perm: rooms.PermCheck, handle: s.connectivityProbe},

		{pattern: "GET " + p + "/schedule", perm: rooms.PermManageSchedule, handle: s.getProgram},
		{pattern: "PUT " + p + "/schedule", perm: rooms.PermManageSchedule, handle: s.putProgram, trace: audit.ActionScheduleChange},
		{pattern: "PUT " + p + "/tracks/{track}", perm: rooms.PermManageSchedule, handle: s.putTrack, trace: audit.ActionScheduleChange},
		{pattern: "DELETE " + p + "/tracks/{track}", perm: rooms.PermManageSchedule, handle: s.deleteTrack, trace: audit.ActionScheduleChange},
		{pattern: "PUT " + p + "/sessions/{session}", perm: rooms.PermManageSchedule, handle: s.putSession, trace: audit.ActionScheduleChange},
		{pattern: "DELETE " + p + "/sessions/{session}", perm: rooms.PermManageSchedule, handle: s.deleteSession, trace: audit.ActionScheduleChange},
		{pattern: "PUT " + p + "/holidays/{date}", perm: rooms.PermManageSchedule, handle: s.holiday(true), trace: audit.ActionScheduleChange},
		{pattern: "DELETE " + p + "/holidays/{date}", perm: rooms.PermManageSchedule, handle: s.holiday(false), trace: audit.ActionScheduleChange},
		{pattern: "PUT " + p + "/cancellations/{session}/{date}", perm: rooms.PermManageSchedule, handle: s.cancellation(true), trace: audit.ActionScheduleChange},
		{pattern: "DELETE " + p + "/cancellations/{session}/{date}", perm: rooms.PermManageSchedule, handle: s.cancellation(false), trace: audit.ActionScheduleChange},
		{pattern: "GET " + p + "/occurrences", perm: rooms.PermManageSchedule, handle: s.occurrences},
		{pattern: "GET " + p + "/enrollments", perm: rooms.PermManageSchedule, handle: s.enrollments},
		{pattern: "PUT " + p + "/enrollments/{sub}", perm: rooms.PermManageSchedule, handle: s.enroll, trace: audit.ActionEnrollmentChange},
		{pattern: "POST " + p + "/enrollments/{sub}/track", perm: rooms.PermManageSchedule, handle: s.changeTrack, trace: audit.ActionEnrollmentChange},
		{pattern: "POST " + p + "/enrollments/{sub}/end", perm: rooms.PermManageSchedule, handle: s.endEnrollment, trace: audit.ActionEnrollmentChange},
		{pattern: "DELETE " + p + "/enrollments/{sub}", perm: rooms.PermManageSchedule, handle: s.deleteEnrollment, trace: audit.ActionEnrollmentChange},
		{pattern: "POST " + p + "/bookings", perm: rooms.PermBook, handle: s.book, trace: audit.ActionBookingChange},
		{pattern: "GET " + p + "/people/{sub}/bookings", perm: rooms.PermBook, handle: s.bookings},
		{pattern: "DELETE " + p + "/bookings/{id}", perm: rooms.PermBook, handle: s.cancelBooking, trace: audit.ActionBookingChange},
	}
}

// RouteRule is a route of the API and the permission it asks for.
type RouteRule struct {
	Pattern string
	Perm    rooms.Permission
}

// Routes lists the API's routes with their permissions, for tests and docs.
func (s *Server) Routes() []RouteRule {
	var out []RouteRule
	for _, rt := range s.routes() {
		out = append(out, RouteRule{Pattern: rt.pattern, Perm: rt.perm})
	}
	return out
}

// API returns the staff REST API (docs/api.md), mounted under /v1/. Every
// call but the calendar feed carries Authorization: Bearer with a token the
// same Verifier checks, and every route asks the bearer's grant.
func (s *Server) API() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		if rt.perm == "" || rt.handle == nil {
			panic("signaling: route " + rt.pattern + " has no permission or handler")
		}
		mux.HandleFunc(rt.pattern, s.serve(rt))
	}
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, protocol.CodeNotFound, "no such endpoint")
	})
	return mux
}

// serve verifies the bearer, asks its grant for the route's permission on
// the path's program, room and person, leaves the trace, runs the handler
// and writes its result or its error.
func (s *Server) serve(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		c := &call{ctx: ctx, r: r, addr: s.clientAddr(r)}
		if rt.perm == rooms.PermLink {
			claims, err := s.verifyBearer(r)
			if err != nil {
				c.refused = err
			} else {
				c.grant, c.program = claims.Grant(), claims.Program
			}
		} else if rt.perm != rooms.PermSecret {
			claims := s.bearer(w, r)
			if claims == nil {
				return
			}
			c.grant = claims.Grant()
			c.program = r.PathValue("program")
			if c.program == "" {
				c.program = c.grant.Program
			}
			target := rooms.Target{Program: c.program, Room: r.PathValue("room"), Sub: r.PathValue("sub")}
			if err := c.grant.May(rt.perm, target); err != nil {
				writeError(w, protocol.CodeForbidden, err.Error())
				return
			}
		}
		// An export's entry names the chain head its rows were read at, so
		// it is written after the handler ran but still before anything
		// reaches the client.
		export := rt.trace == audit.ActionAttendanceRead && strings.HasSuffix(r.URL.Path, ".csv")
		if rt.trace != "" && rt.traceFirst && !export {
			if err := s.recordNow(ctx, c.grant, rt.trace, r.PathValue("sub"), r.Method+" "+r.URL.Path, c.addr); err != nil {
				s.apiFailed(w, err)
				return
			}
		}
		out, err := rt.handle(c)
		if export {
			detail := r.Method + " " + r.URL.Path
			if d, ok := out.(download); ok && d.trace != "" {
				detail += " " + d.trace
			}
			if err := s.recordNow(ctx, c.grant, audit.ActionAttendanceExport, r.PathValue("sub"), detail, c.addr); err != nil {
				s.apiFailed(w, err)
				return
			}
		}
		if err != nil {
			if code := errorCode(err); code == protocol.CodeInternal {
				s.apiFailed(w, err)
			} else {
				writeError(w, code, err.Error())
			}
			return
		}
		if rt.trace != "" && !rt.traceFirst {
			subject, detail := r.PathValue("sub"), r.Method+" "+r.URL.Path
			if subject == "" {
				subject = c.subject
			}
			if c.note != "" {
				detail += " " + c.note
			}
			s.record(c.grant, rt.trace, r.PathValue("room"), subject, "", detail, c.addr)
		}
		writeResult(w, out)
	}
}

// writeResult answers with a handler's result: 204 for nil, 201 for
// created, a file for download, else 200 with its JSON.
func writeResult(w http.ResponseWriter, out any) {
	switch v := out.(type) {
	case nil:
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	case created:
		writeJSON(w, http.StatusCreated, v.v)
	case download:
		w.Header().Set("Content-Type", v.contentType)
		if v.filename != "" {
			w.Header().Set("Content-Disposition", `attachment; filename="`+v.filename+`"`)
		}
		w.Header().Set("Cache-Control", "no-store")
		_ = v.write(w)
	default:
		writeJSON(w, http.StatusOK, out)
	}
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

// apiFailed logs a failure without personal data and answers internal.
func (s *Server) apiFailed(w http.ResponseWriter, err error) {
	s.cfg.Logger.Error("api request failed", "err", err)
	writeError(w, protocol.CodeInternal, "")
}

// bearer verifies the request's token, answering 401 itself when it fails.
func (s *Server) bearer(w http.ResponseWriter, r *http.Request) *token.Claims {
	c, err := s.verifyBearer(r)
	if err != nil {
		writeError(w, protocol.CodeUnauthorized, err.Error())
		return nil
	}
	return c
}

// errNoBearer is the refusal of a request without Authorization: Bearer.
//
//lint:ignore ST1005 it starts with the header's name
var errNoBearer = errors.New("Authorization: Bearer token missing")

// verifyBearer verifies the request's token. The scheme is
// case-insensitive (RFC 7235).
func (s *Server) verifyBearer(r *http.Request) (*token.Claims, error) {
	scheme, raw, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, errNoBearer
	}
	return s.cfg.Verifier.Verify(strings.TrimSpace(raw))
}
