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
	return m, m.Open(Ref{Program: "p1", ID: "r1"}, KindGroup, "Relapse prevention", false), c
}

func join(t *testing.T, r *Room, id string, role Role) (*inbox, bool) {
	t.Helper()
	b := &inbox{}
	admitted, err := r.Join(Participant{ID: id, Sub: "sub-" + id, Name: id, Role: role, Audio: true, Video: true}, b, JoinOptions{})
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
	if _, err := r.Join(Participant{ID: "late", Role: RoleClient}, &inbox{}, JoinOptions{}); !errors.Is(err, ErrLocked) {
		t.Errorf("joining a locked room: %v", err)
	}
	if _, err := r.Join(Participant{ID: "cot", Sub: "sub-cot", Role: RoleTherapist}, &inbox{}, JoinOptions{}); err != nil {
		t.Errorf("a co-therapist joining a locked room: %v", err)
	}
	if err := r.End("cot"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("a co-therapist ends while the host is there: %v, want ErrForbidden", err)
	}
	if err := r.End("dana"); err != nil {
		t.Fatalf("the host ends: %v", err)
	}
	if alex.last().Type != EventEnded {
		t.Errorf("after end the client got %+v", alex.last())
	}
}

// TestReturningAfterDrop: a client whose connection dropped comes back in
// without waiting within the grace period with the resume secret of their
// joined, and waits again after it, or without the secret (a copied link).
func TestReturningAfterDrop(t *testing.T) {
	_, r, c := newRoom(t)
	_, _ = join(t, r, "dana", RoleTherapist)
	alex, _ := join(t, r, "alex", RoleClient)
	_ = r.Admit("dana", "alex")
	secret := alex.last().Resume
	if alex.last().Type != EventJoined || secret == "" {
		t.Fatalf("the admitted client's joined carries no resume secret: %+v", alex.last())
	}
	r.Leave("alex", ReasonDropped)
	c.t = c.t.Add(40 * time.Second)
	if r.Returning("sub-alex", "guess") || !r.Returning("sub-alex", secret) {
		t.Error("Returning does not follow the secret")
	}
	if admitted, _ := r.Join(Participant{ID: "thief", Sub: "sub-alex", Role: RoleClient}, &inbox{}, JoinOptions{}); admitted {
		t.Fatal("the same person without the resume secret (a copied link) skipped the waiting room")
	}
	r.Leave("thief", ReasonLeft)
	b := &inbox{}
	admitted, err := r.Join(Participant{ID: "alex2", Sub: "sub-alex", Role: RoleClient}, b, JoinOptions{Resume: secret})
	if err != nil || !admitted {
		t.Fatalf("back after 40 s: admitted=%v err=%v", admitted, err)
	}
	if again := b.last().Resume; again == "" || again == secret {
		t.Errorf("the resumed joined carries resume %q: want a new secret", again)
	}
	r.Leave("alex2", ReasonDropped)
	if admitted, _ := r.Join(Participant{ID: "alex2b", Sub: "sub-alex", Role: RoleClient}, &inbox{}, JoinOptions{Resume: secret}); admitted {
		t.Error("a used resume secret worked twice")
	}
	r.Leave("alex2b", ReasonLeft)
	c.t = c.t.Add(61 * time.Second)
	if admitted, _ := r.Join(Participant{ID: "alex3", Sub: "sub-alex", Role: RoleClient}, &inbox{}, JoinOptions{Resume: b.last().Resume}); admitted {
		t.Error("back after 61 s without waiting")
	}
	r.Leave("alex3", ReasonLeft)
	if admitted, _ := r.Join(Participant{ID: "alex4", Sub: "sub-alex", Role: RoleClient}, &inbox{}, JoinOptions{}); admitted {
		t.Error("someone who left on purpose comes back without waiting")
	}
}

