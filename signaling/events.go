package signaling

// This file holds what reaches a session from outside its socket: room
// events (RoomEvent, called under the room's lock, posts them to the
// actor, which translates them into wire messages) and the server's
// kick, move and replace; and the translation of participants, people and
// check-ins into their wire types, as this session's person may see them.

import (
	"time"

	"github.com/gorilla/websocket"

	"iop/rooms"
	"iop/sfu"
	"iop/signaling/protocol"
)

var _ rooms.Listener = (*session)(nil)

// RoomEvent implements rooms.Listener. It runs under the room's lock, so
// it never waits for the actor: the event joins the inbox, and a client
// whose inbox is full is too slow and is dropped (post).
func (s *session) RoomEvent(e rooms.Event) {
	s.post(func() { s.roomEvent(e) })
}

// roomEvent turns a room event into messages for this participant, on the
// actor. Events of any room but the one joined are not this socket's.
func (s *session) roomEvent(e rooms.Event) {
	if s.room == nil || s.left {
		return
	}
	if ref := s.room.Ref(); e.Program != ref.Program || e.Room != ref.ID {
		return
	}
	self := e.Participant.ID == s.id
	switch {
	case e.Type == rooms.EventJoined && self:
		s.admittedEvent(e)
	case e.Type == rooms.EventWaiting && self:
		m := protocol.ServerMessage{Type: protocol.TypeWaiting, Room: roomInfo(e), Position: e.Position}
		if !s.waitingSent {
			m.Re = s.joinRe // the first answers the join; later ones say the line moved
			s.waitingSent = true
		}
		s.send(m)
	case e.Type == rooms.EventJoined:
		p := s.participant(e.Participant)
		p.Group = groupIn(e.Breakout, p.ID)
		s.send(protocol.ServerMessage{Type: protocol.TypeParticipantJoined, Participant: &p})
	case e.Type == rooms.EventWaitingList:
		s.send(protocol.ServerMessage{Type: protocol.TypeWaitingList, Waiting: s.people(e.Waiting)})
	case e.Type == rooms.EventUpdated:
		p := s.participant(e.Participant)
		p.Group = groupIn(e.Breakout, p.ID)
		s.send(protocol.ServerMessage{Type: protocol.TypeParticipantUpdated, Participant: &p})
	case e.Type == rooms.EventMuted && self:
		s.setForwarding(e.Kind, false)
		s.send(protocol.ServerMessage{Type: protocol.TypeMuted, Kind: e.Kind, By: e.By.Name})
	case e.Type == rooms.EventLeft:
		reason := e.Reason
		if reason == rooms.ReasonEnded || reason == rooms.ReasonMoved {
			reason = rooms.ReasonLeft
		}
		s.send(protocol.ServerMessage{Type: protocol.TypeParticipantLeft, ID: e.Participant.ID, Reason: reason})
	case e.Type == rooms.EventRemoved && self && e.Reason == rooms.ReasonReplaced:
		s.replacedNow() // silent, and the person is back on a new connection
	case e.Type == rooms.EventRemoved && self && e.Reason == rooms.ReasonMoved:
		s.endReason = rooms.ReasonMoved
		s.fail(protocol.CodeMoved, "you joined another session; you are no longer in this one", "", websocket.ClosePolicyViolation)
	case e.Type == rooms.EventRemoved && self:
		s.endReason = rooms.ReasonRemoved
		s.send(protocol.ServerMessage{Type: protocol.TypeRemoved, Reason: e.Reason})
		s.closeWith(websocket.CloseNormalClosure, "removed")
	case e.Type == rooms.EventRoomUpdated:
		if e.Change == rooms.ChangeScreen {
			s.presenting(e.Screen)
		}
		s.send(protocol.ServerMessage{Type: protocol.TypeRoomUpdated, Room: roomInfo(e)})
	case e.Type == rooms.EventChat:
		s.send(protocol.ServerMessage{
			Type: protocol.TypeChat, MessageID: e.MessageID, Text: e.Text, Private: e.Private, At: e.At.UTC(),
			From: &protocol.Person{ID: e.Participant.ID, Name: e.Participant.Name, Role: string(e.Participant.Role)},
		})
	case e.Type == rooms.EventBreakout:
		s.breakoutEvent(e)
	case e.Type == rooms.EventChatRemoved:
		s.send(protocol.ServerMessage{Type: protocol.TypeChatRemoved, MessageID: e.MessageID})
	case e.Type == rooms.EventTurnedAway:
		p := s.participant(e.Participant)
		s.send(protocol.ServerMessage{Type: protocol.TypeTurnedAway, Participant: &p, Reason: e.Reason})
	case e.Type == rooms.EventEnded:
		s.endReason = rooms.ReasonEnded
		s.send(protocol.ServerMessage{Type: protocol.TypeEnded})
		s.closeWith(websocket.CloseNormalClosure, "ended")
	}
}

