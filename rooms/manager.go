package rooms

// manager.go holds the Manager: the rooms of this node, opening, closing
// and ended sessions.

import (
	"sync"
	"time"
)

// Manager holds the rooms of this node.
type Manager struct {
	now       func() time.Time
	listeners []Listener
	policies  Policies
	grace     time.Duration
	// silentAfter is SilentAfter, or SetPingInterval's.
	silentAfter time.Duration

	mu     sync.Mutex
	rooms  map[Ref]*Room
	pinned map[Ref]bool

	// endedMu guards ended, the rooms whose session a therapist ended and
	// when; it is taken after m.mu and r.mu, never before.
	endedMu sync.Mutex
	ended   map[Ref]time.Time
}

// EndedFor is how long after a session ended (and its room emptied) a
// client or family member who opens its link is told it ended, unless a
// therapist opens the room again first.
const EndedFor = time.Hour

// markEnded remembers that ref's session ended now.
func (m *Manager) markEnded(ref Ref) {
	m.endedMu.Lock()
	defer m.endedMu.Unlock()
	now := m.now()
	for k, at := range m.ended {
		if now.Sub(at) > EndedFor {
			delete(m.ended, k)
		}
	}
	m.ended[ref] = now
}

// endedRecently reports whether ref's session ended within EndedFor and no
// therapist has opened the room since.
func (m *Manager) endedRecently(ref Ref) bool {
	m.endedMu.Lock()
	defer m.endedMu.Unlock()
	at, ok := m.ended[ref]
	return ok && m.now().Sub(at) <= EndedFor
}

// Ended reports whether ref's session ended: it is ending now, or it ended
// within EndedFor and no therapist has opened the room since.
func (m *Manager) Ended(ref Ref) bool {
	if r := m.Get(ref); r != nil {
		r.mu.Lock()
		ended := r.ended
		r.mu.Unlock()
		if ended {
			return true
		}
	}
	return m.endedRecently(ref)
}

// forgetEnded forgets that ref's session ended: a therapist opened it again.
func (m *Manager) forgetEnded(ref Ref) {
	m.endedMu.Lock()
	defer m.endedMu.Unlock()
	delete(m.ended, ref)
}

// MoveOut takes person sub of program out of every room of this node but
// keep, waiting or admitted: they joined keep, and a person is in one room
// at a time. Each of their connections elsewhere gets EventRemoved (Reason
// ReasonMoved) and leaves at at (zero: now), the time of the other
// admission, so their time here ends where it begins there. It returns
// how many connections it took out.
func (m *Manager) MoveOut(program, sub string, keep Ref, at time.Time) int {
	n := 0
	for _, r := range m.Rooms() {
		if r.ref.Program != program || r.ref == keep {
			continue
		}
		r.mu.Lock()
		var gone []*member
		for _, x := range r.members {
			if x.p.Sub == sub {
				gone = append(gone, x)
			}
		}
		for _, x := range gone {
			r.emitLocked(Event{Type: EventRemoved, Participant: x.p, Reason: ReasonMoved}, only(x))
			r.dropLocked(x, ReasonMoved, at)
		}
		empty := len(r.members) == 0
		r.mu.Unlock()
		if empty && len(gone) > 0 {
			m.closeIfEmpty(r)
		}
		n += len(gone)
	}
	return n
}

// NewManager returns a manager whose room events also go to listeners
// (attendance, audit).
func NewManager(policies Policies, listeners ...Listener) *Manager {
	if policies == nil {
		policies = DefaultPolicies()
	}
	return &Manager{now: time.Now, listeners: listeners, policies: policies, grace: DefaultGrace, silentAfter: SilentAfter, rooms: map[Ref]*Room{}, pinned: map[Ref]bool{}, ended: map[Ref]time.Time{}}
}

// DefaultGrace is how long someone whose connection dropped keeps their seat
// and may come back in without waiting again.
const DefaultGrace = 60 * time.Second

// Grace returns the reconnect grace period.
func (m *Manager) Grace() time.Duration { return m.grace }

// Policies returns the capacity rules of each room kind.
func (m *Manager) Policies() Policies { return m.policies }

// Open returns the room ref, creating it with kind and title if it does
// not exist. A pinned room stays when it empties (the dev-mode demo room);
// others close with their last participant.
func (m *Manager) Open(ref Ref, kind Kind, title string, pinned bool) *Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[ref]
	if r == nil {
		if title == "" {
			title = ref.ID
		}
		r = &Room{ref: ref, kind: kind, title: title, m: m, members: map[string]*member{}}
		m.rooms[ref] = r
	}
	if pinned {
		m.pinned[ref] = true
	}
	return r
}

// Get returns the room ref, or nil.
func (m *Manager) Get(ref Ref) *Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[ref]
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
	if m.rooms[r.ref] != r {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.members) != 0 {
		return
	}
	// An ended session reopens fresh next time a therapist opens it; until
	// then, for EndedFor, clients and family are told it ended rather than
	// left waiting for nobody. A pinned room stays open.
	if r.ended {
		m.markEnded(r.ref)
	}
	r.ended, r.locked, r.host = false, false, ""
	r.resetBreakoutsLocked()
	r.screen, r.spotlight = Screen{}, ""
	if m.pinned[r.ref] {
		return
	}
	r.closed = true
	delete(m.rooms, r.ref)
}