// TestHostRule: the first therapist hosts; a co-therapist moderates clients
// but never the host or another therapist, and cannot end while the host is
// there; the host can hand over, and then the old host is a co-therapist.
func TestHostRule(t *testing.T) {
	_, r, _ := newRoom(t)
	host, _ := join(t, r, "dana", RoleTherapist)
	_, _ = join(t, r, "cot", RoleTherapist)
	_, _ = join(t, r, "kim", RoleTherapist)
	_, _ = join(t, r, "alex", RoleClient)
	if r.Host() != "sub-dana" {
		t.Fatalf("host %q, want the first therapist", r.Host())
	}
	if err := r.Admit("cot", "alex"); err != nil {
		t.Fatalf("a co-therapist admits a client: %v", err)
	}
	for name, err := range map[string]error{
		"mute the host":          r.Mute("cot", "dana", "audio"),
		"remove the host":        func() error { _, err := r.Remove("cot", "dana", "x"); return err }(),
		"mute a co-therapist":    r.Mute("cot", "kim", "video"),
		"remove a co-therapist":  func() error { _, err := r.Remove("cot", "kim", "x"); return err }(),
		"end while host present": r.End("cot"),
		"hand over":              r.HandOver("cot", "cot"),
	} {
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("a co-therapist may %s: %v", name, err)
		}
	}
	if err := r.Mute("cot", "alex", "audio"); err != nil {
		t.Errorf("a co-therapist mutes a client: %v", err)
	}
	if err := r.Mute("dana", "kim", "audio"); err != nil {
		t.Errorf("the host mutes a co-therapist: %v", err)
	}
	if err := r.HandOver("dana", "alex"); !errors.Is(err, ErrNotHost) {
		t.Errorf("handing over to a client: %v", err)
	}
	if err := r.HandOver("dana", "cot"); err != nil {
		t.Fatal(err)
	}
	if r.Host() != "sub-cot" || host.last().Type != EventRoomUpdated || host.last().Host != "cot" {
		t.Errorf("after hand-over the host is %q and the old host saw %+v", r.Host(), host.last())
	}
	if err := r.Mute("dana", "cot", "audio"); !errors.Is(err, ErrForbidden) {
		t.Errorf("the old host mutes the new one: %v", err)
	}
	r.Leave("cot", ReasonLeft)
	if err := r.End("dana"); err != nil {
		t.Errorf("a therapist ends while the host is away: %v", err)
	}
}

// seats is a SeatFunc source that counts seats per cap, as Redis would.
type seats struct {
	mu    sync.Mutex
	taken int
	caps  []int
}

func (s *seats) take(cap int) (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caps = append(s.caps, cap)
	if s.taken >= cap {
		return nil, ErrRoomFull
	}
	s.taken++
	return func() { s.mu.Lock(); s.taken--; s.mu.Unlock() }, nil
}

// TestCapsBeforeSeats: clients who arrive before the therapist opens an
// ad-hoc room wait without a seat; when the therapist opens it as an
// individual session, admission applies that kind's cap: one.
func TestCapsBeforeSeats(t *testing.T) {
	m := NewManager(nil)
	r := m.Open(Ref{Program: "p1", ID: "adhoc"}, KindGroup, "", false)
	st := &seats{}
	for _, id := range []string{"c1", "c2", "c3"} {
		admitted, err := r.Join(Participant{ID: id, Sub: "sub-" + id, Role: RoleClient}, &inbox{}, JoinOptions{Seat: st.take})
		if err != nil || admitted {
			t.Fatalf("%s before the therapist: admitted=%v err=%v", id, admitted, err)
		}
	}
	if len(st.caps) != 0 {
		t.Fatalf("seats taken before the room's kind was settled, with caps %v", st.caps)
	}
	r.OpenAs(KindIndividual)
	if _, err := r.Join(Participant{ID: "t", Sub: "sub-t", Role: RoleTherapist}, &inbox{}, JoinOptions{Seat: st.take}); err != nil {
		t.Fatal(err)
	}
	if err := r.Admit("t", "c1"); err != nil {
		t.Fatalf("the first client: %v", err)
	}
	if err := r.Admit("t", "c2"); !errors.Is(err, ErrRoomFull) {
		t.Errorf("a second client into an individual session: %v, want ErrRoomFull", err)
	}
	if err := r.Admit("t", "*"); err != nil {
		t.Fatal(err)
	}
	if got := len(r.Participants()); got != 2 {
		t.Errorf("%d admitted, want the therapist and one client", got)
	}
	if len(r.WaitingList()) != 2 {
		t.Errorf("the others should still wait, have %d", len(r.WaitingList()))
	}
	if _, err := r.Join(Participant{ID: "c4", Sub: "sub-c4", Role: RoleClient}, &inbox{}, JoinOptions{Seat: st.take}); !errors.Is(err, ErrRoomFull) {
		t.Errorf("a client arriving at a full settled room: %v, want ErrRoomFull", err)
	}
	r.Leave("c1", ReasonLeft)
	eventuallyTrue(t, func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.taken == 0 }, "the seat is released on leave")
}

