package sfu

// A participant's screen share is published in a stream of its own: the
// signaling layer names that stream (SetScreen) once the room has let the
// participant share, and the tracks that then arrive in it are the screen,
// not the camera. Subscribers receive them in the stream ScreenStreamID,
// the screen's video at its highest layer first (bwe.go); a therapist's
// mute does not touch them: a share is stopped, not muted.

// ScreenStreamID is the stream id a participant's screen tracks carry in
// the subscribe PeerConnection; their camera and microphone carry the
// participant id itself.
func ScreenStreamID(participant string) string { return participant + "~screen" }

// SetScreen says which of the participant's published streams is their
// screen share ("" for none): tracks that arrive in it from now on are
// screen tracks. Screen tracks of any other stream (a share that ended or
// was taken over) leave every subscriber at once, whatever the client
// still sends.
func (p *Participant) SetScreen(stream string) {
	p.mu.Lock()
	p.screenStream = stream
	var ended []*upTrack
	for _, u := range p.ups {
		if u.screen && u.stream != stream {
			ended = append(ended, u)
		}
	}
	p.mu.Unlock()
	for _, u := range ended {
		p.trackEnded(u)
	}
}
