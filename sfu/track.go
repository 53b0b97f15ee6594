package sfu

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"iop/sfu/codec"
)

// Simulcast layers, lowest first: the rids q, h and f (quarter, half and
// full resolution); a track without simulcast has one layer, at 0.
const (
	layerLow    = 0
	layerMedium = 1
	layerHigh   = 2
	maxLayers   = 3
)

// layerOf maps a simulcast rid to its layer.
func layerOf(rid string) (int, bool) {
	switch rid {
	case "q", "l", "low":
		return layerLow, true
	case "h", "m", "mid", "medium":
		return layerMedium, true
	case "f", "high", "full":
		return layerHigh, true
	}
	return 0, false
}

// layer is one encoding of a published track: its own SSRC, sequence
// numbers and timestamps, its own reader and retransmission cache.
type layer struct {
	up     *upTrack
	index  int
	remote *webrtc.TrackRemote // nil in benchmarks that forward by hand
	ssrc   uint32              // the publisher's SSRC, for keyframe requests
	rid    string              // the publisher's name for it (simulcast), for pausing it
	cache  *packetCache        // recent video packets, for NACKs
	rd     reader

	// rate is the layer's bitrate (bits per second) as received, padding
	// aside, measured by its reader over windows of about half a second.
	rate atomic.Uint64
	// lastAt is when its last media packet was read (Unix nanoseconds), or
	// when it was added; since is when it last started sending after a
	// pause of over layerIdle.
	lastAt, since atomic.Int64
}

// layerIdle is how long a layer may send no media (padding aside) before
// subscribers are moved off it: a browser stops sending its upper layers
// when its CPU or uplink cannot carry them, and a subscriber waiting for a
// keyframe of a layer that no longer comes would see no picture at all.
const layerIdle = time.Second

// live says whether the layer sent a packet within layerIdle of now.
func (l *layer) live(now int64) bool {
	return now-l.lastAt.Load() < int64(layerIdle)
}

// upTrack is one track a participant publishes, with one layer or three
// (simulcast). Each layer's reader writes its packets to the subscribers'
// down-tracks, each of which forwards one layer.
type upTrack struct {
	pub       *Participant
	id        string
	kind      webrtc.RTPCodecType
	codec     webrtc.RTPCodecCapability
	simulcast bool
	// screen marks a track of the publisher's screen share (screen.go):
	// stream is the id of the stream it arrived in.
	screen bool
	stream string

	layers  [maxLayers]atomic.Pointer[layer]
	running atomic.Int32 // layer readers still reading

	// downs is copy-on-write: attach and detach build a new slice under mu,
	// the readers load it without a lock for every packet.
	mu     sync.Mutex
	closed bool
	downs  atomic.Pointer[[]*downTrack]

	packets atomic.Uint64
	muted   atomic.Bool // a therapist muted it: packets are not forwarded

	// keyframe requests, one state for all layers (keyframe.go)
	kfMu sync.Mutex
	kf   keyframer

	// the layers the publisher is told to pause (pause.go)
	pause pauser
}

func newUpTrack(p *Participant, id string, kind webrtc.RTPCodecType, codec webrtc.RTPCodecCapability, simulcast bool) *upTrack {
	u := &upTrack{pub: p, id: id, kind: kind, codec: codec, simulcast: simulcast}
	u.downs.Store(&[]*downTrack{})
	u.kf.pacer.interval = p.sfu.cfg.KeyframeInterval
	u.kf.pacer.max = p.sfu.cfg.KeyframeRetryMax
	return u
}

// addLayer adds an encoding; false if that layer is there already.
func (u *upTrack) addLayer(index int, remote *webrtc.TrackRemote, ssrc uint32) (*layer, bool) {
	l := &layer{up: u, index: index, remote: remote, ssrc: ssrc}
	if remote != nil {
		l.rid = remote.RID()
	}
	l.lastAt.Store(time.Now().UnixNano())
	l.since.Store(l.lastAt.Load())
	if u.kind == webrtc.RTPCodecTypeVideo {
		l.cache = &packetCache{}
	}
	if !u.layers[index].CompareAndSwap(nil, l) {
		return nil, false
	}
	if u.kind == webrtc.RTPCodecTypeVideo {
		u.keyframeSeen(index)
	}
	u.running.Add(1)
	for _, d := range *u.downs.Load() {
		d.retarget()
	}
	u.updatePause()
	return l, true
}

// reader is a layer's reading state: its packet buffer, rate meter and the
// arrival times of its packets (backlog.go). Only one goroutine at a time
// reads a layer: the decrypting one once the layer is pushed (push.go), or
// a goroutine of its own.
type reader struct {
	buf     []byte
	pkt     rtp.Packet
	meter   rateMeter
	arrived *arrivalLog
}

// start prepares the layer for reading; stop ends it and reports whether
// it was the last layer of its track reading.
func (l *layer) start() {
	l.rd.buf = make([]byte, 1500)
	l.rd.arrived = l.up.pub.sfu.arrived.watch(l.ssrc)
}

func (l *layer) stop() (last bool) {
	l.up.pub.sfu.arrived.unwatch(l.ssrc, l.rd.arrived)
	return l.up.running.Add(-1) == 0
}

