package signaling

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"iop/rooms"
	"iop/signaling/protocol"
)

// counts is what the server holds of people and sockets.
type counts struct{ sessions, present, pending, people, unjoined int }

func (h *house) counts() counts {
	h.srv.mu.Lock()
	defer h.srv.mu.Unlock()
	return counts{len(h.srv.sessions), h.srv.present, h.srv.pending, len(h.srv.people), len(h.srv.unjoined)}
}

// settle waits until the server's counts are want (a closed socket is
// forgotten once its goroutines end).
func (h *house) settle(want counts) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for h.counts() != want {
		if time.Now().After(deadline) {
			h.t.Fatalf("server holds %+v, want %+v", h.counts(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestJoinRefused: a join refused for each reason gets the code
// docs/protocol.md gives it, answering the join, and a close; the room, the
// server's counts of people and sockets are as before, and the person can
// still join once the reason is gone.
func TestJoinRefused(t *testing.T) {
	h := newHouse(t, nil)
	therapist, joined := h.join(h.token("t1", rooms.RoleTherapist, "r"), "r")
	if joined.Type != protocol.TypeJoined {
		t.Fatalf("therapist: %+v", joined)
	}
	room := h.rooms.Get(rooms.Ref{Program: h.program, ID: "r"})
	before := h.counts()
	good := h.token("c1", rooms.RoleClient, "r")
	join := func(edit func(*protocol.ClientMessage)) protocol.ClientMessage {
		m := protocol.ClientMessage{Type: protocol.TypeJoin, ID: "j1", V: protocol.Version, Token: good, Room: "r"}
		edit(&m)
		return m
	}
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func() (undo func())
		msg   protocol.ClientMessage
		code  string
	}{
		{"old version", nil, join(func(m *protocol.ClientMessage) { m.V = 2 }), protocol.CodeBadMessage},
		{"long room", nil, join(func(m *protocol.ClientMessage) { m.Room = strings.Repeat("r", 257) }), protocol.CodeBadMessage},
		{"bad token", nil, join(func(m *protocol.ClientMessage) { m.Token = good[:len(good)-4] + "AAAA" }), protocol.CodeUnauthorized},
		{"other room's token", nil, join(func(m *protocol.ClientMessage) { m.Token = h.token("c1", rooms.RoleClient, "other"); m.Room = "r" }), protocol.CodeForbidden},
		{"not a join", nil, protocol.ClientMessage{Type: protocol.TypePing, ID: "j1"}, protocol.CodeNotJoined},
		{"blocked", func() func() {
			if err := h.store.Block(ctx, h.program, "c1"); err != nil {
				t.Fatal(err)
			}
			return func() { _ = h.store.Unblock(ctx, h.program, "c1") }
		}, join(func(*protocol.ClientMessage) {}), protocol.CodeForbidden},
		{"removed", func() func() {
			if err := h.store.RevokeFromRoom(ctx, h.program+"/r", "c1", time.Minute); err != nil {
				t.Fatal(err)
			}
			return func() { h.store.Redis.Del(ctx, revokedKeys(t, h, "c1")...) }
		}, join(func(*protocol.ClientMessage) {}), protocol.CodeRemoved},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				defer c.setup()()
			}
			p := h.dial()
			p.send(c.msg)
			m := p.next()
			if m.Type != protocol.TypeError || m.Code != c.code || m.Re != "j1" {
				t.Fatalf("got %+v, want error %s answering j1", m, c.code)
			}
			if code := p.closed(); code != websocket.ClosePolicyViolation {
				t.Errorf("closed with %d, want %d", code, websocket.ClosePolicyViolation)
			}
			h.settle(before)
			if ps := room.Participants(); len(ps) != 1 || len(room.WaitingList()) != 0 {
				t.Errorf("room holds %d admitted and %d waiting, want the therapist alone", len(ps), len(room.WaitingList()))
			}
		})
	}
	// Nothing of the refusals stays: the same person knocks and waits.
	_, m := h.join(good, "r")
	if m.Type != protocol.TypeWaiting || m.Re != "j1" || m.Position != 1 {
		t.Fatalf("client after the refusals: %+v", m)
	}
	if w := therapist.waiting(1); w[0].Name != "Person c1" {
		t.Fatalf("therapist's waiting list: %+v", w)
	}
}

