package rooms

// Screen is a room's screen share: who shares now (a participant id, ""
// for nobody), the id of the stream their browser sends it in, and whether
// clients and family may share in this session.
type Screen struct {
	By      string
	Stream  string
	Allowed bool
}

// StartScreen makes by the room's presenter, sending their screen in the
// stream with this id. Therapists share at any time; clients, family and
// staff once a therapist let them (ErrScreenOff). One share at a time: the
// host's replaces anyone's, anyone else's waits for the current one to end
// (ErrScreenBusy). Everyone admitted is told.
func (r *Room) StartScreen(by, stream string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[by]
	if m == nil || !m.admitted {
		return ErrNotAdmitted
	}
	if !m.p.Role.Can(ActScreen) && !r.screen.Allowed {
		return ErrScreenOff
	}
	isHost := m.p.Role == RoleTherapist && r.host != "" && m.p.Sub == r.host
	if r.screen.By != "" && r.screen.By != by && !isHost {
		return ErrScreenBusy
	}
	r.screen.By, r.screen.Stream = by, stream
	r.emitLocked(Event{Type: EventRoomUpdated, Participant: m.p, By: m.p, Change: ChangeScreen}, allAdmitted)
	return nil
}

// StopScreen ends id's share ("" or by: by's own). Ending another's is a
// therapist's, under the host rule: the host ends anyone's, co-therapists
// end clients' and family's, nobody ends the host's but the host.
func (r *Room) StopScreen(by, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == "" {
		id = by
	}
	actor := r.members[by]
	if actor == nil || !actor.admitted {
		return ErrNotAdmitted
	}
	if id != by {
		target := r.members[id]
		if target == nil || !target.admitted {
			return ErrNotFound
		}
		if _, err := r.actorLocked(by, target, ActScreen); err != nil {
			return err
		}
	}
	if r.screen.By != id {
		return ErrNotFound
	}
	r.screen.By, r.screen.Stream = "", ""
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Change: ChangeScreen}, allAdmitted)
	return nil
}

// SetScreenAllowed lets clients, family and staff share their screen, or
// not (a therapist); turning it off ends such a person's share now.
func (r *Room) SetScreenAllowed(by string, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActScreen)
	if err != nil {
		return err
	}
	r.screen.Allowed = on
	if p := r.members[r.screen.By]; !on && p != nil && !p.p.Role.Can(ActScreen) {
		r.screen.By, r.screen.Stream = "", ""
	}
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Change: ChangeScreen}, allAdmitted)
	return nil
}

// Spotlight shows the admitted participant id large for everyone ("":
// nobody, the layout follows who speaks); a therapist's.
func (r *Room) Spotlight(by, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActSpotlight)
	if err != nil {
		return err
	}
	if id != "" {
		if m := r.members[id]; m == nil || !m.admitted {
			return ErrNotFound
		}
	}
	r.spotlight = id
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Change: ChangeSpotlight}, allAdmitted)
	return nil
}

// presenterLeftLocked ends the share and the spotlight of m, who left.
func (r *Room) presenterLeftLocked(m *member) {
	if r.screen.By == m.p.ID {
		r.screen.By, r.screen.Stream = "", ""
		r.emitLocked(Event{Type: EventRoomUpdated, Change: ChangeScreen}, allAdmitted)
	}
	if r.spotlight == m.p.ID {
		r.spotlight = ""
		r.emitLocked(Event{Type: EventRoomUpdated, Change: ChangeSpotlight}, allAdmitted)
	}
}
