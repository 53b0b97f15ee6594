package admission

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"iop/cluster"
	"iop/rooms"
	"iop/rooms/schedule"
	"iop/rooms/store"
)

// inbox keeps what a joiner is told.
type inbox struct {
	mu     sync.Mutex
	events []rooms.Event
}

func (b *inbox) RoomEvent(e rooms.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, e)
}

func (b *inbox) resume() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.events) - 1; i >= 0; i-- {
		if b.events[i].Resume != "" {
			return b.events[i].Resume
		}
	}
	return ""
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fixture is an admission over real Redis (IOP_TEST_REDIS_URL) or the
// embedded one, with seats and a room claim of node n1.
type fixture struct {
	a     *Admission
	st    *store.Store
	rooms *rooms.Manager
	seats *cluster.Seats
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), os.Getenv("IOP_TEST_REDIS_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	f := &fixture{st: st, rooms: rooms.NewManager(nil)}
	f.seats = cluster.NewSeats(cluster.NewStore(st.Redis), "n1-"+randomID(), "http://n1.test", time.Minute, slog.New(slog.DiscardHandler))
	t.Cleanup(f.seats.Close)
	f.a = New(Config{Rooms: f.rooms, Seats: f.seats, Store: st, Leeway: time.Second})
	return f
}

func grant(program, sub string, role rooms.Role, room string) rooms.Grant {
	return rooms.Grant{Program: program, Sub: sub, Name: sub, Role: role, Room: room}
}

func (f *fixture) admit(t *testing.T, g rooms.Grant, room, resume string) (*Ticket, *inbox, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b := &inbox{}
	tk, err := f.a.Admit(ctx, Request{Grant: g, Room: room, Resume: resume, ID: "p" + randomID(), Listener: b})
	if err == nil {
		t.Cleanup(func() { tk.Leave(rooms.ReasonLeft) })
	}
	return tk, b, err
}

