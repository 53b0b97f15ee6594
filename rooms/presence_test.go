package rooms

import (
	"testing"
	"time"
)

// TestMoveOut: a person who joins another room of the program leaves every
// other room of this node, waiting or admitted, at the given time, told
// "moved"; the room they joined, other people, and the same person id in
// another program are untouched.
func TestMoveOut(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)}
	var seen []Event
	m := NewManager(nil, listenerFunc(func(e Event) { seen = append(seen, e) }))
	m.now = c.now
	a := m.Open(Ref{Program: "p1", ID: "a"}, KindGroup, "", false)
	b := m.Open(Ref{Program: "p1", ID: "b"}, KindGroup, "", false)
	w := m.Open(Ref{Program: "p1", ID: "w"}, KindGroup, "", false)
	other := m.Open(Ref{Program: "p2", ID: "a"}, KindGroup, "", false)
	join(t, a, "th", RoleTherapist)
	inA, _ := join(t, a, "alex", RoleClient)
	joinAs := func(r *Room, id, sub string, role Role) *inbox {
		box := &inbox{}
		if _, err := r.Join(Participant{ID: id, Sub: sub, Role: role}, box, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
		return box
	}
	inW := joinAs(w, "alex-w", "sub-alex", RoleClient) // waiting: no therapist in w
	inOther := joinAs(other, "alex-p2", "sub-alex", RoleTherapist)
	sam := joinAs(a, "sam", "sub-sam", RoleClient)
	joinAs(b, "alex-b", "sub-alex", RoleClient)
	for _, id := range []string{"alex", "sam"} {
		if err := a.Admit("th", id); err != nil {
			t.Fatal(err)
		}
	}

	c.t = c.t.Add(10 * time.Minute)
	at := c.t.Add(-2 * time.Second) // the other join's time, a moment before
	if n := m.MoveOut("p1", "sub-alex", b.Ref(), at); n != 2 {
		t.Fatalf("MoveOut took %d connections out, want 2 (admitted in a, waiting in w)", n)
	}
	if e := inA.last(); e.Type != EventRemoved || e.Reason != ReasonMoved {
		t.Errorf("alex in a got %v %q, want removed for moved", e.Type, e.Reason)
	}
	if e := inW.last(); e.Type != EventRemoved || e.Reason != ReasonMoved {
		t.Errorf("alex waiting in w got %v %q, want removed for moved", e.Type, e.Reason)
	}
	in := func(r *Room, id string) bool { _, ok := r.Person(id); return ok }
	if in(a, "alex") || in(w, "alex-w") || !in(a, "sam") || !in(b, "alex-b") || !in(other, "alex-p2") {
		t.Errorf("after the move: alex in a %v, in w %v, sam in a %v, alex in b %v, the same id in p2 %v; want false, false, true, true, true",
			in(a, "alex"), in(w, "alex-w"), in(a, "sam"), in(b, "alex-b"), in(other, "alex-p2"))
	}
	for _, box := range []*inbox{sam, inOther} {
		for _, e := range box.events {
			if e.Type == EventRemoved {
				t.Errorf("%v was removed too", e.Participant.ID)
			}
		}
	}
	var left *Event
	for i := range seen {
		if seen[i].Type == EventLeft && seen[i].Participant.ID == "alex" {
			left = &seen[i]
		}
	}
	if left == nil || left.Reason != ReasonMoved || !left.At.Equal(at) {
		t.Errorf("attendance saw alex leave a: %+v; want reason moved at the other join's time %s", left, at)
	}
}

// TestSetReceiving: what the media plane receives reaches the listeners
// with the evidence's time (kept within the admission and now), not the
// members; a client's own update cannot claim it.
func TestSetReceiving(t *testing.T) {
	c := &clock{t: time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)}
	var seen []Event
	m := NewManager(nil, listenerFunc(func(e Event) { seen = append(seen, e) }))
	m.now = c.now
	r := m.Open(Ref{Program: "p1", ID: "r"}, KindGroup, "", false)
	join(t, r, "th", RoleTherapist)
	other, _ := join(t, r, "sam", RoleClient)
	join(t, r, "alex", RoleClient)
	for _, id := range []string{"alex", "sam"} {
		if err := r.Admit("th", id); err != nil {
			t.Fatal(err)
		}
	}
	c.t = c.t.Add(time.Minute)
	before := len(other.events)

	r.SetReceiving("alex", Media{Audio: true, Video: true}, c.t.Add(-20*time.Second))
	r.SetReceiving("alex", Media{Audio: true, Video: true}, c.t)   // no change: nothing
	r.SetReceiving("alex", Media{Audio: true}, c.t.Add(time.Hour)) // a future time is now
	var got []Event
	for _, e := range seen {
		if e.Type == EventReceiving {
			got = append(got, e)
		}
	}
	if len(got) != 2 || !got[0].At.Equal(c.t.Add(-20*time.Second)) || !got[0].Participant.Receiving.Video ||
		!got[1].At.Equal(c.t) || got[1].Participant.Receiving != (Media{Audio: true}) {
		t.Errorf("listeners saw %+v; want video from 20 s ago, then audio only now", got)
	}
	if len(other.events) != before {
		t.Errorf("a member was told of another's media evidence: %v", other.types()[before:])
	}
	p, _ := r.Update("alex", func(p *Participant) { p.Receiving = Media{Audio: true, Video: true} })
	if p.Receiving != (Media{Audio: true}) {
		t.Errorf("a client's own update set what the server receives: %+v", p.Receiving)
	}
}
