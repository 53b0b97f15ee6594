package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

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

// connectivityRoutes adds the connectivity check's endpoints.
func (s *Server) connectivityRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/connectivity", s.connectivity)
	mux.HandleFunc("POST /v1/connectivity", s.connectivityProbe)
}

// checker verifies that the request carries a join token that grants media
// to a person who is not blocked, answering the refusal itself.
func (s *Server) checker(w http.ResponseWriter, r *http.Request) *token.Claims {
	c := s.bearer(w, r)
	if c == nil {
		return nil
	}
	if !c.MediaGranted() {
		writeError(w, protocol.CodeForbidden, "a staff token for any room is for the staff API only")
		return nil
	}
	if st := s.cfg.Store; st != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		blocked, err := st.Blocked(ctx, c.Program, c.Subject)
		if err != nil {
			writeError(w, protocol.CodeInternal, err.Error())
			return nil
		}
		if blocked {
			writeError(w, protocol.CodeForbidden, "access to this program is suspended; please contact your program")
			return nil
		}
	}
	return c
}

// connectivity lists the paths to check, with TURN credentials for the check.
func (s *Server) connectivity(w http.ResponseWriter, r *http.Request) {
	if s.checker(w, r) == nil {
		return
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
	writeJSON(w, http.StatusOK, info)
}

// connectivityProbe answers one check's offer with the SFU's.
func (s *Server) connectivityProbe(w http.ResponseWriter, r *http.Request) {
	if s.checker(w, r) == nil {
		return
	}
	var req probeRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 32<<10)).Decode(&req); err != nil {
		writeError(w, protocol.CodeBadMessage, "body must be JSON with transport and sdp")
		return
	}
	t := sfu.Transport(req.Transport)
	if t == sfu.TransportRelay && s.cfg.TURN == nil {
		writeError(w, protocol.CodeBadMessage, "no TURN server is configured")
		return
	}
	answer, err := s.cfg.SFU.Probe(req.SDP, t)
	switch {
	case errors.Is(err, sfu.ErrBusy):
		writeError(w, protocol.CodeRateLimited, "too many connection checks right now; try again in a minute")
		return
	case errors.Is(err, sfu.ErrNoTransport):
		writeError(w, protocol.CodeBadMessage, "transport must be one of GET /v1/connectivity's transports")
		return
	case errors.Is(err, sfu.ErrBadSDP):
		writeError(w, protocol.CodeBadMessage, "sdp must be an offer of one data channel")
		return
	case err != nil:
		writeError(w, protocol.CodeInternal, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, probeResponse{SDP: answer})
}
