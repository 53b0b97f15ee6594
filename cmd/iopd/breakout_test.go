package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/client"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// TestBreakoutRooms is issue 15's acceptance 3: six clients split into
// three breakout rooms hear and see only their own breakout; the host
// visits one and hears it; bringing everyone back reaches every client
// within 3 s and joins the media again; and each client has exactly one
// attendance segment for the session.
func TestBreakoutRooms(t *testing.T) {
	n := testNode(t)
	room := "breakout-" + token.RandomID(3)
	host := joinPeer(t, n, "dana", rooms.RoleTherapist, room)
	var cs []*client.Participant
	for i := 1; i <= 6; i++ {
		cs = append(cs, joinPeer(t, n, fmt.Sprintf("c%d", i), rooms.RoleClient, room))
	}
	everyone := append([]*client.Participant{host}, cs...)
	for _, p := range everyone {
		eventually(t, 30*time.Second, "the whole group reaches "+p.ID(), func() (bool, string) { return receivesFrom(p, 10, others(everyone, p)...) })
	}

	if err := host.Send(protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: 3, Seconds: 900}); err != nil {
		t.Fatal(err)
	}
	group := map[string]int{}
	for _, p := range everyone {
		m := waitEvent(t, p, 5*time.Second, "the split", isBreakout(rooms.ChangeBreakoutOpen))
		if m.Breakout == nil || m.Breakout.Rooms != 3 || len(m.Breakout.Groups) != 6 || m.Breakout.Ends.IsZero() || m.By != "dana" {
			t.Fatalf("%s: breakout %+v", p.ID(), m)
		}
		group = m.Breakout.Groups
	}
	if _, in := group[host.ID()]; in {
		t.Errorf("the host was split into a breakout: %v", group)
	}
	groups := map[int][]*client.Participant{}
	for _, c := range cs {
		groups[group[c.ID()]] = append(groups[group[c.ID()]], c)
	}
	for g := 1; g <= 3; g++ {
		if len(groups[g]) != 2 {
			t.Fatalf("breakout %d holds %d clients, want 2: %v", g, len(groups[g]), group)
		}
	}
	for g := 1; g <= 3; g++ {
		apart(t, groups[g], everyone)
	}
	apart(t, []*client.Participant{host}, everyone)

	// The host visits breakout 2: hears and sees it, and it them; the
	// other breakouts still do not.
	if err := host.Send(protocol.ClientMessage{Type: protocol.TypeBreakoutVisit, Group: ptr(2)}); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, host, 5*time.Second, "the visit", isBreakout(rooms.ChangeBreakoutVisit))
	visited := append([]*client.Participant{host}, groups[2]...)
	apart(t, visited, everyone)
	for _, g := range []int{1, 3} {
		apart(t, groups[g], everyone)
	}

	// Bring everyone back: each client is told within 3 s, then the whole
	// group sees and hears each other again.
	if err := host.Send(protocol.ClientMessage{Type: protocol.TypeBreakoutClose}); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	for _, p := range everyone {
		if m := waitEvent(t, p, 3*time.Second-time.Since(sent), "everyone back within 3 s", isBreakout(rooms.ChangeBreakoutClose)); m.Breakout != nil {
			t.Errorf("%s: layout after bring-back %+v", p.ID(), m.Breakout)
		}
	}
	for _, p := range everyone {
		eventually(t, 3*time.Second-time.Since(sent), "the whole group reaches "+p.ID()+" again within 3 s", func() (bool, string) { return freshFrom(p, others(everyone, p)) })
	}
	t.Logf("everyone receives everyone again %s after the bring-back", time.Since(sent).Round(10*time.Millisecond))

	for _, c := range cs {
		c.Leave()
	}
	staff := n.joinToken(t, "staff-1", "Billing", rooms.RoleStaff, token.AnyRoom)
	eventually(t, 10*time.Second, "one closed segment per client", func() (bool, string) {
		status, body := api(t, n, "GET", "/v1/attendance/rooms/"+room, staff, nil)
		people, _ := body["people"].([]any)
		var problems []string
		for i := 1; i <= 6; i++ {
			sub := fmt.Sprintf("sub-c%d", i)
			var segs []any
			for _, p := range people {
				if p := p.(map[string]any); p["sub"] == sub {
					segs, _ = p["segments"].([]any)
				}
			}
			if len(segs) != 1 || segs[0].(map[string]any)["end"] == nil {
				problems = append(problems, fmt.Sprintf("%s: %v", sub, segs))
			}
		}
		return len(problems) == 0, http.StatusText(status) + " " + strings.Join(problems, "; ")
	})
}

