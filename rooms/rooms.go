// Package rooms is the domain core: who is in which therapy session, with
// which role, and the events that attendance and audit listen to. It knows
// nothing of websockets or media.
package rooms

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Role is what a person is in a program.
type Role string

// The roles of PROTOCOL.md.
const (
	RoleTherapist Role = "therapist"
	RoleClient    Role = "client"
	RoleFamily    Role = "family"
	RoleStaff     Role = "staff"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleTherapist, RoleClient, RoleFamily, RoleStaff:
		return true
	}
	return false
}

// Staff reports whether r is program staff (therapist or staff): they never
// wait and take no seat.
func (r Role) Staff() bool { return r == RoleTherapist || r == RoleStaff }

// Kind is the kind of therapy session a room holds.
type Kind string

// The room kinds of DESIGN.md.
const (
	KindGroup         Kind = "group"
	KindIndividual    Kind = "individual"
	KindFamily        Kind = "family"
	KindComplementary Kind = "complementary"
	KindSupport       Kind = "support"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindGroup, KindIndividual, KindFamily, KindComplementary, KindSupport:
		return true
	}
	return false
}

// Participant is one admitted connection in a room.
type Participant struct {
	ID    string // opaque, one per connection
	Sub   string // stable person id; never shown to other clients
	Name  string
	Role  Role
	Audio bool
	Video bool
	Hand  bool
}

// EventType names what happened in a room.
type EventType string

// Room event types.
const (
	EventJoined  EventType = "joined"
	EventUpdated EventType = "updated"
	EventLeft    EventType = "left"
)

// Leave reasons.
const (
	ReasonLeft    = "left"
	ReasonDropped = "dropped"
	ReasonRemoved = "removed"
)

// Event is something that happened in a room, as members and listeners see it.
type Event struct {
	Type        EventType
	Room        string
	Participant Participant
	Reason      string // for EventLeft
	At          time.Time
	// Others is set only on the joiner's own EventJoined: everyone who was
	// already in the room. It is the first event the joiner's listener gets.
	Others []Participant
}

// Listener receives room events. Calls are made in event order while the
// room is locked: implementations must return quickly and not call back
// into the room.
type Listener interface {
	RoomEvent(Event)
}

// Errors callers branch on.
var (
	ErrDuplicate = errors.New("rooms: participant id already in the room")
	ErrNotFound  = errors.New("rooms: no such participant")
	ErrClosed    = errors.New("rooms: room closed")
)

// Room is one therapy session's membership.
type Room struct {
	id    string
	kind  Kind
	title string
	m     *Manager

	mu      sync.Mutex
	members map[string]*member
	order   []string
	closed  bool
}

type member struct {
	p Participant
	l Listener
}

// ID returns the room id.
func (r *Room) ID() string { return r.id }

// Kind returns the room kind.
func (r *Room) Kind() Kind { return r.kind }

// Title returns the room title shown to participants.
func (r *Room) Title() string { return r.title }

// Join admits p. l first receives p's own EventJoined carrying everyone
// already in the room, then every later event about the others; the others'
// listeners and the manager's listeners are told p joined.
func (r *Room) Join(p Participant, l Listener) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if _, dup := r.members[p.ID]; dup {
		return fmt.Errorf("join %s: %w", r.id, ErrDuplicate)
	}
	others := make([]Participant, 0, len(r.order))
	for _, id := range r.order {
		others = append(others, r.members[id].p)
	}
	l.RoomEvent(Event{Type: EventJoined, Room: r.id, Participant: p, At: r.m.now(), Others: others})
	r.members[p.ID] = &member{p: p, l: l}
	r.order = append(r.order, p.ID)
	r.emitLocked(Event{Type: EventJoined, Participant: p})
	return nil
}

// Update changes a participant's state (mute, camera, hand) and tells everyone.
func (r *Room) Update(id string, change func(*Participant)) (Participant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil {
		return Participant{}, ErrNotFound
	}
	change(&m.p)
	m.p.ID = id
	r.emitLocked(Event{Type: EventUpdated, Participant: m.p})
	return m.p, nil
}

// Leave removes a participant for reason and tells everyone else. Leaving
// twice is harmless.
func (r *Room) Leave(id, reason string) {
	r.mu.Lock()
	m := r.members[id]
	if m == nil {
		r.mu.Unlock()
		return
	}
	delete(r.members, id)
	for i, x := range r.order {
		if x == id {
			r.order = append(r.order[:i], r.order[i+1:]...)
			break
		}
	}
	r.emitLocked(Event{Type: EventLeft, Participant: m.p, Reason: reason})
	empty := len(r.members) == 0
	r.mu.Unlock()
	if empty {
		r.m.closeIfEmpty(r)
	}
}

// Participants returns everyone in the room in join order.
func (r *Room) Participants() []Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Participant, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.members[id].p)
	}
	return out
}

// emitLocked sends e to every member but its subject, then to the manager's listeners.
func (r *Room) emitLocked(e Event) {
	e.Room = r.id
	e.At = r.m.now()
	for _, id := range r.order {
		if id != e.Participant.ID {
			r.members[id].l.RoomEvent(e)
		}
	}
	for _, l := range r.m.listeners {
		l.RoomEvent(e)
	}
}

// Manager holds the rooms of this node.
type Manager struct {
	now       func() time.Time
	listeners []Listener

	mu     sync.Mutex
	rooms  map[string]*Room
	pinned map[string]bool
}

// NewManager returns a manager whose room events also go to listeners
// (attendance, audit).
func NewManager(listeners ...Listener) *Manager {
	return &Manager{now: time.Now, listeners: listeners, rooms: map[string]*Room{}, pinned: map[string]bool{}}
}

// Open returns the room with id, creating it with kind and title if it does
// not exist. A pinned room stays when it empties (the dev-mode demo room);
// others close with their last participant.
func (m *Manager) Open(id string, kind Kind, title string, pinned bool) *Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[id]
	if r == nil {
		if title == "" {
			title = id
		}
		r = &Room{id: id, kind: kind, title: title, m: m, members: map[string]*member{}}
		m.rooms[id] = r
	}
	if pinned {
		m.pinned[id] = true
	}
	return r
}

// Get returns the room with id, or nil.
func (m *Manager) Get(id string) *Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[id]
}

// Len returns how many rooms are open.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms)
}

func (m *Manager) closeIfEmpty(r *Room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pinned[r.id] || m.rooms[r.id] != r {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.members) == 0 {
		r.closed = true
		delete(m.rooms, r.id)
	}
}
