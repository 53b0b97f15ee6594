// Package admission decides, as one unit, whether a person enters a room:
// grant → room id → program-wide blocks and removals → schedule and
// enrollment → telehealth consent and check-in → the room's node → single-use invitation → seat → room. It
// returns a Ticket or one refusal (an error the edge maps to one protocol
// code), and needs no socket: the websocket session only carries its result.
package admission

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"iop/rooms"
	"iop/rooms/schedule"
	"iop/rooms/store"
	"iop/rooms/telehealth"
)

// Refusals of Admit besides the domain's (rooms.ErrForbidden,
// rooms.ErrRoomFull, rooms.ErrLocked, rooms.ErrEnded, rooms.ErrNotEnrolled,
// *schedule.JoinError) and a *Redirect.
var (
	// ErrBadRoom: the join names no room, or one outside the grammar.
	ErrBadRoom = errors.New("bad room")
	// ErrBlocked: the person's access to the program is suspended.
	ErrBlocked = errors.New("access to this program is suspended; please contact your program")
	// ErrRemoved: the person was removed from this session before.
	ErrRemoved = errors.New("you were removed from this session and may not rejoin it")
	// ErrInvitationUsed: a single-use invitation came back without the
	// resume secret of the connection it admitted.
	ErrInvitationUsed = errors.New("this invitation has been used already; ask your therapist for a new one")
)

// Redirect is the answer for a room whose media lives on another node.
type Redirect struct {
	URL string // the owner node's base URL
}

func (r *Redirect) Error() string { return "the room is served by another node" }

// Config is what admission consults. Only Rooms is required.
type Config struct {
	Rooms *rooms.Manager
	// Seats holds seat leases and room claims across nodes; nil runs one
	// node without capacity limits (unit tests of the protocol).
	Seats rooms.Seats
	// Store keeps blocks, removals and used invitations; nil skips them.
	Store *store.Store
	// Schedule decides scheduled sessions; nil makes every room ad hoc.
	Schedule *schedule.Store
	// Telehealth holds clients' consents and check-ins and asks for them
	// where the program's schedule does; nil asks for neither.
	Telehealth *telehealth.Store
	// Leeway is the token clock leeway, kept with a used invitation.
	Leeway time.Duration
	// Now is the clock of the schedule's join windows (default time.Now).
	Now func() time.Time
}

// Admission admits people into rooms.
type Admission struct {
	cfg Config
}

// New returns an admission for cfg.
func New(cfg Config) *Admission {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Admission{cfg: cfg}
}

// Request is one join.
type Request struct {
	Grant rooms.Grant
	// Room is the room the join message names: required with a grant for
	// any room, else empty or the grant's own.
	Room string
	// Resume is the secret of an earlier joined, after a dropped connection.
	Resume string
	// ID is this connection's participant id; Listener receives its events.
	ID       string
	Listener rooms.Listener
	// CheckIn is a client's check-in for this session, validated
	// (rooms.CheckIn.Validate); required where the program asks for it.
	CheckIn *rooms.CheckIn
}

// Ticket is an admitted (or waiting) person's place in a room.
type Ticket struct {
	Room        *rooms.Room
	Participant rooms.Participant
	// Admitted is false while the person waits in the waiting room.
	Admitted bool
	claim    func()
	place    func() // forgets, across nodes, that the person is here
	left     sync.Once
}

// Leave takes the person out of the room for reason and gives up the
// node's claim on the room with its last person; later calls do nothing.
func (t *Ticket) Leave(reason string) { t.LeaveAt(reason, time.Time{}) }

// LeaveAt is Leave for a connection last heard from at (a dropped one):
// its time in the room ends there (rooms.Room.LeaveAt).
func (t *Ticket) LeaveAt(reason string, at time.Time) {
	t.left.Do(func() {
		t.Room.LeaveAt(t.Participant.ID, reason, at)
		if t.place != nil {
			t.place()
		}
		if t.claim != nil {
			t.claim()
		}
	})
}

// RoomRef returns the room id a request joins, checked against the grammar
// and the grant: the grant's room, or for a grant of any room the request's.
func RoomRef(req Request) (rooms.Ref, error) {
	g := req.Grant
	id := g.Room
	switch {
	case g.Room == rooms.AnyRoom && req.Room == "":
		return rooms.Ref{}, fmt.Errorf("%w: a token for any room needs a room in join", ErrBadRoom)
	case g.Room == rooms.AnyRoom:
		id = req.Room
	case req.Room != "" && req.Room != g.Room:
		return rooms.Ref{}, fmt.Errorf("%w: the token is for another room", rooms.ErrForbidden)
	}
	if err := rooms.ValidRoomID(id); err != nil {
		return rooms.Ref{}, fmt.Errorf("%w: %v", ErrBadRoom, err)
	}
	return rooms.Ref{Program: g.Program, ID: id}, nil
}