// readOne reads one packet of the layer through pion's track (its
// interceptors see it there) and forwards it; false once the track has
// ended. It blocks while nothing has arrived.
func (l *layer) readOne() bool {
	rd := &l.rd
	n, _, err := l.remote.Read(rd.buf)
	if err != nil {
		return false
	}
	pkt := &rd.pkt
	if err := pkt.Unmarshal(rd.buf[:n]); err != nil {
		return true
	}
	if len(pkt.Payload) > 0 {
		// Media: padding-only packets (Chrome's bandwidth probes,
		// sent on a layer it has stopped encoding when no RTX is
		// negotiated) say nothing of whether the layer is sent, and
		// are not forwarded.
		now := time.Now()
		if ns := now.UnixNano(); ns-l.lastAt.Swap(ns) > int64(layerIdle) {
			l.since.Store(ns)
		}
		if rate, ok := rd.meter.add(n, now); ok {
			l.rate.Store(rate)
		}
	}
	if l.up.pub.sfu.arrived.stale(rd.arrived, pkt.SequenceNumber) {
		// Late media is useless: shed it before it costs a send
		// per subscriber, and keep it out of the NACK cache.
		l.up.pub.sfu.shed.add()
		return true
	}
	if l.cache != nil {
		l.cache.put(pkt.SequenceNumber, rd.buf[:n], l.rate.Load())
	}
	l.up.forward(pkt, l)
	return true
}

// rateMeter measures a stream's bitrate over windows of at least half a
// second of continuous flow. A pause of over rateGap (a camera turned off,
// a stalled uplink, a layer paused by the browser or by the server) starts
// a new window, so that the rate is not diluted by time when nothing was
// sent: a rate that looked low would make the subscribers' bandwidth
// shares (bwe.go) wrong, and probe a layer up on a link that cannot carry
// it (a pause of just under a second once measured a low layer at a
// quarter of its rate).
type rateMeter struct {
	bytes       uint64
	start, last time.Time
}

// rateGap is the longest silence within one measuring window: over 10
// frames of a camera at 30 fps, 20 packets of audio, and still more than a
// frame of a screen shared at 3 fps.
const rateGap = 400 * time.Millisecond

// add counts a packet of n bytes that arrived at now; it returns the rate,
// in bits per second, when a window closes.
func (m *rateMeter) add(n int, now time.Time) (uint64, bool) {
	if now.Sub(m.last) > rateGap {
		m.bytes, m.start = 0, now
	}
	m.last = now
	m.bytes += uint64(n)
	el := now.Sub(m.start)
	if el < 500*time.Millisecond {
		return 0, false
	}
	rate := m.bytes * 8 * uint64(time.Second) / uint64(el)
	m.bytes, m.start = 0, now
	return rate, true
}

// forward writes one packet of layer l to every subscriber forwarding that
// layer. It holds no lock while writing and allocates nothing; the first
// packet of a keyframe (a few a minute) takes the keyframe-request lock.
func (u *upTrack) forward(pkt *rtp.Packet, l *layer) {
	u.packets.Add(1)
	if l.cache != nil && len(pkt.Payload) > 0 && pkt.Payload[0]&0x10 != 0 && codec.VP8KeyframeStart(pkt.Payload) {
		// The S bit (checked inline) marks a frame's first packet.
		u.keyframeSeen(l.index)
	}
	if u.muted.Load() {
		for _, d := range *u.downs.Load() {
			d.skip(l)
		}
		return
	}
	downs := *u.downs.Load()
	if len(downs) < 2 {
		for _, d := range downs {
			d.write(pkt, l)
		}
		return
	}
	// The copies leave in one sendmmsg per socket at the end (batch.go).
	out := u.pub.sfu.batch
	out.begin()
	for _, d := range downs {
		d.write(pkt, l)
	}
	out.end()
}

// attach adds a subscriber's down-track; false once the track has ended.
func (u *upTrack) attach(d *downTrack) bool {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return false
	}
	old := *u.downs.Load()
	next := make([]*downTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	u.downs.Store(&next)
	u.mu.Unlock()
	// A layer that arrived between the down-track's creation and now was
	// added without it (addLayer retargets the attached ones): aim again.
	// Either addLayer sees d among the downs or this sees the layer.
	d.retarget()
	u.updatePause()
	return true
}

// detach removes a subscriber's down-track.
func (u *upTrack) detach(d *downTrack) {
	u.mu.Lock()
	old := *u.downs.Load()
	next := make([]*downTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	u.downs.Store(&next)
	u.mu.Unlock()
	u.updatePause()
}

// close marks the track ended so no new subscriber attaches, and stops its
// keyframe requests.
func (u *upTrack) close() {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
	u.stopKeyframes()
	u.stopPause()
}

// nearest returns the layer closest to want (the next lower one first)
// among those still sending, or paused by the server while others send
// (it resumes a layer that a subscriber needs: pause.go), else among all
// that arrived, or -1 when none has arrived.
func (u *upTrack) nearest(want int) int {
	now := time.Now().UnixNano()
	sending := false
	for i := range u.layers {
		if l := u.layers[i].Load(); l != nil && l.live(now) {
			sending = true
		}
	}
	live := func(l *layer) bool { return l != nil && (l.live(now) || sending && u.pausedHere(l.index)) }
	exists := func(l *layer) bool { return l != nil }
	for _, ok := range []func(*layer) bool{live, exists} {
		for i := want; i >= 0; i-- {
			if ok(u.layers[i].Load()) {
				return i
			}
		}
		for i := want + 1; i < maxLayers; i++ {
			if ok(u.layers[i].Load()) {
				return i
			}
		}
	}
	return -1
}

// requestAllKeyframes asks for a keyframe on every layer (a track was
// unmuted).
func (u *upTrack) requestAllKeyframes() {
	if u.kind == webrtc.RTPCodecTypeVideo {
		u.requestKeyframe(1<<maxLayers - 1)
	}
}
