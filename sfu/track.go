package sfu

import (
	"fmt"
	"math/rand/v2"
	"strings"
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
// numbers and timestamps, its own reader goroutine and retransmission cache.
type layer struct {
	up     *upTrack
	index  int
	remote *webrtc.TrackRemote // nil in benchmarks that forward by hand
	ssrc   uint32              // the publisher's SSRC, for keyframe requests
	rid    string              // the publisher's name for it (simulcast), for pausing it
	cache  *packetCache        // recent video packets, for NACKs

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

// run reads a layer's packets until its track ends; it reports whether it
// was the last layer reading.
func (l *layer) run() (last bool) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var meter rateMeter
	at := l.up.pub.sfu.arrived
	arrived := at.watch(l.ssrc)
	defer at.unwatch(l.ssrc, arrived)
	for {
		n, _, err := l.remote.Read(buf)
		if err != nil {
			return l.up.running.Add(-1) == 0
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
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
			if rate, ok := meter.add(n, now); ok {
				l.rate.Store(rate)
			}
		}
		if at.stale(arrived, pkt.SequenceNumber) {
			// Late media is useless: shed it before it costs a send
			// per subscriber, and keep it out of the NACK cache.
			l.up.pub.sfu.shed.add()
			continue
		}
		if l.cache != nil {
			l.cache.put(pkt.SequenceNumber, buf[:n])
		}
		l.up.forward(&pkt, l)
	}
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
	for _, d := range *u.downs.Load() {
		d.write(pkt, l)
	}
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

// binding is what pion hands a down-track once its subscribe PC negotiated it.
type binding struct {
	ssrc  uint32
	pt    uint8
	write webrtc.TrackLocalWriter
}

// downTrack is one subscriber's copy of an upTrack. It is a webrtc.TrackLocal
// that forwards one layer and rewrites SSRC, payload type, sequence numbers
// and timestamps itself, so that a switch of layer (on a keyframe) is
// seamless to the subscriber.
type downTrack struct {
	up     *upTrack
	sub    *Participant // the subscriber
	sender *webrtc.RTPSender
	bound  atomic.Pointer[binding]

	want    atomic.Int32 // the layer the subscriber asked for
	fits    atomic.Int32 // the highest layer the subscriber's bandwidth carries
	target  atomic.Int32 // the existing layer nearest min(want, fits)
	current atomic.Int32 // the layer being forwarded; -1 before the first keyframe

	// waitFrom is when the down-track started waiting for a keyframe of
	// its target (Unix nanoseconds), 0 when it is not waiting; waitLogged
	// says that this wait has been logged (keyframe.go).
	waitFrom   atomic.Int64
	waitLogged atomic.Bool

	// Rewrite state. Without simulcast only the one reader touches it;
	// with simulcast mu serializes the layer readers around it (never
	// around the write itself). tsOff is written before the sent entry
	// that publishes it to the RTCP reader.
	mu      sync.Mutex
	hdr     [maxLayers]rtp.Header // scratch per layer reader
	started bool
	seqOff  uint16
	tsOff   uint32
	lastSeq uint16
	lastTS  uint32
	lastAt  time.Time // simulcast: when the last packet went out

	// Retransmission, for video: what each outgoing number carried, and
	// scratch space for the subscribe PeerConnection's SRTCP reader.
	sent   *sentMap
	rtxBuf [maxPacket]byte
	rtxPkt rtp.Packet
}

var _ webrtc.TrackLocal = (*downTrack)(nil)

func newDownTrack(u *upTrack) *downTrack {
	d := &downTrack{up: u}
	if u.kind == webrtc.RTPCodecTypeVideo {
		d.sent = &sentMap{}
	}
	d.want.Store(layerMedium) // a grid tile
	if u.screen {
		d.want.Store(layerHigh) // the large tile: text must stay legible
	}
	d.fits.Store(layerHigh)
	d.current.Store(-1)
	if !u.simulcast {
		d.want.Store(0)
	}
	if u.kind != webrtc.RTPCodecTypeVideo {
		d.current.Store(0) // audio needs no keyframe
	}
	d.retarget()
	return d
}

// setWant records the layer the subscriber asked for.
func (d *downTrack) setWant(layer int) {
	if d.up.simulcast {
		d.want.Store(int32(layer))
		d.retarget()
		d.up.updatePause()
	}
}

// setFits records the highest layer bandwidth allows.
func (d *downTrack) setFits(layer int) {
	if d.up.simulcast && d.fits.Swap(int32(layer)) != int32(layer) {
		d.retarget()
		d.up.updatePause()
	}
}

// retarget aims at the existing layer nearest the wanted one (within what
// the bandwidth carries); if that means a switch, the track asks for a
// keyframe there until one arrives.
func (d *downTrack) retarget() {
	t := d.up.nearest(int(min(d.want.Load(), d.fits.Load())))
	if t < 0 {
		return
	}
	d.target.Store(int32(t))
	if _, ok := d.waiting(); ok {
		d.waitingSince(time.Now())
		d.up.kick()
	}
}

// Bind picks the negotiated codec that matches the published one.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, d.up.codec.MimeType) {
			d.bound.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), write: ctx.WriteStream()})
			if d.sub != nil {
				d.sub.fb.bind(uint32(ctx.SSRC()), d)
			}
			if _, ok := d.waiting(); ok {
				d.waitingSince(time.Now())
				d.up.kick()
			}
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("sfu: subscriber does not accept %s", d.up.codec.MimeType)
}