// admittedEvent sends joined (and a therapist's waiting list) and starts
// the participant's media.
func (s *session) admittedEvent(e rooms.Event) {
	m := protocol.ServerMessage{
		Type:         protocol.TypeJoined,
		You:          &protocol.Person{ID: s.id, Name: e.Participant.Name, Role: string(e.Participant.Role)},
		Room:         roomInfo(e),
		Participants: s.participants(e.Others),
		ICEServers:   s.srv.iceServers(s.id, s.srv.turnExpiry(e.Ends, time.Now())),
		Resume:       e.Resume,
	}
	for i := range m.Participants {
		m.Participants[i].Group = groupIn(e.Breakout, m.Participants[i].ID)
	}
	if e.By.ID == "" {
		m.Re = s.joinRe // answers the join; after an admit it answers nobody's message
	}
	s.admitted = true
	s.group = groupIn(e.Breakout, s.id)
	s.send(m)
	if e.Participant.Role == rooms.RoleTherapist {
		s.send(protocol.ServerMessage{Type: protocol.TypeWaitingList, Waiting: s.people(e.Waiting)})
	}
	s.startMediaFor(rooms.Ref{Program: e.Program, ID: e.Room}.String())
}

// move sends the participant to the room's node: a redirect, then close;
// they count as dropped so that their return continues seat and minutes.
// Safe from any goroutine.
func (s *session) move(url string) {
	s.post(func() {
		s.endReason = rooms.ReasonDropped
		s.send(protocol.ServerMessage{Type: protocol.TypeRedirect, URL: url})
		s.closeWith(websocket.CloseNormalClosure, "redirect")
	})
}

// replaced closes a socket the same person has replaced with a newer one
// beyond the per-person cap; safe from any goroutine.
func (s *session) replaced() {
	s.post(s.replacedNow)
}

// replacedNow closes the replaced socket, on the actor; they count as
// dropped (their newer socket carries on).
func (s *session) replacedNow() {
	s.endReason = rooms.ReasonDropped
	s.cut.Store(true)
	s.fail(protocol.CodeReplaced, "you opened this session in another window or device; this one is closed", "", websocket.ClosePolicyViolation)
}

// kick ends a live session from outside (a program-wide block); safe from
// any goroutine.
func (s *session) kick(reason string) {
	s.post(func() {
		s.endReason = rooms.ReasonRemoved
		s.send(protocol.ServerMessage{Type: protocol.TypeRemoved, Reason: reason})
		s.closeWith(websocket.CloseNormalClosure, "removed")
	})
}

// roomInfo describes the room as the event saw it.
func roomInfo(e rooms.Event) *protocol.Room {
	r := &protocol.Room{ID: e.Room, Kind: string(e.RoomKind), Title: e.Title, Locked: e.Locked, Host: e.Host, AutoAdmit: e.AutoAdmit, Chat: e.Chat,
		ScreenAllowed: e.Screen.Allowed, Spotlight: e.Spotlight, Breakout: breakoutInfo(e.Breakout)}
	if e.Screen.By != "" {
		r.Screen = &protocol.Screen{Participant: e.Screen.By, Stream: sfu.ScreenStreamID(e.Screen.By)}
	}
	return r
}

// participant describes p to this session's person: a client's check-in
// only to the room's therapists and staff.
func (s *session) participant(p rooms.Participant) protocol.Participant {
	return protocol.Participant{ID: p.ID, Name: p.Name, Role: string(p.Role), Audio: p.Audio, Video: p.Video, Hand: p.Hand, Transport: p.Transport, CheckIn: s.checkIn(p)}
}

func (s *session) participants(ps []rooms.Participant) []protocol.Participant {
	out := make([]protocol.Participant, len(ps))
	for i, p := range ps {
		out[i] = s.participant(p)
	}
	return out
}

func (s *session) people(ps []rooms.Participant) []protocol.Person {
	out := make([]protocol.Person, len(ps))
	for i, p := range ps {
		out[i] = protocol.Person{ID: p.ID, Name: p.Name, Role: string(p.Role), CheckIn: s.checkIn(p)}
	}
	return out
}

// checkIn is p's check-in as this session's person may see it: the room's
// therapists and staff see it, nobody else.
func (s *session) checkIn(p rooms.Participant) *protocol.CheckIn {
	if p.CheckIn == nil || !s.grant.Role.Staff() {
		return nil
	}
	c := protocol.CheckIn(*p.CheckIn)
	return &c
}
