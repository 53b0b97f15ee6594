package rooms

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// breakoutRoom is a room with the host dana, the co-therapist kim and six
// admitted clients c1..c6 (auto-admitted), and one client w waiting.
func breakoutRoom(t *testing.T) (*Room, map[string]*inbox) {
	t.Helper()
	_, r, _ := newRoom(t)
	boxes := map[string]*inbox{}
	boxes["dana"], _ = join(t, r, "dana", RoleTherapist)
	boxes["kim"], _ = join(t, r, "kim", RoleTherapist)
	if err := r.SetAutoAdmit("dana", true); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("c%d", i)
		var ok bool
		if boxes[id], ok = join(t, r, id, RoleClient); !ok {
			t.Fatalf("%s waits", id)
		}
	}
	if err := r.SetAutoAdmit("dana", false); err != nil {
		t.Fatal(err)
	}
	boxes["w"], _ = join(t, r, "w", RoleClient)
	return r, boxes
}

// TestBreakoutSplitMoveVisitClose: the host splits six clients evenly into
// three rooms, everyone learns the layout, a chat stays in its group, the
// co-therapist moves a client and visits a group, and closing brings
// everyone back, all without anyone leaving or waiting again.
func TestBreakoutSplitMoveVisitClose(t *testing.T) {
	r, boxes := breakoutRoom(t)
	if err := r.OpenBreakouts("dana", Split{Rooms: 3, Seconds: 600}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"c1": 1, "c2": 2, "c3": 3, "c4": 1, "c5": 2, "c6": 3}
	for id, g := range want {
		if got := r.Group(id); got != g {
			t.Errorf("%s is in %d, want %d", id, got, g)
		}
	}
	for _, id := range []string{"dana", "kim", "c1"} {
		e := boxes[id].last()
		if e.Type != EventBreakout || e.Change != ChangeBreakoutOpen || e.Breakout == nil || e.Breakout.Rooms != 3 || e.Breakout.Ends.IsZero() {
			t.Fatalf("%s's last event %+v", id, e)
		}
		if fmt.Sprint(e.Breakout.Groups) != fmt.Sprint(want) {
			t.Errorf("%s's layout %v, want %v", id, e.Breakout.Groups, want)
		}
	}
	if boxes["w"].last().Type == EventBreakout {
		t.Error("a waiting person learns the breakout layout")
	}

	// Chat to the room stays within the group; a private message still
	// reaches the therapists in the main room.
	if err := r.Chat("c1", "hello group one", false); err != nil {
		t.Fatal(err)
	}
	for id, box := range boxes {
		got := box.last().Type == EventChat
		if got != (id == "c1" || id == "c4") {
			t.Errorf("%s got the group's chat: %v", id, got)
		}
	}
	if err := r.Chat("c2", "to the therapists", true); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"dana", "kim", "c2"} {
		if e := boxes[id].last(); e.Type != EventChat || !e.Private {
			t.Errorf("%s missed the private message: %+v", id, e)
		}
	}

	// The co-therapist moves a client and visits group 2.
	if err := r.MoveToBreakout("kim", "c1", 2); err != nil {
		t.Fatal(err)
	}
	if err := r.VisitBreakout("kim", 2); err != nil {
		t.Fatal(err)
	}
	if r.Group("c1") != 2 || r.Group("kim") != 2 || r.Group("dana") != 0 {
		t.Errorf("after move and visit: c1 %d, kim %d, dana %d", r.Group("c1"), r.Group("kim"), r.Group("dana"))
	}
	if e := boxes["c5"].last(); e.Type != EventBreakout || e.Change != ChangeBreakoutVisit || e.Breakout.Groups["kim"] != 2 {
		t.Errorf("c5 was not told of the visit: %+v", e)
	}

	if err := r.CloseBreakouts("dana"); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if r.Group(id) != 0 {
			t.Errorf("%s still in %d after close", id, r.Group(id))
		}
	}
	if e := boxes["c3"].last(); e.Type != EventBreakout || e.Change != ChangeBreakoutClose || e.Breakout != nil {
		t.Errorf("c3's last event after close %+v", e)
	}
	for id, box := range boxes {
		for _, typ := range box.types() {
			if typ == EventLeft || typ == EventRemoved {
				t.Errorf("%s saw %s: moving is not leaving", id, typ)
			}
		}
	}
	if got := len(r.Participants()); got != 8 {
		t.Errorf("%d admitted after the breakouts, want 8", got)
	}
	if got := len(r.WaitingList()); got != 1 {
		t.Errorf("%d waiting after the breakouts, want 1", got)
	}
}