// Unbind stops writing to the subscriber.
func (d *downTrack) Unbind(ctx webrtc.TrackLocalContext) error {
	if d.sub != nil {
		d.sub.fb.unbind(uint32(ctx.SSRC()), d)
	}
	d.bound.Store(nil)
	d.waitOver()
	return nil
}

// ID is the track id, unique within the publisher's stream.
func (d *downTrack) ID() string { return d.up.id }

// RID is empty: one encoding per down-track.
func (d *downTrack) RID() string { return "" }

// StreamID is the publishing participant's id, or for their screen
// ScreenStreamID of it.
func (d *downTrack) StreamID() string {
	if d.up.screen {
		return ScreenStreamID(d.up.pub.id)
	}
	return d.up.pub.id
}

// Kind is audio or video.
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

// write rewrites one packet of layer l for this subscriber and sends it, if
// l is the layer it forwards, or the one it is starting on or switching to
// and the packet starts a keyframe that the subscriber can receive.
func (d *downTrack) write(pkt *rtp.Packet, l *layer) {
	idx := int32(l.index)
	if d.up.simulcast && idx != d.target.Load() {
		d.checkTarget(l)
	}
	b := d.bound.Load()
	if b == nil {
		return
	}
	if d.current.Load() != idx && !d.canStart(pkt, idx) {
		return
	}
	if len(pkt.Payload) == 0 {
		// Padding only (bandwidth probing): not forwarded.
		d.skip(l)
		return
	}
	switched := false
	if d.up.simulcast {
		d.mu.Lock()
		if d.current.Load() != idx {
			// Decided again under the lock: the layer may have changed.
			if !d.canStart(pkt, idx) {
				d.mu.Unlock()
				return
			}
			d.switchTo(pkt, idx)
			switched = true
		}
	} else if d.current.Load() != idx {
		// The first keyframe of a single-layer video: only its reader
		// writes here.
		d.current.Store(idx)
		d.waitOver()
	}
	if !d.started {
		d.started = true
		d.seqOff = uint16(rand.Uint32()) - pkt.SequenceNumber
		d.tsOff = rand.Uint32() - pkt.Timestamp
	}
	h := &d.hdr[l.index]
	*h = pkt.Header
	h.SSRC = b.ssrc
	h.PayloadType = b.pt
	h.SequenceNumber += d.seqOff
	h.Timestamp += d.tsOff
	h.Padding, h.PaddingSize, h.Extension, h.Extensions = false, 0, false, nil
	d.lastSeq, d.lastTS = h.SequenceNumber, h.Timestamp
	if d.sent != nil {
		d.sent.record(h.SequenceNumber, uint8(l.index), pkt.SequenceNumber)
	}
	if d.up.simulcast {
		d.lastAt = time.Now()
		d.mu.Unlock()
	}
	_, _ = b.write.WriteRTP(h, pkt.Payload)
	if switched {
		// The layer left may be needed by nobody now (a few times a
		// minute at most).
		d.up.updatePause()
	}
}

