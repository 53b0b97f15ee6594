package rooms

// join.go holds joining, seats, the waiting room and admission.

import (
	"errors"
	"fmt"
	"time"
)

// seatLocked takes m's seat unless it has one or needs none; a room whose
// kind is not settled seats nobody yet.
func (r *Room) seatLocked(m *member) error {
	if m.release != nil || m.seat == nil || m.p.Role.Staff() || !r.opened {
		return nil
	}
	release, err := m.seat(r.seatCapLocked(m.p.Role))
	if err != nil {
		return err
	}
	m.release = release
	return nil
}

// releaseLocked gives m's seat back: after the grace period for a dropped
// connection (they may come back), else now. The release runs outside the
// room's lock.
func (r *Room) releaseLocked(m *member, reason string) {
	release := m.release
	m.release = nil
	switch {
	case release == nil:
	case reason == ReasonDropped && m.admitted:
		time.AfterFunc(r.m.grace, release)
	default:
		go release()
	}
}

// turnedAwayLocked tells the admitted therapists that p was refused at the
// door for reason (the room is locked or full).
func (r *Room) turnedAwayLocked(p Participant, reason string) {
	r.emitLocked(Event{Type: EventTurnedAway, Participant: p, Reason: reason}, therapists)
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

// SetAutoAdmit lets clients and family in without waiting while a
// therapist is present (by is the host or a co-therapist): those waiting now
// are admitted at once, later arrivals on arrival, each still under the
// room's cap and cohort. Everyone admitted is told (room_updated).
func (r *Room) SetAutoAdmit(by string, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActAdmit)
	if err != nil {
		return err
	}
	r.autoAdmit = on
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Change: ChangeAutoAdmit}, allAdmitted)
	if on {
		r.admitWaitingLocked(actor.p)
	}
	return nil
}

// Join enters p into the room: therapists and staff are admitted at once;
// clients and family wait until a therapist admits them (or at once, in an
// auto-admit room with a therapist present). It reports whether p was
// admitted. l receives p's own first event (EventJoined with Others, or
// EventWaiting with Position) before Join returns, then every later event.
//
// Clients and family take their seat (opt.Seat) at once in a room whose kind
// is settled, and are refused with ErrRoomFull when the kind's cap is
// reached; in an ad-hoc room no therapist has opened yet they wait without
// one, and take it when admitted. Someone whose admitted connection dropped
// within the grace period comes back in without waiting when opt.Resume is
// the secret their joined carried.
func (r *Room) Join(p Participant, l Listener, opt JoinOptions) (admitted bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return false, ErrClosed
	case r.ended, !p.Role.Staff() && r.m.endedRecently(r.ref):
		return false, ErrEnded
	case r.members[p.ID] != nil:
		return false, fmt.Errorf("join %s: %w", r.ref, ErrDuplicate)
	case r.locked && !p.Role.Staff():
		r.turnedAwayLocked(p, ReasonLocked)
		return false, ErrLocked
	case !r.enrolledLocked(p):
		return false, ErrNotEnrolled
	}
	if p.Role == RoleTherapist {
		r.m.forgetEnded(r.ref) // a therapist opens the room again: a new session
	}
	m := &member{p: p, l: l, seat: opt.Seat, resume: newSecret()}
	if err := r.seatLocked(m); err != nil {
		if errors.Is(err, ErrRoomFull) {
			r.turnedAwayLocked(p, ReasonFull)
		}
		return false, err
	}
	r.members[p.ID] = m
	if p.Role == RoleTherapist && r.host == "" {
		r.host = p.Sub // the opener of an ad-hoc room, or the first of an unassigned session
	}
	reconnect := r.reconnectLocked(p.Sub, opt.Resume)
	if p.Role.Staff() || (r.autoAdmit && r.therapistPresentLocked()) || reconnect || r.returningLocked(p.Sub, opt.Resume) {
		if err := r.admitLocked(m, Participant{}); err != nil {
			delete(r.members, p.ID)
			r.releaseLocked(m, ReasonLeft)
			return false, err
		}
		if p.Role == RoleTherapist && r.autoAdmit {
			r.admitWaitingLocked(p)
		}
		return true, nil
	}
	r.waiting = append(r.waiting, p.ID)
	r.waitingChangedLocked()
	return false, nil
}