// TestBreakoutRefusals: clients may not split or move, a co-therapist may
// not move the host, a waiting or unknown person cannot be moved, group
// numbers outside the open rooms are refused, and none of it changes the
// layout.
func TestBreakoutRefusals(t *testing.T) {
	r, _ := breakoutRoom(t)
	if err := r.MoveToBreakout("dana", "c1", 1); !errors.Is(err, ErrNoBreakouts) {
		t.Errorf("move with no breakouts: %v", err)
	}
	if err := r.CloseBreakouts("dana"); !errors.Is(err, ErrNoBreakouts) {
		t.Errorf("close with no breakouts: %v", err)
	}
	if err := r.OpenBreakouts("c1", Split{Rooms: 2}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a client splits: %v", err)
	}
	if err := r.OpenBreakouts("w", Split{Rooms: 2}); !errors.Is(err, ErrNotAdmitted) {
		t.Errorf("a waiting client splits: %v", err)
	}
	for _, n := range []int{0, -1, MaxBreakouts + 1} {
		if err := r.OpenBreakouts("dana", Split{Rooms: n}); !errors.Is(err, ErrBadGroup) {
			t.Errorf("split into %d: %v", n, err)
		}
	}
	if err := r.OpenBreakouts("dana", Split{Rooms: 2, Assign: map[string]int{"c1": 3}}); !errors.Is(err, ErrBadGroup) {
		t.Errorf("assign to room 3 of 2: %v", err)
	}
	if err := r.OpenBreakouts("dana", Split{Rooms: 2, Assign: map[string]int{"w": 1}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("assign a waiting person: %v", err)
	}
	if err := r.OpenBreakouts("kim", Split{Rooms: 2, Assign: map[string]int{"dana": 1}}); !errors.Is(err, ErrForbidden) {
		t.Errorf("a co-therapist assigns the host: %v", err)
	}
	if r.Breakouts() != nil {
		t.Fatal("a refused split opened breakouts")
	}
	if err := r.OpenBreakouts("dana", Split{Rooms: 2, Assign: map[string]int{}}); err != nil {
		t.Fatal(err)
	}
	if b := r.Breakouts(); b == nil || b.Rooms != 2 || len(b.Groups) != 0 {
		t.Fatalf("rooms to fill by hand: %+v", b)
	}
	if err := r.OpenBreakouts("dana", Split{Rooms: 2, Assign: map[string]int{"c1": 1, "c2": 2, "kim": 2}}); err != nil {
		t.Fatal(err)
	}
	before := fmt.Sprint(r.Breakouts().Groups)
	for what, err := range map[string]error{
		"a client moves another":       r.MoveToBreakout("c1", "c2", 1),
		"a client visits":              r.VisitBreakout("c1", 2),
		"a client brings back":         r.CloseBreakouts("c1"),
		"a co-therapist moves host":    r.MoveToBreakout("kim", "dana", 1),
		"moving a waiting person":      r.MoveToBreakout("dana", "w", 1),
		"moving nobody":                r.MoveToBreakout("dana", "nobody", 1),
		"moving to room 3 of 2":        r.MoveToBreakout("dana", "c1", 3),
		"moving to room -1":            r.MoveToBreakout("dana", "c1", -1),
		"visiting room 9":              r.VisitBreakout("dana", 9),
		"a waiting person brings back": r.CloseBreakouts("w"),
	} {
		if err == nil {
			t.Errorf("%s: allowed", what)
		}
	}
	if after := fmt.Sprint(r.Breakouts().Groups); after != before {
		t.Errorf("refusals changed the layout: %s, was %s", after, before)
	}
}

// TestBreakoutRejoinAndTimer: a client whose connection drops comes back
// into their breakout; when the timer runs out everyone is back in the
// main room, and a timer of an earlier split does not close a later one.
func TestBreakoutRejoinAndTimer(t *testing.T) {
	r, _ := breakoutRoom(t)
	if err := r.OpenBreakouts("dana", Split{Rooms: 3}); err != nil {
		t.Fatal(err)
	}
	var resume string
	r.mu.Lock()
	resume = r.members["c2"].resume
	r.mu.Unlock()
	r.Leave("c2", ReasonDropped)
	back := &inbox{}
	admitted, err := r.Join(Participant{ID: "c2-again", Sub: "sub-c2", Name: "c2", Role: RoleClient}, back, JoinOptions{Resume: resume})
	if err != nil || !admitted {
		t.Fatalf("c2 back: admitted %v, %v", admitted, err)
	}
	if g := r.Group("c2-again"); g != 2 {
		t.Errorf("c2 came back into %d, want 2", g)
	}
	joined := back.events[0]
	if joined.Type != EventJoined || joined.Breakout == nil || joined.Breakout.Groups["c2-again"] != 2 {
		t.Errorf("c2's joined %+v", joined)
	}

	// A one-second timer, replaced by a split without one: the old timer
	// must not close the new split.
	if err := r.OpenBreakouts("dana", Split{Rooms: 2, Seconds: 1}); err != nil {
		t.Fatal(err)
	}
	if err := r.OpenBreakouts("dana", Split{Rooms: 3}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if r.Breakouts() == nil {
		t.Fatal("an earlier split's timer closed the later one")
	}
	if err := r.OpenBreakouts("dana", Split{Rooms: 3, Seconds: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.Breakouts() != nil {
		if time.Now().After(deadline) {
			t.Fatal("the timer did not bring everyone back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.Group("c3") != 0 {
		t.Error("c3 still in a breakout after the timer")
	}
}
