package signaling

// This file holds a session's media: starting the participant's
// PeerConnections once admitted, the offer, answer, candidate, layer and
// media messages, and the media plane's callbacks (sfu.Signaler,
// sfu.TransportListener), which post to the actor. Everything here but the
// callbacks, startMedia and LastHeard runs on the actor.

import (
	"errors"
	"time"

	"github.com/pion/webrtc/v4"

	"iop/rooms"
	"iop/sfu"
	"iop/signaling/protocol"
)

// mediaStartTimeout bounds how long a message waits for the participant's
// PeerConnections to be created after admission.
const mediaStartTimeout = 10 * time.Second

// mediaStart is the media being started on its own goroutine: media is
// set (nil if it failed) before done closes. Only the actor adopts it.
type mediaStart struct {
	done    chan struct{}
	media   *sfu.Participant
	group   int  // the group it started in
	adopted bool // the actor has taken it (actor only)
}

// startMediaFor starts the participant's PeerConnections in the media room
// of room ("program/room"), in the group the participant is in now.
func (s *session) startMediaFor(room string) {
	st := &mediaStart{done: make(chan struct{}), group: s.group}
	s.starting = st
	go s.startMedia(st, room)
}

// startMedia creates the PeerConnections off the actor (pion may take a
// while) and hands them to it; media the actor will never take is closed.
func (s *session) startMedia(st *mediaStart, room string) {
	media, err := s.srv.cfg.SFU.Room(room).JoinGroup(s.id, st.group, s)
	if err != nil {
		close(st.done)
		s.srv.cfg.Logger.Error("start media", "participant", s.id, "err", err)
		s.abort()
		return
	}
	st.media = media
	close(st.done)
	if !s.postAlways(func() { s.adopt(st) }) {
		media.Close() // the session has ended
	}
}

// adopt takes started media into the session: the mutes, screen and group
// decided while it started apply, and the room hears what it receives.
// Media started for a session that has left is closed.
func (s *session) adopt(st *mediaStart) {
	if st.adopted || st.media == nil {
		return
	}
	st.adopted = true
	media := st.media
	if s.left {
		go media.Close()
		return
	}
	for kind := range s.muted {
		media.SetForwarding(kind, false)
	}
	media.SetScreen(s.screen)
	if s.group != st.group {
		media.SetGroup(s.group) // moved while the media started
	}
	s.media = media
	s.heardMedia.Store(media)
	s.watchReceiving(s.ctx, media, s.room)
}

// mediaOf waits for the participant's media, or reports not_admitted.
func (s *session) mediaOf() (*sfu.Participant, error) {
	if s.starting == nil {
		return nil, errorf(protocol.CodeNotAdmitted, "you are in the waiting room")
	}
	if s.media == nil {
		t := time.NewTimer(mediaStartTimeout)
		select {
		case <-s.starting.done:
			s.adopt(s.starting)
		case <-t.C:
		case <-s.stop:
		}
		t.Stop()
	}
	if s.media == nil {
		return nil, errors.New("media did not start")
	}
	return s.media, nil
}

// mediaMessage handles offer, answer, candidate and layer.
func (s *session) mediaMessage(m *protocol.ClientMessage) error {
	media, err := s.mediaOf()
	if err != nil {
		return err
	}
	switch m.Type {
	case protocol.TypeOffer:
		if m.PC != protocol.PCPublish || m.SDP == "" {
			return errorf(protocol.CodeBadMessage, "offer needs pc \"publish\" and sdp")
		}
		// The answer is posted from within HandleOffer and sent before
		// the next message is read, so it answers this one.
		s.offerRe = m.ID
		return media.HandleOffer(m.SDP)
	case protocol.TypeAnswer:
		if m.PC != protocol.PCSubscribe || m.SDP == "" {
			return errorf(protocol.CodeBadMessage, "answer needs pc \"subscribe\" and sdp")
		}
		return media.HandleAnswer(m.SDP)
	case protocol.TypeCandidate:
		return s.candidate(media, m)
	case protocol.TypeLayer:
		if m.Participant == "" || (m.Quality != "low" && m.Quality != "medium" && m.Quality != "high") {
			return errorf(protocol.CodeBadMessage, "layer needs participant and quality low, medium or high")
		}
		if !s.room.Has(m.Participant) {
			return errorf(protocol.CodeNotFound, "no such participant")
		}
		return media.SetLayer(m.Participant, m.Quality)
	}
	return nil
}