// Admit lets req's person into the room, waiting or admitted, or refuses
// with one error. Nothing it took stays taken on refusal.
func (a *Admission) Admit(ctx context.Context, req Request) (*Ticket, error) {
	g := req.Grant
	ref, err := RoomRef(req)
	if err != nil {
		return nil, err
	}
	if err := g.May(rooms.PermJoin, rooms.Target{Program: ref.Program, Room: ref.ID}); err != nil {
		return nil, err
	}
	if err := a.barred(ctx, g, ref); err != nil {
		return nil, err
	}
	occ, late := a.scheduled(ctx, g, ref)
	if late != nil && !isTooLate(late) {
		return nil, late
	}
	if err := a.telehealth(ctx, g, req.CheckIn); err != nil {
		return nil, err
	}
	t := &Ticket{}
	if a.cfg.Seats != nil {
		release, owner, err := a.cfg.Seats.Claim(ctx, ref.String())
		if err != nil {
			return nil, err
		}
		if release == nil {
			return nil, &Redirect{URL: owner} // the owner decides a late return too
		}
		t.claim = release
	}
	if late != nil {
		// The join window has closed, but a group that overruns does not
		// refuse its own people: while a therapist is still in the room,
		// whoever the schedule would have let in during the window comes
		// back in.
		if r := a.cfg.Rooms.Get(ref); r == nil || !r.Live() {
			if t.claim != nil {
				t.claim()
			}
			return nil, late
		}
	}
	open := func() *rooms.Room { return a.open(ref, g, occ) }
	room := open()
	refuse := func(err error) (*Ticket, error) {
		room.Abandon()
		if t.claim != nil {
			t.claim()
		}
		return nil, err
	}
	undoInvite, err := a.consumeInvitation(ctx, g, room, req.Resume)
	if err != nil {
		return refuse(err)
	}
	cohorts := g.Cohorts
	if occ != nil {
		cohorts = a.enrolledCohorts(ctx, g)
	}
	if req.CheckIn != nil && a.cfg.Telehealth != nil {
		if err := a.cfg.Telehealth.SaveCheckIn(ctx, ref, g.Sub, g.Name, *req.CheckIn); err != nil {
			undoInvite()
			return refuse(err)
		}
	}
	me := rooms.Participant{ID: req.ID, Sub: g.Sub, Name: g.Name, Role: g.Role, Audio: true, Video: true, Cohorts: cohorts, Program: g.Program, CheckIn: req.CheckIn}
	opt := rooms.JoinOptions{Seat: a.seat(ref, g), Resume: req.Resume}
	// A room that empties between Open and Join is closed; open it again.
	for {
		t.Admitted, err = room.Join(me, req.Listener, opt)
		if !errors.Is(err, rooms.ErrClosed) {
			break
		}
		room = open()
	}
	if err != nil {
		undoInvite()
		return refuse(err)
	}
	t.Room, t.Participant = room, me
	a.moveHere(ctx, t, ref, g.Sub)
	return t, nil
}

// moveHere makes ref the one room the person is in: their connections in
// other rooms of the program end (reason moved) as of now, on this node at
// once and on another node through Redis. A person's second connection in
// the same room is not a move.
func (a *Admission) moveHere(ctx context.Context, t *Ticket, ref rooms.Ref, sub string) {
	at := time.Now()
	a.cfg.Rooms.MoveOut(ref.Program, sub, ref, at)
	if a.cfg.Seats == nil {
		return
	}
	release, err := a.cfg.Seats.Place(ctx, ref.Program, sub, ref.String(), at)
	if err != nil {
		// Redis is away: the rooms of this node are one room at a time
		// already; another node's would end when its lease lapses.
		return
	}
	t.place = release
}

// open finds or opens the room: a scheduled session is what the timetable
// says, hosted by its first therapist; an ad-hoc room takes the kind of the
// first therapist who opens it, and its cohort.
func (a *Admission) open(ref rooms.Ref, g rooms.Grant, occ *schedule.Occurrence) *rooms.Room {
	r := a.cfg.Rooms.Open(ref, rooms.KindGroup, "", false)
	switch {
	case occ != nil:
		host := ""
		if len(occ.Therapists) > 0 {
			host = occ.Therapists[0]
		}
		r.Schedule(rooms.Scheduled{Kind: occ.Kind, Title: occ.Title, Cap: occ.Cap, Cohort: occ.Cohort, Host: host, Ends: occ.End, AutoAdmit: occ.AutoAdmit})
	case g.Role == rooms.RoleTherapist:
		kind := g.Kind
		if kind == "" {
			kind = rooms.KindGroup
		}
		if !r.Settled() && g.Cohort != "" {
			r.RestrictToCohort(g.Cohort)
		}
		r.OpenAs(kind)
	}
	return r
}

