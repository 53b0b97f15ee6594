package rooms

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// inbox records the events one member receives.
type inbox struct {
	mu     sync.Mutex
	events []Event
}

func (b *inbox) RoomEvent(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, e)
}

func (b *inbox) last() Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.events) == 0 {
		return Event{}
	}
	return b.events[len(b.events)-1]
}

func (b *inbox) types() []EventType {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []EventType
	for _, e := range b.events {
		out = append(out, e.Type)
	}
	return out
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newRoom(t *testing.T) (*Manager, *Room, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)}
	m := NewManager(nil)
	m.now = c.now
	return m, m.Open("r1", KindGroup, "Relapse prevention", false), c
}

func join(t *testing.T, r *Room, id string, role Role) (*inbox, bool) {
	t.Helper()
	b := &inbox{}
	admitted, err := r.Join(Participant{ID: id, Sub: "sub-" + id, Name: id, Role: role, Audio: true, Video: true}, b)
	if err != nil {
		t.Fatalf("%s joins: %v", id, err)
	}
	return b, admitted
}

// TestWaitingRoom: clients wait and are told their position, therapists
// see the list; admit lets one in with everyone told; deny sends one away.
func TestWaitingRoom(t *testing.T) {
	_, r, _ := newRoom(t)
	ther, ok := join(t, r, "dana", RoleTherapist)
	if !ok {
		t.Fatal("a therapist waits")
	}
	alex, ok := join(t, r, "alex", RoleClient)
	if ok || alex.last().Type != EventWaiting || alex.last().Position != 1 {
		t.Fatalf("client: admitted=%v last event %+v", ok, alex.last())
	}
	sam, _ := join(t, r, "sam", RoleClient)
	if sam.last().Position != 2 {
		t.Errorf("second in line has position %d", sam.last().Position)
	}
	if w := ther.last(); w.Type != EventWaitingList || len(w.Waiting) != 2 {
		t.Fatalf("therapist's last event %+v, want the waiting list of 2", w)
	}
	if err := r.Admit("alex", "sam"); !errors.Is(err, ErrNotAdmitted) {
		t.Errorf("a waiting client admitting: %v", err)
	}
	if err := r.Admit("dana", "alex"); err != nil {
		t.Fatal(err)
	}
	if e := alex.events[len(alex.events)-1]; e.Type != EventJoined || len(e.Others) != 1 || e.By.ID != "dana" {
		t.Errorf("admitted client got %+v", e)
	}
	if r.Has("sam") || !r.Has("alex") {
		t.Error("Has is wrong after admit")
	}
	if err := r.Deny("dana", "sam"); err != nil {
		t.Fatal(err)
	}
	if e := sam.last(); e.Type != EventRemoved || e.Reason != ReasonDenied {
		t.Errorf("denied client got %+v", e)
	}
	if len(r.WaitingList()) != 0 {
		t.Error("the waiting list still has someone")
	}
	for _, typ := range alex.types() {
		if typ == EventRemoved {
			t.Error("the admitted client was told of someone's denial")
		}
	}
}

// TestModerationIsForTherapists: clients may not mute, remove, lock, end or
// admit; a therapist's mute reaches the target and updates everyone.
func TestModerationIsForTherapists(t *testing.T) {
	_, r, _ := newRoom(t)
	_, _ = join(t, r, "dana", RoleTherapist)
	alex, _ := join(t, r, "alex", RoleClient)
	sam, _ := join(t, r, "sam", RoleClient)
	if err := r.Admit("dana", "*"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"mute":   r.Mute("alex", "sam", "audio"),
		"lock":   r.SetLocked("alex", true),
		"end":    r.End("alex"),
		"admit":  r.Admit("alex", "*"),
		"remove": func() error { _, err := r.Remove("alex", "sam", "x"); return err }(),
	} {
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("client %s: %v, want ErrForbidden", name, err)
		}
	}
	if err := r.Mute("dana", "sam", "audio"); err != nil {
		t.Fatal(err)
	}
	if e := sam.last(); e.Type != EventUpdated {
		t.Errorf("the muted client's last event %+v", e)
	}
	var muted bool
	for _, e := range sam.events {
		muted = muted || (e.Type == EventMuted && e.Kind == "audio" && e.By.ID == "dana")
	}
	if !muted {
		t.Error("the muted client was not told")
	}
	if e := alex.last(); e.Type != EventUpdated || e.Participant.ID != "sam" || e.Participant.Audio {
		t.Errorf("others see %+v", e)
	}
	if _, err := r.Remove("dana", "sam", "please call me"); err != nil {
		t.Fatal(err)
	}
	if e := sam.last(); e.Type != EventRemoved || e.Reason != "please call me" {
		t.Errorf("removed client got %+v", e)
	}
	if e := alex.last(); e.Type != EventLeft || e.Reason != ReasonRemoved {
		t.Errorf("others see %+v", e)
	}
	if err := r.SetLocked("dana", true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Join(Participant{ID: "late", Role: RoleClient}, &inbox{}); !errors.Is(err, ErrLocked) {
		t.Errorf("joining a locked room: %v", err)
	}
	if _, err := r.Join(Participant{ID: "cot", Role: RoleTherapist}, &inbox{}); err != nil {
		t.Errorf("a co-therapist joining a locked room: %v", err)
	}
	if err := r.End("cot"); err != nil {
		t.Fatalf("co-therapist ends: %v", err)
	}
	if alex.last().Type != EventEnded {
		t.Errorf("after end the client got %+v", alex.last())
	}
}

