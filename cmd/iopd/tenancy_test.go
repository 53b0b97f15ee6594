package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/audit"
	"iop/signaling/client"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// The regression tests of "Programs are tenants": each reproduction of the
// issue, through the real server (websocket, pion peers, Redis).

// tenants makes two fresh programs, so that attendance read back belongs
// to this test run only.
func tenants() (example, other string) {
	id := randomHex(3)
	return "example-" + id, "other-" + id
}

// TestTenancyOtherProgramsTherapist is reproductions 1 and 2: a therapist
// of another program with a token for any room names a room where a
// program's client is in session. They land in their own program's room
// of that id: they see and hear nobody, cannot admit, mute, remove or lock
// anyone there, and the session's attendance stays in its own program,
// whose staff see it and the other program's staff do not.
func TestTenancyOtherProgramsTherapist(t *testing.T) {
	n := testNode(t)
	example, other := tenants()
	room := uniqueRoom("ind")
	ther, _ := faultJoin(t, n.url, programToken(t, n, example, "t-ex", "Dana", rooms.RoleTherapist, room), true)
	alex, _ := faultJoin(t, n.url, programToken(t, n, example, "c-ex", "Alex", rooms.RoleClient, room), false)
	eventually(t, 20*time.Second, "the therapist and the client in a call", func() (bool, string) {
		ok1, s1 := receivesFrom(ther, 20, alex)
		ok2, s2 := receivesFrom(alex, 20, ther)
		return ok1 && ok2, s1 + "; " + s2
	})
	theirs := watchEvents(ther)
	clients := watchEvents(alex)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	tok := programToken(t, n, other, "t-other", "Mallory", rooms.RoleTherapist, token.AnyRoom)
	intruder, err := client.Join(ctx, n.url, tok, client.Options{Room: room, AutoAdmit: true})
	if err != nil {
		t.Fatalf("the other program's therapist joining their own room of that id: %v", err)
	}
	t.Cleanup(intruder.Close)
	if ps := intruder.Joined().Participants; len(ps) != 0 {
		t.Fatalf("the other program's therapist sees %+v in the room", ps)
	}
	for _, m := range []protocol.ClientMessage{
		{Type: protocol.TypeAdmit, Participant: alex.ID(), ID: "admit"},
		{Type: protocol.TypeMute, Participant: alex.ID(), Kind: "audio", ID: "mute"},
		{Type: protocol.TypeRemove, Participant: alex.ID(), ID: "remove"},
		{Type: protocol.TypeMute, Participant: ther.ID(), Kind: "video", ID: "mute-host"},
	} {
		if err := intruder.Send(m); err != nil {
			t.Fatal(err)
		}
		got := waitEvent(t, intruder, 10*time.Second, "the answer to "+m.ID, func(s protocol.ServerMessage) bool {
			return s.Type == protocol.TypeError && s.Re == m.ID
		})
		if got.Code != protocol.CodeNotFound {
			t.Errorf("%s of the other program's client: %s, want not_found", m.ID, got.Code)
		}
	}
	if err := intruder.Send(protocol.ClientMessage{Type: protocol.TypeLock, Locked: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // what would have reached them has by now
	if got := intruder.Received(); len(got) != 0 {
		t.Errorf("the other program's therapist received media: %v", keys(got))
	}
	for who, l := range map[string]*eventLog{"the therapist": theirs, "the client": clients} {
		if l.has(func(m protocol.ServerMessage) bool {
			switch m.Type {
			case protocol.TypeParticipantJoined:
				return m.Participant.ID == intruder.ID()
			case protocol.TypeRoomUpdated:
				return m.Room.Locked
			}
			return m.Type == protocol.TypeMuted || m.Type == protocol.TypeRemoved
		}) {
			t.Errorf("%s was reached by the other program's therapist", who)
		}
	}
	code, late := joinCode(t, n, programToken(t, n, example, "c-late", "Sam", rooms.RoleClient, room))
	if code != protocol.TypeWaiting {
		t.Errorf("a client of the program after the other program's lock: %s, want waiting (not locked)", code)
	}
	_ = late.Close()

	// Reproduction 2: each person's minutes in their own program.
	intruder.Close()
	alex.Close()
	ther.Close()
	eventually(t, 10*time.Second, "everyone left", func() (bool, string) {
		return n.rooms.Get(rooms.Ref{Program: example, ID: room}) == nil, "the room is still open"
	})
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := n.recorder.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	exStaff := programToken(t, n, example, "st-ex", "Billing", rooms.RoleStaff, token.AnyRoom)
	otherStaff := programToken(t, n, other, "st-other", "Billing", rooms.RoleStaff, token.AnyRoom)
	mine, status := faultRoster(t, n.url, room, exStaff)
	if status != http.StatusOK || rosterPerson(mine, "c-ex") == nil || rosterPerson(mine, "t-ex") == nil || rosterPerson(mine, "t-other") != nil {
		t.Errorf("the program's roster (%d): %+v, want its therapist and client only", status, mine.People)
	}
	theirRoster, status := faultRoster(t, n.url, room, otherStaff)
	if status != http.StatusOK || rosterPerson(theirRoster, "c-ex") != nil || rosterPerson(theirRoster, "t-ex") != nil {
		t.Errorf("the other program's roster (%d) shows the program's people: %+v", status, theirRoster.People)
	}
	week := attendance.WeekOf(time.Now(), time.UTC).String()
	for _, tc := range []struct {
		staff, program string
		has, hasNot    string
	}{
		{exStaff, example, "c-ex", "t-other"},
		{otherStaff, other, "t-other", "c-ex"},
	} {
		body := getCSV(t, n, "/v1/attendance/programs/"+tc.program+"/weeks/"+week+".csv", tc.staff)
		if !strings.Contains(body, tc.has) || strings.Contains(body, tc.hasNot) {
			t.Errorf("%s's billing CSV: want %s and not %s:\n%s", tc.program, tc.has, tc.hasNot, body)
		}
	}
	if status := faultGet(t, n.url, "/v1/attendance/programs/"+example+"/weeks/"+week, otherStaff, &map[string]any{}); status != http.StatusForbidden {
		t.Errorf("the other program's staff reading the program's week: %d, want 403", status)
	}
}

func ptr[T any](v T) *T { return &v }

// getCSV reads a CSV export with a bearer token and fails unless it is 200.
func getCSV(t *testing.T, n *node, path, bearer string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// rawSession is a bare websocket joined to a room, for precise answers.
type rawSession struct {
	c  *client.Conn
	id string
}

// rawJoin joins tok over a bare socket and returns once joined.
func rawJoin(t *testing.T, n *node, tok string) rawSession {
	t.Helper()
	c := dial(t, n)
	if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: tok}); err != nil {
		t.Fatal(err)
	}
	m := waitType(t, c, protocol.TypeJoined)
	return rawSession{c: c, id: m.You.ID}
}

// ask sends m with an id and returns the error code of its answer, or ""
// when no error answered it within a second (the action went through).
func (s rawSession) ask(t *testing.T, m protocol.ClientMessage) string {
	t.Helper()
	m.ID = "q-" + randomHex(3)
	if err := s.c.Send(m); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Send(protocol.ClientMessage{Type: protocol.TypePing, ID: m.ID + "-ping"}); err != nil {
		t.Fatal(err)
	}
	for {
		got, err := s.c.Read(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for the answer to %s: %v", m.Type, err)
		}
		switch {
		case got.Type == protocol.TypeError && got.Re == m.ID:
			return got.Code
		case got.Type == protocol.TypePong && got.Re == m.ID+"-ping":
			return ""
		}
	}
}

// TestTenancyHostRule is reproduction 3: a co-therapist cannot remove or
// mute the session's host (nor lock them out), moderates clients only, and
// the host hands over; the removed-for-24-hours takeover is gone.
func TestTenancyHostRule(t *testing.T) {
	n := testNode(t)
	example, _ := tenants()
	room := uniqueRoom("host")
	host := rawJoin(t, n, programToken(t, n, example, "t-host", "Dana", rooms.RoleTherapist, room))
	co := rawJoin(t, n, programToken(t, n, example, "t-co", "Kim", rooms.RoleTherapist, room))
	kim2 := rawJoin(t, n, programToken(t, n, example, "t-co2", "Lee", rooms.RoleTherapist, room))
	code, cl := joinCode(t, n, programToken(t, n, example, "c-1", "Alex", rooms.RoleClient, room))
	if code != protocol.TypeWaiting {
		t.Fatalf("client: %s", code)
	}
	if got := co.ask(t, protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: "*"}); got != "" {
		t.Fatalf("a co-therapist admitting: %s", got)
	}
	alex := waitType(t, cl, protocol.TypeJoined)
	if alex.Room.Host != host.id {
		t.Errorf("joined names host %q, want the first therapist %q", alex.Room.Host, host.id)
	}
	for _, tc := range []struct {
		what string
		m    protocol.ClientMessage
	}{
		{"remove the host", protocol.ClientMessage{Type: protocol.TypeRemove, Participant: host.id}},
		{"mute the host", protocol.ClientMessage{Type: protocol.TypeMute, Participant: host.id, Kind: "audio"}},
		{"remove a co-therapist", protocol.ClientMessage{Type: protocol.TypeRemove, Participant: kim2.id}},
		{"end the session", protocol.ClientMessage{Type: protocol.TypeEnd}},
		{"take the host role", protocol.ClientMessage{Type: protocol.TypeHost, Participant: co.id}},
	} {
		if got := co.ask(t, tc.m); got != protocol.CodeForbidden {
			t.Errorf("a co-therapist may %s: %q, want forbidden", tc.what, got)
		}
	}
	if got := co.ask(t, protocol.ClientMessage{Type: protocol.TypeMute, Participant: alex.You.ID, Kind: "audio"}); got != "" {
		t.Errorf("a co-therapist muting a client: %s", got)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeHost, Participant: alex.You.ID}); got != protocol.CodeForbidden {
		t.Errorf("handing the host role to a client: %q, want forbidden", got)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeHost, Participant: co.id}); got != "" {
		t.Fatalf("the host hands over: %s", got)
	}
	upd := waitType(t, cl, protocol.TypeRoomUpdated)
	if upd.Room == nil || upd.Room.Host != co.id {
		t.Errorf("after the hand-over the client sees %+v, want host %s", upd.Room, co.id)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeRemove, Participant: co.id}); got != protocol.CodeForbidden {
		t.Errorf("the old host removing the new one: %q, want forbidden", got)
	}
	if got := co.ask(t, protocol.ClientMessage{Type: protocol.TypeRemove, Participant: host.id}); got != "" {
		t.Errorf("the new host removing the old one: %q", got)
	}
	ctx := context.Background()
	if revoked, err := n.store.RevokedFromRoom(ctx, rooms.Ref{Program: example, ID: room}.String(), "t-co"); err != nil || revoked {
		t.Errorf("the host is barred from their own session: %v %v", revoked, err)
	}
}

