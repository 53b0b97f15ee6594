package sfu

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pausing the layers nobody watches.
//
// A browser publishes its camera in three simulcast layers, and encodes and
// uploads all three whatever the subscribers take: in a grid, everyone gets
// the medium layer, and the low and high layers cost the publisher's CPU
// and home uplink, and this server's reading, decrypting and caching, for
// nothing. So the server tells each publisher which layers of each of its
// videos someone needs (Signaler.SendEncodings: the encodings message of
// docs/protocol.md) and the browser stops encoding the others (the
// encoding's active flag), and starts again when someone needs one: a
// browser starts a resumed encoding with a keyframe, and the down-tracks
// that wait for it ask for one too (keyframe.go).
//
// A layer is needed by a down-track when it is the layer the subscriber
// asked for (the existing one nearest its want, whether or not it is sending
// now: a paused layer must be asked back, not avoided), the layer it is
// aimed at, or the layer it still forwards while it waits to switch. What
// the subscriber asked for is kept even when its bandwidth does not carry it
// now: a receive-side estimate grows only with what arrives and a browser's
// send-side estimate only with what it sends, so pausing the layers above a
// subscriber's current share would keep both estimates, and the picture,
// down for good (Chrome, measured: the quarter layer only, for 90 s, in a
// call that otherwise climbs to the full layer). A layer that becomes
// needed is resumed at once. The layers no longer needed are paused
// together, layerPauseAfter after the first of them stopped being needed
// (so within that time of their own need ending), so that a subscriber
// switching back and forth (a tile resized, a bandwidth probe) makes the
// publisher restart an encoding with a keyframe at most that often.
const layerPauseAfter = 2 * time.Second

// pauser is one simulcast track's pause state.
type pauser struct {
	mu     sync.Mutex
	mid    string // the publisher's media section, naming the track to it
	paused uint8  // the layers the publisher was told to pause
	// asked mirrors paused for readers without the lock: a layer paused
	// here is as good as a sending one for choosing a target, since it
	// comes back when a target needs it (upTrack.nearest).
	asked  atomic.Uint32
	timer  *time.Timer
	armed  bool // the timer is set
	closed bool
}

// neededLayers returns the layers some down-track needs. With no
// down-track at all (the publisher alone, or between two visitors), the
// medium layer is kept, the one a newcomer's grid tile takes: resuming a
// layer for a newcomer brings its keyframe before the newcomer's
// PeerConnection can receive it, and the next keyframe may not be asked
// for until 500 ms later (keyframe.go), a wait added to every first join.
func (u *upTrack) neededLayers() uint8 {
	downs := *u.downs.Load()
	if len(downs) == 0 {
		if m := u.nearestExisting(layerMedium); m >= 0 {
			return 1 << m
		}
		return 0
	}
	var mask uint8
	for _, d := range downs {
		if w := u.nearestExisting(int(d.want.Load())); w >= 0 {
			mask |= 1 << w
		}
		if t := d.target.Load(); t >= 0 {
			mask |= 1 << t
		}
		if c := d.current.Load(); c >= 0 {
			mask |= 1 << c
		}
	}
	return mask
}

// pausedHere reports whether the publisher was told to pause layer i.
func (u *upTrack) pausedHere(i int) bool {
	return u.pause.asked.Load()&(1<<i) != 0
}

// nearestExisting returns the layer that has arrived nearest want (the
// next lower one first), or -1 when none has.
func (u *upTrack) nearestExisting(want int) int {
	for i := want; i >= 0; i-- {
		if u.layers[i].Load() != nil {
			return i
		}
	}
	for i := want + 1; i < maxLayers; i++ {
		if u.layers[i].Load() != nil {
			return i
		}
	}
	return -1
}

// updatePause tells the publisher to resume the layers that became needed
// at once, and arms the timer that pauses the ones no longer needed. It is
// called when a need may have changed: a layer arrived, a down-track came,
// went, or wants another layer.
func (u *upTrack) updatePause() {
	if !u.simulcast {
		return
	}
	u.pause.mu.Lock()
	defer u.pause.mu.Unlock()
	if u.pause.closed {
		return
	}
	need := u.neededLayers()
	if resume := u.pause.paused & need; resume != 0 {
		u.sendLayersLocked(u.pause.paused &^ resume)
	}
	if u.existing()&^need&^u.pause.paused != 0 && !u.pause.armed {
		u.pause.armed = true
		if u.pause.timer == nil {
			u.pause.timer = time.AfterFunc(layerPauseAfter, u.pauseUnneeded)
		} else {
			u.pause.timer.Reset(layerPauseAfter)
		}
	}
}

// pauseUnneeded runs on the timer: it pauses the layers still not needed.
func (u *upTrack) pauseUnneeded() {
	u.pause.mu.Lock()
	defer u.pause.mu.Unlock()
	u.pause.armed = false
	if u.pause.closed {
		return
	}
	if paused := u.existing() &^ u.neededLayers(); paused != u.pause.paused {
		u.sendLayersLocked(paused)
	}
}

// existing returns the layers that have arrived.
func (u *upTrack) existing() uint8 {
	var mask uint8
	for i := range u.layers {
		if u.layers[i].Load() != nil {
			mask |= 1 << i
		}
	}
	return mask
}

// sendLayersLocked tells the publisher which of the track's layers to pause
// and which to send, by the rids it named them with.
func (u *upTrack) sendLayersLocked(paused uint8) {
	u.pause.paused = paused
	u.pause.asked.Store(uint32(paused))
	var active, off []string
	for i := range u.layers {
		l := u.layers[i].Load()
		if l == nil || l.rid == "" {
			continue
		}
		if paused&(1<<i) != 0 {
			off = append(off, l.rid)
		} else {
			active = append(active, l.rid)
		}
	}
	if u.pub != nil && u.pub.sig != nil && u.pause.mid != "" {
		u.pub.sig.SendEncodings(u.pause.mid, active, off)
	}
}

// stopPause stops pausing: the track has ended.
func (u *upTrack) stopPause() {
	u.pause.mu.Lock()
	defer u.pause.mu.Unlock()
	u.pause.closed = true
	if u.pause.timer != nil {
		u.pause.timer.Stop()
	}
}