// waiting reads up to a waiting list of n people and returns it.
func (p *peer) waiting(n int) []protocol.Person {
	p.t.Helper()
	for {
		got := p.until(protocol.TypeWaitingList)
		if w := got[len(got)-1].Waiting; len(w) == n {
			return w
		}
	}
}

// revokedKeys finds the removal keys of sub in the house's program.
func revokedKeys(t *testing.T, h *house, sub string) []string {
	keys, err := h.store.Redis.Keys(context.Background(), "*"+h.program+"*"+sub+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no removal key of %s: %v", sub, err)
	}
	return keys
}

// TestJoinRefusedNodeFull: a node carrying as many people as it may
// refuses the next person with node_full and keeps no place for them.
func TestJoinRefusedNodeFull(t *testing.T) {
	h := newHouse(t, func(c *Config) { c.MaxParticipants = 1 })
	if _, m := h.join(h.token("t1", rooms.RoleTherapist, "r"), "r"); m.Type != protocol.TypeJoined {
		t.Fatalf("therapist: %+v", m)
	}
	before := h.counts()
	p, m := h.join(h.token("c1", rooms.RoleClient, "r"), "r")
	if m.Type != protocol.TypeError || m.Code != protocol.CodeNodeFull || m.Re != "j1" {
		t.Fatalf("got %+v, want node_full", m)
	}
	p.closed()
	h.settle(before)
	if got := h.srv.Limits().RefusedNodeFull; got != 1 {
		t.Errorf("refused node full %d times, want 1", got)
	}
}

// TestEventsStayInTheirRoom: what happens in a room of the same id in
// another program, or in another room of the same program, never reaches
// the socket, also when such an event is handed to the session.
func TestEventsStayInTheirRoom(t *testing.T) {
	h := newHouse(t, nil)
	a, m := h.join(h.token("a", rooms.RoleTherapist, "r"), "r")
	if m.Type != protocol.TypeJoined {
		t.Fatalf("a: %+v", m)
	}
	other := h.program + "-other"
	b, _ := h.join(h.tokenIn(other, "b", rooms.RoleTherapist, "r"), "r")
	c, _ := h.join(h.token("c", rooms.RoleTherapist, "s"), "s")
	for _, p := range []*peer{b, c} {
		p.send(protocol.ClientMessage{Type: protocol.TypeChat, Text: "not for a"})
		if got := p.until(protocol.TypeChat); got[len(got)-1].Text != "not for a" {
			t.Fatalf("chat: %+v", got)
		}
	}
	s := h.sessionOf(m.You.ID)
	for _, e := range []rooms.Event{
		{Type: rooms.EventChat, Program: other, Room: "r", Text: "forged", Participant: rooms.Participant{ID: "x"}},
		{Type: rooms.EventChat, Program: h.program, Room: "s", Text: "forged", Participant: rooms.Participant{ID: "x"}},
		{Type: rooms.EventEnded, Program: other, Room: "r"},
		{Type: rooms.EventRemoved, Program: h.program, Room: "s", Participant: rooms.Participant{ID: m.You.ID}},
	} {
		s.RoomEvent(e)
	}
	a.send(protocol.ClientMessage{Type: protocol.TypeChat, Text: "for a"})
	a.send(protocol.ClientMessage{Type: protocol.TypePing, ID: "p1"})
	for _, got := range a.until(protocol.TypePong) {
		switch {
		case got.Type == protocol.TypeChat && got.Text == "for a":
		case got.Type == protocol.TypeChat, got.Type == protocol.TypeEnded, got.Type == protocol.TypeRemoved, got.Type == protocol.TypeError:
			t.Errorf("a got %+v from another room", got)
		}
	}
}

