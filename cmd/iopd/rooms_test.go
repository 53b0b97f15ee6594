package main

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"iop/cluster"
	"iop/rooms"
	"iop/rooms/store"
	"iop/signaling/client"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// uniqueRoom returns a room id that no other test or earlier run uses, so
// that tests sharing one real Redis never see each other's seats or claims.
func uniqueRoom(prefix string) string { return prefix + "-" + randomHex(4) }

// mintJoin mints a join token for person sub (also the display name) in
// room; kind is the kind of ad-hoc room a therapist's token opens.
func mintJoin(t testing.TB, m *token.Minter, sub string, role rooms.Role, room string, kind rooms.Kind) string {
	t.Helper()
	c := tokenClaims(sub, sub, role, room)
	c.Kind = kind
	tok, err := m.Mint(c, time.Hour)
	if err != nil {
		t.Fatalf("mint a token for %s: %v", sub, err)
	}
	return tok
}

// knockErr opens a signaling socket to the node at base, joins with tok and
// returns the socket with the server's first answer: waiting, joined,
// redirect or error. Safe to call from any goroutine.
func knockErr(ctx context.Context, base, tok string) (*client.Conn, protocol.ServerMessage, error) {
	c, err := client.Dial(ctx, base, nil)
	if err != nil {
		return nil, protocol.ServerMessage{}, err
	}
	if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: protocol.Version, Token: tok, ID: "join"}); err != nil {
		_ = c.Close()
		return nil, protocol.ServerMessage{}, fmt.Errorf("send join: %w", err)
	}
	m, err := c.Read(time.Now().Add(10 * time.Second))
	if err != nil {
		_ = c.Close()
		return nil, m, fmt.Errorf("waiting for the answer to join: %w", err)
	}
	return c, m, nil
}

// knock is knockErr for the test goroutine; the socket closes when the test ends.
func knock(t *testing.T, base, tok string) (*client.Conn, protocol.ServerMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, m, err := knockErr(ctx, base, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, m
}

// describe renders a server message for failure messages.
func describe(m protocol.ServerMessage) string {
	switch m.Type {
	case protocol.TypeError:
		return fmt.Sprintf("error %s (%s)", m.Code, m.Message)
	case protocol.TypeRedirect:
		return "redirect to " + m.URL
	}
	return m.Type
}

// expectAnswer checks the first answer to a join.
func expectAnswer(t *testing.T, who string, m protocol.ServerMessage, typ string) {
	t.Helper()
	if m.Type != typ {
		t.Fatalf("%s: join answered with %s, want %s", who, describe(m), typ)
	}
	if typ != protocol.TypeRedirect && m.Re != "join" {
		t.Errorf("%s: %s carries re %q, want the join's id", who, typ, m.Re)
	}
}

// expectRefused checks that a join was answered at once (no waiting first)
// with an error of code, and that the server then closed the socket.
func expectRefused(t *testing.T, who string, c *client.Conn, m protocol.ServerMessage, code string) {
	t.Helper()
	if m.Type != protocol.TypeError || m.Code != code {
		t.Fatalf("%s: join answered with %s, want error %s at once", who, describe(m), code)
	}
	if m.Re != "join" {
		t.Errorf("%s: error %s carries re %q, want the join's id", who, code, m.Re)
	}
	expectClosed(t, c, websocket.ClosePolicyViolation)
}

// seated returns who holds a seat of category in room, sorted.
func seated(t testing.TB, st *store.Store, room string, category rooms.Role) []string { // room: "program/room"
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	subs, err := cluster.NewStore(st.Redis).Seated(ctx, room, string(category))
	if err != nil {
		t.Fatalf("read seats: %v", err)
	}
	slices.Sort(subs)
	return subs
}

// waitingID returns the id of name in a waiting_list message, or "".
func waitingID(m protocol.ServerMessage, name string) string {
	if m.Type != protocol.TypeWaitingList {
		return ""
	}
	for _, p := range m.Waiting {
		if p.Name == name {
			return p.ID
		}
	}
	return ""
}

// joinAdmitted starts join (a client that waits in the waiting room until
// it is admitted), waits until the therapist th sees name in the waiting
// list, admits it, and returns the participant once it publishes.
func joinAdmitted(t *testing.T, th *client.Participant, name string, join func(context.Context) (*client.Participant, error)) *client.Participant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	type result struct {
		p   *client.Participant
		err error
	}
	ch := make(chan result, 1)
	go func() {
		p, err := join(ctx)
		ch <- result{p, err}
	}()
	received := false
	t.Cleanup(func() {
		if !received { // the test failed first: do not leak the participant
			if r := <-ch; r.p != nil {
				r.p.Close()
			}
		}
	})
	wl := waitEvent(t, th, 20*time.Second, "waiting_list with "+name, func(m protocol.ServerMessage) bool { return waitingID(m, name) != "" })
	id := waitingID(wl, name)
	if err := th.Send(protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: id, ID: "admit-" + name}); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	received = true
	if r.err != nil {
		t.Fatalf("%s joins: %v", name, r.err)
	}
	t.Cleanup(r.p.Close)
	if r.p.ID() != id {
		t.Errorf("%s was %s in the waiting list but is %s once admitted", name, id, r.p.ID())
	}
	if re := r.p.Joined().Re; re != "" {
		t.Errorf("%s: joined after an admit carries re %q, want none", name, re)
	}
	if err := r.p.WaitPublishing(ctx); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return r.p
}