// TestReturningAfterDrop: a client whose connection dropped comes back in
// without waiting within the grace period, and waits again after it.
func TestReturningAfterDrop(t *testing.T) {
	_, r, c := newRoom(t)
	_, _ = join(t, r, "dana", RoleTherapist)
	_, _ = join(t, r, "alex", RoleClient)
	_ = r.Admit("dana", "alex")
	r.Leave("alex", ReasonDropped)
	c.t = c.t.Add(40 * time.Second)
	b := &inbox{}
	admitted, err := r.Join(Participant{ID: "alex2", Sub: "sub-alex", Role: RoleClient}, b)
	if err != nil || !admitted {
		t.Fatalf("back after 40 s: admitted=%v err=%v", admitted, err)
	}
	r.Leave("alex2", ReasonDropped)
	c.t = c.t.Add(61 * time.Second)
	if admitted, _ := r.Join(Participant{ID: "alex3", Sub: "sub-alex", Role: RoleClient}, &inbox{}); admitted {
		t.Error("back after 61 s without waiting")
	}
	r.Leave("alex3", ReasonLeft)
	if admitted, _ := r.Join(Participant{ID: "alex4", Sub: "sub-alex", Role: RoleClient}, &inbox{}); admitted {
		t.Error("someone who left on purpose comes back without waiting")
	}
}

// TestCohort: a cohort room takes enrolled clients only, at join and admit.
func TestCohort(t *testing.T) {
	_, r, _ := newRoom(t)
	_, _ = join(t, r, "dana", RoleTherapist)
	r.RestrictToCohort("veterans")
	if _, err := r.Join(Participant{ID: "a", Role: RoleClient, Cohorts: []string{"women"}}, &inbox{}); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("outside the cohort: %v", err)
	}
	if _, err := r.Join(Participant{ID: "b", Role: RoleClient, Cohorts: []string{"veterans"}}, &inbox{}); err != nil {
		t.Errorf("enrolled: %v", err)
	}
}

// TestPolicies: the caps of DESIGN.md and their override.
func TestPolicies(t *testing.T) {
	p := DefaultPolicies()
	for _, tc := range []struct {
		kind Kind
		role Role
		cap  int
	}{
		{KindGroup, RoleClient, 15}, {KindGroup, RoleFamily, 0}, {KindIndividual, RoleClient, 1},
		{KindFamily, RoleClient, 1}, {KindFamily, RoleFamily, 6}, {KindSupport, RoleClient, 15},
	} {
		if got := p.Cap(tc.kind, tc.role); got != tc.cap {
			t.Errorf("%s %s cap %d, want %d", tc.kind, tc.role, got, tc.cap)
		}
	}
	if err := p.ParseCaps("group=12, support=20"); err != nil || p.Cap(KindGroup, RoleClient) != 12 || p.Cap(KindSupport, RoleClient) != 20 {
		t.Errorf("override: %v %+v", err, p)
	}
	for _, bad := range []string{"group", "group=0", "party=3", "group=x"} {
		if err := p.ParseCaps(bad); err == nil {
			t.Errorf("ParseCaps(%q) accepted", bad)
		}
	}
	if !RoleTherapist.Can(ActEnd) || RoleClient.Can(ActMute) || RoleStaff.Can(ActAdmit) || !RoleStaff.Can(ActReadAttendance) {
		t.Error("the role table is wrong")
	}
}