func isBreakout(change rooms.RoomChange) func(protocol.ServerMessage) bool {
	return func(m protocol.ServerMessage) bool {
		return m.Type == protocol.TypeBreakout && m.Change == string(change)
	}
}

func others(all []*client.Participant, p *client.Participant) []*client.Participant {
	var out []*client.Participant
	for _, o := range all {
		if o != p {
			out = append(out, o)
		}
	}
	return out
}

// freshFrom reports whether p receives live audio and video (a track the
// server has not removed, with packets, the video from a keyframe on) from
// each of from.
func freshFrom(p *client.Participant, from []*client.Participant) (bool, string) {
	got := p.Received()
	var missing []string
	for _, f := range from {
		for _, kind := range []string{"audio", "video"} {
			st, ok := got[client.TrackKey{Participant: f.ID(), Kind: kind}]
			if !ok || st.Ended || st.Packets < 10 || (kind == "video" && st.Keyframes == 0) {
				missing = append(missing, fmt.Sprintf("%s %s: %+v", f.ID(), kind, st))
			}
		}
	}
	return len(missing) == 0, p.ID() + " lacks " + strings.Join(missing, ", ")
}

// apart checks a breakout: each member receives the others' audio and
// video, and every track of everyone else in all has been taken away and
// stays away while another 50 audio packets arrive within the breakout.
func apart(t *testing.T, members, all []*client.Participant) {
	t.Helper()
	in := map[*client.Participant]bool{}
	for _, m := range members {
		in[m] = true
	}
	for _, p := range members {
		mates := others(members, p)
		eventually(t, 20*time.Second, p.ID()+" receives its breakout", func() (bool, string) { return freshFrom(p, mates) })
		outside := func() (bool, string) {
			got := p.Received()
			var live []string
			for _, o := range all {
				for _, kind := range []string{"audio", "video"} {
					if st, ok := got[client.TrackKey{Participant: o.ID(), Kind: kind}]; !in[o] && ok && !st.Ended {
						live = append(live, fmt.Sprintf("%s %s (%d packets)", o.ID(), kind, st.Packets))
					}
				}
			}
			return len(live) == 0, p.ID() + " still receives " + strings.Join(live, ", ")
		}
		eventually(t, 20*time.Second, p.ID()+" no longer receives the others", outside)
		if len(mates) > 0 {
			mate := client.TrackKey{Participant: mates[0].ID(), Kind: "audio"}
			start := p.Received()[mate].Packets
			eventually(t, 20*time.Second, p.ID()+" keeps receiving its breakout", func() (bool, string) {
				n := p.Received()[mate].Packets
				return n > start+50, fmt.Sprintf("%d packets", n-start)
			})
		}
		if ok, state := outside(); !ok {
			t.Errorf("media crossed breakouts: %s", state)
		}
	}
}