// joinTherapist joins a therapist's pion participant that admits nobody by itself.
func joinTherapist(t *testing.T, base, tok string) *client.Participant {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p, err := client.Join(ctx, base, tok, client.Options{})
	if err != nil {
		t.Fatalf("therapist joins: %v", err)
	}
	t.Cleanup(p.Close)
	if err := p.WaitPublishing(ctx); err != nil {
		t.Fatalf("therapist: %v", err)
	}
	return p
}

// packets counts what p received from publisher from of kind.
func packets(p *client.Participant, from, kind string) int {
	return p.Received()[client.TrackKey{Participant: from, Kind: kind}].Packets
}

// counts snapshots what each of ps received from publisher from of kind.
func counts(ps []*client.Participant, from, kind string) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = packets(p, from, kind)
	}
	return out
}

// quiet waits until none of ps receives any more of from's kind (what was
// on its way when it stopped has arrived) and returns the counts.
func quiet(t *testing.T, what string, ps []*client.Participant, from, kind string) []int {
	t.Helper()
	var now []int
	eventually(t, 10*time.Second, what, func() (bool, string) {
		before := counts(ps, from, kind)
		time.Sleep(300 * time.Millisecond)
		now = counts(ps, from, kind)
		return slices.Equal(before, now), fmt.Sprintf("%s packets from %s still arriving: %v -> %v", kind, from, before, now)
	})
	return now
}

// staysQuiet checks that for a while none of ps receives any more of from's kind.
func staysQuiet(t *testing.T, what string, ps []*client.Participant, from, kind string, base []int) {
	t.Helper()
	time.Sleep(time.Second)
	if now := counts(ps, from, kind); !slices.Equal(now, base) {
		t.Errorf("%s: %s packets from %s kept arriving: %v -> %v", what, kind, from, base, now)
	}
}

// grows waits until each of ps has received at least more of from's kind.
func grows(t *testing.T, what string, ps []*client.Participant, from, kind string, more int) {
	t.Helper()
	base := counts(ps, from, kind)
	eventually(t, 15*time.Second, what, func() (bool, string) {
		now := counts(ps, from, kind)
		for i := range now {
			if now[i] < base[i]+more {
				return false, fmt.Sprintf("%s packets from %s: %v -> %v", kind, from, base, now)
			}
		}
		return true, ""
	})
}

// drain returns the events p has received so far without waiting.
func drain(p *client.Participant) []protocol.ServerMessage {
	var out []protocol.ServerMessage
	for {
		select {
		case m, ok := <-p.Events():
			if !ok {
				return out
			}
			out = append(out, m)
		default:
			return out
		}
	}
}

// waitGone waits until p's connection is closed by the server.
func waitGone(t *testing.T, p *client.Participant, timeout time.Duration) {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-p.Events():
			if !ok {
				return
			}
		case <-timer.C:
			t.Fatalf("%s: still connected %s after removal", p.ID(), timeout)
		}
	}
}