// TestAdmitRefusals: every refusal of the admission unit, without a socket,
// and nothing left taken after each.
func TestAdmitRefusals(t *testing.T) {
	f := newFixture(t)
	p := "prog-" + randomID()
	room := "room-" + randomID()
	ctx := context.Background()
	if _, _, err := f.admit(t, grant(p, "t1", rooms.RoleTherapist, rooms.AnyRoom), room, ""); err != nil {
		t.Fatalf("the therapist: %v", err)
	}
	if err := f.st.Block(ctx, p, "c-blocked"); err != nil {
		t.Fatal(err)
	}
	if err := f.st.RevokeFromRoom(ctx, rooms.Ref{Program: p, ID: room}.String(), "c-removed", time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		g    rooms.Grant
		room string
		want error
	}{
		{"a token for any room, no room", grant(p, "t2", rooms.RoleTherapist, rooms.AnyRoom), "", ErrBadRoom},
		{"the room named *", grant(p, "t2", rooms.RoleTherapist, rooms.AnyRoom), "*", ErrBadRoom},
		{"a room outside the grammar", grant(p, "t2", rooms.RoleTherapist, rooms.AnyRoom), "a/b", ErrBadRoom},
		{"another room than the token's", grant(p, "c1", rooms.RoleClient, room), "elsewhere", rooms.ErrForbidden},
		{"staff with a token for any room", grant(p, "s1", rooms.RoleStaff, rooms.AnyRoom), room, rooms.ErrForbidden},
		{"no program", grant("", "c1", rooms.RoleClient, room), "", rooms.ErrForbidden},
		{"blocked", grant(p, "c-blocked", rooms.RoleClient, room), "", ErrBlocked},
		{"removed", grant(p, "c-removed", rooms.RoleClient, room), "", ErrRemoved},
		{"family in a group", grant(p, "f1", rooms.RoleFamily, room), "", rooms.ErrRoomFull},
	} {
		_, _, err := f.admit(t, tc.g, tc.room, "")
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := len(f.rooms.Get(rooms.Ref{Program: p, ID: room}).Participants()); got != 1 {
		t.Errorf("%d people in the room after the refusals, want the therapist only", got)
	}
	if got, _ := cluster.NewStore(f.st.Redis).Seated(ctx, rooms.Ref{Program: p, ID: room}.String(), "family"); len(got) != 0 {
		t.Errorf("a refused join kept a seat: %v", got)
	}
}

// TestAdmitProgramsApart: the same room id in two programs is two rooms.
func TestAdmitProgramsApart(t *testing.T) {
	f := newFixture(t)
	a, b := "a-"+randomID(), "b-"+randomID()
	ta, _, err := f.admit(t, grant(a, "t", rooms.RoleTherapist, "group-1"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	tb, _, err := f.admit(t, grant(b, "t", rooms.RoleTherapist, rooms.AnyRoom), "group-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if ta.Room == tb.Room || ta.Room.Ref().Program != a || tb.Room.Ref().Program != b {
		t.Fatalf("programs %s and %s share a room: %v %v", a, b, ta.Room.Ref(), tb.Room.Ref())
	}
}

// TestAdmitRedirect: a room another node holds is a redirect, and takes
// nothing here.
func TestAdmitRedirect(t *testing.T) {
	f := newFixture(t)
	p := "prog-" + randomID()
	ref := rooms.Ref{Program: p, ID: "held"}
	other := cluster.NewSeats(cluster.NewStore(f.st.Redis), "n2-"+randomID(), "http://n2.test", time.Minute, slog.New(slog.DiscardHandler))
	defer other.Close()
	release, _, err := other.Claim(context.Background(), ref.String())
	if err != nil || release == nil {
		t.Fatalf("node 2 claims: %v", err)
	}
	defer release()
	_, _, err = f.admit(t, grant(p, "c1", rooms.RoleClient, "held"), "", "")
	var r *Redirect
	if !errors.As(err, &r) || r.URL != "http://n2.test" {
		t.Fatalf("a room held by node 2: %v, want a redirect there", err)
	}
	if f.rooms.Get(ref) != nil {
		t.Error("the redirected join opened the room here")
	}
}

// TestAdmitInvitation: an invitation admits once; after a dropped
// connection only the resume secret brings it back.
func TestAdmitInvitation(t *testing.T) {
	f := newFixture(t)
	p := "prog-" + randomID()
	room := "fam-" + randomID()
	th := grant(p, "t", rooms.RoleTherapist, room)
	th.Kind = rooms.KindFamily
	ther, _, err := f.admit(t, th, "", "")
	if err != nil {
		t.Fatal(err)
	}
	inv := grant(p, "family-1", rooms.RoleFamily, room)
	inv.Invitation = &rooms.Invitation{JTI: "jti-" + randomID(), Expires: time.Now().Add(time.Hour).Unix()}
	first, box, err := f.admit(t, inv, "", "")
	if err != nil || first.Admitted {
		t.Fatalf("first use: admitted %v, %v; want waiting", first != nil && first.Admitted, err)
	}
	if err := first.Room.Admit(ther.Participant.ID, first.Participant.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.admit(t, inv, "", ""); !errors.Is(err, ErrInvitationUsed) {
		t.Fatalf("a second use while the first is in: %v", err)
	}
	first.Leave(rooms.ReasonDropped)
	if _, _, err := f.admit(t, inv, "", "guess"); !errors.Is(err, ErrInvitationUsed) {
		t.Errorf("after a drop with a wrong secret: %v", err)
	}
	back, _, err := f.admit(t, inv, "", box.resume())
	if err != nil || !back.Admitted {
		t.Errorf("after a drop with the secret: %v, want admitted at once", err)
	}
}

// TestAdmitLateReturn: a group that overruns does not refuse its own
// people: after the join window has closed, a client who dropped comes
// back while the therapist is still in the room, and is refused once the
// session has emptied.
func TestAdmitLateReturn(t *testing.T) {
	f := newFixture(t)
	file, err := schedule.LoadYAML(bytes.NewReader(schedule.Example))
	if err != nil {
		t.Fatal(err)
	}
	file.Program.ID = "late" + randomID()
	sch := schedule.NewStore(f.st.Redis)
	if err := sch.Seed(context.Background(), file); err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	now := time.Date(2026, 3, 9, 9, 30, 0, 0, ny) // relapse prevention, 9:00 to 10:00, joinable until 10:15
	f.a = New(Config{Rooms: f.rooms, Seats: f.seats, Store: f.st, Schedule: sch, Now: func() time.Time { return now }})
	p := file.Program.ID
	room := p + "-day-relapse-prevention-20260309"
	ther, _, err := f.admit(t, grant(p, "demo-therapist", rooms.RoleTherapist, room), "", "")
	if err != nil {
		t.Fatalf("the therapist in the window: %v", err)
	}
	client, _, err := f.admit(t, grant(p, "demo-client-1", rooms.RoleClient, room), "", "")
	if err != nil {
		t.Fatalf("the client in the window: %v", err)
	}
	client.Leave(rooms.ReasonDropped)

	now = time.Date(2026, 3, 9, 10, 40, 0, 0, ny) // the group runs late
	if _, _, err := f.admit(t, grant(p, "demo-client-1", rooms.RoleClient, room), "", ""); err != nil {
		t.Errorf("back while the therapist is still in the room: %v, want let in", err)
	}
	if _, _, err := f.admit(t, grant(p, "someone-else", rooms.RoleClient, room), "", ""); err == nil || isTooLate(err) {
		t.Errorf("a client the schedule never let in, during the overrun: %v, want refused for who they are", err)
	}
	for _, r := range f.rooms.Get(rooms.Ref{Program: p, ID: room}).Participants() {
		if r.Role == rooms.RoleClient {
			f.rooms.Get(rooms.Ref{Program: p, ID: room}).Leave(r.ID, rooms.ReasonLeft)
		}
	}
	ther.Leave(rooms.ReasonLeft)
	_, _, err = f.admit(t, grant(p, "demo-client-1", rooms.RoleClient, room), "", "")
	var je *schedule.JoinError
	if !errors.As(err, &je) || je.Code != schedule.CodeTooLate {
		t.Errorf("after the therapist left: %v, want too_late", err)
	}
	if je != nil && je.Next != nil && !je.Next.End.After(now) {
		t.Errorf("the refusal offers %s, which has ended", je.Next.ID)
	}
}

// TestAdmitScheduledAutoAdmit: a track the program set to auto_admit lets
// its clients in on arrival once a therapist is there; before that, they
// wait.
func TestAdmitScheduledAutoAdmit(t *testing.T) {
	f := newFixture(t)
	file, err := schedule.LoadYAML(bytes.NewReader(schedule.Example))
	if err != nil {
		t.Fatal(err)
	}
	file.Program.ID = "auto" + randomID()
	for i := range file.Program.Tracks {
		if file.Program.Tracks[i].ID == "day" {
			file.Program.Tracks[i].AutoAdmit = true
		}
	}
	sch := schedule.NewStore(f.st.Redis)
	if err := sch.Seed(context.Background(), file); err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	at := time.Date(2026, 3, 9, 9, 5, 0, 0, ny)
	f.a = New(Config{Rooms: f.rooms, Seats: f.seats, Store: f.st, Schedule: sch, Now: func() time.Time { return at }})
	p := file.Program.ID
	room := p + "-day-relapse-prevention-20260309"
	early, _, err := f.admit(t, grant(p, "demo-client-1", rooms.RoleClient, room), "", "")
	if err != nil || early.Admitted {
		t.Fatalf("before the therapist: admitted=%v %v, want waiting", early != nil && early.Admitted, err)
	}
	early.Leave(rooms.ReasonLeft)
	if _, _, err := f.admit(t, grant(p, "demo-therapist", rooms.RoleTherapist, room), "", ""); err != nil {
		t.Fatal(err)
	}
	late, _, err := f.admit(t, grant(p, "demo-client-1", rooms.RoleClient, room), "", "")
	if err != nil || !late.Admitted {
		t.Errorf("with the therapist there: admitted=%v %v, want admitted on arrival", late != nil && late.Admitted, err)
	}
}
