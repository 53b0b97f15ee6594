package signaling

import (
	"iop/rooms"
	"iop/rooms/telehealth"
	"iop/signaling/protocol"
)

// The telehealth routes (docs/api.md): a client acknowledges their
// program's consent; the program's therapists and staff read who consented
// to which version when, and a session's check-ins. Check-ins themselves
// arrive with the join (docs/protocol.md).

// consentRequest is the body of POST /v1/me/consent.
type consentRequest struct {
	Version string `json:"version"`
}

// consentText is the consent a client still has to acknowledge, in the
// link check's answer.
type consentText struct {
	Version string `json:"version"`
	Text    string `json:"text"`
}

// acknowledge records the bearer's acknowledgement of the program's
// current consent version.
func (s *Server) acknowledge(c *call) (any, error) {
	th := s.cfg.Telehealth
	if th == nil {
		return nil, telehealth.ErrNoConsent
	}
	var req consentRequest
	if err := decode(c, &req, 1024, false); err != nil {
		return nil, err
	}
	if req.Version == "" || len(req.Version) > 32 {
		return nil, refuse(protocol.CodeBadMessage, "version is required: the version of the consent you read")
	}
	a, err := th.Acknowledge(c.ctx, c.grant.Program, c.grant.Sub, req.Version)
	if err != nil {
		return nil, err
	}
	return created{a}, nil
}

// consents lists every acknowledgement of the program's consent.
func (s *Server) consents(c *call) (any, error) {
	out := []telehealth.Acknowledgement{}
	if th := s.cfg.Telehealth; th != nil {
		list, err := th.Consents(c.ctx, c.program)
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	return map[string]any{"program": c.program, "consents": out}, nil
}

// checkIns lists the check-ins of one session (room) of the program.
func (s *Server) checkIns(c *call) (any, error) {
	room := c.r.PathValue("room")
	if err := rooms.ValidRoomID(room); err != nil {
		return nil, refuse(protocol.CodeBadMessage, "%v", err)
	}
	out := []telehealth.CheckInRecord{}
	if th := s.cfg.Telehealth; th != nil {
		list, err := th.CheckIns(c.ctx, rooms.Ref{Program: c.program, ID: room})
		if err != nil {
			return nil, err
		}
		out = append(out, list...)
	}
	return map[string]any{"program": c.program, "room": room, "checkins": out}, nil
}
