package rooms

import "time"

// SetPingInterval tells the manager how often the signaling server pings
// its connections (SilentAfter is made for the default 15 s): a connection
// silent for longer than that and the ordinary spacing of packets is taken
// to be dead once its person comes back on another one, so a rejoin before
// the server noticed a silent drop ends the old time at its last evidence.
// (One whose last sign of life was a media or RTCP packet is dead once
// silent for more than evidenceSlack, whatever the pings.)
// Call it before the manager is used.
func (m *Manager) SetPingInterval(d time.Duration) {
	if d > 0 {
		m.silentAfter = d + evidenceSlack
	}
}