// seat takes a client's or family member's seat in ref across every node.
func (a *Admission) seat(ref rooms.Ref, g rooms.Grant) rooms.SeatFunc {
	if a.cfg.Seats == nil || g.Role.Staff() {
		return nil
	}
	return func(cap int) (func(), error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return a.cfg.Seats.Take(ctx, ref.String(), cap, g.Role, g.Sub)
	}
}

// barred refuses a person blocked in their program or removed from this
// session before.
func (a *Admission) barred(ctx context.Context, g rooms.Grant, ref rooms.Ref) error {
	st := a.cfg.Store
	if st == nil {
		return nil
	}
	blocked, err := st.Blocked(ctx, g.Program, g.Sub)
	if err != nil {
		return err
	}
	if blocked {
		return ErrBlocked
	}
	revoked, err := st.RevokedFromRoom(ctx, ref.String(), g.Sub)
	if err != nil {
		return err
	}
	if revoked {
		return ErrRemoved
	}
	return nil
}

// scheduled checks a join against the program's timetable: a scheduled
// session's window, track, booking and enrollment. It returns nil for an
// ad-hoc room (one the schedule does not know), and the occurrence with the
// refusal when only the window has closed (too late, but maybe still live).
func (a *Admission) scheduled(ctx context.Context, g rooms.Grant, ref rooms.Ref) (*schedule.Occurrence, error) {
	sch := a.cfg.Schedule
	if sch == nil {
		return nil, nil
	}
	occ, err := sch.Check(ctx, ref.Program, ref.ID, g.Sub, g.Role, a.cfg.Now())
	switch {
	case errors.Is(err, schedule.ErrNotScheduled), errors.Is(err, schedule.ErrNotFound):
		return nil, nil
	case isTooLate(err):
		return &occ, err
	case err != nil:
		return nil, err
	}
	return &occ, nil
}

// telehealth refuses a client who has not acknowledged the program's
// current consent, or who comes without the check-in the program asks
// for. Only clients consent and check in; a check-in from anyone else is
// refused as a bad one.
func (a *Admission) telehealth(ctx context.Context, g rooms.Grant, c *rooms.CheckIn) error {
	if g.Role != rooms.RoleClient {
		if c != nil {
			return fmt.Errorf("%w: only clients check in", rooms.ErrBadCheckIn)
		}
		return nil
	}
	if a.cfg.Telehealth == nil {
		return nil
	}
	req, err := a.cfg.Telehealth.For(ctx, g.Program, g.Sub)
	if err != nil {
		return err
	}
	if req.Consent != nil {
		return telehealth.ErrConsentRequired
	}
	if req.CheckIn && c == nil {
		return telehealth.ErrCheckInRequired
	}
	return nil
}

// isTooLate reports whether err refuses only because the join window has
// closed (not a cancellation, not the person).
func isTooLate(err error) bool {
	var je *schedule.JoinError
	return errors.As(err, &je) && je.Code == schedule.CodeTooLate
}

// enrolledCohorts are the cohorts a client is enrolled in, from the
// program's records rather than the token.
func (a *Admission) enrolledCohorts(ctx context.Context, g rooms.Grant) []string {
	e, err := a.cfg.Schedule.Enrollment(ctx, g.Program, g.Sub)
	if err != nil || e == nil {
		return g.Cohorts
	}
	return e.Cohorts
}

// consumeInvitation uses up a single-use invitation; a second use is
// refused, except by the person it admitted coming back after a dropped
// connection with their resume secret. The returned undo gives the
// invitation back if the join fails after all.
func (a *Admission) consumeInvitation(ctx context.Context, g rooms.Grant, room *rooms.Room, resume string) (undo func(), err error) {
	st := a.cfg.Store
	inv := g.Invitation
	if inv == nil || st == nil {
		return func() {}, nil
	}
	if inv.JTI == "" || inv.Expires == 0 {
		return nil, fmt.Errorf("%w: an invitation needs jti and exp", ErrInvitationUsed)
	}
	first, err := st.ConsumeJTI(ctx, g.Program, inv.JTI, time.Unix(inv.Expires, 0).Add(a.cfg.Leeway))
	if err != nil {
		return nil, err
	}
	if !first {
		if room.Returning(g.Sub, resume) {
			return func() {}, nil
		}
		return nil, ErrInvitationUsed
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = st.ReturnJTI(ctx, g.Program, inv.JTI)
	}, nil
}
