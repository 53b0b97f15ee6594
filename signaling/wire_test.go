package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/rooms/admission"
	"iop/rooms/attendance"
	"iop/rooms/audit"
	"iop/rooms/schedule"
	"iop/sfu"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// TestErrorCode: every refusal the domain can give reaches the client as
// the code docs/protocol.md lists for it, also when wrapped on its way up;
// anything else is internal (and its text is not shown, writeError).
func TestErrorCode(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{errorf(protocol.CodeTooLarge, "too large"), protocol.CodeTooLarge},
		{&schedule.JoinError{Code: protocol.CodeTooEarly}, protocol.CodeTooEarly},
		{&schedule.JoinError{Code: protocol.CodeWrongTrack}, protocol.CodeWrongTrack},
		{&schedule.JoinError{Code: schedule.CodeCancelled}, protocol.CodeTooLate},
		{token.ErrUnauthorized, protocol.CodeUnauthorized},
		{admission.ErrInvitationUsed, protocol.CodeUnauthorized},
		{sfu.ErrBadSDP, protocol.CodeBadMessage},
		{admission.ErrBadRoom, protocol.CodeBadMessage},
		{admission.ErrBlocked, protocol.CodeForbidden},
		{rooms.ErrForbidden, protocol.CodeForbidden},
		{rooms.ErrNotHost, protocol.CodeForbidden},
		{admission.ErrRemoved, protocol.CodeRemoved},
		{rooms.ErrNotFound, protocol.CodeNotFound},
		{schedule.ErrNotFound, protocol.CodeNotFound},
		{rooms.ErrRoomFull, protocol.CodeRoomFull},
		{rooms.ErrLocked, protocol.CodeLocked},
		{rooms.ErrNotAdmitted, protocol.CodeNotAdmitted},
		{rooms.ErrEnded, protocol.CodeEnded},
		{rooms.ErrNotEnrolled, protocol.CodeNotEnrolled},
		{rooms.ErrChatOff, protocol.CodeChatOff},
		{schedule.ErrInvalid, protocol.CodeBadMessage},
		{attendance.ErrTargets, protocol.CodeBadMessage},
		{audit.ErrInvalid, protocol.CodeBadMessage},
		{errors.New("redis: connection refused"), protocol.CodeInternal},
	}
	for _, c := range cases {
		if got := errorCode(c.err); got != c.want {
			t.Errorf("%v: %s, want %s", c.err, got, c.want)
		}
		if got := errorCode(fmt.Errorf("join room p1/r1: %w", c.err)); got != c.want {
			t.Errorf("wrapped %v: %s, want %s", c.err, got, c.want)
		}
	}
}

// TestErrorCodesDocumented: every code the protocol package declares has
// its row in docs/protocol.md's table of error codes, so a client author
// can look up whatever the server sends.
func TestErrorCodesDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("protocol/protocol.go")
	if err != nil {
		t.Fatal(err)
	}
	codes := regexp.MustCompile(`(?m)^\s+Code\w+\s*=\s*"([a-z_]+)"`).FindAllSubmatch(src, -1)
	if len(codes) < 20 {
		t.Fatalf("found %d error codes in protocol.go; the pattern no longer matches", len(codes))
	}
	for _, c := range codes {
		if !strings.Contains(string(doc), "| `"+string(c[1])+"` |") {
			t.Errorf("error code %s is not in docs/protocol.md's table", c[1])
		}
	}
}

// TestParticipantOnTheWire: what the room knows of a participant reaches
// the other participants field by field (a wire field left out of the
// translation would always read as zero), and what is never shown to other
// clients (their stable person id, program, cohorts) does not.
func TestParticipantOnTheWire(t *testing.T) {
	p := rooms.Participant{
		ID: "p-7", Sub: "sub-secret-42", Name: "Alex", Role: rooms.RoleClient,
		Audio: true, Video: true, Hand: true, Transport: "tcp",
		Program: "program-secret", Cohorts: []string{"cohort-secret"},
		CheckIn: &rooms.CheckIn{Location: "NY", Private: true, Phone: "+1 555 0100"},
	}
	// A therapist sees everything the wire carries; the breakout group is
	// set from the room's layout (TestRoomOnTheWire, groupIn).
	therapist := &session{grant: rooms.Grant{Role: rooms.RoleTherapist}}
	w := therapist.participant(p)
	w.Group = groupIn(&rooms.Layout{Rooms: 2, Groups: map[string]int{p.ID: 2}}, p.ID)
	v := reflect.ValueOf(w)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("protocol.Participant.%s is not filled from the room's participant", v.Type().Field(i).Name)
		}
	}
	// Another client sees neither the check-in nor the secrets.
	client := &session{grant: rooms.Grant{Role: rooms.RoleClient}}
	seen := client.participant(p)
	if seen.CheckIn != nil {
		t.Errorf("a client sees another client's check-in: %+v", seen.CheckIn)
	}
	b, _ := json.Marshal(protocol.ServerMessage{Type: protocol.TypeParticipantJoined, Participant: &seen,
		Waiting: client.people([]rooms.Participant{p})})
	for _, secret := range []string{p.Sub, p.Program, p.Cohorts[0]} {
		if strings.Contains(string(b), secret) {
			t.Errorf("the wire shows %q to other participants: %s", secret, b)
		}
	}
	if got := client.participants([]rooms.Participant{p, p}); len(got) != 2 || got[1] != seen {
		t.Errorf("participants: %+v", got)
	}
}

// TestRoomOnTheWire: every field of the wire's room object comes from the
// event, so a room update shows its lock, host, auto-admit and chat.
func TestRoomOnTheWire(t *testing.T) {
	e := rooms.Event{Program: "p1", Room: "group-a", RoomKind: rooms.KindGroup, Title: "Group A",
		Locked: true, Host: "p-1", AutoAdmit: true, Chat: true,
		Screen: rooms.Screen{By: "p-2", Allowed: true}, Spotlight: "p-3",
		Breakout: &rooms.Layout{Rooms: 2, Ends: time.Now().Add(time.Minute), Groups: map[string]int{"p-4": 1}}}
	r := roomInfo(e)
	v := reflect.ValueOf(*r)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("protocol.Room.%s is not filled from the room event", v.Type().Field(i).Name)
		}
	}
	if r.ID != "group-a" {
		t.Errorf("room id on the wire is %q, want the id within the program", r.ID)
	}
}

// TestEveryClientTypeHasAnAction: a message type the protocol declares but
// the action table lacks would be refused as unknown_type to every client.
func TestEveryClientTypeHasAnAction(t *testing.T) {
	needs := ActionNeeds()
	for _, typ := range protocol.ClientTypes {
		if _, ok := needs[typ]; !ok {
			t.Errorf("client message %q has no action", typ)
		}
	}
	if len(needs) != len(protocol.ClientTypes) {
		t.Errorf("%d actions for %d client message types", len(needs), len(protocol.ClientTypes))
	}
}