// TestTenancyInvitations is reproduction 4: family invitations only for a
// family session of the inviter's own program, by its host or a
// co-therapist in it.
func TestTenancyInvitations(t *testing.T) {
	n := testNode(t)
	example, other := tenants()
	room := uniqueRoom("fam")
	opener := func() string {
		c := tokenClaims("t-host", "Dana", rooms.RoleTherapist, room)
		c.Program, c.Kind = example, rooms.KindFamily
		tok, err := n.minter.Mint(c, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}()
	rawJoin(t, n, opener)
	body := map[string]any{"name": "Alex's mother"}
	path := "/v1/rooms/" + room + "/invites"
	for _, tc := range []struct {
		who, tok string
		want     int
	}{
		{"the other program's therapist for any room", programToken(t, n, other, "t-other", "Mallory", rooms.RoleTherapist, token.AnyRoom), http.StatusNotFound},
		{"the other program's therapist for that room id", programToken(t, n, other, "t-other", "Mallory", rooms.RoleTherapist, room), http.StatusNotFound},
		{"a therapist of the program not in the session", programToken(t, n, example, "t-else", "Kim", rooms.RoleTherapist, token.AnyRoom), http.StatusForbidden},
		{"a client of the session", programToken(t, n, example, "c-1", "Alex", rooms.RoleClient, room), http.StatusForbidden},
		{"staff of the program", programToken(t, n, example, "st-1", "Riley", rooms.RoleStaff, token.AnyRoom), http.StatusForbidden},
		{"the host", opener, http.StatusCreated},
	} {
		status, got := api(t, n, "POST", path, tc.tok, body)
		if status != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.who, status, got, tc.want)
		}
		if status == http.StatusCreated {
			c, _, err := jwt.NewParser().ParseUnverified(got["token"].(string), &token.Claims{})
			if err != nil {
				t.Fatal(err)
			}
			if cl := c.Claims.(*token.Claims); cl.Program != example || cl.Room != room || cl.Role != rooms.RoleFamily {
				t.Errorf("the invitation is for %s/%s as %s", cl.Program, cl.Room, cl.Role)
			}
		}
	}
	group := uniqueRoom("grp")
	rawJoin(t, n, programToken(t, n, example, "t-host", "Dana", rooms.RoleTherapist, group))
	if status, got := api(t, n, "POST", "/v1/rooms/"+group+"/invites", programToken(t, n, example, "t-host", "Dana", rooms.RoleTherapist, group), body); status != http.StatusForbidden {
		t.Errorf("an invitation into a group session: %d %v, want 403", status, got)
	}
}