func eventuallyTrue(t *testing.T, f func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Errorf("not within 5 s: %s", what)
}

// TestCohort: a cohort room takes enrolled clients only, at join and admit.
func TestCohort(t *testing.T) {
	_, r, _ := newRoom(t)
	_, _ = join(t, r, "dana", RoleTherapist)
	r.RestrictToCohort("veterans")
	if _, err := r.Join(Participant{ID: "a", Role: RoleClient, Cohorts: []string{"women"}}, &inbox{}, JoinOptions{}); !errors.Is(err, ErrNotEnrolled) {
		t.Errorf("outside the cohort: %v", err)
	}
	if _, err := r.Join(Participant{ID: "b", Role: RoleClient, Cohorts: []string{"veterans"}}, &inbox{}, JoinOptions{}); err != nil {
		t.Errorf("enrolled: %v", err)
	}
}

// TestPolicies: the caps of docs/protocol.md (4.4) and their override.
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

// TestHostComesBack: the host's dropped connection does not hand the role
// over; when they join again the others learn the host's new id.
func TestHostComesBack(t *testing.T) {
	_, r, _ := newRoom(t)
	_, _ = join(t, r, "dana", RoleTherapist)
	_, _ = join(t, r, "kim", RoleTherapist)
	r.Leave("dana", ReasonDropped)
	if r.Host() != "sub-dana" {
		t.Fatalf("host %q after the host dropped, want still sub-dana", r.Host())
	}
	if err := r.End("kim"); err != nil {
		t.Errorf("a co-therapist ending while the host is away: %v", err)
	}
	_, r, _ = newRoom(t)
	_, _ = join(t, r, "dana", RoleTherapist)
	co, _ := join(t, r, "kim", RoleTherapist)
	r.Leave("dana", ReasonDropped)
	b := &inbox{}
	if _, err := r.Join(Participant{ID: "dana2", Sub: "sub-dana", Name: "dana", Role: RoleTherapist}, b, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := co.last(); e.Type != EventRoomUpdated || e.Host != "dana2" {
		t.Errorf("the co-therapist's last event %+v, want room_updated naming dana2 the host", e)
	}
	if err := r.End("kim"); !errors.Is(err, ErrForbidden) {
		t.Errorf("a co-therapist ending once the host is back: %v", err)
	}
}

// TestAutoAdmit: the host lets people in without one-by-one admission:
// those waiting come in at once, later arrivals on arrival, within the cap;
// a client cannot turn it on, and turning it off makes people wait again.
func TestAutoAdmit(t *testing.T) {
	m := NewManager(nil)
	r := m.Open(Ref{Program: "p1", ID: "auto"}, KindGroup, "", false)
	r.OpenAs(KindIndividual)
	st := &seats{}
	ther := &inbox{}
	if _, err := r.Join(Participant{ID: "t", Sub: "sub-t", Role: RoleTherapist}, ther, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	a := &inbox{}
	if admitted, _ := r.Join(Participant{ID: "a", Sub: "sub-a", Role: RoleClient}, a, JoinOptions{Seat: st.take}); admitted {
		t.Fatal("admitted before auto-admission is on")
	}
	if err := r.SetAutoAdmit("a", true); !errors.Is(err, ErrNotAdmitted) {
		t.Errorf("a waiting client turning auto-admission on: %v", err)
	}
	if err := r.SetAutoAdmit("t", true); err != nil {
		t.Fatal(err)
	}
	if a.last().Type != EventJoined {
		t.Errorf("the waiting client's last event %+v, want joined", a.last())
	}
	told := false
	for _, e := range ther.events {
		told = told || (e.Type == EventRoomUpdated && e.AutoAdmit && e.Change == ChangeAutoAdmit)
	}
	if !told {
		t.Errorf("the therapist was told %v, want room_updated with auto-admission on", ther.types())
	}
	if err := r.SetAutoAdmit("a", false); !errors.Is(err, ErrForbidden) {
		t.Errorf("an admitted client turning auto-admission off: %v", err)
	}
	if _, err := r.Join(Participant{ID: "b", Sub: "sub-b", Role: RoleClient}, &inbox{}, JoinOptions{Seat: st.take}); !errors.Is(err, ErrRoomFull) {
		t.Errorf("a second client into an auto-admitting individual session: %v, want ErrRoomFull", err)
	}
	r.Leave("a", ReasonLeft)
	eventuallyTrue(t, func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.taken == 0 }, "the seat is free")
	if admitted, err := r.Join(Participant{ID: "c", Sub: "sub-c", Role: RoleClient}, &inbox{}, JoinOptions{Seat: st.take}); err != nil || !admitted {
		t.Errorf("a client arriving while auto-admission is on: admitted=%v %v", admitted, err)
	}
	r.Leave("c", ReasonLeft)
	if err := r.SetAutoAdmit("t", false); err != nil {
		t.Fatal(err)
	}
	if admitted, _ := r.Join(Participant{ID: "d", Sub: "sub-d", Role: RoleClient}, &inbox{}, JoinOptions{}); admitted {
		t.Error("admitted on arrival after auto-admission was turned off")
	}
}

// TestLeaveAt: a dropped connection's time ends at its last evidence (the
// listeners' EventLeft carries it), never before the person was admitted
// nor after now.
func TestLeaveAt(t *testing.T) {
	var got []Event
	m := NewManager(nil, listenerFunc(func(e Event) { got = append(got, e) }))
	c := &clock{t: time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)}
	m.now = c.now
	r := m.Open(Ref{Program: "p", ID: "r"}, KindGroup, "", false)
	for _, id := range []string{"t", "a", "b", "c"} {
		role := RoleClient
		if id == "t" {
			role = RoleTherapist
		}
		if _, err := r.Join(Participant{ID: id, Sub: "sub-" + id, Role: role}, &inbox{}, JoinOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	admitted := c.t
	_ = r.Admit("t", "*")
	c.t = c.t.Add(time.Minute)
	r.LeaveAt("a", ReasonDropped, admitted.Add(20*time.Second))
	r.LeaveAt("b", ReasonDropped, admitted.Add(-time.Hour)) // evidence from before the admission
	r.LeaveAt("c", ReasonDropped, c.t.Add(time.Hour))       // a clock ahead
	want := map[string]time.Time{"a": admitted.Add(20 * time.Second), "b": admitted, "c": c.t}
	for _, e := range got {
		if e.Type == EventLeft {
			if w := want[e.Participant.ID]; !e.At.Equal(w) {
				t.Errorf("%s left at %v, want %v", e.Participant.ID, e.At, w)
			}
			delete(want, e.Participant.ID)
		}
	}
	if len(want) != 0 {
		t.Errorf("no EventLeft for %v", want)
	}
}

type listenerFunc func(Event)

func (f listenerFunc) RoomEvent(e Event) { f(e) }

// heardInbox is a member that says when its person was last heard from,
// and when its last media or RTCP packet came (zero: it sends none).
type heardInbox struct {
	inbox
	last, media time.Time
}

func (h *heardInbox) LastHeard() time.Time  { return h.last }
func (h *heardInbox) LastPacket() time.Time { return h.media }

// TestFrozenMediaReplacedAtRejoin: when a person is admitted again, their
// older connection leaves at its last evidence at once if its media
// stopped more than a few seconds ago; one without media is given the
// pings' spacing; a connection still heard from stays.
func TestFrozenMediaReplacedAtRejoin(t *testing.T) {
	cases := []struct {
		name     string
		silent   time.Duration // since the old connection was last heard from
		media    bool          // it had sent media (its last packet then)
		before   time.Duration // its last packet came this long before that
		replaced bool
	}{
		{"media stopped 6 s ago", 6 * time.Second, true, 0, true},
		{"media stopped 4 s ago (the spacing of packets)", 4 * time.Second, true, 0, false},
		{"no media nor RTCP, silent 6 s (between pings)", 6 * time.Second, false, 0, false},
		{"no media nor RTCP, silent 21 s", 21 * time.Second, false, 0, true},
		{"media stopped a minute ago, still answering pings (6 s ago)", 6 * time.Second, true, 54 * time.Second, false},
		{"media stopped, a pong 0.5 s later, silent 6 s since (frozen)", 6 * time.Second, true, 500 * time.Millisecond, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var left []Event
			m := NewManager(nil, listenerFunc(func(e Event) {
				if e.Type == EventLeft {
					left = append(left, e)
				}
			}))
			c := &clock{t: time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)}
			m.now = c.now
			r := m.Open(Ref{Program: "p", ID: "r"}, KindGroup, "", false)
			if _, err := r.Join(Participant{ID: "t", Sub: "sub-t", Role: RoleTherapist}, &inbox{}, JoinOptions{}); err != nil {
				t.Fatal(err)
			}
			old := &heardInbox{}
			if _, err := r.Join(Participant{ID: "a1", Sub: "sub-a", Role: RoleClient}, old, JoinOptions{}); err != nil {
				t.Fatal(err)
			}
			_ = r.Admit("t", "a1")
			c.t = c.t.Add(time.Minute)
			old.last = c.t.Add(-tc.silent)
			if tc.media {
				old.media = old.last.Add(-tc.before)
			}
			if _, err := r.Join(Participant{ID: "a2", Sub: "sub-a", Role: RoleClient}, &heardInbox{last: c.t, media: c.t}, JoinOptions{}); err != nil {
				t.Fatal(err)
			}
			_ = r.Admit("t", "a2")
			if got := !r.Has("a1"); got != tc.replaced {
				t.Fatalf("the old connection replaced: %v, want %v", got, tc.replaced)
			}
			if tc.replaced && (len(left) != 1 || !left[0].At.Equal(old.last)) {
				t.Errorf("left events %+v, want a1 at its last evidence %v", left, old.last)
			}
		})
	}
}

