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

	// Retransmission, for video: what each outgoing number carried.
	sent *sentMap
}

// rtxScratch is where a retransmission is read from the cache and parsed:
// one per subscribe PeerConnection, whose SRTCP reader answers its NACKs
// one at a time (feedback.go), instead of 1.5 KB in every down-track.
type rtxScratch struct {
	buf [maxPacket]byte
	pkt rtp.Packet
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
func (d *downTrack) retransmit(out uint16, x *rtxScratch) bool {
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
	n, ok := l.cache.get(in, x.buf[:])
	if !ok || x.pkt.Unmarshal(x.buf[:n]) != nil {
		return true
	}
	h := &x.pkt.Header
	h.SSRC, h.PayloadType, h.SequenceNumber = b.ssrc, b.pt, out
	h.Timestamp += d.tsOff
	h.Padding, h.PaddingSize, h.Extension, h.Extensions = false, 0, false, nil
	_, _ = b.write.WriteRTP(h, x.pkt.Payload)
	return true
}
