package signaling

import (
	"iop/rooms"
	"iop/signaling/token"
)

// The link check of the join page (docs/api.md, GET /v1/link): before it
// turns the camera on, the page asks whether its own link can still be
// used, and says why not in plain words. A stranger learns nothing: a token
// that does not verify is answered "invalid" whatever is wrong with it;
// only the holder of a real link (a good signature) hears "expired",
// "not_yet_valid" or what became of their session.

// Link check answers.
const (
	LinkValid       = "valid"
	LinkInvalid     = "invalid"       // missing, garbled, wrong key, wrong audience
	LinkExpired     = "expired"       // a real link, past its exp
	LinkNotYetValid = "not_yet_valid" // a real link, before its nbf
	LinkUsed        = "used"          // a single-use invitation already used
	LinkEnded       = "ended"         // the session of the link has ended
	LinkRemoved     = "removed"       // the person was removed from this session
	LinkBlocked     = "blocked"       // the person's access to the program is suspended
)

// linkStatus is the body of GET /v1/link.
type linkStatus struct {
	Status string `json:"status"`
	// For a client's valid link: the consent to acknowledge first, and
	// whether the join must carry a check-in (docs/api.md).
	Consent *consentText `json:"consent,omitempty"`
	CheckIn bool         `json:"checkin,omitempty"`
}

// checkLink answers the link check. It never changes anything: an
// invitation is consumed only by joining.
func (s *Server) checkLink(c *call) (any, error) {
	switch {
	case c.refused == nil:
	case token.Expired(c.refused):
		return linkStatus{Status: LinkExpired}, nil
	case token.NotYetValid(c.refused):
		return linkStatus{Status: LinkNotYetValid}, nil
	default:
		return linkStatus{Status: LinkInvalid}, nil
	}
	g := c.grant
	id := g.Room
	if id == rooms.AnyRoom {
		id = c.r.URL.Query().Get("room")
	}
	if id == "" || rooms.ValidRoomID(id) != nil {
		return linkStatus{Status: LinkValid}, nil // a therapist's or staff link for any room
	}
	ref := rooms.Ref{Program: g.Program, ID: id}
	if st := s.cfg.Store; st != nil {
		blocked, err := st.Blocked(c.ctx, g.Program, g.Sub)
		if err != nil {
			return nil, err
		}
		if blocked {
			return linkStatus{Status: LinkBlocked}, nil
		}
		removed, err := st.RevokedFromRoom(c.ctx, ref.String(), g.Sub)
		if err != nil {
			return nil, err
		}
		if removed {
			return linkStatus{Status: LinkRemoved}, nil
		}
		if inv := g.Invitation; inv != nil && inv.JTI != "" {
			used, err := st.JTIUsed(c.ctx, g.Program, inv.JTI)
			if err != nil {
				return nil, err
			}
			if used {
				return linkStatus{Status: LinkUsed}, nil
			}
		}
	}
	if !g.Role.Staff() && s.cfg.Rooms != nil && s.cfg.Rooms.Ended(ref) {
		return linkStatus{Status: LinkEnded}, nil
	}
	out := linkStatus{Status: LinkValid}
	if th := s.cfg.Telehealth; th != nil && g.Role == rooms.RoleClient {
		req, err := th.For(c.ctx, g.Program, g.Sub)
		if err != nil {
			return nil, err
		}
		out.CheckIn = req.CheckIn
		if req.Consent != nil {
			out.Consent = &consentText{Version: req.Consent.Version, Text: req.Consent.Text}
		}
	}
	return out, nil
}
