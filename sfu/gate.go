package sfu

import (
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"
)

// gate orders one PeerConnection's signaling: local candidates wait until the
// description they belong to has been sent, and remote candidates wait until
// the remote description is set.
type gate struct {
	pc  PC
	sig Signaler
	sfu *SFU // its limit on remote candidates, and the count of refusals

	mu        sync.Mutex
	sent      bool
	ended     bool // end of gathering was signalled; pion repeats it on renegotiation
	local     []*webrtc.ICECandidateInit
	remoteSet bool
	remote    []webrtc.ICECandidateInit
	taken     int // remote candidates taken for the current remote description
}

func (g *gate) init(pc PC, sig Signaler, s *SFU) { g.pc, g.sig, g.sfu = pc, sig, s }

func (g *gate) localCandidate(c *webrtc.ICECandidate) {
	var init *webrtc.ICECandidateInit
	if c != nil {
		j := c.ToJSON()
		init = &j
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if init == nil {
		if g.ended {
			return
		}
		g.ended = true
	}
	if !g.sent {
		g.local = append(g.local, init)
		return
	}
	g.sig.SendCandidate(g.pc, init)
}

func (g *gate) sendDescription(d webrtc.SessionDescription) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sig.SendDescription(g.pc, d)
	if g.sent {
		return
	}
	g.sent = true
	for _, c := range g.local {
		g.sig.SendCandidate(g.pc, c)
	}
	g.local = nil
}

func (g *gate) addRemote(pc *webrtc.PeerConnection, c webrtc.ICECandidateInit) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.taken >= g.sfu.cfg.MaxCandidatesPerPC {
		g.sfu.refusedCandidates.Add(1)
		return fmt.Errorf("%w: at most %d per description", ErrTooManyCandidates, g.sfu.cfg.MaxCandidatesPerPC)
	}
	g.taken++
	if !g.remoteSet {
		g.remote = append(g.remote, c)
		return nil
	}
	if err := pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: candidate: %v", ErrBadSDP, err)
	}
	return nil
}

func (g *gate) remoteDescriptionSet(pc *webrtc.PeerConnection) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.remoteSet {
		g.taken = 0 // a new description (renegotiation, ICE restart): its candidates count afresh
		return nil
	}
	g.remoteSet = true
	var first error
	for _, c := range g.remote {
		if err := pc.AddICECandidate(c); err != nil && first == nil {
			first = fmt.Errorf("%w: candidate: %v", ErrBadSDP, err)
		}
	}
	g.remote = nil
	return first
}
