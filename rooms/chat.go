package rooms

// chat.go holds chat: messages relayed to the members, never kept.

import (
	"fmt"
)

// Chat relays a chat message of the admitted participant by: to everyone
// admitted in by's group (the whole room unless breakouts are open), or
// (private) to the session's therapists, wherever they are, and by. Clients and
// family may not while chat is off. Nothing of it is kept: the room only
// numbers messages so that a therapist can remove one for everyone.
func (r *Room) Chat(by, text string, private bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[by]
	if m == nil || !m.admitted {
		return ErrNotAdmitted
	}
	if r.chatOff && !m.p.Role.Staff() {
		return ErrChatOff
	}
	r.chatSeq++
	e := Event{Type: EventChat, Participant: m.p, Text: text, Private: private, MessageID: fmt.Sprintf("m%d", r.chatSeq)}
	// While breakout rooms are open a message to the room reaches the
	// sender's own group.
	to := func(x *member) bool { return x.admitted && r.sameGroupLocked(x, m) }
	if private {
		to = func(x *member) bool { return x == m || (x.admitted && x.p.Role == RoleTherapist) }
	}
	r.emitLocked(e, to)
	return nil
}

// RemoveChat takes a chat message off everyone's screen (a therapist:
// the host or a co-therapist).
func (r *Room) RemoveChat(by, messageID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActMute)
	if err != nil {
		return err
	}
	r.emitLocked(Event{Type: EventChatRemoved, By: actor.p, MessageID: messageID}, allAdmitted)
	return nil
}

// SetChat turns chat on or off for clients and family (a therapist);
// everyone admitted is told.
func (r *Room) SetChat(by string, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActMute)
	if err != nil {
		return err
	}
	r.chatOff = !on
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Change: ChangeChat}, allAdmitted)
	return nil
}
