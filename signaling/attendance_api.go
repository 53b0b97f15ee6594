package signaling

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/signaling/protocol"
)

// attendanceBilling is the billing export of a program's ISO week: one
// line per client per date of service, as CSV (the path ends in .csv).
func (s *Server) attendanceBilling(c *call) (any, error) {
	raw, csv := strings.CutSuffix(c.r.PathValue("week"), ".csv")
	week, err := attendance.ParseWeek(raw)
	if err != nil || !csv {
		return nil, refuse(protocol.CodeBadMessage, "the billing export is a CSV: the path must end in a week like 2026-W48.csv")
	}
	x, err := s.cfg.Attendance.BillingWeek(c.ctx, c.program, week)
	if err != nil {
		return nil, err
	}
	return download{
		contentType: "text/csv; charset=utf-8",
		filename:    "billing-" + c.program + "-" + raw + ".csv",
		write:       x.WriteCSV,
		trace:       x.Head.Point(),
	}, nil
}

// attendanceBillingRange is the billing export of a range of local dates
// (?from=YYYY-MM-DD&to=YYYY-MM-DD, both included, at most
// attendance.MaxRangeDays): a billing month, say.
func (s *Server) attendanceBillingRange(c *call) (any, error) {
	q := c.r.URL.Query()
	for k, v := range q {
		if (k != "from" && k != "to") || len(v) != 1 {
			return nil, refuse(protocol.CodeBadMessage, "the billing range takes one from and one to, like ?from=2026-11-01&to=2026-11-30")
		}
	}
	r, err := attendance.ParseRange(q.Get("from"), q.Get("to"))
	if err != nil {
		return nil, refuse(protocol.CodeBadMessage, "%s", strings.TrimPrefix(err.Error(), "attendance: "))
	}
	x, err := s.cfg.Attendance.BillingRange(c.ctx, c.program, r)
	if err != nil {
		return nil, err
	}
	return download{
		contentType: "text/csv; charset=utf-8",
		filename:    "billing-" + c.program + "-" + r.From.String() + "-" + r.To.String() + ".csv",
		write:       x.WriteCSV,
		trace:       x.Head.Point(),
	}, nil
}

// absenceRequest is the body of PUT .../attendance/absences/{sub}/{room}.
type absenceRequest struct {
	Reason attendance.AbsenceReason `json:"reason"`
}

// absenceReceipt answers an absence or a correction: the chain event that
// records it.
type absenceReceipt struct {
	Seq int64 `json:"seq"`
}

// absence records (set) or clears why a client missed one of their
// scheduled sessions: excused, no_show or cancelled (by the program).
func (s *Server) absence(set bool) func(*call) (any, error) {
	return func(c *call) (any, error) {
		sub, room := c.r.PathValue("sub"), c.r.PathValue("room")
		var req absenceRequest
		if set {
			if err := decode(c, &req, 1024, false); err != nil {
				return nil, err
			}
			if !req.Reason.Valid() {
				return nil, refuse(protocol.CodeBadMessage, "reason must be excused, no_show or cancelled")
			}
		}
		if s.cfg.Schedule == nil {
			return nil, refuse(protocol.CodeNotFound, "this deployment has no schedule")
		}
		if _, err := s.cfg.Schedule.Expects(c.ctx, c.program, sub, room); err != nil {
			return nil, err
		}
		rec, err := s.cfg.Attendance.SetAbsence(c.ctx, c.program, sub, room, req.Reason, c.grant.Sub)
		if err != nil {
			return nil, err
		}
		c.note = "seq " + strconv.FormatInt(rec.Seq, 10)
		return absenceReceipt{Seq: rec.Seq}, nil
	}
}

// correctionRequest is the body of POST .../attendance/corrections.
type correctionRequest struct {
	Segment string     `json:"segment"`
	Room    string     `json:"room"`
	Kind    rooms.Kind `json:"kind"`
	Sub     string     `json:"sub"`
	Role    rooms.Role `json:"role"`
	Video   bool       `json:"video"`
	Start   time.Time  `json:"start"`
	End     time.Time  `json:"end"`
	Reason  string     `json:"reason"`
}

// correct records a correction of the attendance record as a new event:
// new bounds for a closed segment (equal bounds void it), or a presence the
// record does not hold.
func (s *Server) correct(c *call) (any, error) {
	var req correctionRequest
	if err := decode(c, &req, 4096, false); err != nil {
		return nil, err
	}
	if req.Segment == "" && req.Kind != "" && !req.Kind.Valid() {
		return nil, refuse(protocol.CodeBadMessage, "kind must be a session kind")
	}
	rec, err := s.cfg.Attendance.Correct(c.ctx, c.program, attendance.CorrectionInput{
		Segment: req.Segment, Room: req.Room, Kind: req.Kind, Sub: req.Sub, Role: req.Role,
		Video: req.Video, Start: req.Start, End: req.End,
		Author: c.grant.Sub, Reason: req.Reason,
	})
	if errors.Is(err, attendance.ErrNoSegment) {
		return nil, refuse(protocol.CodeNotFound, "no such segment in this program")
	}
	if err != nil {
		return nil, err
	}
	c.subject, c.note = rec.Sub, "seq "+strconv.FormatInt(rec.Seq, 10)
	return created{absenceReceipt{Seq: rec.Seq}}, nil
}