// TestTenancyResumeSecret is reproduction 5 for clients: within the grace
// period after a drop, the same link without the resume secret goes to the
// waiting room; with it, straight back in.
func TestTenancyResumeSecret(t *testing.T) {
	n := testNode(t)
	example, _ := tenants()
	room := uniqueRoom("resume")
	rawJoin(t, n, programToken(t, n, example, "t-1", "Dana", rooms.RoleTherapist, room)) // never admits anyone
	tok := programToken(t, n, example, "c-1", "Alex", rooms.RoleClient, room)
	r := n.rooms.Get(rooms.Ref{Program: example, ID: room})
	code, c := joinCode(t, n, tok)
	if code != protocol.TypeWaiting {
		t.Fatal(code)
	}
	if err := r.Admit(r.Participants()[0].ID, "*"); err != nil {
		t.Fatal(err)
	}
	joined := waitType(t, c, protocol.TypeJoined)
	_ = c.Close() // dropped
	eventually(t, 10*time.Second, "the drop is noticed", func() (bool, string) {
		return len(r.Participants()) == 1, "still there"
	})
	if code, copied := joinCode(t, n, tok); code != protocol.TypeWaiting {
		t.Errorf("the link without the resume secret: %s, want waiting", code)
	} else {
		_ = copied.Close()
	}
	back := dial(t, n)
	if err := back.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: tok, Resume: joined.Resume}); err != nil {
		t.Fatal(err)
	}
	if m := waitType(t, back, protocol.TypeJoined); m.Resume == "" {
		t.Error("the resumed joined has no new secret")
	}
}