// TestBreakoutRefusals: clients, waiting people, staff and another
// program's therapist cannot split, move, visit or bring back; a
// co-therapist cannot move the host; moving someone waiting or unknown,
// and breakout numbers outside the open rooms, get their error codes; none
// of it changes the layout or reaches the room. The therapists' decisions
// are in the program's audit trail.
func TestBreakoutRefusals(t *testing.T) {
	url := sharedRedis(t)
	n := testNode(t, withRedis(url))
	program, other := tenants()
	room := uniqueRoom("breakout")
	ref := rooms.Ref{Program: program, ID: room}
	host := rawJoin(t, n, programToken(t, n, program, "t-host", "Dana", rooms.RoleTherapist, room))
	co := rawJoin(t, n, programToken(t, n, program, "t-co", "Kim", rooms.RoleTherapist, room))
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAutoAdmit, AutoAdmit: ptr(true)}); got != "" {
		t.Fatal(got)
	}
	alex := rawJoin(t, n, programToken(t, n, program, "c-1", "Alex", rooms.RoleClient, room))
	sam := rawJoin(t, n, programToken(t, n, program, "c-2", "Sam", rooms.RoleClient, room))
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAutoAdmit, AutoAdmit: ptr(false)}); got != "" {
		t.Fatal(got)
	}
	code, waiting := joinCode(t, n, programToken(t, n, program, "c-3", "Kim", rooms.RoleClient, room))
	if code != protocol.TypeWaiting {
		t.Fatal(code)
	}
	stranger := rawJoin(t, n, programToken(t, n, other, "t-other", "Eve", rooms.RoleTherapist, room))

	attempts := []protocol.ClientMessage{
		{Type: protocol.TypeBreakoutOpen, Rooms: 2},
		{Type: protocol.TypeBreakoutMove, Participant: sam.id, Group: ptr(1)},
		{Type: protocol.TypeBreakoutVisit, Group: ptr(1)},
		{Type: protocol.TypeBreakoutClose},
	}
	for _, m := range attempts {
		if got := alex.ask(t, m); got != protocol.CodeForbidden {
			t.Errorf("a client's %s: %q, want forbidden", m.Type, got)
		}
		_ = waiting.Send(m)
		expectError(t, waiting, protocol.CodeForbidden)
	}
	for what, c := range map[string]struct {
		m    protocol.ClientMessage
		code string
	}{
		"move before any split":     {protocol.ClientMessage{Type: protocol.TypeBreakoutMove, Participant: alex.id, Group: ptr(1)}, protocol.CodeNoBreakouts},
		"visit before any split":    {protocol.ClientMessage{Type: protocol.TypeBreakoutVisit, Group: ptr(1)}, protocol.CodeNoBreakouts},
		"bring back before a split": {protocol.ClientMessage{Type: protocol.TypeBreakoutClose}, protocol.CodeNoBreakouts},
		"no rooms":                  {protocol.ClientMessage{Type: protocol.TypeBreakoutOpen}, protocol.CodeBadMessage},
		"eleven rooms":              {protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: rooms.MaxBreakouts + 1}, protocol.CodeBadMessage},
		"a negative timer":          {protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: 2, Seconds: -5}, protocol.CodeBadMessage},
		"a five-hour timer":         {protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: 2, Seconds: 5 * 3600}, protocol.CodeBadMessage},
		"assign to room 3 of 2":     {protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: 2, Assign: map[string]int{alex.id: 3}}, protocol.CodeBadGroup},
		"assign someone waiting":    {protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: 2, Assign: map[string]int{idOfWaiting(t, n, ref, "c-3"): 1}}, protocol.CodeNotFound},
		"assign the host (co)":      {protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: 2, Assign: map[string]int{host.id: 1}}, protocol.CodeForbidden},
	} {
		s := host
		if strings.HasSuffix(what, "(co)") {
			s = co
		}
		if got := s.ask(t, c.m); got != c.code {
			t.Errorf("%s: %q, want %s", what, got, c.code)
		}
	}
	if n.rooms.Get(ref).Breakouts() != nil {
		t.Fatal("a refused split opened breakout rooms")
	}

	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: 2, Assign: map[string]int{alex.id: 1, sam.id: 2}}); got != "" {
		t.Fatal(got)
	}
	m := waitType(t, alex.c, protocol.TypeBreakout)
	if m.Breakout == nil || m.Breakout.Groups[alex.id] != 1 || m.Breakout.Groups[sam.id] != 2 || !m.Breakout.Ends.IsZero() {
		t.Fatalf("alex's breakout %+v", m.Breakout)
	}
	for _, s := range []rawSession{co, sam} { // the host's was read by ask
		waitType(t, s.c, protocol.TypeBreakout)
	}
	before := fmt.Sprint(n.rooms.Get(ref).Breakouts())
	for what, c := range map[string]struct {
		s    rawSession
		m    protocol.ClientMessage
		code string
	}{
		"moving someone waiting":         {host, protocol.ClientMessage{Type: protocol.TypeBreakoutMove, Participant: idOfWaiting(t, n, ref, "c-3"), Group: ptr(1)}, protocol.CodeNotFound},
		"moving nobody":                  {host, protocol.ClientMessage{Type: protocol.TypeBreakoutMove, Participant: "p-nobody", Group: ptr(1)}, protocol.CodeNotFound},
		"moving to room 3 of 2":          {host, protocol.ClientMessage{Type: protocol.TypeBreakoutMove, Participant: alex.id, Group: ptr(3)}, protocol.CodeBadGroup},
		"moving to room -1":              {host, protocol.ClientMessage{Type: protocol.TypeBreakoutMove, Participant: alex.id, Group: ptr(-1)}, protocol.CodeBadGroup},
		"moving without a group":         {host, protocol.ClientMessage{Type: protocol.TypeBreakoutMove, Participant: alex.id}, protocol.CodeBadMessage},
		"visiting room 7":                {host, protocol.ClientMessage{Type: protocol.TypeBreakoutVisit, Group: ptr(7)}, protocol.CodeBadGroup},
		"a co-therapist moving the host": {co, protocol.ClientMessage{Type: protocol.TypeBreakoutMove, Participant: host.id, Group: ptr(1)}, protocol.CodeForbidden},
		"another program's therapist":    {stranger, protocol.ClientMessage{Type: protocol.TypeBreakoutMove, Participant: alex.id, Group: ptr(2)}, protocol.CodeNotFound},
		"another program's bring-back":   {stranger, protocol.ClientMessage{Type: protocol.TypeBreakoutClose}, protocol.CodeNoBreakouts},
	} {
		if got := c.s.ask(t, c.m); got != c.code {
			t.Errorf("%s: %q, want %s", what, got, c.code)
		}
	}
	// Another program's therapist splitting their own room of this id
	// reaches nobody here.
	if got := stranger.ask(t, protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: 2}); got != "" {
		t.Errorf("the other program's own split: %q", got)
	}
	for _, s := range []rawSession{alex, sam, host, co} {
		for _, m := range pingDrain(t, s) {
			if m.Type == protocol.TypeBreakout {
				t.Errorf("%s was told of a breakout change by a refused or foreign action: %+v", s.id, m)
			}
		}
	}
	if after := fmt.Sprint(n.rooms.Get(ref).Breakouts()); after != before {
		t.Errorf("refusals changed the layout: %s, was %s", after, before)
	}

	// The co-therapist moves a client and visits; the host brings everyone
	// back; each decision is in the program's audit trail.
	for _, m := range []protocol.ClientMessage{
		{Type: protocol.TypeBreakoutMove, Participant: sam.id, Group: ptr(1)},
		{Type: protocol.TypeBreakoutVisit, Group: ptr(1)},
	} {
		if got := co.ask(t, m); got != "" {
			t.Fatalf("co-therapist's %s: %s", m.Type, got)
		}
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeBreakoutClose}); got != "" {
		t.Fatal(got)
	}
	if m := waitType(t, sam.c, protocol.TypeBreakout); m.Change != string(rooms.ChangeBreakoutMove) {
		t.Errorf("sam's first breakout change after the split: %+v", m)
	}
	staff := programToken(t, n, program, "st-1", "Riley", rooms.RoleStaff, token.AnyRoom)
	want := []string{"breakout_open t-host  2", "breakout_move t-co c-2 1", "breakout_visit t-co  1", "breakout_close t-host  "}
	eventually(t, 10*time.Second, "the breakout decisions in the audit trail", func() (bool, string) {
		var page struct {
			Entries []struct{ Action, Actor, Subject, Detail string } `json:"entries"`
		}
		faultGet(t, n.url, "/v1/audit/programs/"+program+"?limit=500", staff, &page)
		var got []string
		for _, e := range page.Entries {
			if strings.HasPrefix(e.Action, "breakout") {
				got = append(got, strings.Join([]string{e.Action, e.Actor, e.Subject, e.Detail}, " "))
			}
		}
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Sprintf("%q", got)
	})
}