// admitted returns a therapist and a client admitted in room r, and the
// client's participant id.
func admitted(t *testing.T, h *house) (therapist, client *peer, therapistID, clientID string) {
	therapist, m := h.join(h.token("t1", rooms.RoleTherapist, "r"), "r")
	if m.Type != protocol.TypeJoined {
		t.Fatalf("therapist: %+v", m)
	}
	therapistID = m.You.ID
	client, _ = h.join(h.token("c1", rooms.RoleClient, "r"), "r")
	waiting := therapist.waiting(1)
	therapist.send(protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: waiting[0].ID})
	got := client.until(protocol.TypeJoined)
	return therapist, client, therapistID, got[len(got)-1].You.ID
}

// TestBusySessionDoesNotHoldTheRoom: while a session's actor is busy, the
// room's events for it wait in its inbox and the room goes on; they reach
// the client in order once it is free. A session whose inbox overflows is
// dropped as too slow, and the room and the others go on.
func TestBusySessionDoesNotHoldTheRoom(t *testing.T) {
	h := newHouse(t, nil)
	therapist, client, therapistID, clientID := admitted(t, h)
	room := h.rooms.Get(rooms.Ref{Program: h.program, ID: "r"})
	s := h.sessionOf(clientID)

	busy := func() func() { return busy(t, s) }
	// updates changes the therapist's hand n times under the room's lock
	// and reports whether the room came back from all of them.
	updates := func(n int) bool {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range n {
				if _, err := room.Update(therapistID, func(p *rooms.Participant) { p.Hand = i%2 == 0 }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		select {
		case <-done:
			return true
		case <-time.After(10 * time.Second):
			return false
		}
	}

	release := busy()
	if !updates(20) {
		t.Fatal("the room is held by a busy session")
	}
	release()
	for i := range 20 {
		var m protocol.ServerMessage
		for m.Type != protocol.TypeParticipantUpdated {
			m = client.next()
		}
		if m.Participant.ID != therapistID || m.Participant.Hand != (i%2 == 0) {
			t.Fatalf("update %d: %+v, want the therapist's hand %v", i, m.Participant, i%2 == 0)
		}
	}

	release = busy()
	if !updates(inboxSize + 10) {
		t.Fatal("the room is held by a session whose inbox is full")
	}
	if code := client.closed(); code != -1 && code != websocket.CloseAbnormalClosure {
		t.Errorf("the slow client's socket ended with close %d, want dropped", code)
	}
	release()
	therapist.send(protocol.ClientMessage{Type: protocol.TypePing, ID: "after"})
	if got := therapist.until(protocol.TypePong); got[len(got)-1].Re != "after" {
		t.Fatalf("therapist after the drop: %+v", got[len(got)-1])
	}
}

// busy keeps s's actor busy until release is called.
func busy(t *testing.T, s *session) (release func()) {
	t.Helper()
	hold, held := make(chan struct{}), make(chan struct{})
	if !s.post(func() { close(held); <-hold }) {
		t.Fatal("session ended")
	}
	<-held
	return func() { close(hold) }
}

// TestBusySessionDoesNotHoldTheMediaPlane: the media plane's calls into a
// session (sfu.Signaler) return while its actor is busy, and what they
// carry reaches the client in order once it is free.
func TestBusySessionDoesNotHoldTheMediaPlane(t *testing.T) {
	h := newHouse(t, nil)
	_, client, _, clientID := admitted(t, h)
	s := h.sessionOf(clientID)
	release := busy(t, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			s.SendEncodings(strconv.Itoa(i), []string{"h"}, []string{"l"})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the media plane waits for a busy session")
	}
	release()
	for i := range 50 {
		var m protocol.ServerMessage
		for m.Type != protocol.TypeEncodings {
			m = client.next()
		}
		if m.Mid != strconv.Itoa(i) {
			t.Fatalf("encodings %d: mid %q", i, m.Mid)
		}
	}
}