// TestTenancyCSVFormulas is reproduction 6 through the server: a display
// name and a room title a spreadsheet would run come out of the billing
// CSV as text.
func TestTenancyCSVFormulas(t *testing.T) {
	n := testNode(t)
	example, _ := tenants()
	room := uniqueRoom("csv")
	ther, _ := faultJoin(t, n.url, programToken(t, n, example, "t-1", "=cmd|' /C calc'!A0", rooms.RoleTherapist, room), true)
	p, _ := faultJoin(t, n.url, programToken(t, n, example, "c-1", "@SUM(1+1)*cmd", rooms.RoleClient, room), false)
	time.Sleep(1500 * time.Millisecond) // a session of at least a second
	p.Close()
	ther.Close()
	eventually(t, 10*time.Second, "everyone left", func() (bool, string) {
		return n.rooms.Get(rooms.Ref{Program: example, ID: room}) == nil, "open"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.recorder.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	staff := programToken(t, n, example, "st-1", "Billing", rooms.RoleStaff, token.AnyRoom)
	body := getCSV(t, n, "/v1/attendance/programs/"+example+"/weeks/"+attendance.WeekOf(time.Now(), time.UTC).String()+".csv", staff)
	rd := csv.NewReader(bytes.NewBufferString(body))
	rd.Comment = '#' // the chain head line ends the export
	recs, err := rd.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 3 {
		t.Fatalf("the export has %d lines:\n%s", len(recs), body)
	}
	for _, rec := range recs[1:] {
		for i, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
				t.Errorf("cell %d %q would be a formula in a spreadsheet", i, cell)
			}
		}
		if rec[1] != "'=cmd|' /C calc'!A0" && rec[1] != "'@SUM(1+1)*cmd" {
			t.Errorf("the name cell %q: want the name kept, neutralised with a leading quote", rec[1])
		}
	}
}

