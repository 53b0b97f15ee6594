package rooms

// moderation.go holds moderation: the host rule and what therapists do to
// others and to the room.

import (
	"fmt"
	"time"
)

// actorLocked returns the admitted member acting, if the host rule
// (mayModerate) lets them do a to target (nil for the room itself).
func (r *Room) actorLocked(by string, target *member, a Action) (*member, error) {
	m := r.members[by]
	if m == nil || !m.admitted {
		return nil, ErrNotAdmitted
	}
	var tp *Participant
	if target != nil {
		tp = &target.p
	}
	if err := mayModerate(m.p, tp, r.host, r.hostPresentLocked(), a); err != nil {
		return nil, err
	}
	return m, nil
}

// hostPresentLocked reports whether the host is admitted in the room.
func (r *Room) hostPresentLocked() bool {
	return r.host != "" && r.hostIDLocked() != ""
}

// hostIDLocked returns the participant id of the host's first admitted
// connection, or "".
func (r *Room) hostIDLocked() string {
	for _, id := range r.admitted {
		if m := r.members[id]; m.p.Sub == r.host && m.p.Role == RoleTherapist {
			return id
		}
	}
	return ""
}

// MayModerate reports whether by may do a to id (a waiting or admitted
// participant) under the host rule, and returns whom it is about, so
// that a caller can record a removal before it happens.
func (r *Room) MayModerate(by, id string, a Action) (Participant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	target := r.members[id]
	if target == nil || id == by {
		return Participant{}, ErrNotFound
	}
	if _, err := r.actorLocked(by, target, a); err != nil {
		return Participant{}, err
	}
	return target.p, nil
}

// Admit lets a waiting participant in; id "*" admits everyone waiting who
// finds a seat. Admitting one person into a full room fails with
// ErrRoomFull and leaves them waiting.
func (r *Room) Admit(by, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == "*" {
		actor, err := r.actorLocked(by, nil, ActAdmit)
		if err != nil {
			return err
		}
		r.admitWaitingLocked(actor.p)
		return nil
	}
	m := r.members[id]
	if m == nil || m.admitted {
		return ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActAdmit)
	if err != nil {
		return err
	}
	if !r.enrolledLocked(m.p) {
		return ErrNotEnrolled
	}
	return r.admitLocked(m, actor.p)
}

// Deny turns a waiting participant away; they are told and must disconnect.
func (r *Room) Deny(by, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil || m.admitted {
		return ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActAdmit)
	if err != nil {
		return err
	}
	r.emitLocked(Event{Type: EventRemoved, Participant: m.p, By: actor.p, Reason: ReasonDenied}, only(m))
	r.removeWaitingLocked(id)
	delete(r.members, id)
	r.releaseLocked(m, ReasonDenied)
	r.waitingChangedLocked()
	return nil
}

// Mute turns off a participant's audio or video: the media plane stops
// forwarding it (the participant's listener acts on EventMuted) and everyone
// sees the new state.
func (r *Room) Mute(by, id, kind string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil || !m.admitted || id == by {
		return ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActMute)
	if err != nil {
		return err
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
	m := r.members[id]
	if m == nil || id == by {
		return Participant{}, ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActRemove)
	if err != nil {
		return Participant{}, err
	}
	r.emitLocked(Event{Type: EventRemoved, Participant: m.p, By: actor.p, Reason: reason}, only(m))
	r.dropLocked(m, ReasonRemoved, time.Time{})
	return m.p, nil
}

// SetLocked locks or unlocks the room to new clients and family.
func (r *Room) SetLocked(by string, locked bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActLock)
	if err != nil {
		return err
	}
	r.locked = locked
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Change: ChangeLock}, allAdmitted)
	return nil
}

// End ends the session for everyone, waiting or admitted; they are told
// and must disconnect. The room refuses joins until it closes.
func (r *Room) End(by string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActEnd)
	if err != nil {
		return err
	}
	r.ended = true
	r.emitLocked(Event{Type: EventEnded, By: actor.p}, everyone)
	return nil
}

// HandOver makes the admitted therapist id the session's host: the host
// does it, or any therapist while the host is away.
func (r *Room) HandOver(by, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil || !m.admitted {
		return ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActHandOver)
	if err != nil {
		return err
	}
	if m.p.Role != RoleTherapist {
		return ErrNotHost
	}
	r.host = m.p.Sub
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Participant: m.p, Change: ChangeHost}, allAdmitted)
	return nil
}

// Hosts reports whether sub is the session's host or a therapist admitted
// in it (a co-therapist): those who may invite family to it.
func (r *Room) Hosts(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sub == "" {
		return false
	}
	if r.host == sub {
		return true
	}
	for _, id := range r.admitted {
		if m := r.members[id]; m.p.Sub == sub && m.p.Role == RoleTherapist {
			return true
		}
	}
	return false
}
