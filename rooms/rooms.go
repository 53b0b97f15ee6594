// Package rooms is the domain core: room kinds and their capacity, roles and
// what they may do, the waiting room, moderation, and the room events that
// attendance and audit listen to. It knows nothing of websockets or media.
package rooms

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Participant is one connection in a room, waiting or admitted.
type Participant struct {
	ID    string // opaque, one per connection
	Sub   string // stable person id; never shown to other clients
	Name  string
	Role  Role
	Audio bool
	Video bool
	Hand  bool
	// Cohorts a client is enrolled in, for cohort-restricted groups.
	Cohorts []string
	// Program whose attendance, schedule and access this person is in.
	Program string
	// Transport is how the person's media reaches the server (udp, tcp,
	// relay), once it has connected.
	Transport string
}

// EventType names what happened in a room.
type EventType string

// Room event types. Each says who receives it.
const (
	// EventJoined: a participant was admitted (directly, or from the
	// waiting room). Its own listener gets it first with Others set (and,
	// for a therapist, Waiting).
	EventJoined EventType = "joined"
	// EventWaiting: a participant is in the waiting room; its own
	// listener gets it with Position when it arrives and whenever the
	// line moves.
	EventWaiting EventType = "waiting"
	// EventWaitingList: the waiting list changed; therapists get Waiting.
	EventWaitingList EventType = "waiting_list"
	// EventUpdated: mute, camera or hand changed; everyone admitted.
	EventUpdated EventType = "updated"
	// EventMuted: a therapist muted the participant's Kind; the
	// participant gets it (the others get EventUpdated).
	EventMuted EventType = "muted"
	// EventLeft: an admitted participant left for Reason; the others.
	EventLeft EventType = "left"
	// EventRemoved: the participant was removed or denied (Reason); only
	// the participant, who must then disconnect.
	EventRemoved EventType = "removed"
	// EventRoomUpdated: lock state changed; everyone admitted.
	EventRoomUpdated EventType = "room_updated"
	// EventEnded: a therapist ended the session; everyone, waiting or not.
	EventEnded EventType = "ended"
)

// Leave reasons.
const (
	ReasonLeft    = "left"
	ReasonDropped = "dropped"
	ReasonRemoved = "removed"
	ReasonDenied  = "denied"
	ReasonEnded   = "ended"
)

// Event is something that happened in a room, as members and listeners see it.
type Event struct {
	Type        EventType
	Room        string
	RoomKind    Kind
	Title       string
	Participant Participant // whom it is about
	By          Participant // the therapist who acted (mute, remove, end, admit)
	Reason      string
	Kind        string // muted: "audio" or "video"
	At          time.Time
	Others      []Participant // EventJoined to the joiner: who was already admitted
	Waiting     []Participant // EventWaitingList
	Position    int           // EventWaiting: 1 is next
	Locked      bool          // the room's lock state after the event
}

// Listener receives room events. Calls are made in event order while the
// room is locked: implementations must return quickly and not call back
// into the room.
type Listener interface {
	RoomEvent(Event)
}

// Errors callers branch on; signaling maps each to a protocol code.
var (
	ErrDuplicate   = errors.New("rooms: participant id already in the room")
	ErrNotFound    = errors.New("no such participant")
	ErrClosed      = errors.New("rooms: room closed")
	ErrLocked      = errors.New("the room is locked")
	ErrEnded       = errors.New("the session has ended")
	ErrForbidden   = errors.New("your role may not do this")
	ErrNotAdmitted = errors.New("you are in the waiting room")
	ErrRoomFull    = errors.New("the room is full")
	ErrNotEnrolled = errors.New("this group is for members of a cohort you are not enrolled in")
)

// Room is one therapy session: who waits, who is admitted, and its state.
type Room struct {
	id    string
	kind  Kind
	title string
	m     *Manager

	mu        sync.Mutex
	members   map[string]*member
	admitted  []string // join order
	waiting   []string // arrival order
	locked    bool
	ended     bool
	closed    bool
	autoAdmit bool
	cohort    string
	dropped   map[string]time.Time // sub -> when an admitted client's connection dropped
	opened    bool                 // a therapist (or the schedule) settled the kind
	clientCap int                  // the schedule's cap for clients; 0: the kind's
}

type member struct {
	p        Participant
	l        Listener
	admitted bool
}

// ID returns the room id.
func (r *Room) ID() string { return r.id }

// Kind returns the room kind.
func (r *Room) Kind() Kind {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kind
}

// Title returns the room title shown to participants.
func (r *Room) Title() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.title
}

// Locked reports whether the room refuses new clients and family.
func (r *Room) Locked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.locked
}

