package signaling

import (
	"encoding/json"
	"errors"
	"io"
	"time"

	"iop/rooms/admission"
	"iop/sfu"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// The connectivity check of the join page (docs/api.md): before joining,
// the browser asks which paths to try and TURN credentials for the check
// (GET /v1/connectivity), then connects a data channel to the SFU over each
// path in turn (POST /v1/connectivity). Both need a join token that grants
// media, so that nobody without an invitation gets TURN credentials or
// server PeerConnections.

// connectivityInfo is the body of GET /v1/connectivity.
type connectivityInfo struct {
	// Transports are the paths the check can try: udp, tcp, relay.
	Transports []string `json:"transports"`
	// ICEServers carry TURN credentials for the check only, valid for
	// checkTURNLife.
	ICEServers []protocol.ICEServer `json:"ice_servers"`
}

// probeRequest is the body of POST /v1/connectivity.
type probeRequest struct {
	Transport string `json:"transport"`
	SDP       string `json:"sdp"`
}

// probeResponse carries the server's complete answer.
type probeResponse struct {
	SDP string `json:"sdp"`
}

// checkable refuses a person blocked in their program: the route asked
// the grant (rooms.PermCheck) already.
func (s *Server) checkable(c *call) error {
	st := s.cfg.Store
	if st == nil {
		return nil
	}
	blocked, err := st.Blocked(c.ctx, c.grant.Program, c.grant.Sub)
	if err != nil {
		return err
	}
	if blocked {
		return admission.ErrBlocked
	}
	return nil
}

// connectivity lists the paths to check, with TURN credentials for the check.
func (s *Server) connectivity(c *call) (any, error) {
	if err := s.checkable(c); err != nil {
		return nil, err
	}
	info := connectivityInfo{Transports: []string{}, ICEServers: []protocol.ICEServer{}}
	for _, t := range s.cfg.SFU.ProbeTransports() {
		if t == sfu.TransportRelay && s.cfg.TURN == nil {
			continue
		}
		info.Transports = append(info.Transports, string(t))
	}
	if s.cfg.TURN != nil {
		info.ICEServers = s.iceServers("check"+token.RandomID(6), time.Now().Add(checkTURNLife))
	}
	return info, nil
}

// connectivityProbe answers one check's offer with the SFU's.
func (s *Server) connectivityProbe(c *call) (any, error) {
	if err := s.checkable(c); err != nil {
		return nil, err
	}
	var req probeRequest
	if err := json.NewDecoder(io.LimitReader(c.r.Body, 32<<10)).Decode(&req); err != nil {
		return nil, refuse(protocol.CodeBadMessage, "body must be JSON with transport and sdp")
	}
	t := sfu.Transport(req.Transport)
	if t == sfu.TransportRelay && s.cfg.TURN == nil {
		return nil, refuse(protocol.CodeBadMessage, "no TURN server is configured")
	}
	answer, err := s.cfg.SFU.Probe(req.SDP, t)
	switch {
	case errors.Is(err, sfu.ErrBusy):
		return nil, refuse(protocol.CodeRateLimited, "too many connection checks right now; try again in a minute")
	case errors.Is(err, sfu.ErrNoTransport):
		return nil, refuse(protocol.CodeBadMessage, "transport must be one of GET /v1/connectivity's transports")
	case errors.Is(err, sfu.ErrBadSDP):
		return nil, refuse(protocol.CodeBadMessage, "sdp must be an offer of one data channel")
	case err != nil:
		return nil, err
	}
	return probeResponse{SDP: answer}, nil
}