// replaceSilentLocked takes out the admitted connections of m's person
// that have fallen silent (the person came back on m before the server
// noticed the old one drop): one whose packets (media and RTCP), its last
// sign of life, stopped more than evidenceSlack ago, or any other silent
// for SilentAfter (see Heard). Each leaves as dropped at its last
// evidence, so the time between counts for nobody, and is told so that its
// socket closes.
func (r *Room) replaceSilentLocked(m *member) {
	now := r.m.now()
	for _, id := range append([]string(nil), r.admitted...) {
		old := r.members[id]
		if old == m || old.p.Sub != m.p.Sub {
			continue
		}
		h, ok := old.l.(Heard)
		if !ok {
			continue
		}
		last, limit := h.LastHeard(), r.m.silentAfter
		if p := h.LastPacket(); !p.IsZero() && !p.Before(last.Add(-time.Second)) {
			// Its packets were its last sign of life and they stopped
			// (media and reports flow without pause). A connection that
			// still answered pings after its packets ended (camera off,
			// nothing to watch) is alive: it gets the pings' spacing.
			limit = evidenceSlack
		}
		if last.IsZero() || now.Sub(last) <= limit {
			continue
		}
		r.emitLocked(Event{Type: EventRemoved, Participant: old.p, Reason: ReasonReplaced}, only(old))
		r.dropLocked(old, ReasonDropped, last)
	}
}

// reconnectLocked handles a client that comes back on a new connection,
// with the resume secret its admitted connection was given, before the
// server noticed that connection fail (a network change, a frozen tab):
// that connection is replaced at once and leaves as dropped at its last
// evidence when it has been silent for more than evidenceSlack (else
// now), and the new one is let in without waiting. It reports whether
// resume named one of sub's admitted connections.
func (r *Room) reconnectLocked(sub, resume string) bool {
	if resume == "" {
		return false
	}
	for _, id := range r.admitted {
		old := r.members[id]
		if old.p.Sub != sub || !secretEqual(old.resume, resume) {
			continue
		}
		var last time.Time
		if h, ok := old.l.(Heard); ok {
			last = h.LastHeard()
		}
		r.emitLocked(Event{Type: EventRemoved, Participant: old.p, Reason: ReasonReplaced}, only(old))
		r.dropLocked(old, ReasonDropped, last)
		delete(r.dropped, sub) // the new connection takes the drop's place now
		return true
	}
	return false
}

// admitWaitingLocked admits everyone waiting who may be in the room and
// finds a seat; the others keep waiting.
func (r *Room) admitWaitingLocked(by Participant) {
	for _, w := range append([]string(nil), r.waiting...) {
		if m := r.members[w]; r.enrolledLocked(m.p) {
			_ = r.admitLocked(m, by)
		}
	}
}

// returningLocked reports whether sub was admitted and dropped within the
// grace period and brings the secret they were given: they come back in
// without waiting again. A matching secret is used up.
func (r *Room) returningLocked(sub, resume string) bool {
	d, ok := r.dropped[sub]
	if !ok || !secretEqual(d.resume, resume) {
		return false
	}
	delete(r.dropped, sub)
	return r.m.now().Sub(d.at) <= r.m.grace
}

func (r *Room) therapistPresentLocked() bool {
	for _, id := range r.admitted {
		if r.members[id].p.Role == RoleTherapist {
			return true
		}
	}
	return false
}

// admitLocked moves m into the admitted set and tells everyone; it fails
// with ErrRoomFull when m has no seat and none is free.
func (r *Room) admitLocked(m *member, by Participant) error {
	if m.admitted {
		return nil
	}
	if err := r.seatLocked(m); err != nil {
		return err
	}
	r.replaceSilentLocked(m)
	wasWaiting := r.removeWaitingLocked(m.p.ID)
	others := make([]Participant, 0, len(r.admitted))
	for _, id := range r.admitted {
		others = append(others, r.members[id].p)
	}
	m.admitted = true
	m.since = r.m.now()
	r.admitted = append(r.admitted, m.p.ID)
	self := Event{Type: EventJoined, Participant: m.p, By: by, Others: others, Resume: m.resume}
	if m.p.Role == RoleTherapist {
		self.Waiting = r.waitingLocked()
	}
	r.emitLocked(self, only(m))
	r.emitLocked(Event{Type: EventJoined, Participant: m.p, By: by}, admittedExcept(m))
	if m.p.Role == RoleTherapist && m.p.Sub == r.host && r.hostIDLocked() == m.p.ID && len(others) > 0 {
		// The host is back (or arrived after the others): everyone learns
		// their participant id as the room's host.
		r.emitLocked(Event{Type: EventRoomUpdated, Participant: m.p, Change: ChangeHost}, admittedExcept(m))
	}
	if wasWaiting {
		r.waitingChangedLocked()
	}
	return nil
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
