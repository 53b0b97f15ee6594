package rooms

import (
	"errors"
	"fmt"
	"time"
)

// Breakout rooms are groups inside one room, not rooms of their own: a
// person moved to a breakout keeps their connection, their seat and their
// attendance segment, never passes the waiting room again, and stays under
// the room's program, cohort and caps. Each admitted person is in the main
// room (group 0) or in breakout 1..n; the media plane forwards media only
// within a group, and a chat message to the room reaches the sender's
// group. Groups are kept per person (sub), so a reload or a reconnect
// lands in the same breakout.

// MaxBreakouts is how many breakout rooms a session may be split into.
const MaxBreakouts = 10

// MaxBreakoutTime bounds a breakout timer.
const MaxBreakoutTime = 4 * time.Hour

// Errors of breakout rooms; signaling maps each to a protocol code.
var (
	ErrNoBreakouts = errors.New("no breakout rooms are open")
	ErrBadGroup    = errors.New("no such breakout room")
)

// ChangeBreakout is the EventBreakout change: see Event.Change.
const (
	ChangeBreakoutOpen  RoomChange = "open"  // the host split the room (By)
	ChangeBreakoutMove  RoomChange = "move"  // a therapist moved Participant (By)
	ChangeBreakoutVisit RoomChange = "visit" // a therapist (By) went to a breakout or back to main
	ChangeBreakoutClose RoomChange = "close" // everyone came back: By, or no By when the timer ran out
)

// Layout is the breakout state an event carries: how many breakout rooms
// are open, when their timer ends, and which admitted connection is in
// which (those absent are in the main room). Nil while none are open.
type Layout struct {
	Rooms  int
	Ends   time.Time      // zero: no timer
	Groups map[string]int // participant id -> breakout 1..Rooms
}

// breakouts is a room's open breakout rooms.
type breakouts struct {
	rooms int
	ends  time.Time
	bySub map[string]int // person -> breakout 1..rooms; absent: main room
	gen   uint64         // the room's breakoutGen when opened, for the timer
	timer *time.Timer    // brings everyone back at ends
}

// Split is how the host splits the room: evenly into Rooms (the admitted
// clients and family in join order, one to each room in turn), or by hand
// (Assign: participant id -> breakout 0..Rooms; those not named stay in
// the main room). Seconds, if not zero, is the timer: when it runs out
// everyone comes back to the main room.
type Split struct {
	Rooms   int
	Assign  map[string]int
	Seconds int
}

// OpenBreakouts splits the room into breakout rooms (by is the host or a
// co-therapist; a co-therapist assigns clients and family only). Opening
// while breakouts are open replaces the layout and the timer.
func (r *Room) OpenBreakouts(by string, s Split) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActBreakout)
	if err != nil {
		return err
	}
	if s.Rooms < 1 || s.Rooms > MaxBreakouts {
		return fmt.Errorf("%w: split into 1 to %d breakout rooms", ErrBadGroup, MaxBreakouts)
	}
	if s.Seconds < 0 || time.Duration(s.Seconds)*time.Second > MaxBreakoutTime {
		return fmt.Errorf("%w: a breakout timer runs 1 s to %s", ErrBadGroup, MaxBreakoutTime)
	}
	bySub := map[string]int{}
	if s.Assign != nil {
		for id, g := range s.Assign {
			m := r.members[id]
			if m == nil || !m.admitted {
				return fmt.Errorf("assign %.40q: %w", id, ErrNotFound)
			}
			if g < 0 || g > s.Rooms {
				return fmt.Errorf("%w: %d (rooms are 0 to %d)", ErrBadGroup, g, s.Rooms)
			}
			if m.p.ID != by {
				if _, err := r.actorLocked(by, m, ActBreakout); err != nil {
					return err
				}
			}
			if g != 0 {
				bySub[m.p.Sub] = g
			}
		}
	} else {
		i := 0
		for _, id := range r.admitted {
			m := r.members[id]
			if m.p.Role != RoleClient && m.p.Role != RoleFamily {
				continue
			}
			if _, seen := bySub[m.p.Sub]; seen {
				continue // the same person on two connections
			}
			bySub[m.p.Sub] = i%s.Rooms + 1
			i++
		}
	}
	r.stopBreakoutTimerLocked()
	r.breakoutGen++
	b := &breakouts{rooms: s.Rooms, bySub: bySub, gen: r.breakoutGen}
	if s.Seconds > 0 {
		d := time.Duration(s.Seconds) * time.Second
		b.ends = r.m.now().Add(d)
		b.timer = time.AfterFunc(d, func() { r.breakoutTimeUp(b.gen) })
	}
	r.breakout = b
	r.emitLocked(Event{Type: EventBreakout, By: actor.p, Change: ChangeBreakoutOpen}, allAdmitted)
	return nil
}