// idOfWaiting finds the participant id of sub in the room's waiting list.
func idOfWaiting(t *testing.T, n *node, ref rooms.Ref, sub string) string {
	t.Helper()
	for _, p := range n.rooms.Get(ref).WaitingList() {
		if p.Sub == sub {
			return p.ID
		}
	}
	t.Fatalf("%s is not waiting in %s", sub, ref)
	return ""
}

// TestBreakoutChatAndTimer: while breakouts are open a chat to the room
// reaches the sender's breakout only, a private one the therapist in the
// main room; a timer brings everyone back by itself (no "by"); and someone
// who reconnects lands in their breakout again.
func TestBreakoutChatAndTimer(t *testing.T) {
	n := testNode(t)
	program, _ := tenants()
	room := uniqueRoom("breakout")
	host := rawJoin(t, n, programToken(t, n, program, "t-host", "Dana", rooms.RoleTherapist, room))
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAutoAdmit, AutoAdmit: ptr(true)}); got != "" {
		t.Fatal(got)
	}
	var cs []rawSession
	var resume string
	for i := 1; i <= 4; i++ {
		c := dial(t, n)
		if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: programToken(t, n, program, fmt.Sprintf("c-%d", i), fmt.Sprintf("C%d", i), rooms.RoleClient, room)}); err != nil {
			t.Fatal(err)
		}
		m := waitType(t, c, protocol.TypeJoined)
		cs = append(cs, rawSession{c: c, id: m.You.ID})
		resume = m.Resume
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: 2}); got != "" {
		t.Fatal(got)
	}
	var layout *protocol.Breakout
	for _, c := range cs {
		layout = waitType(t, c.c, protocol.TypeBreakout).Breakout
	}
	// Evenly, in join order: c-1 and c-3 in breakout 1, c-2 and c-4 in 2.
	if layout.Groups[cs[0].id] != 1 || layout.Groups[cs[2].id] != 1 || layout.Groups[cs[1].id] != 2 || layout.Groups[cs[3].id] != 2 {
		t.Fatalf("layout %v", layout.Groups)
	}
	if got := cs[0].ask(t, protocol.ClientMessage{Type: protocol.TypeChat, Text: "breakout one only"}); got != "" {
		t.Fatal(got)
	}
	if got := cs[1].ask(t, protocol.ClientMessage{Type: protocol.TypeChat, Text: "to Dana", Private: true}); got != "" {
		t.Fatal(got)
	}
	chats := func(s rawSession) (room, private int) {
		for _, m := range pingDrain(t, s) {
			if m.Type == protocol.TypeChat && m.Private {
				private++
			} else if m.Type == protocol.TypeChat {
				room++
			}
		}
		return room, private
	}
	for i, want := range [][2]int{{0, 1}, {0, 0}, {0, 0}, {1, 0}, {0, 0}} {
		s := append([]rawSession{host}, cs...)[i]
		if r, p := chats(s); r != want[0] || p != want[1] {
			t.Errorf("%s got %d room and %d private messages, want %v", s.id, r, p, want)
		}
	}

	// c-4 drops and comes back with its resume secret: into breakout 2,
	// and the others learn where the new connection is.
	_ = cs[3].c.Close()
	if m := waitType(t, host.c, protocol.TypeParticipantLeft); m.ID != cs[3].id {
		t.Fatalf("left: %+v", m)
	}
	back := dial(t, n)
	if err := back.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: programToken(t, n, program, "c-4", "C4", rooms.RoleClient, room), Resume: resume}); err != nil {
		t.Fatal(err)
	}
	m := waitType(t, back, protocol.TypeJoined)
	if m.Room.Breakout == nil || m.Room.Breakout.Groups[m.You.ID] != 2 {
		t.Fatalf("c-4 back: %+v", m.Room.Breakout)
	}
	if p := waitType(t, cs[1].c, protocol.TypeParticipantJoined).Participant; p.ID != m.You.ID || p.Group != 2 {
		t.Errorf("c-2 was told %+v", p)
	}
	cs[3] = rawSession{c: back, id: m.You.ID}

	// A one-second timer brings everyone back by itself.
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeBreakoutOpen, Rooms: 2, Seconds: 1}); got != "" {
		t.Fatal(got)
	}
	for _, s := range append([]rawSession{host}, cs...) {
		for {
			m := waitType(t, s.c, protocol.TypeBreakout)
			if m.Change == string(rooms.ChangeBreakoutClose) {
				if m.By != "" || m.Breakout != nil {
					t.Errorf("%s: the timer's bring-back %+v", s.id, m)
				}
				break
			}
		}
	}
}
