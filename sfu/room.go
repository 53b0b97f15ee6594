package sfu

import (
	"fmt"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"
)

// PC names one of a participant's two PeerConnections.
type PC string

// The two PeerConnections of a participant.
const (
	// Publish carries the participant's own media to the server; the client offers.
	Publish PC = "publish"
	// Subscribe carries everyone else's media to the participant; the server offers.
	Subscribe PC = "subscribe"
)

// Signaler carries what the media plane must tell one participant's client.
// The signaling layer implements it; calls must not block.
type Signaler interface {
	// SendDescription sends an offer (subscribe) or an answer (publish).
	SendDescription(pc PC, d webrtc.SessionDescription)
	// SendCandidate sends a local ICE candidate; nil ends gathering.
	SendCandidate(pc PC, c *webrtc.ICECandidateInit)
	// MediaFailed reports that a PeerConnection failed for good (ICE failure,
	// DTLS closed by the peer): the participant has dropped.
	MediaFailed(pc PC)
	// SendEncodings tells a publisher which simulcast layers (encodings)
	// of its video in media section mid to send (active) and which to stop
	// encoding (paused), by the rids it gave them (pause.go).
	SendEncodings(mid string, active, paused []string)
}

// Room is a set of participants whose media reaches each other and nobody
// else; within a room, media flows only between participants of the same
// group (group.go).
type Room struct {
	sfu *SFU
	id  string

	// topo serializes changes of who receives whom (joins, new tracks,
	// group moves), so that each applies in full before the next; it is
	// taken before mu and before any participant's mu.
	topo sync.Mutex

	mu    sync.Mutex
	parts map[string]*Participant
}

// ID returns the room's id.
func (r *Room) ID() string { return r.id }

// Join adds a participant with both PeerConnections and subscribes it to every
// track already published in the room. The subscribe offer, if any, goes out
// through sig.
func (r *Room) Join(id string, sig Signaler) (*Participant, error) {
	return r.JoinGroup(id, 0, sig)
}

// JoinGroup is Join into group: the participant receives, and is received
// by, the participants of that group only.
func (r *Room) JoinGroup(id string, group int, sig Signaler) (*Participant, error) {
	p := &Participant{group: group, id: id, room: r, sfu: r.sfu, sig: sig, downs: map[*upTrack]*downTrack{}, mutedKinds: map[string]bool{}, simulcast: map[*webrtc.RTPReceiver]*upTrack{}, tw: newTransportWatch(sig)}
	p.pubGate.init(Publish, sig, r.sfu)
	p.subGate.init(Subscribe, sig, r.sfu)
	p.offers = rate.NewLimiter(rate.Every(time.Minute/time.Duration(r.sfu.cfg.MaxOffersPerMinute)), r.sfu.cfg.MaxOffersPerMinute)
	if err := p.openPCs(); err != nil {
		return nil, err
	}

	r.topo.Lock()
	defer r.topo.Unlock()
	r.mu.Lock()
	if _, dup := r.parts[id]; dup {
		r.mu.Unlock()
		p.closePCs()
		return nil, fmt.Errorf("join %q: %w", id, ErrDuplicate)
	}
	// Registering and taking the snapshot under one lock pairs with
	// addUpTrack, so every track reaches this participant exactly once.
	r.parts[id] = p
	var existing []*upTrack
	for _, o := range r.parts {
		if o != p && o.group == group {
			existing = append(existing, o.upTracks()...)
		}
	}
	r.mu.Unlock()

	for _, u := range existing {
		p.subscribe(u)
	}
	return p, nil
}

// others returns every participant but p.
func (r *Room) othersLocked(p *Participant) []*Participant {
	out := make([]*Participant, 0, len(r.parts))
	for _, o := range r.parts {
		if o != p {
			out = append(out, o)
		}
	}
	return out
}

// addUpTrack publishes u to everyone else in p's group.
func (r *Room) addUpTrack(p *Participant, u *upTrack) bool {
	r.topo.Lock()
	defer r.topo.Unlock()
	r.mu.Lock()
	if r.parts[p.id] != p || !p.addUp(u) {
		r.mu.Unlock()
		return false
	}
	var others []*Participant
	for _, o := range r.othersLocked(p) {
		if o.group == p.group {
			others = append(others, o)
		}
	}
	r.mu.Unlock()
	for _, o := range others {
		o.subscribe(u)
	}
	return true
}

// leave removes p from the room and returns who is left.
func (r *Room) leave(p *Participant) []*Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.parts[p.id] == p {
		delete(r.parts, p.id)
	}
	return r.othersLocked(p)
}

// participants returns everyone in the room.
func (r *Room) participants() []*Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.othersLocked(nil)
}
