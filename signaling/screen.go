package signaling

import (
	"iop/rooms"
	"iop/signaling/protocol"
)

// maxStreamID is the longest msid stream id (RFC 8830: 1 to 64 characters).
const maxStreamID = 64

// screenStart makes the sender the room's presenter: the room decides
// whether they may (screen_off, screen_busy), then the media plane takes
// the tracks of the stream they name as their screen, not their camera.
func (s *session) screenStart(m *protocol.ClientMessage) error {
	if !s.isAdmitted() {
		return errorf(protocol.CodeNotAdmitted, "you are in the waiting room")
	}
	if !validStreamID(m.Stream) {
		return errorf(protocol.CodeBadMessage, "screen_start needs stream: the id of the MediaStream the screen is published in, 1 to 64 characters of an SDP token")
	}
	return s.room.StartScreen(s.id, m.Stream)
}

// screenStop ends the sender's own share, or (participant) another's when
// the host rule lets them.
func (s *session) screenStop(m *protocol.ClientMessage) error {
	if !s.isAdmitted() {
		return errorf(protocol.CodeNotAdmitted, "you are in the waiting room")
	}
	return s.room.StopScreen(s.id, m.Participant)
}

// presenting follows the room's share in the media plane: the stream this
// participant shares now, or none; on the actor, now or once the media
// has started (adopt).
func (s *session) presenting(sc rooms.Screen) {
	stream := ""
	if sc.By == s.id {
		stream = sc.Stream
	}
	if s.screen == stream {
		return
	}
	s.screen = stream
	if s.media != nil {
		s.media.SetScreen(stream)
	}
}

// validStreamID reports whether id is an msid stream id: 1 to 64 token
// characters (RFC 4566), as browsers make them.
func validStreamID(id string) bool {
	if id == "" || len(id) > maxStreamID {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c == '!' || (c >= '#' && c <= '\'') || c == '*' || c == '+' || c == '-' || c == '.' ||
			(c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= '^' && c <= '~')
		if !ok {
			return false
		}
	}
	return true
}
