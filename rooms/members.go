package rooms

// members.go holds what members change of themselves, leaving, and who
// hears each event.

import (
	"time"
)

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
	m.p.ID, m.p.Sub, m.p.Role, m.p.Name, m.p.Receiving = who.ID, who.Sub, who.Role, who.Name, who.Receiving
	if m.admitted {
		r.emitLocked(Event{Type: EventUpdated, Participant: m.p}, admittedExcept(m))
	}
	return m.p, nil
}

// SetReceiving records what the server receives of participant id's media
// from at on (kept between their admission and now). Only an admitted
// participant's media counts; listeners get EventReceiving.
func (r *Room) SetReceiving(id string, media Media, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil || !m.admitted || m.p.Receiving == media {
		return
	}
	m.p.Receiving = media
	now := r.m.now()
	if at.IsZero() || at.After(now) {
		at = now
	}
	r.emitLocked(Event{Type: EventReceiving, Participant: m.p, At: maxTime(at, m.since)}, nobody)
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
func (r *Room) Leave(id, reason string) { r.LeaveAt(id, reason, time.Time{}) }

// LeaveAt is Leave for a connection whose person was last heard from at
// (zero: now): a dropped connection's time in the room ends at its last
// evidence, not when the server noticed the drop. at is kept between the
// person's admission and now.
func (r *Room) LeaveAt(id, reason string, at time.Time) {
	r.mu.Lock()
	m := r.members[id]
	if m != nil {
		r.dropLocked(m, reason, at)
	}
	empty := len(r.members) == 0
	r.mu.Unlock()
	if empty {
		r.m.closeIfEmpty(r)
	}
}

// dropLocked takes m out for reason; at is its person's last evidence
// (zero: now), which the others' EventLeft carries when it is over
// evidenceSlack old, kept no earlier than m's admission.
func (r *Room) dropLocked(m *member, reason string, at time.Time) {
	delete(r.members, m.p.ID)
	r.releaseLocked(m, reason)
	if m.admitted && reason == ReasonDropped && !m.p.Role.Staff() {
		if r.dropped == nil {
			r.dropped = map[string]drop{}
		}
		r.dropped[m.p.Sub] = drop{at: r.m.now(), resume: m.resume}
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
	e := Event{Type: EventLeft, Participant: m.p, Reason: reason}
	if now := r.m.now(); !at.IsZero() && (now.Sub(at) > evidenceSlack || reason == ReasonMoved) && !at.After(now) {
		// A move ends here exactly when the other admission began.
		e.At = maxTime(at, m.since)
	}
	r.emitLocked(e, allAdmitted)
	r.presenterLeftLocked(m)
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
	nobody      = func(*member) bool { return false }
)

func only(x *member) audience           { return func(m *member) bool { return m == x } }
func admittedExcept(x *member) audience { return func(m *member) bool { return m.admitted && m != x } }

// emitLocked sends e to the members the audience selects, in a stable
// order, then to the manager's listeners (attendance, audit), which see
// every event once.
func (r *Room) emitLocked(e Event, to audience) {
	e.Program, e.Room, e.RoomKind, e.Title = r.ref.Program, r.ref.ID, r.kind, r.title
	if e.At.IsZero() {
		e.At = r.m.now()
	}
	e.Locked, e.AutoAdmit, e.Chat = r.locked, r.autoAdmit, !r.chatOff
	e.Host = r.hostIDLocked()
	e.Screen, e.Spotlight = r.screen, r.spotlight
	e.Ends = r.ends
	e.Breakout = r.layoutLocked()
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
	if e.Type == EventChat {
		return // chat goes to the members only: never to attendance, audit or any store
	}
	if e.Others == nil || e.Type != EventJoined {
		for _, l := range r.m.listeners {
			l.RoomEvent(e)
		}
	}
}
