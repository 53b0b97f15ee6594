package signaling

import (
	"context"
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
// receivingQuiet. Attendance counts modality from it. It looks every
// receivingEvery on a timer, not a goroutine of its own, until the
// session's context ends, and touches none of the session's state.
func (s *session) watchReceiving(ctx context.Context, media *sfu.Participant, room *rooms.Room) {
	var cur rooms.Media // only the timer's callback, one at a time, uses it
	var look func()
	t := time.AfterFunc(time.Hour, func() { look() })
	look = func() {
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		audio, audioAt, audioChanged := flowChange(media, webrtc.RTPCodecTypeAudio, cur.Audio, now)
		video, videoAt, videoChanged := flowChange(media, webrtc.RTPCodecTypeVideo, cur.Video, now)
		// The room sees the two changes in the order they happened.
		if videoChanged && audioChanged && videoAt.Before(audioAt) {
			cur.Video, videoChanged = video, false
			room.SetReceiving(s.id, cur, videoAt)
		}
		if audioChanged {
			cur.Audio = audio
			room.SetReceiving(s.id, cur, audioAt)
		}
		if videoChanged {
			cur.Video = video
			room.SetReceiving(s.id, cur, videoAt)
		}
		t.Reset(receivingEvery)
	}
	context.AfterFunc(ctx, func() { t.Stop() })
	t.Reset(receivingEvery)
}

// flowChange says whether media of kind is flowing now, and when that
// began (the first packet of the run) or ended (the last packet), and
// whether it differs from was.
func flowChange(media *sfu.Participant, kind webrtc.RTPCodecType, was bool, now time.Time) (on bool, at time.Time, changed bool) {
	since, last := media.Flow(kind)
	on = !last.IsZero() && now.Sub(last) < receivingQuiet
	at = last
	if on {
		at = since
	}
	return on, at, on != was
}
