package main

import (
	"testing"

	"iop/rooms"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// screenOf waits for the next room_updated on s and returns its room.
func screenOf(t *testing.T, s rawSession) *protocol.Room {
	t.Helper()
	m := waitType(t, s.c, protocol.TypeRoomUpdated)
	if m.Room == nil {
		t.Fatalf("%s: room_updated without a room", s.id)
	}
	return m.Room
}

// TestScreenSharingRules is the server's side of issue 15's screen sharing
// and spotlight, through the websocket: a client cannot share until a
// therapist lets clients share (screen_off), nor let themselves, nor stop
// another's share, nor spotlight; one share at a time (screen_busy), the
// host's replacing any; a co-therapist stops a client's share but not the
// host's; everyone, and a later joiner, sees who shares and who is in the
// spotlight; another program's therapist naming the room reaches nobody
// in it; and nobody's camera or microphone state changes with a share.
func TestScreenSharingRules(t *testing.T) {
	n := testNode(t)
	example, other := tenants()
	room := uniqueRoom("screen")
	host := rawJoin(t, n, programToken(t, n, example, "t-host", "Dana", rooms.RoleTherapist, room))
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAutoAdmit, AutoAdmit: ptr(true)}); got != "" {
		t.Fatal(got)
	}
	cot := rawJoin(t, n, programToken(t, n, example, "t-co", "Kim", rooms.RoleTherapist, room))
	alex := rawJoin(t, n, programToken(t, n, example, "c-1", "Alex", rooms.RoleClient, room))
	sam := rawJoin(t, n, programToken(t, n, example, "c-2", "Sam", rooms.RoleClient, room))
	pingDrain(t, host)
	pingDrain(t, cot)
	pingDrain(t, alex)
	pingDrain(t, sam)
	ref := rooms.Ref{Program: example, ID: room}
	before := n.rooms.Get(ref).Participants()

	// A client, before the host lets clients share.
	for what, tc := range map[string]struct {
		m    protocol.ClientMessage
		code string
	}{
		"shares":                  {protocol.ClientMessage{Type: protocol.TypeScreenStart, Stream: "s-alex"}, protocol.CodeScreenOff},
		"lets clients share":      {protocol.ClientMessage{Type: protocol.TypeScreenAllowed, ScreenAllowed: ptr(true)}, protocol.CodeForbidden},
		"spotlights themself":     {protocol.ClientMessage{Type: protocol.TypeSpotlight, Participant: alex.id}, protocol.CodeForbidden},
		"shares a bad stream id":  {protocol.ClientMessage{Type: protocol.TypeScreenStart, Stream: "a b"}, protocol.CodeBadMessage},
		"shares without a stream": {protocol.ClientMessage{Type: protocol.TypeScreenStart}, protocol.CodeBadMessage},
		"stops a share not on":    {protocol.ClientMessage{Type: protocol.TypeScreenStop}, protocol.CodeNotFound},
	} {
		if got := alex.ask(t, tc.m); got != tc.code {
			t.Errorf("a client %s: %q, want %s", what, got, tc.code)
		}
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenAllowed}); got != protocol.CodeBadMessage {
		t.Errorf("screen_allowed without a value: %q, want bad_message", got)
	}

	// The co-therapist shares: everyone sees it.
	if got := cot.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenStart, Stream: "{3f2a-kim}"}); got != "" {
		t.Fatalf("the co-therapist shares: %s", got)
	}
	for _, s := range []rawSession{host, alex, sam} { // the sender's own copy came before the answer
		if r := screenOf(t, s); r.Screen == nil || r.Screen.Participant != cot.id || r.Screen.Stream != cot.id+"~screen" || r.ScreenAllowed {
			t.Errorf("%s sees %+v after the co-therapist's share", s.id, r)
		}
	}
	if got := alex.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenStop, Participant: cot.id}); got != protocol.CodeForbidden {
		t.Errorf("a client stops the co-therapist's share: %q, want forbidden", got)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenAllowed, ScreenAllowed: ptr(true)}); got != "" {
		t.Fatal(got)
	}
	if r := screenOf(t, alex); !r.ScreenAllowed || r.Screen == nil {
		t.Errorf("after the host let clients share a client sees %+v", r)
	}
	if got := alex.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenStart, Stream: "s-alex"}); got != protocol.CodeScreenBusy {
		t.Errorf("a client shares over the co-therapist: %q, want screen_busy", got)
	}
	if got := cot.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenStop}); got != "" {
		t.Fatal(got)
	}
	if got := alex.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenStart, Stream: "s-alex"}); got != "" {
		t.Fatalf("a client shares once let: %s", got)
	}
	if got := sam.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenStop, Participant: alex.id}); got != protocol.CodeForbidden {
		t.Errorf("a client stops another client's share: %q, want forbidden", got)
	}
	if got := cot.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenStop, Participant: alex.id}); got != "" {
		t.Errorf("the co-therapist stops a client's share: %s", got)
	}
	if got := alex.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenStart, Stream: "s-alex"}); got != "" {
		t.Fatal(got)
	}
	pingDrain(t, sam)
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenStart, Stream: "s-dana"}); got != "" {
		t.Fatalf("the host's share over a client's: %s", got)
	}
	if r := screenOf(t, sam); r.Screen == nil || r.Screen.Participant != host.id {
		t.Errorf("after the host's share a client sees %+v", r.Screen)
	}
	if got := cot.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenStop, Participant: host.id}); got != protocol.CodeForbidden {
		t.Errorf("the co-therapist stops the host's share: %q, want forbidden", got)
	}

	// The spotlight.
	if got := cot.ask(t, protocol.ClientMessage{Type: protocol.TypeSpotlight, Participant: "no-such-participant"}); got != protocol.CodeNotFound {
		t.Errorf("spotlight on nobody: %q, want not_found", got)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeSpotlight, Participant: alex.id}); got != "" {
		t.Fatal(got)
	}
	if r := screenOf(t, sam); r.Spotlight != alex.id {
		t.Errorf("after the spotlight a client sees %+v", r)
	}
	late := dial(t, n)
	if err := late.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: programToken(t, n, example, "c-3", "Lee", rooms.RoleClient, room)}); err != nil {
		t.Fatal(err)
	}
	if r := waitType(t, late, protocol.TypeJoined).Room; r.Spotlight != alex.id || r.Screen == nil || r.Screen.Participant != host.id || !r.ScreenAllowed {
		t.Errorf("a later joiner sees %+v", r)
	}
	pingDrain(t, sam)

	// Someone in the waiting room shares nothing.
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAutoAdmit, AutoAdmit: ptr(false)}); got != "" {
		t.Fatal(got)
	}
	code, waiting := joinCode(t, n, programToken(t, n, example, "c-4", "Kai", rooms.RoleClient, room))
	if code != protocol.TypeWaiting {
		t.Fatalf("a client joins after auto-admission was turned off: %s", code)
	}
	if err := waiting.Send(protocol.ClientMessage{Type: protocol.TypeScreenStart, Stream: "s-kai", ID: "w"}); err != nil {
		t.Fatal(err)
	}
	expectError(t, waiting, protocol.CodeNotAdmitted)
	pingDrain(t, sam)

	// Another program's therapist naming the room lands in their own
	// room of that id and reaches nobody here.
	intruder := dial(t, n)
	if err := intruder.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Room: room,
		Token: programToken(t, n, other, "t-other", "Mallory", rooms.RoleTherapist, token.AnyRoom)}); err != nil {
		t.Fatal(err)
	}
	mallory := rawSession{c: intruder, id: waitType(t, intruder, protocol.TypeJoined).You.ID}
	for what, m := range map[string]protocol.ClientMessage{
		"stops the host's share":   {Type: protocol.TypeScreenStop, Participant: host.id},
		"spotlights a client here": {Type: protocol.TypeSpotlight, Participant: alex.id},
	} {
		if got := mallory.ask(t, m); got != protocol.CodeNotFound {
			t.Errorf("another program's therapist %s: %q, want not_found", what, got)
		}
	}
	if got := mallory.ask(t, protocol.ClientMessage{Type: protocol.TypeScreenAllowed, ScreenAllowed: ptr(false)}); got != "" {
		t.Errorf("another program's therapist in their own room: %q", got)
	}
	for _, m := range pingDrain(t, sam) {
		if m.Type == protocol.TypeRoomUpdated {
			t.Errorf("another program's therapist changed this room: %+v", m.Room)
		}
	}
	if r := n.rooms.Get(ref); r == nil || len(r.Participants()) != 5 { // Kai waits
		t.Fatal("the room lost someone")
	}
	after := n.rooms.Get(ref).Participants()
	for _, b := range before {
		for _, a := range after {
			if a.ID == b.ID && (a.Audio != b.Audio || a.Video != b.Video) {
				t.Errorf("%s's microphone or camera changed with a share: %+v -> %+v", a.Name, b, a)
			}
		}
	}
}