// TestRoomsCap: the kinds' caps as a user meets them. A group its therapist
// opened seats 15 clients (waiting counts), the 16th is told room_full at
// once and disconnected, therapists and staff always get in and take no
// seat, and a seat freed by a leaver goes to the next. An individual
// session seats one client; a family session one client and six family
// members.
func TestRoomsCap(t *testing.T) {
	t.Parallel()
	n := testNode(t)

	t.Run("group", func(t *testing.T) {
		t.Parallel()
		room := uniqueRoom("cap-group")
		ther, m := knock(t, n.url, mintJoin(t, n.minter, "therapist", rooms.RoleTherapist, room, rooms.KindGroup))
		expectAnswer(t, "therapist", m, protocol.TypeJoined)
		var clients []*client.Conn
		for i := 1; i <= 15; i++ {
			who := fmt.Sprintf("client-%02d", i)
			c, m := knock(t, n.url, mintJoin(t, n.minter, who, rooms.RoleClient, room, ""))
			expectAnswer(t, who, m, protocol.TypeWaiting)
			if m.Position != i {
				t.Errorf("%s waits at position %d, want %d", who, m.Position, i)
			}
			clients = append(clients, c)
		}
		late := mintJoin(t, n.minter, "client-16", rooms.RoleClient, room, "")
		c, m := knock(t, n.url, late)
		expectRefused(t, "the 16th client", c, m, protocol.CodeRoomFull)
		if got := seated(t, n.store, demoRef(room).String(), rooms.RoleClient); len(got) != 15 {
			t.Fatalf("%d client seats taken, want 15: %v", len(got), got)
		}

		// A co-therapist and two staff members get in, straight past the
		// waiting room, and the room is still full for clients.
		c, m = knock(t, n.url, mintJoin(t, n.minter, "co-therapist", rooms.RoleTherapist, room, rooms.KindGroup))
		expectAnswer(t, "co-therapist", m, protocol.TypeJoined)
		wl, err := c.Read(time.Now().Add(10 * time.Second))
		if err != nil || wl.Type != protocol.TypeWaitingList || len(wl.Waiting) != 15 {
			t.Errorf("co-therapist's waiting list after joined: %s with %d waiting (%v), want 15 waiting", wl.Type, len(wl.Waiting), err)
		}
		_ = ther
		for _, who := range []string{"staff-billing", "staff-case-manager"} {
			_, m := knock(t, n.url, mintJoin(t, n.minter, who, rooms.RoleStaff, room, ""))
			expectAnswer(t, who, m, protocol.TypeJoined)
		}
		c, m = knock(t, n.url, mintJoin(t, n.minter, "client-17", rooms.RoleClient, room, ""))
		expectRefused(t, "a client after staff joined", c, m, protocol.CodeRoomFull)
		if got := seated(t, n.store, demoRef(room).String(), rooms.RoleStaff); len(got) != 0 {
			t.Errorf("staff hold seats: %v", got)
		}
		if got := seated(t, n.store, demoRef(room).String(), rooms.RoleTherapist); len(got) != 0 {
			t.Errorf("therapists hold seats: %v", got)
		}

		// One waiting client gives up: the 16th now gets a seat.
		if err := clients[0].Send(protocol.ClientMessage{Type: protocol.TypeLeave}); err != nil {
			t.Fatal(err)
		}
		expectClosed(t, clients[0], websocket.CloseNormalClosure)
		eventually(t, 10*time.Second, "the 16th client gets the freed seat", func() (bool, string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, m, err := knockErr(ctx, n.url, late)
			if err != nil {
				return false, err.Error()
			}
			if m.Type != protocol.TypeWaiting {
				_ = c.Close()
				return false, "join answered with " + describe(m)
			}
			t.Cleanup(func() { _ = c.Close() })
			return true, ""
		})
		if got := seated(t, n.store, demoRef(room).String(), rooms.RoleClient); len(got) != 15 || slices.Contains(got, "client-01") || !slices.Contains(got, "client-16") {
			t.Errorf("seats after the swap: %v, want client-02..client-16", got)
		}
	})

	t.Run("individual", func(t *testing.T) {
		t.Parallel()
		room := uniqueRoom("cap-individual")
		_, m := knock(t, n.url, mintJoin(t, n.minter, "therapist-ind", rooms.RoleTherapist, room, rooms.KindIndividual))
		expectAnswer(t, "therapist", m, protocol.TypeJoined)
		if m.Room == nil || m.Room.Kind != string(rooms.KindIndividual) {
			t.Fatalf("therapist opened %+v, want an individual room", m.Room)
		}
		_, m = knock(t, n.url, mintJoin(t, n.minter, "ind-client-1", rooms.RoleClient, room, ""))
		expectAnswer(t, "the client", m, protocol.TypeWaiting)
		c, m := knock(t, n.url, mintJoin(t, n.minter, "ind-client-2", rooms.RoleClient, room, ""))
		expectRefused(t, "a second client", c, m, protocol.CodeRoomFull)
		_, m = knock(t, n.url, mintJoin(t, n.minter, "co-therapist-ind", rooms.RoleTherapist, room, ""))
		expectAnswer(t, "a co-therapist", m, protocol.TypeJoined)
	})

	t.Run("family", func(t *testing.T) {
		t.Parallel()
		room := uniqueRoom("cap-family")
		_, m := knock(t, n.url, mintJoin(t, n.minter, "therapist-fam", rooms.RoleTherapist, room, rooms.KindFamily))
		expectAnswer(t, "therapist", m, protocol.TypeJoined)
		if m.Room == nil || m.Room.Kind != string(rooms.KindFamily) {
			t.Fatalf("therapist opened %+v, want a family room", m.Room)
		}
		_, m = knock(t, n.url, mintJoin(t, n.minter, "fam-client-1", rooms.RoleClient, room, ""))
		expectAnswer(t, "the client", m, protocol.TypeWaiting)
		c, m := knock(t, n.url, mintJoin(t, n.minter, "fam-client-2", rooms.RoleClient, room, ""))
		expectRefused(t, "a second client", c, m, protocol.CodeRoomFull)
		for i := 1; i <= 6; i++ {
			who := fmt.Sprintf("family-%d", i)
			_, m := knock(t, n.url, mintJoin(t, n.minter, who, rooms.RoleFamily, room, ""))
			expectAnswer(t, who, m, protocol.TypeWaiting)
		}
		c, m = knock(t, n.url, mintJoin(t, n.minter, "family-7", rooms.RoleFamily, room, ""))
		expectRefused(t, "a 7th family member", c, m, protocol.CodeRoomFull)
		if got := seated(t, n.store, demoRef(room).String(), rooms.RoleFamily); len(got) != 6 {
			t.Errorf("%d family seats taken, want 6: %v", len(got), got)
		}
	})
}

