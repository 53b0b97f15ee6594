package rooms

import (
	"errors"
	"testing"
	"time"
)

// TestTurnedAwayIsTold: a client refused by the lock or by a full room is
// never silently lost: the admitted therapist hears who and why.
func TestTurnedAwayIsTold(t *testing.T) {
	_, r, _ := newRoom(t)
	ther, _ := join(t, r, "t", RoleTherapist)
	if err := r.SetLocked("t", true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Join(Participant{ID: "c1", Sub: "sub-c1", Name: "Alex", Role: RoleClient}, &inbox{}, JoinOptions{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("a client at a locked room: %v, want ErrLocked", err)
	}
	if e := ther.last(); e.Type != EventTurnedAway || e.Participant.Name != "Alex" || e.Reason != ReasonLocked {
		t.Errorf("the therapist heard %+v, want Alex turned away by the lock", e)
	}
	if err := r.SetLocked("t", false); err != nil {
		t.Fatal(err)
	}
	r.OpenAs(KindIndividual)
	st := &seats{taken: 1}
	if _, err := r.Join(Participant{ID: "c2", Sub: "sub-c2", Name: "Sam", Role: RoleClient}, &inbox{}, JoinOptions{Seat: st.take}); !errors.Is(err, ErrRoomFull) {
		t.Fatalf("a client at a full room: %v, want ErrRoomFull", err)
	}
	if e := ther.last(); e.Type != EventTurnedAway || e.Participant.Name != "Sam" || e.Reason != ReasonFull {
		t.Errorf("the therapist heard %+v, want Sam turned away by a full room", e)
	}
}

// TestEndedStaysEnded: after a therapist ends a session and everyone has
// gone, a client who opens the link is told it ended (not left waiting for
// nobody) until a therapist opens the room again or EndedFor passes.
func TestEndedStaysEnded(t *testing.T) {
	m, r, c := newRoom(t)
	join(t, r, "t", RoleTherapist)
	if err := r.End("t"); err != nil {
		t.Fatal(err)
	}
	r.Leave("t", ReasonEnded)
	ref := Ref{Program: "p1", ID: "r1"}
	if !m.Ended(ref) {
		t.Fatal("the manager does not report the ended session")
	}
	again := m.Open(ref, KindGroup, "", false)
	if _, err := again.Join(Participant{ID: "c1", Sub: "sub-c1", Role: RoleClient}, &inbox{}, JoinOptions{}); !errors.Is(err, ErrEnded) {
		t.Fatalf("a client after the end: %v, want ErrEnded", err)
	}
	if _, err := again.Join(Participant{ID: "t2", Sub: "sub-t", Role: RoleTherapist}, &inbox{}, JoinOptions{}); err != nil {
		t.Fatalf("the therapist opens the room again: %v", err)
	}
	if admitted, err := again.Join(Participant{ID: "c2", Sub: "sub-c1", Role: RoleClient}, &inbox{}, JoinOptions{}); err != nil || admitted {
		t.Fatalf("a client of the new session: admitted=%v err=%v, want waiting", admitted, err)
	}
	if m.Ended(ref) {
		t.Error("still ended after the therapist opened it again")
	}

	// Without a therapist, the end is forgotten after EndedFor.
	other := Ref{Program: "p1", ID: "r2"}
	r2 := m.Open(other, KindGroup, "", false)
	join(t, r2, "t3", RoleTherapist)
	if err := r2.End("t3"); err != nil {
		t.Fatal(err)
	}
	r2.Leave("t3", ReasonEnded)
	c.t = c.t.Add(EndedFor + time.Minute)
	if m.Ended(other) {
		t.Errorf("still ended %s later", EndedFor+time.Minute)
	}
}