// canStart reports whether a packet of layer idx, which the down-track does
// not forward, may start it there: the packet starts a keyframe, the
// subscriber's PeerConnection is up to receive it (a keyframe written
// before is lost, and with it the picture), and idx is the target or, for
// a video that shows nothing yet and has waited 2 KeyframeInterval for its
// target, a lower layer: a smaller picture now, the target's at its next
// keyframe, rather than a black tile while the publisher does not key the
// target (a layer it has paused keys only when it resumes).
func (d *downTrack) canStart(pkt *rtp.Packet, idx int32) bool {
	t := d.target.Load()
	if idx > t || idx < t && d.current.Load() >= 0 {
		return false
	}
	if !codec.VP8KeyframeStart(pkt.Payload) || !d.subReady() {
		return false
	}
	if idx == t {
		return true
	}
	from := d.waitFrom.Load()
	return from != 0 && time.Now().UnixNano()-from > int64(2*d.up.pub.sfu.cfg.KeyframeInterval)
}

// checkTarget runs for a packet of layer l, which is not the target, and
// aims again when l is nearer what the subscriber wants than the target
// (a layer above the target that it wants, or any below a target above
// what it wants: layers it waited for are back), or when the target went
// quiet while l kept sending (the browser stopped the target layer). A
// layer that has itself just resumed does not judge the others: after a
// pause of the whole track its layers resume one reader at a time.
func (d *downTrack) checkTarget(l *layer) {
	t := d.target.Load()
	if t < 0 {
		return
	}
	want := min(d.want.Load(), d.fits.Load())
	i := int32(l.index)
	now := l.lastAt.Load()
	tl := d.up.layers[t].Load()
	quiet := tl != nil && !tl.live(now) && now-l.since.Load() > int64(layerIdle)
	if quiet || i > t && i <= want || i < t && t > want {
		d.retarget()
	}
}

// switchTo starts forwarding layer idx at this keyframe: its packets
// continue the subscriber's sequence and timestamps where the old layer's
// stopped, advanced by the time that passed.
func (d *downTrack) switchTo(pkt *rtp.Packet, idx int32) {
	d.current.Store(idx)
	d.waitOver()
	if !d.started {
		return
	}
	d.seqOff = d.lastSeq + 1 - pkt.SequenceNumber
	gap := uint32(time.Since(d.lastAt) * time.Duration(d.up.codec.ClockRate) / time.Second)
	d.tsOff = d.lastTS + max(gap, 1) - pkt.Timestamp
}

// skip drops a packet of the forwarded layer and closes the gap it would
// leave in the subscriber's sequence, so that nothing is reported lost.
func (d *downTrack) skip(l *layer) {
	if d.current.Load() != int32(l.index) {
		return
	}
	if d.up.simulcast {
		d.mu.Lock()
		defer d.mu.Unlock()
	}
	if d.started {
		d.seqOff--
	}
}

// retransmit resends the packet this subscriber lost as out, from the
// layer's cache, rewritten as it was first sent. It runs on the subscribe
// PeerConnection's SRTCP reader (feedback.go), one packet at a time, and
// holds no lock while writing.
func (d *downTrack) retransmit(out uint16) bool {
	b := d.bound.Load()
	if b == nil || d.sent == nil {
		return true
	}
	idx, in, ok := d.sent.lookup(out)
	if !ok || int32(idx) != d.current.Load() {
		return true // not sent, or sent from a layer left since
	}
	l := d.up.layers[idx].Load()
	if l == nil || l.cache == nil {
		return true
	}
	n, ok := l.cache.get(in, d.rtxBuf[:])
	if !ok || d.rtxPkt.Unmarshal(d.rtxBuf[:n]) != nil {
		return true
	}
	h := &d.rtxPkt.Header
	h.SSRC, h.PayloadType, h.SequenceNumber = b.ssrc, b.pt, out
	h.Timestamp += d.tsOff
	h.Padding, h.PaddingSize, h.Extension, h.Extensions = false, 0, false, nil
	_, _ = b.write.WriteRTP(h, d.rtxPkt.Payload)
	return true
}