// TestRoomsWaitingRoom: through the real websocket, a waiting client's media
// reaches nobody (it cannot even publish) until the therapist admits it;
// then it flows both ways. A denied client is told and disconnected, and its
// seat goes to the next.
func TestRoomsWaitingRoom(t *testing.T) {
	// Its people are not TestRoomsMuteRemove's, which runs at the same
	// time: a person is in one room at a time (across nodes on a shared
	// Redis).
	t.Parallel()
	n := testNode(t, func(c *config) { c.RoomCaps = "group=3" })
	room := uniqueRoom("waiting")
	joinFn := func(name string) func(context.Context) (*client.Participant, error) {
		tok := mintJoin(t, n.minter, name, rooms.RoleClient, room, "")
		return func(ctx context.Context) (*client.Participant, error) {
			return client.Join(ctx, n.url, tok, client.Options{})
		}
	}

	th := joinTherapist(t, n.url, mintJoin(t, n.minter, "therapist", rooms.RoleTherapist, room, ""))
	alex := joinAdmitted(t, th, "ari", joinFn("ari"))
	eventually(t, 20*time.Second, "therapist and alex in a call", func() (bool, string) {
		ok1, s1 := receivesFrom(th, 20, alex)
		ok2, s2 := receivesFrom(alex, 20, th)
		return ok1 && ok2, s1 + "; " + s2
	})

	// blake waits (a pion client that would publish once admitted).
	type result struct {
		p   *client.Participant
		err error
	}
	blakeCh := make(chan result, 1)
	blakeJoin := joinFn("bo")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		p, err := blakeJoin(ctx)
		blakeCh <- result{p, err}
	}()
	gotBlake := false
	t.Cleanup(func() {
		if !gotBlake {
			if r := <-blakeCh; r.p != nil {
				r.p.Close()
			}
		}
	})
	wl := waitEvent(t, th, 10*time.Second, "blake in the waiting list", func(m protocol.ServerMessage) bool { return waitingID(m, "bo") != "" })
	blakeID := waitingID(wl, "bo")

	// drew waits on a bare socket and tries to publish anyway.
	drew, m := knock(t, n.url, mintJoin(t, n.minter, "drew", rooms.RoleClient, room, ""))
	expectAnswer(t, "drew", m, protocol.TypeWaiting)
	wl = waitEvent(t, th, 10*time.Second, "drew in the waiting list", func(m protocol.ServerMessage) bool { return waitingID(m, "drew") != "" })
	drewID := waitingID(wl, "drew")
	if waitingID(wl, "bo") != blakeID || len(wl.Waiting) != 2 {
		t.Errorf("waiting list %+v, want blake then drew", wl.Waiting)
	}
	if err := drew.Send(protocol.ClientMessage{Type: protocol.TypeOffer, PC: protocol.PCPublish, SDP: newOfferOnlyPC(t), ID: "publish"}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := drew.Read(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("drew waits for the answer to its offer: %v", err)
		}
		if m.Type == protocol.TypeAnswer || m.Type == protocol.TypeOffer || m.Type == protocol.TypeJoined {
			t.Fatalf("a waiting client's offer was taken: got %s", m.Type)
		}
		if m.Type == protocol.TypeError {
			if m.Code != protocol.CodeNotAdmitted || m.Re != "publish" {
				t.Fatalf("a waiting client's offer got error %s re %q, want not_admitted re publish", m.Code, m.Re)
			}
			break
		}
	}

	// The room (cap 3) is full with alex, blake and drew.
	c, m := knock(t, n.url, mintJoin(t, n.minter, "ellis", rooms.RoleClient, room, ""))
	expectRefused(t, "ellis", c, m, protocol.CodeRoomFull)

	// While they wait, the call goes on and nothing of theirs reaches anyone.
	time.Sleep(time.Second)
	grows(t, "the call goes on while two wait", []*client.Participant{th}, alex.ID(), "video", 20)
	for _, p := range []*client.Participant{th, alex} {
		for k := range p.Received() {
			if k.Participant == blakeID || k.Participant == drewID {
				t.Errorf("%s receives %s from %s, who is in the waiting room", p.ID(), k.Kind, k.Participant)
			}
		}
	}

	// Admitted, blake's media flows both ways.
	if err := th.Send(protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: blakeID, ID: "admit-blake"}); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-blakeCh:
		gotBlake = true
	case <-time.After(20 * time.Second):
		t.Fatal("blake is not admitted 20 s after the therapist's admit")
	}
	if r.err != nil {
		t.Fatalf("blake joins: %v", r.err)
	}
	blake := r.p
	t.Cleanup(blake.Close)
	if blake.ID() != blakeID {
		t.Errorf("blake waited as %s and joined as %s", blakeID, blake.ID())
	}
	if got := len(blake.Joined().Participants); got != 2 {
		t.Errorf("blake's joined lists %d participants, want the therapist and alex", got)
	}
	if err := blake.WaitPublishing(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "blake receives the others", func() (bool, string) { return receivesFrom(blake, 20, th, alex) })
	eventually(t, 20*time.Second, "the therapist receives blake", func() (bool, string) { return receivesFrom(th, 20, blake) })
	eventually(t, 20*time.Second, "alex receives blake", func() (bool, string) { return receivesFrom(alex, 20, blake) })

	// drew is denied: told so, disconnected, and the seat goes to ellis.
	drain(th)
	if got := seated(t, n.store, demoRef(room).String(), rooms.RoleClient); !slices.Contains(got, "drew") {
		t.Fatalf("drew holds no seat while waiting: %v", got)
	}
	if err := th.Send(protocol.ClientMessage{Type: protocol.TypeDeny, Participant: drewID, ID: "deny-drew"}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := drew.Read(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("drew waits for the therapist's answer: %v", err)
		}
		if m.Type == protocol.TypeRemoved {
			if m.Reason != "denied" {
				t.Errorf("denied client told reason %q, want denied", m.Reason)
			}
			break
		}
		if m.Type != protocol.TypeWaiting {
			t.Fatalf("denied client got %s before removed", describe(m))
		}
	}
	expectClosed(t, drew, websocket.CloseNormalClosure)
	eventually(t, 10*time.Second, "drew's seat is freed", func() (bool, string) {
		got := seated(t, n.store, demoRef(room).String(), rooms.RoleClient)
		return !slices.Contains(got, "drew"), fmt.Sprintf("seats: %v", got)
	})
	_, m = knock(t, n.url, mintJoin(t, n.minter, "ellis", rooms.RoleClient, room, ""))
	expectAnswer(t, "ellis after drew was denied", m, protocol.TypeWaiting)
	waitEvent(t, th, 10*time.Second, "ellis in the waiting list", func(m protocol.ServerMessage) bool { return waitingID(m, "ellis") != "" })
	for _, m := range drain(th) {
		if m.Type == protocol.TypeParticipantLeft && m.ID == drewID {
			t.Errorf("the therapist got participant_left about drew, who was never admitted")
		}
	}
}

