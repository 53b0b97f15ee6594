package sfu

// Groups split a room's media without splitting the room: a participant
// receives the tracks of the participants of its own group only, and only
// they receive its tracks. Breakout rooms are groups; group 0 is the main
// room. Moving keeps both PeerConnections: the tracks of the old group
// leave the subscribe PeerConnection and those of the new one join it in
// one renegotiation, each new video starting on a keyframe requested from
// its publisher (downTrack.Bind).

// SetGroup moves p to group: it stops receiving the tracks of its old
// group and they stop receiving its tracks; it receives the new group's
// and they receive its. Setting the group p is in changes nothing.
func (p *Participant) SetGroup(group int) {
	r := p.room
	r.topo.Lock()
	defer r.topo.Unlock()
	r.mu.Lock()
	if r.parts[p.id] != p || p.group == group {
		r.mu.Unlock()
		return
	}
	p.group = group
	var join, part []*Participant
	for _, o := range r.othersLocked(p) {
		if o.group == group {
			join = append(join, o)
		} else {
			part = append(part, o)
		}
	}
	r.mu.Unlock()

	mine := p.upTracks()
	for _, o := range part {
		for _, u := range o.upTracks() {
			p.unsubscribe(u)
		}
		for _, u := range mine {
			o.unsubscribe(u)
		}
	}
	for _, o := range join {
		for _, u := range o.upTracks() {
			p.subscribe(u)
		}
		for _, u := range mine {
			o.subscribe(u)
		}
	}
}

// Group returns the group p is in.
func (p *Participant) Group() int {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.group
}
