package signaling

import (
	"testing"

	"iop/rooms"
	"iop/signaling/protocol"
)

// TestCheckInOnlyToStaff: a client's check-in (where they are, their
// callback number) reaches the room's therapists and staff, in the
// participant list and in the waiting list, and nobody else.
func TestCheckInOnlyToStaff(t *testing.T) {
	p := rooms.Participant{ID: "p1", Name: "Client", Role: rooms.RoleClient,
		CheckIn: &rooms.CheckIn{Location: "NY", Private: true, Phone: "+12125550100"}}
	for role, sees := range map[rooms.Role]bool{
		rooms.RoleTherapist: true, rooms.RoleStaff: true, rooms.RoleClient: false, rooms.RoleFamily: false,
	} {
		s := &session{grant: rooms.Grant{Role: role}}
		inList := s.participant(p).CheckIn
		waiting := s.people([]rooms.Participant{p})[0].CheckIn
		if (inList != nil) != sees || (waiting != nil) != sees {
			t.Errorf("%s sees the check-in: %v in the list, %v waiting; want %v", role, inList != nil, waiting != nil, sees)
		}
		if sees && (inList.Phone != "+12125550100" || inList.Location != "NY" || !inList.Private) {
			t.Errorf("%s sees %+v", role, inList)
		}
	}
	s := &session{grant: rooms.Grant{Role: rooms.RoleTherapist}}
	if got := s.participant(rooms.Participant{ID: "p2", Role: rooms.RoleFamily}); got.CheckIn != nil {
		t.Errorf("a check-in out of nothing: %+v", got.CheckIn)
	}
}

// TestWaitingAnswersTheJoinOnce: the first waiting message answers the
// join (re), with the person's place in line; when the line moves, the
// next says the new place and answers nothing.
func TestWaitingAnswersTheJoinOnce(t *testing.T) {
	h := newHouse(t, nil)
	therapist, m := h.join(h.token("t1", rooms.RoleTherapist, "r"), "r")
	if m.Type != protocol.TypeJoined {
		t.Fatalf("therapist: %+v", m)
	}
	first, m := h.join(h.token("c1", rooms.RoleClient, "r"), "r")
	if m.Type != protocol.TypeWaiting || m.Re != "j1" || m.Position != 1 {
		t.Fatalf("first: %+v", m)
	}
	second, m := h.join(h.token("c2", rooms.RoleClient, "r"), "r")
	if m.Type != protocol.TypeWaiting || m.Re != "j1" || m.Position != 2 {
		t.Fatalf("second: %+v", m)
	}
	therapist.waiting(2)
	first.send(protocol.ClientMessage{Type: protocol.TypeLeave})
	m = second.next()
	if m.Type != protocol.TypeWaiting || m.Re != "" || m.Position != 1 {
		t.Fatalf("second once the line moved: %+v", m)
	}
	if m.Room == nil || m.Room.ID != "r" {
		t.Errorf("waiting without its room: %+v", m.Room)
	}
}