// mediaState records the sender's own mute state; turning a kind back on
// also lifts a therapist's mute of it (the client decides).
func (s *session) mediaState(m *protocol.ClientMessage) error {
	if m.Audio == nil && m.Video == nil {
		return errorf(protocol.CodeBadMessage, "media needs audio or video")
	}
	_, err := s.room.Update(s.id, func(p *rooms.Participant) {
		if m.Audio != nil {
			p.Audio = *m.Audio
		}
		if m.Video != nil {
			p.Video = *m.Video
		}
	})
	if err != nil {
		return err
	}
	for kind, on := range map[string]*bool{"audio": m.Audio, "video": m.Video} {
		if on != nil && *on {
			s.setForwarding(kind, true)
		}
	}
	return nil
}

// setForwarding applies a mute or unmute to the media plane, now or when
// the media starts.
func (s *session) setForwarding(kind string, on bool) {
	if on {
		delete(s.muted, kind)
	} else {
		s.muted[kind] = true
	}
	if s.media != nil {
		s.media.SetForwarding(kind, on)
	}
}

func (s *session) candidate(media *sfu.Participant, m *protocol.ClientMessage) error {
	var pc sfu.PC
	switch m.PC {
	case protocol.PCPublish:
		pc = sfu.Publish
	case protocol.PCSubscribe:
		pc = sfu.Subscribe
	default:
		return errorf(protocol.CodeBadMessage, "candidate needs pc \"publish\" or \"subscribe\"")
	}
	if m.Candidate == nil {
		return media.AddCandidate(pc, nil)
	}
	return media.AddCandidate(pc, &webrtc.ICECandidateInit{
		Candidate:        m.Candidate.Candidate,
		SDPMid:           m.Candidate.SDPMid,
		SDPMLineIndex:    m.Candidate.SDPMLineIndex,
		UsernameFragment: m.Candidate.UsernameFragment,
	})
}

var (
	_ sfu.Signaler          = (*session)(nil)
	_ sfu.TransportListener = (*session)(nil)
	_ rooms.Heard           = (*session)(nil)
)

// SendDescription implements sfu.Signaler.
func (s *session) SendDescription(pc sfu.PC, d webrtc.SessionDescription) {
	s.post(func() {
		m := protocol.ServerMessage{Type: protocol.TypeAnswer, PC: string(pc), SDP: d.SDP}
		if d.Type == webrtc.SDPTypeOffer {
			m.Type = protocol.TypeOffer
		} else {
			m.Re = s.offerRe
		}
		s.send(m)
	})
}

// SendCandidate implements sfu.Signaler.
func (s *session) SendCandidate(pc sfu.PC, c *webrtc.ICECandidateInit) {
	m := protocol.ServerMessage{Type: protocol.TypeCandidate, PC: string(pc)}
	if c != nil {
		m.Candidate = &protocol.Candidate{
			Candidate:        c.Candidate,
			SDPMid:           c.SDPMid,
			SDPMLineIndex:    c.SDPMLineIndex,
			UsernameFragment: c.UsernameFragment,
		}
	}
	s.post(func() { s.send(m) })
}

// SendEncodings implements sfu.Signaler: the layers of a published video
// that nobody watches are paused, the others sent (docs/protocol.md,
// encodings).
func (s *session) SendEncodings(mid string, active, paused []string) {
	s.post(func() {
		s.send(protocol.ServerMessage{Type: protocol.TypeEncodings, Mid: mid, Active: active, Paused: paused})
	})
}

// MediaFailed implements sfu.Signaler: the participant has dropped.
func (s *session) MediaFailed(pc sfu.PC) {
	s.srv.cfg.Logger.Warn("media connection failed", "participant", s.id, "pc", string(pc))
	s.abort()
}

// TransportChanged implements sfu.TransportListener: the room learns how
// this participant's media travels (udp, tcp, relay), and the therapist's
// console shows it.
func (s *session) TransportChanged(t sfu.Transport) {
	s.post(func() {
		if s.room != nil && !s.left {
			_, _ = s.room.Update(s.id, func(p *rooms.Participant) { p.Transport = string(t) })
		}
	})
}

// LastPacket implements rooms.Heard: the later of the last media packet
// and the last RTCP packet from the client (zero if neither came). The
// room asks it under its lock.
func (s *session) LastPacket() time.Time {
	media := s.heardMedia.Load()
	if media == nil {
		return time.Time{}
	}
	last := media.LastMedia()
	if r := media.LastRTCP(); r.After(last) {
		last = r
	}
	return last
}

// LastHeard implements rooms.Heard: the latest of the last media packet,
// RTCP report, and message or pong from the client. The room asks it
// under its lock, so it reads only what the actor has published.
func (s *session) LastHeard() time.Time {
	var last time.Time
	if h := s.heard.Load(); h != 0 {
		last = time.Unix(0, h)
	}
	if p := s.LastPacket(); p.After(last) {
		last = p
	}
	return last
}