// OpenAs settles an ad-hoc room's kind when its first therapist arrives
// (people who came earlier waited in a room of provisional kind).
func (r *Room) OpenAs(kind Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.opened && kind.Valid() {
		r.kind = kind
	}
	r.opened = true
}

// Schedule makes the room a scheduled session: its kind, title, client cap
// (0: the kind's) and cohort come from the timetable, not from whoever
// arrives first.
func (r *Room) Schedule(kind Kind, title string, clientCap int, cohort string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if kind.Valid() {
		r.kind = kind
	}
	if title != "" {
		r.title = title
	}
	r.clientCap, r.cohort, r.opened = clientCap, cohort, true
}

// SeatCap returns how many people of role the room seats: its kind's cap,
// or, before a therapist has settled the kind, the largest cap any kind
// gives that role (a family member may arrive before the therapist opens a
// family session).
func (r *Room) SeatCap(role Role) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.opened {
		if role == RoleClient && r.clientCap > 0 {
			return r.clientCap
		}
		return r.m.policies.Cap(r.kind, role)
	}
	most := 0
	for k := range r.m.policies {
		most = max(most, r.m.policies.Cap(k, role))
	}
	return most
}

// Returning reports whether sub's connection dropped within the grace period
// (they may come back in as before).
func (r *Room) Returning(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.dropped[sub]
	return ok && r.m.now().Sub(at) <= r.m.grace
}

// Abandon closes the room if nobody is in it: a join that was refused after
// the room was opened for it leaves nothing behind.
func (r *Room) Abandon() { r.m.closeIfEmpty(r) }

// RestrictToCohort admits only clients and family enrolled in cohort (as
// the first therapist's token or the schedule says); "" lifts it.
func (r *Room) RestrictToCohort(cohort string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cohort = cohort
}

// enrolledLocked reports whether p may be in a cohort-restricted room.
func (r *Room) enrolledLocked(p Participant) bool {
	if r.cohort == "" || p.Role.Staff() {
		return true
	}
	for _, c := range p.Cohorts {
		if c == r.cohort {
			return true
		}
	}
	return false
}

// SetAutoAdmit makes clients and family skip the waiting room while a
// therapist is present (a scheduled session's setting).
func (r *Room) SetAutoAdmit(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.autoAdmit = on
}

// Join enters p into the room: therapists and staff are admitted at once;
// clients and family wait until a therapist admits them (or at once, in an
// auto-admit room with a therapist present). It reports whether p was
// admitted. l receives p's own first event (EventJoined with Others, or
// EventWaiting with Position) before Join returns, then every later event.
func (r *Room) Join(p Participant, l Listener) (admitted bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return false, ErrClosed
	case r.ended:
		return false, ErrEnded
	case r.members[p.ID] != nil:
		return false, fmt.Errorf("join %s: %w", r.id, ErrDuplicate)
	case r.locked && !p.Role.Staff():
		return false, ErrLocked
	case !r.enrolledLocked(p):
		return false, ErrNotEnrolled
	}
	m := &member{p: p, l: l}
	r.members[p.ID] = m
	if p.Role.Staff() || (r.autoAdmit && r.therapistPresentLocked()) || r.returningLocked(p.Sub) {
		r.admitLocked(m, Participant{})
		if p.Role == RoleTherapist && r.autoAdmit {
			for _, w := range append([]string(nil), r.waiting...) {
				if m := r.members[w]; r.enrolledLocked(m.p) {
					r.admitLocked(m, p)
				}
			}
		}
		return true, nil
	}
	r.waiting = append(r.waiting, p.ID)
	r.waitingChangedLocked()
	return false, nil
}

// returningLocked reports whether sub was admitted and dropped within the
// grace period: they come back in without waiting again.
func (r *Room) returningLocked(sub string) bool {
	at, ok := r.dropped[sub]
	delete(r.dropped, sub)
	return ok && r.m.now().Sub(at) <= r.m.grace
}

func (r *Room) therapistPresentLocked() bool {
	for _, id := range r.admitted {
		if r.members[id].p.Role == RoleTherapist {
			return true
		}
	}
	return false
}

// admitLocked moves m into the admitted set and tells everyone.
func (r *Room) admitLocked(m *member, by Participant) {
	if m.admitted {
		return
	}
	wasWaiting := r.removeWaitingLocked(m.p.ID)
	others := make([]Participant, 0, len(r.admitted))
	for _, id := range r.admitted {
		others = append(others, r.members[id].p)
	}
	m.admitted = true
	r.admitted = append(r.admitted, m.p.ID)
	self := Event{Type: EventJoined, Participant: m.p, By: by, Others: others}
	if m.p.Role == RoleTherapist {
		self.Waiting = r.waitingLocked()
	}
	r.emitLocked(self, only(m))
	r.emitLocked(Event{Type: EventJoined, Participant: m.p, By: by}, admittedExcept(m))
	if wasWaiting {
		r.waitingChangedLocked()
	}
}

