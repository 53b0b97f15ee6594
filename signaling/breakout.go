package signaling

import (
	"iop/rooms"
	"iop/signaling/protocol"
)

// maxAssign bounds a by-hand split: more entries than a room seats people.
const maxAssign = 64

// breakout handles the therapists' breakout-room messages; the room's host
// rule decides who may move whom (rooms/breakout.go).
func breakout(s *session, m *protocol.ClientMessage) (bool, error) {
	if !s.isAdmitted() {
		return false, errorf(protocol.CodeNotAdmitted, "you are in the waiting room")
	}
	switch m.Type {
	case protocol.TypeBreakoutOpen:
		if m.Rooms < 1 || m.Rooms > rooms.MaxBreakouts {
			return false, refuse(protocol.CodeBadMessage, "breakout_open needs rooms from 1 to %d", rooms.MaxBreakouts)
		}
		if m.Seconds < 0 || m.Seconds > int(rooms.MaxBreakoutTime.Seconds()) {
			return false, refuse(protocol.CodeBadMessage, "breakout_open seconds runs from 0 (no timer) to %d", int(rooms.MaxBreakoutTime.Seconds()))
		}
		if len(m.Assign) > maxAssign {
			return false, errorf(protocol.CodeBadMessage, "breakout_open assigns too many people")
		}
		return false, s.room.OpenBreakouts(s.id, rooms.Split{Rooms: m.Rooms, Assign: m.Assign, Seconds: m.Seconds})
	case protocol.TypeBreakoutMove:
		if m.Participant == "" || m.Group == nil {
			return false, errorf(protocol.CodeBadMessage, "breakout_move needs participant and group")
		}
		return false, s.room.MoveToBreakout(s.id, m.Participant, *m.Group)
	case protocol.TypeBreakoutVisit:
		if m.Group == nil {
			return false, errorf(protocol.CodeBadMessage, "breakout_visit needs group (0: the main room)")
		}
		return false, s.room.VisitBreakout(s.id, *m.Group)
	case protocol.TypeBreakoutClose:
		return false, s.room.CloseBreakouts(s.id)
	}
	return false, nil
}

// breakoutInfo is the layout as the protocol carries it, or nil.
func breakoutInfo(l *rooms.Layout) *protocol.Breakout {
	if l == nil {
		return nil
	}
	return &protocol.Breakout{Rooms: l.Rooms, Ends: l.Ends.UTC(), Groups: l.Groups}
}

// groupIn is the breakout of participant id in layout l (0: main room).
func groupIn(l *rooms.Layout, id string) int {
	if l == nil {
		return 0
	}
	return l.Groups[id]
}

// breakoutEvent tells the client of a change of the breakout rooms and
// moves its media to its group; on the actor.
func (s *session) breakoutEvent(e rooms.Event) {
	m := protocol.ServerMessage{Type: protocol.TypeBreakout, Breakout: breakoutInfo(e.Breakout), Change: string(e.Change), By: e.By.Name}
	if e.Change == rooms.ChangeBreakoutMove || e.Change == rooms.ChangeBreakoutVisit {
		m.ID = e.Participant.ID
	}
	s.send(m)
	s.setGroup(groupIn(e.Breakout, s.id))
}

// setGroup records the participant's group and moves its media there, now
// or once the media has started (adopt); on the actor.
func (s *session) setGroup(g int) {
	if s.group == g {
		return
	}
	s.group = g
	if s.media != nil {
		s.media.SetGroup(g)
	}
}
