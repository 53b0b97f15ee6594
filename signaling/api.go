package signaling

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"iop/rooms"
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