func (r *Room) removeWaitingLocked(id string) bool {
	for i, x := range r.waiting {
		if x == id {
			r.waiting = append(r.waiting[:i], r.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// waitingChangedLocked sends each waiting person their position, then the
// waiting list to the therapists.
func (r *Room) waitingChangedLocked() {
	for i, id := range r.waiting {
		m := r.members[id]
		r.emitLocked(Event{Type: EventWaiting, Participant: m.p, Position: i + 1}, only(m))
	}
	r.emitLocked(Event{Type: EventWaitingList, Waiting: r.waitingLocked()}, therapists)
}

func (r *Room) waitingLocked() []Participant {
	list := make([]Participant, 0, len(r.waiting))
	for _, id := range r.waiting {
		list = append(list, r.members[id].p)
	}
	return list
}

// WaitingList returns who waits, in arrival order.
func (r *Room) WaitingList() []Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waitingLocked()
}

// actorLocked returns the admitted member acting, if its role may do a.
func (r *Room) actorLocked(by string, a Action) (*member, error) {
	m := r.members[by]
	if m == nil || !m.admitted {
		return nil, ErrNotAdmitted
	}
	if !m.p.Role.Can(a) {
		return nil, ErrForbidden
	}
	return m, nil
}

// Admit lets a waiting participant in; id "*" admits everyone waiting.
func (r *Room) Admit(by, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, ActAdmit)
	if err != nil {
		return err
	}
	if id == "*" {
		for _, w := range append([]string(nil), r.waiting...) {
			if m := r.members[w]; r.enrolledLocked(m.p) {
				r.admitLocked(m, actor.p)
			}
		}
		return nil
	}
	m := r.members[id]
	if m == nil || m.admitted {
		return ErrNotFound
	}
	if !r.enrolledLocked(m.p) {
		return ErrNotEnrolled
	}
	r.admitLocked(m, actor.p)
	return nil
}

// Deny turns a waiting participant away; they are told and must disconnect.
func (r *Room) Deny(by, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, ActAdmit)
	if err != nil {
		return err
	}
	m := r.members[id]
	if m == nil || m.admitted {
		return ErrNotFound
	}
	r.emitLocked(Event{Type: EventRemoved, Participant: m.p, By: actor.p, Reason: ReasonDenied}, only(m))
	r.removeWaitingLocked(id)
	delete(r.members, id)
	r.waitingChangedLocked()
	return nil
}

// Mute turns off a participant's audio or video: the media plane stops
// forwarding it (the participant's listener acts on EventMuted) and everyone
// sees the new state.
func (r *Room) Mute(by, id, kind string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, ActMute)
	if err != nil {
		return err
	}
	m := r.members[id]
	if m == nil || !m.admitted {
		return ErrNotFound
	}
	switch kind {
	case "audio":
		m.p.Audio = false
	case "video":
		m.p.Video = false
	default:
		return fmt.Errorf("mute kind %q: %w", kind, ErrNotFound)
	}
	r.emitLocked(Event{Type: EventMuted, Participant: m.p, By: actor.p, Kind: kind}, only(m))
	r.emitLocked(Event{Type: EventUpdated, Participant: m.p, By: actor.p}, allAdmitted)
	return nil
}

// Remove takes a participant (waiting or admitted) out of the session with
// the therapist's reason; they are told and must disconnect. It returns
// whom it removed, so that the caller can bar them from rejoining.
func (r *Room) Remove(by, id, reason string) (Participant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, ActRemove)
	if err != nil {
		return Participant{}, err
	}
	m := r.members[id]
	if m == nil || id == by {
		return Participant{}, ErrNotFound
	}
	r.emitLocked(Event{Type: EventRemoved, Participant: m.p, By: actor.p, Reason: reason}, only(m))
	r.dropLocked(m, ReasonRemoved)
	return m.p, nil
}

// SetLocked locks or unlocks the room to new clients and family.
func (r *Room) SetLocked(by string, locked bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, ActLock)
	if err != nil {
		return err
	}
	r.locked = locked
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Locked: locked}, allAdmitted)
	return nil
}

// End ends the session for everyone, waiting or admitted; they are told
// and must disconnect. The room refuses joins until it closes.
func (r *Room) End(by string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, ActEnd)
	if err != nil {
		return err
	}
	r.ended = true
	r.emitLocked(Event{Type: EventEnded, By: actor.p}, everyone)
	return nil
}

