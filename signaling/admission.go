package signaling

// This file holds a session's admission, on the actor: join (token, the
// server's limits, then rooms/admission decides: in, waiting, redirect or
// refused with one code), where the joined person is for the server's
// goroutines, and leave.

import (
	"context"
	"errors"
	"time"

	"github.com/gorilla/websocket"

	"iop/rooms"
	"iop/rooms/admission"
	"iop/rooms/audit"
	"iop/signaling/protocol"
)

// joinTimeout bounds the Redis and room work of one join.
const joinTimeout = 5 * time.Second

// join verifies the token and asks admission to let the person in: into
// the room, waiting or admitted, or to the room's node (redirect), or
// refused with one code. A refused join changes nothing of the session.
func (s *session) join(m *protocol.ClientMessage) error {
	if m.V != protocol.Version {
		return errorf(protocol.CodeBadMessage, "join needs v: 1")
	}
	if len(m.Room) > 256 || len(m.Resume) > 256 {
		return errorf(protocol.CodeBadMessage, "room or resume too long")
	}
	if !s.srv.allowJoin(s.addr) {
		return errorf(protocol.CodeTooManyJoins, "too many joins from your address; try again in a few seconds")
	}
	c, err := s.srv.cfg.Verifier.Verify(m.Token)
	if err != nil {
		return err
	}
	g := c.Grant()
	var checkIn *rooms.CheckIn
	if m.CheckIn != nil {
		ci := rooms.CheckIn(*m.CheckIn)
		if err := ci.Validate(); err != nil {
			return err
		}
		checkIn = &ci
	}
	if !s.srv.reserve(g.Program, g.Sub) {
		ref, _ := admission.RoomRef(admission.Request{Grant: g, Room: m.Room})
		s.srv.record(g, audit.ActionRefuse, ref.ID, "", protocol.CodeNodeFull, "join", s.addr)
		return errorf(protocol.CodeNodeFull, "this server carries as many people as it may; try again in a minute")
	}
	defer s.srv.unreserve() // joined (below) has counted the person by then
	ctx, cancel := context.WithTimeout(s.ctx, joinTimeout)
	defer cancel()
	// The room's first event to this session (joined or waiting) answers
	// the join; it waits in the inbox until join has returned.
	s.joinRe = m.ID
	s.grant = g
	t, err := s.srv.admission.Admit(ctx, admission.Request{Grant: g, Room: m.Room, Resume: m.Resume, ID: s.id, Listener: s, CheckIn: checkIn})
	var redirect *admission.Redirect
	if errors.As(err, &redirect) {
		s.send(protocol.ServerMessage{Type: protocol.TypeRedirect, URL: redirect.URL, Re: m.ID})
		s.closeWith(websocket.CloseNormalClosure, "redirect")
		return nil
	}
	ref, _ := admission.RoomRef(admission.Request{Grant: g, Room: m.Room})
	if err != nil {
		s.joinRe, s.grant = "", rooms.Grant{}
		s.srv.record(g, audit.ActionRefuse, ref.ID, "", errorCode(err), "join", s.addr)
		return err
	}
	s.ticket, s.room = t, t.Room
	s.entered.Store(true)
	s.where.Store(&place{program: g.Program, sub: g.Sub, room: t.Room.Ref().String()})
	s.srv.joined(s, g.Program, g.Sub)
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
	s.srv.record(g, audit.ActionJoin, ref.ID, g.Sub, "", string(g.Role), s.addr)
	s.srv.cfg.Logger.Info("joined", "participant", s.id, "room", ref.ID, "role", string(g.Role))
	return nil
}

// identity returns the joined person's program and id ("" before join);
// safe from any goroutine.
func (s *session) identity() (program, sub string) {
	if p := s.where.Load(); p != nil {
		return p.program, p.sub
	}
	return "", ""
}

// inRoom returns the room the session joined ("program/room"), or ""; safe
// from any goroutine.
func (s *session) inRoom() string {
	if p := s.where.Load(); p != nil {
		return p.room
	}
	return ""
}

// leave releases the room, media and seat after the connection ends.
func (s *session) leave(reason string) {
	s.left = true
	if s.endReason != "" {
		reason = s.endReason
	}
	// A dropped connection's time ends at the last sign of the person: a
	// media packet, an RTCP report, a message or a pong (read before the
	// media closes).
	last := s.LastHeard()
	if s.media != nil {
		s.media.Close()
	}
	if s.ticket != nil {
		if reason != rooms.ReasonDropped {
			last = time.Time{}
		}
		s.ticket.LeaveAt(reason, last)
		s.srv.cfg.Logger.Info("left", "participant", s.id, "room", s.room.ID(), "reason", reason)
	}
}
