package signaling

import (
	"sort"
	"time"

	"github.com/pion/webrtc/v4"

	"iop/rooms"
	"iop/sfu"
)

// receivingEvery is how often a session looks at the media it receives.
const receivingEvery = 500 * time.Millisecond

// receivingQuiet is how long without a packet of a kind ends it: longer
// than a browser's pauses between packets (a static scene still sends
// frames, and audio at least every 20 ms unless DTX; DTX sends a packet
// every 400 ms).
const receivingQuiet = 3 * time.Second

// watchReceiving tells the room what the server receives of this
// connection's media (rooms.Room.SetReceiving), from the media plane's
// packets, until the connection ends: a kind starts at the first packet of
// its run and stops at its last packet once none has come for
// receivingQuiet. Attendance counts modality from it.
func (s *session) watchReceiving(media *sfu.Participant) {
	t := time.NewTicker(receivingEvery)
	defer t.Stop()
	var cur rooms.Media
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		room, left := s.joined, s.left
		s.mu.Unlock()
		if left {
			return
		}
		if room == nil {
			continue // join has not returned yet
		}
		now := time.Now()
		type change struct {
			at    time.Time
			apply func(*rooms.Media)
		}
		var changes []change
		for _, k := range []struct {
			kind webrtc.RTPCodecType
			on   *bool
			set  func(*rooms.Media, bool)
		}{
			{webrtc.RTPCodecTypeAudio, &cur.Audio, func(m *rooms.Media, on bool) { m.Audio = on }},
			{webrtc.RTPCodecTypeVideo, &cur.Video, func(m *rooms.Media, on bool) { m.Video = on }},
		} {
			since, last := media.Flow(k.kind)
			on := !last.IsZero() && now.Sub(last) < receivingQuiet
			if on == *k.on {
				continue
			}
			at, set := last, k.set
			if on {
				at = since
			}
			changes = append(changes, change{at, func(m *rooms.Media) { set(m, on) }})
		}
		sort.Slice(changes, func(i, j int) bool { return changes[i].at.Before(changes[j].at) })
		for _, c := range changes {
			c.apply(&cur)
			room.SetReceiving(s.id, cur, c.at)
		}
	}
}