// TestTenancyRoomsAndTokens is reproduction 7: "*" is never a room, a
// client who arrives before the therapist does not get a bigger cap than
// the kind the therapist opens, a token without a program is refused, and
// so is an exp a century away.
func TestTenancyRoomsAndTokens(t *testing.T) {
	n := testNode(t)
	example, _ := tenants()
	c := dial(t, n)
	_ = c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: programToken(t, n, example, "t-1", "Dana", rooms.RoleTherapist, token.AnyRoom), Room: token.AnyRoom})
	expectError(t, c, protocol.CodeBadMessage)
	for _, bad := range []string{"a/b", "../x", strings.Repeat("r", 129), "room id"} {
		c := dial(t, n)
		_ = c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: programToken(t, n, example, "t-1", "Dana", rooms.RoleTherapist, token.AnyRoom), Room: bad})
		expectError(t, c, protocol.CodeBadMessage)
	}

	// Three clients before the therapist of an individual session.
	room := uniqueRoom("early")
	var waiting []*client.Conn
	for i := 1; i <= 3; i++ {
		code, c := joinCode(t, n, programToken(t, n, example, fmt.Sprintf("c-%d", i), "Client", rooms.RoleClient, room))
		if code != protocol.TypeWaiting {
			t.Fatalf("client %d before the therapist: %s, want waiting", i, code)
		}
		waiting = append(waiting, c)
	}
	if got := seated(t, n.store, rooms.Ref{Program: example, ID: room}.String(), rooms.RoleClient); len(got) != 0 {
		t.Errorf("seats taken before the session's kind is known: %v", got)
	}
	tc := tokenClaims("t-1", "Dana", rooms.RoleTherapist, room)
	tc.Program, tc.Kind = example, rooms.KindIndividual
	opener, err := n.minter.Mint(tc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ther := rawJoin(t, n, opener)
	if got := ther.ask(t, protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: "*"}); got != "" {
		t.Fatalf("admit everyone: %s", got)
	}
	admitted := 0
	for _, c := range waiting {
		for {
			m, err := c.Read(time.Now().Add(2 * time.Second))
			if err != nil {
				break // still waiting
			}
			if m.Type == protocol.TypeJoined {
				admitted++
				break
			}
		}
	}
	if admitted != 1 {
		t.Errorf("%d clients admitted into an individual session, want 1", admitted)
	}
	if got := seated(t, n.store, rooms.Ref{Program: example, ID: room}.String(), rooms.RoleClient); len(got) != 1 {
		t.Errorf("client seats of the individual session: %v, want one", got)
	}

	// Tokens.
	noProgram := signed(t, jwt.SigningMethodHS256, []byte(n.cfg.JWTSecret), jwt.MapClaims{
		"sub": "c-9", "name": "Alex", "role": "client", "room": "r1", "aud": token.DefaultAudience,
		"exp": time.Now().Add(time.Hour).Unix(),
	})
	century := signed(t, jwt.SigningMethodHS256, []byte(n.cfg.JWTSecret), jwt.MapClaims{
		"sub": "c-9", "name": "Alex", "role": "client", "room": "r1", "program": example, "aud": token.DefaultAudience,
		"exp": time.Now().AddDate(100, 0, 0).Unix(),
	})
	for what, tok := range map[string]string{"no program": noProgram, "exp a century away": century} {
		if code, _ := joinCode(t, n, tok); code != protocol.CodeUnauthorized {
			t.Errorf("join with %s: %s, want unauthorized", what, code)
		}
		if status, _ := api(t, n, "GET", "/v1/me/sessions", tok, nil); status != http.StatusUnauthorized {
			t.Errorf("the API with %s: %d, want 401", what, status)
		}
	}
	staff := programToken(t, n, example, "st-1", "Riley", rooms.RoleStaff, token.AnyRoom)
	req, _ := http.NewRequest("GET", n.url+"/v1/me/sessions", nil)
	req.Header.Set("Authorization", "bEaReR "+staff)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a lower-case bearer scheme: %v %v, want 200", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
}

// TestAutoAdmitThroughServer: the host turns automatic admission on over
// the websocket; the waiting client comes in without a click, the next on
// arrival, everyone sees room.auto_admit, and the trail records who did it.
func TestAutoAdmitThroughServer(t *testing.T) {
	n := testNode(t)
	example, _ := tenants()
	room := uniqueRoom("auto")
	host := rawJoin(t, n, programToken(t, n, example, "t-host", "Dana", rooms.RoleTherapist, room))
	code, first := joinCode(t, n, programToken(t, n, example, "c-1", "Alex", rooms.RoleClient, room))
	if code != protocol.TypeWaiting {
		t.Fatal(code)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAutoAdmit}); got != protocol.CodeBadMessage {
		t.Errorf("auto_admit without a value: %q, want bad_message", got)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAutoAdmit, AutoAdmit: ptr(true)}); got != "" {
		t.Fatal(got)
	}
	if m := waitType(t, first, protocol.TypeJoined); !m.Room.AutoAdmit {
		t.Errorf("joined says auto_admit %v", m.Room.AutoAdmit)
	}
	if code, _ := joinCode(t, n, programToken(t, n, example, "c-2", "Sam", rooms.RoleClient, room)); code != protocol.TypeJoined {
		t.Errorf("a client arriving with automatic admission on: %s, want joined", code)
	}
	staff := programToken(t, n, example, "st-1", "Riley", rooms.RoleStaff, token.AnyRoom)
	eventually(t, 10*time.Second, "the trail records it", func() (bool, string) {
		var page struct {
			Entries []audit.Entry `json:"entries"`
		}
		faultGet(t, n.url, "/v1/audit/programs/"+example, staff, &page)
		for _, e := range page.Entries {
			if e.Action == audit.ActionAutoAdmit && e.Actor == "t-host" {
				return true, ""
			}
		}
		return false, strings.Join(actions(page.Entries), ", ")
	})
}