// TestRoomsMuteRemove: a therapist's mute and remove take effect at the
// media level (packets stop reaching the others), the muted client can turn
// its audio back on, and a client's attempts at moderation are refused and
// change nothing.
func TestRoomsMuteRemove(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	room := uniqueRoom("moderation")
	joinFn := func(name string) func(context.Context) (*client.Participant, error) {
		tok := mintJoin(t, n.minter, name, rooms.RoleClient, room, "")
		return func(ctx context.Context) (*client.Participant, error) {
			return client.Join(ctx, n.url, tok, client.Options{})
		}
	}
	th := joinTherapist(t, n.url, mintJoin(t, n.minter, "Therapist Dana", rooms.RoleTherapist, room, ""))
	a := joinAdmitted(t, th, "alex", joinFn("alex"))
	b := joinAdmitted(t, th, "blake", joinFn("blake"))
	c := joinAdmitted(t, th, "casey", joinFn("casey"))
	all := []*client.Participant{th, a, b, c}
	others := func(x *client.Participant) []*client.Participant {
		var out []*client.Participant
		for _, p := range all {
			if p != x {
				out = append(out, p)
			}
		}
		return out
	}
	for _, p := range all {
		eventually(t, 20*time.Second, "media reaches "+p.ID(), func() (bool, string) { return receivesFrom(p, 20, others(p)...) })
	}
	w, m := knock(t, n.url, mintJoin(t, n.minter, "wren", rooms.RoleClient, room, ""))
	expectAnswer(t, "wren", m, protocol.TypeWaiting)
	wl := waitEvent(t, th, 10*time.Second, "wren in the waiting list", func(m protocol.ServerMessage) bool { return waitingID(m, "wren") != "" })
	wrenID := waitingID(wl, "wren")

	t.Run("a client may not moderate", func(t *testing.T) {
		for _, p := range all {
			drain(p)
		}
		locked := true
		tries := []protocol.ClientMessage{
			{Type: protocol.TypeMute, Participant: a.ID(), Kind: "audio"},
			{Type: protocol.TypeMute, Participant: th.ID(), Kind: "video"},
			{Type: protocol.TypeRemove, Participant: a.ID(), Reason: "bye"},
			{Type: protocol.TypeAdmit, Participant: wrenID},
			{Type: protocol.TypeAdmit, Participant: "*"},
			{Type: protocol.TypeDeny, Participant: wrenID},
			{Type: protocol.TypeLock, Locked: &locked},
			{Type: protocol.TypeEnd},
		}
		for i, m := range tries {
			m.ID = fmt.Sprintf("try-%d", i)
			if err := c.Send(m); err != nil {
				t.Fatal(err)
			}
			e := waitEvent(t, c, 10*time.Second, "an answer to "+m.Type, func(e protocol.ServerMessage) bool {
				return e.Type == protocol.TypeError && e.Re == m.ID
			})
			if e.Code != protocol.CodeForbidden {
				t.Errorf("a client's %s %s: error %s (%s), want forbidden", m.Type, m.Participant, e.Code, e.Message)
			}
		}
		// Nothing changed: everyone is in, wren still waits, the room is
		// open, and alex's audio and the therapist's video still flow.
		r := n.rooms.Get(demoRef(room))
		if got := len(r.Participants()); got != 4 {
			t.Errorf("%d participants after a client's attempts, want 4", got)
		}
		if r.Locked() {
			t.Error("a client locked the room")
		}
		if wlist := r.WaitingList(); len(wlist) != 1 || wlist[0].ID != wrenID {
			t.Errorf("waiting list after a client's attempts: %+v, want wren", wlist)
		}
		grows(t, "alex's audio still flows", others(a), a.ID(), "audio", 20)
		grows(t, "the therapist's video still flows", others(th), th.ID(), "video", 20)
		for _, p := range all {
			for _, e := range drain(p) {
				switch e.Type {
				case protocol.TypeMuted, protocol.TypeRemoved, protocol.TypeEnded, protocol.TypeRoomUpdated, protocol.TypeParticipantLeft, protocol.TypeParticipantJoined:
					t.Errorf("%s got %s after a client's attempts", p.ID(), e.Type)
				case protocol.TypeParticipantUpdated:
					if e.Participant != nil && (!e.Participant.Audio || !e.Participant.Video) {
						t.Errorf("%s got participant_updated %+v after a client's attempts", p.ID(), *e.Participant)
					}
				}
			}
		}
		expectOpen(t, w)
	})
	if t.Failed() {
		return
	}

	t.Run("mute", func(t *testing.T) {
		if err := th.Send(protocol.ClientMessage{Type: protocol.TypeMute, Participant: a.ID(), Kind: "audio", ID: "mute-alex"}); err != nil {
			t.Fatal(err)
		}
		muted := waitEvent(t, a, 10*time.Second, "muted", func(m protocol.ServerMessage) bool { return m.Type == protocol.TypeMuted })
		if muted.Kind != "audio" || muted.By != "Therapist Dana" {
			t.Errorf("muted kind %q by %q, want audio by Therapist Dana", muted.Kind, muted.By)
		}
		for _, p := range all {
			u := waitEvent(t, p, 10*time.Second, "participant_updated for alex's mute", func(m protocol.ServerMessage) bool {
				return m.Type == protocol.TypeParticipantUpdated && m.Participant != nil && m.Participant.ID == a.ID()
			})
			if u.Participant.Audio || !u.Participant.Video {
				t.Errorf("%s sees alex audio=%v video=%v, want audio off, video on", p.ID(), u.Participant.Audio, u.Participant.Video)
			}
		}
		listeners := others(a)
		base := quiet(t, "alex's audio stops after the mute", listeners, a.ID(), "audio")
		video := counts(listeners, a.ID(), "video")
		staysQuiet(t, "alex muted", listeners, a.ID(), "audio", base)
		for i, v := range counts(listeners, a.ID(), "video") {
			if v < video[i]+10 {
				t.Errorf("%s: alex's video stalled while its audio was muted: %d -> %d packets", listeners[i].ID(), video[i], v)
			}
		}

		// The client decides to speak again.
		on := true
		if err := a.Send(protocol.ClientMessage{Type: protocol.TypeMedia, Audio: &on}); err != nil {
			t.Fatal(err)
		}
		for _, p := range listeners {
			waitEvent(t, p, 10*time.Second, "participant_updated for alex's unmute", func(m protocol.ServerMessage) bool {
				return m.Type == protocol.TypeParticipantUpdated && m.Participant != nil && m.Participant.ID == a.ID() && m.Participant.Audio
			})
		}
		grows(t, "alex's audio flows again after unmuting", listeners, a.ID(), "audio", 20)
	})

	t.Run("remove", func(t *testing.T) {
		const reason = "Let's talk one-on-one after group."
		if err := th.Send(protocol.ClientMessage{Type: protocol.TypeRemove, Participant: b.ID(), Reason: reason, ID: "remove-blake"}); err != nil {
			t.Fatal(err)
		}
		removed := waitEvent(t, b, 10*time.Second, "removed", func(m protocol.ServerMessage) bool { return m.Type == protocol.TypeRemoved })
		if removed.Reason != reason {
			t.Errorf("removed client told %q, want %q", removed.Reason, reason)
		}
		waitGone(t, b, 10*time.Second)
		rest := []*client.Participant{th, a, c}
		for _, p := range rest {
			left := waitEvent(t, p, 10*time.Second, "participant_left for blake", func(m protocol.ServerMessage) bool {
				return m.Type == protocol.TypeParticipantLeft && m.ID == b.ID()
			})
			if left.Reason != protocol.ReasonRemoved {
				t.Errorf("%s: participant_left reason %q, want removed", p.ID(), left.Reason)
			}
		}
		for _, kind := range []string{"audio", "video"} {
			base := quiet(t, "blake's "+kind+" stops after the removal", rest, b.ID(), kind)
			staysQuiet(t, "blake removed", rest, b.ID(), kind, base)
		}
		grows(t, "the call goes on without blake", []*client.Participant{a, c}, th.ID(), "video", 20)
		eventually(t, 10*time.Second, "blake's seat is freed", func() (bool, string) {
			got := seated(t, n.store, demoRef(room).String(), rooms.RoleClient)
			return !slices.Contains(got, "blake"), fmt.Sprintf("seats: %v", got)
		})
		if got := len(n.rooms.Get(demoRef(room)).Participants()); got != 3 {
			t.Errorf("%d participants after the removal, want 3", got)
		}
	})
}