// TestReconnectWithSecretReplacesAtOnce: a client that comes back with the
// resume secret of its still-admitted connection (its network changed, its
// tab froze) is let in without waiting; the old connection is told it was
// replaced and leaves as dropped at its last evidence, so the time between
// counts for nobody. The old secret is used up; a wrong one waits.
func TestReconnectWithSecretReplacesAtOnce(t *testing.T) {
	var left []Event
	m := NewManager(nil, listenerFunc(func(e Event) {
		if e.Type == EventLeft {
			left = append(left, e)
		}
	}))
	c := &clock{t: time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)}
	m.now = c.now
	r := m.Open(Ref{Program: "p", ID: "r"}, KindGroup, "", false)
	if _, err := r.Join(Participant{ID: "t", Sub: "sub-t", Role: RoleTherapist}, &inbox{}, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	old := &heardInbox{}
	if _, err := r.Join(Participant{ID: "a1", Sub: "sub-a", Role: RoleClient}, old, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = r.Admit("t", "a1")
	secret := old.inbox.last().Resume
	old.last, old.media = c.t.Add(30*time.Second), c.t.Add(30*time.Second)
	c.t = c.t.Add(40 * time.Second) // back 10 s after its last packet, before any timeout

	if admitted, _ := r.Join(Participant{ID: "a2", Sub: "sub-a", Role: RoleClient}, &inbox{}, JoinOptions{Resume: "not-it"}); admitted {
		t.Fatal("a wrong secret was let in without waiting")
	}
	r.Leave("a2", ReasonLeft)
	admitted, err := r.Join(Participant{ID: "a3", Sub: "sub-a", Role: RoleClient}, &inbox{}, JoinOptions{Resume: secret})
	if err != nil || !admitted {
		t.Fatalf("back with the secret: admitted %v, %v; want in at once", admitted, err)
	}
	if e := old.inbox.last(); e.Type != EventRemoved || e.Reason != ReasonReplaced {
		t.Errorf("the old connection was told %+v, want removed: replaced", e)
	}
	if len(left) != 1 || left[0].Participant.ID != "a1" || !left[0].At.Equal(old.last) || left[0].Reason != ReasonDropped {
		t.Fatalf("left events %+v, want a1 dropped at its last evidence %v", left, old.last)
	}
	if admitted, _ := r.Join(Participant{ID: "a4", Sub: "sub-a", Role: RoleClient}, &inbox{}, JoinOptions{Resume: secret}); admitted {
		t.Error("the used secret let a second connection in")
	}
}

// TestSilentConnectionReplaced: a client whose connection went silent
// comes back on a new one before the server noticed: when the new one is
// admitted, the old one leaves as dropped at its last evidence (the gap
// counts for nobody) and is told it was replaced; a connection that is
// still heard from stays (two tabs).
func TestSilentConnectionReplaced(t *testing.T) {
	var left []Event
	m := NewManager(nil, listenerFunc(func(e Event) {
		if e.Type == EventLeft {
			left = append(left, e)
		}
	}))
	c := &clock{t: time.Date(2026, 11, 26, 18, 0, 0, 0, time.UTC)}
	m.now = c.now
	r := m.Open(Ref{Program: "p", ID: "r"}, KindGroup, "", false)
	if _, err := r.Join(Participant{ID: "t", Sub: "sub-t", Role: RoleTherapist}, &inbox{}, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	old := &heardInbox{}
	if _, err := r.Join(Participant{ID: "a1", Sub: "sub-a", Role: RoleClient}, old, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = r.Admit("t", "a1")
	old.last = c.t.Add(30 * time.Second) // last heard at 18:00:30
	c.t = c.t.Add(time.Minute)           // back at 18:01:00 on a new connection
	if _, err := r.Join(Participant{ID: "a2", Sub: "sub-a", Role: RoleClient}, &heardInbox{last: c.t}, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = r.Admit("t", "a2")
	if e := old.inbox.last(); e.Type != EventRemoved || e.Reason != ReasonReplaced {
		t.Errorf("the silent connection was told %+v, want removed: replaced", e)
	}
	if len(left) != 1 || left[0].Participant.ID != "a1" || !left[0].At.Equal(old.last) || left[0].Reason != ReasonDropped {
		t.Fatalf("left events %+v, want a1 dropped at its last evidence %v", left, old.last)
	}
	if !r.Has("a2") || r.Has("a1") {
		t.Error("the new connection should be in and the old one out")
	}
	// A second tab that is alive stays.
	c.t = c.t.Add(5 * time.Second)
	if _, err := r.Join(Participant{ID: "a3", Sub: "sub-a", Role: RoleClient}, &heardInbox{last: c.t}, JoinOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = r.Admit("t", "a3")
	if !r.Has("a2") || !r.Has("a3") {
		t.Error("a connection heard from 5 s ago was replaced")
	}
}
