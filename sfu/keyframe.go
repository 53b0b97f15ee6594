package sfu

import (
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Keyframe requests.
//
// A subscriber's decoder can start only on a keyframe, so a down-track
// forwards a layer from a keyframe of it on (downTrack.write). Keyframes
// come when the publisher is asked (a PLI); browsers send no periodic ones
// worth waiting for (Chrome's VP8 comes every 3,000 frames). Chrome answers
// one PLI by keying all its simulcast layers at once, whatever layer the
// PLI names, and ignores a PLI that arrives within about 0.3-0.5 s of its
// last keyframe. So one published track has one request state
// (keyframer), shared by its layers:
//
//   - no PLI leaves sooner than KeyframeInterval after the last keyframe
//     seen on any layer of the track;
//   - what is asked for stays asked for until a keyframe of that layer has
//     been seen: the layers named by explicit requests (a subscriber's own
//     PLI, an unmuted track), and the target layer of every down-track whose
//     subscriber is connected and that forwards another layer or none yet;
//   - while anything is asked for and no keyframe comes, the PLI is sent
//     again after 2 KeyframeInterval, then twice as long each time, up to
//     KeyframeRetryMax.
//
// A timer of the track does the asking, so that callers (pion's Bind, the
// RTCP readers, signaling) never write RTCP themselves. The forwarding path
// only notes a keyframe's first packet (keyframeSeen), which is rare.

// keyframer is one published video track's keyframe-request state,
// guarded by upTrack.kfMu.
type keyframer struct {
	closed  bool
	pending uint8       // layers asked for explicitly, until a keyframe start of each
	timer   *time.Timer // runs upTrack.askKeyframes
	armed   bool        // the timer is set
	pacer   keyframePacer
}

// keyframePacer decides when a PLI may leave: no sooner than the interval
// after the last keyframe, and, while the last PLI is unanswered, no sooner
// than the retry wait after it, which doubles each time up to max.
type keyframePacer struct {
	interval, max time.Duration
	lastKey       time.Time // the last keyframe start seen, any layer
	lastPLI       time.Time
	retry         time.Duration // wait after lastPLI while unanswered; 0 after a keyframe
}

// keyframe notes a keyframe start seen at now.
func (p *keyframePacer) keyframe(now time.Time) {
	p.lastKey, p.retry = now, 0
}

// ask reports whether a PLI may leave at now (and, if so, counts it as
// sent), and how long to wait before looking again.
func (p *keyframePacer) ask(now time.Time) (send bool, wait time.Duration) {
	at := p.lastKey.Add(p.interval)
	if p.retry > 0 {
		if r := p.lastPLI.Add(p.retry); r.After(at) {
			at = r
		}
	}
	if now.Before(at) {
		return false, at.Sub(now)
	}
	p.lastPLI = now
	if p.retry == 0 {
		p.retry = 2 * p.interval
	} else {
		p.retry = min(2*p.retry, max(p.max, p.interval))
	}
	return true, p.retry
}

// requestKeyframe asks for a keyframe of the layers in mask (bit i for
// layer i), until one of each arrives.
func (u *upTrack) requestKeyframe(mask uint8) {
	if u.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	u.kfMu.Lock()
	defer u.kfMu.Unlock()
	u.kf.pending |= mask
	u.armLocked(0, false)
}

// kick makes the track look at its down-tracks soon: one may have started
// waiting for a keyframe (bound, switched target, subscriber connected).
func (u *upTrack) kick() { u.requestKeyframe(0) }

// armLocked sets the timer to fire after d; unless force, a timer already
// set is left as it is (it looks at everything when it fires).
func (u *upTrack) armLocked(d time.Duration, force bool) {
	k := &u.kf
	if k.closed || (k.armed && !force) {
		return
	}
	k.armed = true
	if k.timer == nil {
		k.timer = time.AfterFunc(d, u.askKeyframes)
		return
	}
	k.timer.Reset(d)
}

// keyframeSeen notes the first packet of a keyframe of layer index: it
// answers what was asked of that layer and restarts the interval. A new
// layer counts as one: a browser starts every stream with a keyframe, and
// the first packets may not have reached the track's reader (they can
// arrive before this side of DTLS is done), so a request at once would
// fall into Chrome's ignored window.
func (u *upTrack) keyframeSeen(index int) {
	now := time.Now()
	u.kfMu.Lock()
	u.kf.pacer.keyframe(now)
	u.kf.pending &^= 1 << index
	u.kfMu.Unlock()
}

// stopKeyframes stops asking: the track has ended.
func (u *upTrack) stopKeyframes() {
	u.kfMu.Lock()
	defer u.kfMu.Unlock()
	u.kf.closed = true
	if u.kf.timer != nil {
		u.kf.timer.Stop()
	}
}

// askKeyframes runs on the track's timer: it sends a PLI for every layer
// asked for or awaited by a down-track, if the pacer allows, and sets the
// timer again while anything is still asked for.
func (u *upTrack) askKeyframes() {
	now := time.Now()
	waiting := u.waitingLayers(now)
	u.kfMu.Lock()
	k := &u.kf
	k.armed = false
	var want uint8
	for i := range u.layers {
		if u.layers[i].Load() != nil {
			want |= (k.pending | waiting) & (1 << i)
		}
	}
	if k.closed || want == 0 || u.muted.Load() {
		// Nothing to ask (unmuting asks again).
		u.kfMu.Unlock()
		return
	}
	send, wait := k.pacer.ask(now)
	u.armLocked(wait, true)
	u.kfMu.Unlock()
	if !send {
		return
	}
	var plis [maxLayers]rtcp.PictureLossIndication
	pkts := make([]rtcp.Packet, 0, maxLayers)
	for i := range u.layers {
		if l := u.layers[i].Load(); l != nil && want&(1<<i) != 0 {
			plis[i].MediaSSRC = l.ssrc
			pkts = append(pkts, &plis[i])
		}
	}
	u.pub.sfu.keyframeRequests.Add(1)
	u.pub.writeRTCP(pkts)
}

// waitingLayers returns the target layers of the down-tracks that wait for
// a keyframe to start or switch, and logs a wait that has gone on too long.
func (u *upTrack) waitingLayers(now time.Time) uint8 {
	var mask uint8
	for _, d := range *u.downs.Load() {
		t, ok := d.waiting()
		if !ok {
			d.waitOver()
			continue
		}
		since := d.waitingSince(now)
		if d.bound.Load() == nil || !d.subReady() {
			continue // nothing it could receive yet
		}
		mask |= 1 << t
		if waited := now.Sub(since); waited > u.pub.sfu.cfg.KeyframeWaitLog && !d.waitLogged.Swap(true) {
			from := "none"
			if c := d.current.Load(); c >= 0 {
				from = layerName(int(c))
			}
			u.pub.sfu.logger().Warn("a subscriber waits for a keyframe",
				"waited_s", waited.Round(100*time.Millisecond).Seconds(),
				"from_layer", from, "to_layer", layerName(int(t)), "simulcast", u.simulcast)
		}
	}
	return mask
}

// layerName names a layer as the protocol does.
func layerName(i int) string {
	switch i {
	case layerLow:
		return "low"
	case layerMedium:
		return "medium"
	case layerHigh:
		return "high"
	}
	return "none"
}

// waiting reports whether the down-track is bound and waits for a keyframe
// of its target layer (to start, or to switch), and that target.
func (d *downTrack) waiting() (int32, bool) {
	t := d.target.Load()
	return t, t >= 0 && d.current.Load() != t && d.bound.Load() != nil
}

// waitingSince returns when the current wait started, starting it at now
// if it had not.
func (d *downTrack) waitingSince(now time.Time) time.Time {
	if d.waitFrom.CompareAndSwap(0, now.UnixNano()) {
		return now
	}
	return time.Unix(0, d.waitFrom.Load())
}

// waitOver ends a wait, if there was one.
func (d *downTrack) waitOver() {
	if d.waitFrom.Load() != 0 {
		d.waitFrom.Store(0)
		d.waitLogged.Store(false)
	}
}

// subReady reports whether the subscriber's PeerConnection has connected:
// before that, what is written to it is lost, keyframes included.
func (d *downTrack) subReady() bool {
	return d.sub == nil || d.sub.subReady.Load()
}

// KeyframeWaits is what the down-tracks wait for, for metrics.
type KeyframeWaits struct {
	// Waiting counts the down-tracks bound to a subscriber that wait for a
	// keyframe to start or to switch layer.
	Waiting int
	// Longest is how long the longest of them has waited.
	Longest time.Duration
}

// add counts the waits of u's down-tracks.
func (w *KeyframeWaits) add(u *upTrack, now time.Time) {
	for _, d := range *u.downs.Load() {
		if _, ok := d.waiting(); !ok {
			continue
		}
		w.Waiting++
		if from := d.waitFrom.Load(); from != 0 {
			w.Longest = max(w.Longest, now.Sub(time.Unix(0, from)))
		}
	}
}
