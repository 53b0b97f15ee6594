package signaling

import (
	"time"

	"iop/signaling/protocol"
)

// TURN credential lifetimes. A participant's credentials last as long as
// the session it joins (a scheduled session's end plus DefaultTURNOverrun,
// an ad-hoc room DefaultTURNSession from admission) and no less than
// minTURNLife; a reconnect gets fresh ones.
const (
	// DefaultTURNSession is how long credentials for an ad-hoc room last:
	// the longest session of a day or evening track.
	DefaultTURNSession = 3 * time.Hour
	// DefaultTURNOverrun is how long after a scheduled session's end its
	// credentials still work, for a group that runs late.
	DefaultTURNOverrun = 30 * time.Minute
	// minTURNLife is the least a credential lasts, for a join just before
	// the end.
	minTURNLife = 15 * time.Minute
	// checkTURNLife is how long the connectivity check's credentials last.
	checkTURNLife = 5 * time.Minute
)

// turnExpiry is when the TURN credentials of a participant admitted at now
// expire: end is the scheduled session's end, zero for an ad-hoc room.
func (s *Server) turnExpiry(end, now time.Time) time.Time {
	ttl := s.cfg.TURNSession
	if ttl <= 0 {
		ttl = DefaultTURNSession
	}
	overrun := s.cfg.TURNOverrun
	if overrun <= 0 {
		overrun = DefaultTURNOverrun
	}
	exp := now.Add(ttl)
	if !end.IsZero() && end.Add(overrun).Before(exp) {
		exp = end.Add(overrun)
	}
	if least := now.Add(minTURNLife); exp.Before(least) {
		exp = least
	}
	return exp
}

// iceServers are the ICE servers for one participant's PeerConnections:
// the configured ones, and the TURN servers with credentials of the
// participant's own that expire at expires.
func (s *Server) iceServers(participant string, expires time.Time) []protocol.ICEServer {
	out := append([]protocol.ICEServer(nil), s.cfg.ICEServers...)
	if iss := s.cfg.TURN; iss != nil {
		c := iss.Issue(participant, expires)
		out = append(out, protocol.ICEServer{URLs: iss.URLs, Username: c.Username, Credential: c.Password})
	}
	return out
}
