package signaling

import (
	"iop/rooms"
	"iop/sfu"
)

var _ sfu.TransportListener = (*session)(nil)

// TransportChanged implements sfu.TransportListener: the room learns how
// this participant's media travels (udp, tcp, relay), and the therapist's
// console shows it.
func (s *session) TransportChanged(t sfu.Transport) {
	s.mu.Lock()
	s.transport = string(t)
	room := s.joined
	s.mu.Unlock()
	if room != nil {
		_, _ = room.Update(s.id, func(p *rooms.Participant) { p.Transport = string(t) })
	}
}