// MoveToBreakout moves the admitted participant id to breakout group (0:
// the main room) while breakouts are open (by: the host, or a co-therapist
// moving a client or family member).
func (r *Room) MoveToBreakout(by, id string, group int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil || !m.admitted {
		return ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActBreakout)
	if err != nil {
		return err
	}
	if err := r.checkGroupLocked(group); err != nil {
		return err
	}
	r.setGroupLocked(m.p.Sub, group)
	r.emitLocked(Event{Type: EventBreakout, By: actor.p, Participant: m.p, Change: ChangeBreakoutMove}, allAdmitted)
	return nil
}

// VisitBreakout takes the therapist by to breakout group (0: back to the
// main room): they see and hear that group and it sees them.
func (r *Room) VisitBreakout(by string, group int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActBreakout)
	if err != nil {
		return err
	}
	if err := r.checkGroupLocked(group); err != nil {
		return err
	}
	r.setGroupLocked(actor.p.Sub, group)
	r.emitLocked(Event{Type: EventBreakout, By: actor.p, Participant: actor.p, Change: ChangeBreakoutVisit}, allAdmitted)
	return nil
}

// CloseBreakouts brings everyone back to the main room.
func (r *Room) CloseBreakouts(by string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActBreakout)
	if err != nil {
		return err
	}
	if r.breakout == nil {
		return ErrNoBreakouts
	}
	r.closeBreakoutsLocked(actor.p)
	return nil
}

// Group returns the breakout the admitted participant id is in (0: the
// main room, or nobody of that id).
func (r *Room) Group(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.members[id]; m != nil && m.admitted {
		return r.groupLocked(m)
	}
	return 0
}

// Breakouts returns the current layout, or nil when none are open.
func (r *Room) Breakouts() *Layout {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.layoutLocked()
}

// breakoutTimeUp brings everyone back when opening gen's timer runs out,
// unless that opening was closed or replaced meanwhile.
func (r *Room) breakoutTimeUp(gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.breakout == nil || r.breakout.gen != gen || r.closed {
		return
	}
	r.closeBreakoutsLocked(Participant{})
}

func (r *Room) closeBreakoutsLocked(by Participant) {
	r.stopBreakoutTimerLocked()
	r.breakout = nil
	r.emitLocked(Event{Type: EventBreakout, By: by, Change: ChangeBreakoutClose}, allAdmitted)
}

func (r *Room) stopBreakoutTimerLocked() {
	if r.breakout != nil && r.breakout.timer != nil {
		r.breakout.timer.Stop()
		r.breakout.timer = nil
	}
}

func (r *Room) checkGroupLocked(group int) error {
	if r.breakout == nil {
		return ErrNoBreakouts
	}
	if group < 0 || group > r.breakout.rooms {
		return fmt.Errorf("%w: %d (rooms are 0 to %d)", ErrBadGroup, group, r.breakout.rooms)
	}
	return nil
}

func (r *Room) setGroupLocked(sub string, group int) {
	if group == 0 {
		delete(r.breakout.bySub, sub)
		return
	}
	r.breakout.bySub[sub] = group
}

// groupLocked is m's breakout (0: main room).
func (r *Room) groupLocked(m *member) int {
	if r.breakout == nil {
		return 0
	}
	return r.breakout.bySub[m.p.Sub]
}

// sameGroupLocked reports whether a and b see and hear each other.
func (r *Room) sameGroupLocked(a, b *member) bool {
	return r.groupLocked(a) == r.groupLocked(b)
}

// layoutLocked is the layout events carry: a fresh copy with the admitted
// connections' groups, or nil when no breakouts are open.
func (r *Room) layoutLocked() *Layout {
	b := r.breakout
	if b == nil {
		return nil
	}
	out := &Layout{Rooms: b.rooms, Ends: b.ends, Groups: map[string]int{}}
	for _, id := range r.admitted {
		if g := b.bySub[r.members[id].p.Sub]; g != 0 {
			out.Groups[id] = g
		}
	}
	return out
}

// resetBreakoutsLocked forgets the breakouts when the room empties.
func (r *Room) resetBreakoutsLocked() {
	r.stopBreakoutTimerLocked()
	r.breakout = nil
}