// Update changes a participant's own state (mute, camera, hand). Admitted
// participants' changes are broadcast; a waiting participant's are kept
// for when they are admitted.
func (r *Room) Update(id string, change func(*Participant)) (Participant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil {
		return Participant{}, ErrNotFound
	}
	who := m.p
	change(&m.p)
	m.p.ID, m.p.Sub, m.p.Role, m.p.Name = who.ID, who.Sub, who.Role, who.Name
	if m.admitted {
		r.emitLocked(Event{Type: EventUpdated, Participant: m.p}, admittedExcept(m))
	}
	return m.p, nil
}

// Person returns the participant (waiting or admitted) with id.
func (r *Room) Person(id string) (Participant, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.members[id]; m != nil {
		return m.p, true
	}
	return Participant{}, false
}

// Has reports whether an admitted participant with id is in the room.
func (r *Room) Has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	return m != nil && m.admitted
}

// Leave takes a participant out for reason (left, dropped) and tells the
// others. Leaving twice, or after removal, is harmless.
func (r *Room) Leave(id, reason string) {
	r.mu.Lock()
	m := r.members[id]
	if m != nil {
		r.dropLocked(m, reason)
	}
	empty := len(r.members) == 0
	r.mu.Unlock()
	if empty {
		r.m.closeIfEmpty(r)
	}
}

func (r *Room) dropLocked(m *member, reason string) {
	delete(r.members, m.p.ID)
	if m.admitted && reason == ReasonDropped && !m.p.Role.Staff() {
		if r.dropped == nil {
			r.dropped = map[string]time.Time{}
		}
		r.dropped[m.p.Sub] = r.m.now()
	}
	if !m.admitted {
		r.removeWaitingLocked(m.p.ID)
		r.waitingChangedLocked()
		return
	}
	for i, x := range r.admitted {
		if x == m.p.ID {
			r.admitted = append(r.admitted[:i], r.admitted[i+1:]...)
			break
		}
	}
	r.emitLocked(Event{Type: EventLeft, Participant: m.p, Reason: reason}, allAdmitted)
}

// Participants returns the admitted participants in join order.
func (r *Room) Participants() []Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Participant, 0, len(r.admitted))
	for _, id := range r.admitted {
		out = append(out, r.members[id].p)
	}
	return out
}

// audience selects which members receive an event.
type audience func(*member) bool

var (
	allAdmitted = func(m *member) bool { return m.admitted }
	everyone    = func(*member) bool { return true }
	therapists  = func(m *member) bool { return m.admitted && m.p.Role == RoleTherapist }
)

func only(x *member) audience           { return func(m *member) bool { return m == x } }
func admittedExcept(x *member) audience { return func(m *member) bool { return m.admitted && m != x } }

// emitLocked sends e to the members the audience selects, in a stable
// order, then to the manager's listeners (attendance, audit), which see
// every event once.
func (r *Room) emitLocked(e Event, to audience) {
	e.Room, e.RoomKind, e.Title = r.id, r.kind, r.title
	e.At = r.m.now()
	e.Locked = r.locked
	for _, id := range r.admitted {
		if m := r.members[id]; to(m) {
			m.l.RoomEvent(e)
		}
	}
	for _, id := range r.waiting {
		if m := r.members[id]; to(m) {
			m.l.RoomEvent(e)
		}
	}
	if e.Others == nil || e.Type != EventJoined {
		for _, l := range r.m.listeners {
			l.RoomEvent(e)
		}
	}
}

// Manager holds the rooms of this node.
type Manager struct {
	now       func() time.Time
	listeners []Listener
	policies  Policies
	grace     time.Duration

	mu     sync.Mutex
	rooms  map[string]*Room
	pinned map[string]bool
}

// NewManager returns a manager whose room events also go to listeners
// (attendance, audit).
func NewManager(policies Policies, listeners ...Listener) *Manager {
	if policies == nil {
		policies = DefaultPolicies()
	}
	return &Manager{now: time.Now, listeners: listeners, policies: policies, grace: DefaultGrace, rooms: map[string]*Room{}, pinned: map[string]bool{}}
}

// DefaultGrace is how long someone whose connection dropped keeps their seat
// and may come back in without waiting again.
const DefaultGrace = 60 * time.Second

// Grace returns the reconnect grace period.
func (m *Manager) Grace() time.Duration { return m.grace }

// Policies returns the capacity rules of each room kind.
func (m *Manager) Policies() Policies { return m.policies }

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

// Rooms returns the open rooms.
func (m *Manager) Rooms() []*Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		out = append(out, r)
	}
	return out
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
	if m.rooms[r.id] != r {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.members) != 0 {
		return
	}
	// An ended session reopens fresh next time; a pinned room stays open.
	r.ended, r.locked = false, false
	if m.pinned[r.id] {
		return
	}
	r.closed = true
	delete(m.rooms, r.id)
}
