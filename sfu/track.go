package sfu

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// upTrack is one track a participant publishes. One goroutine reads it and
// writes every packet to the down-tracks of its subscribers.
type upTrack struct {
	pub    *Participant
	remote *webrtc.TrackRemote
	id     string
	ssrc   uint32 // the publisher's SSRC, for keyframe requests
	kind   webrtc.RTPCodecType
	codec  webrtc.RTPCodecCapability

	// downs is copy-on-write: attach and detach build a new slice under mu,
	// the reader loads it without a lock for every packet.
	mu     sync.Mutex
	closed bool
	downs  atomic.Pointer[[]*downTrack]

	// keyframe request throttle
	kfMu      sync.Mutex
	kfLast    time.Time
	kfPending bool

	packets atomic.Uint64
	muted   atomic.Bool  // a therapist muted it: packets are not forwarded
	cache   *packetCache // recent video packets, for retransmission on NACK
}

func newUpTrack(p *Participant, remote *webrtc.TrackRemote, id string) *upTrack {
	u := &upTrack{pub: p, remote: remote, id: id, ssrc: uint32(remote.SSRC()), kind: remote.Kind(), codec: remote.Codec().RTPCodecCapability}
	u.downs.Store(&[]*downTrack{})
	if u.kind == webrtc.RTPCodecTypeVideo {
		u.cache = &packetCache{}
	}
	return u
}

// run reads packets until the publisher's PeerConnection closes or the track ends.
func (u *upTrack) run() {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := u.remote.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if u.cache != nil {
			u.cache.put(pkt.SequenceNumber, buf[:n])
		}
		u.forward(&pkt)
	}
}

// forward writes one packet to every subscriber. It holds no lock and
// allocates nothing.
func (u *upTrack) forward(pkt *rtp.Packet) {
	u.packets.Add(1)
	if u.muted.Load() {
		for _, d := range *u.downs.Load() {
			d.skip(pkt)
		}
		return
	}
	for _, d := range *u.downs.Load() {
		d.write(pkt)
	}
}

// attach adds a subscriber's down-track; false once the track has ended.
func (u *upTrack) attach(d *downTrack) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return false
	}
	old := *u.downs.Load()
	next := make([]*downTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	u.downs.Store(&next)
	return true
}

// detach removes a subscriber's down-track.
func (u *upTrack) detach(d *downTrack) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := *u.downs.Load()
	next := make([]*downTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	u.downs.Store(&next)
}

// close marks the track ended so no new subscriber attaches.
func (u *upTrack) close() {
	u.mu.Lock()
	u.closed = true
	u.mu.Unlock()
}

// requestKeyframe sends a PLI to the publisher, at most one per
// KeyframeInterval; a request inside the interval is deferred to its end so
// that a late subscriber never waits for the next natural keyframe.
func (u *upTrack) requestKeyframe() {
	if u.kind != webrtc.RTPCodecTypeVideo {
		return
	}
	interval := u.pub.sfu.cfg.KeyframeInterval
	u.kfMu.Lock()
	since := time.Since(u.kfLast)
	if since < interval {
		if !u.kfPending {
			u.kfPending = true
			time.AfterFunc(interval-since, func() {
				u.kfMu.Lock()
				u.kfPending = false
				u.kfMu.Unlock()
				u.requestKeyframe()
			})
		}
		u.kfMu.Unlock()
		return
	}
	u.kfLast = time.Now()
	u.kfMu.Unlock()
	u.pub.writeRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: u.ssrc}})
}

// binding is what pion hands a down-track once its subscribe PC negotiated it.
type binding struct {
	ssrc  uint32
	pt    uint8
	write webrtc.TrackLocalWriter
}

// downTrack is one subscriber's copy of an upTrack. It is a webrtc.TrackLocal
// that rewrites SSRC, payload type, sequence numbers and timestamps itself.
type downTrack struct {
	up     *upTrack
	sender *webrtc.RTPSender
	bound  atomic.Pointer[binding]

	// Rewrite state, touched only by the up-track's reader goroutine
	// (tsOff is written once, before the first sent entry publishes it).
	hdr     rtp.Header
	started bool
	seqOff  uint16
	tsOff   uint32

	// Retransmission, for video: what each outgoing number carried, and
	// scratch space for the RTCP reader goroutine.
	sent   *sentMap
	rtxBuf [maxPacket]byte
	rtxPkt rtp.Packet
}

var _ webrtc.TrackLocal = (*downTrack)(nil)

func newDownTrack(u *upTrack) *downTrack {
	d := &downTrack{up: u}
	if u.cache != nil {
		d.sent = &sentMap{}
	}
	return d
}

// Bind picks the negotiated codec that matches the published one.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, d.up.codec.MimeType) {
			d.bound.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), write: ctx.WriteStream()})
			d.up.requestKeyframe()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("sfu: subscriber does not accept %s", d.up.codec.MimeType)
}

// Unbind stops writing to the subscriber.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.bound.Store(nil)
	return nil
}

// ID is the track id, unique within the publisher's stream.
func (d *downTrack) ID() string { return d.up.id }

// RID is empty: one encoding per down-track.
func (d *downTrack) RID() string { return "" }

// StreamID is the publishing participant's id.
func (d *downTrack) StreamID() string { return d.up.pub.id }

// Kind is audio or video.
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

// write rewrites one packet for this subscriber and sends it.
func (d *downTrack) write(pkt *rtp.Packet) {
	b := d.bound.Load()
	if b == nil {
		return
	}
	if !d.started {
		d.started = true
		d.seqOff = uint16(rand.Uint32()) - pkt.SequenceNumber
		d.tsOff = rand.Uint32() - pkt.Timestamp
	}
	if len(pkt.Payload) == 0 {
		// Padding only (bandwidth probing): not forwarded.
		d.skip(pkt)
		return
	}
	d.hdr = pkt.Header
	d.hdr.SSRC = b.ssrc
	d.hdr.PayloadType = b.pt
	d.hdr.SequenceNumber += d.seqOff
	d.hdr.Timestamp += d.tsOff
	if d.sent != nil {
		d.sent.record(d.hdr.SequenceNumber, pkt.SequenceNumber)
	}
	d.hdr.Padding = false
	d.hdr.PaddingSize = 0
	d.hdr.Extension = false
	d.hdr.Extensions = nil
	_, _ = b.write.WriteRTP(&d.hdr, pkt.Payload)
}

// skip drops a packet and closes the gap it would leave in the subscriber's
// sequence, so that nothing is reported lost.
func (d *downTrack) skip(*rtp.Packet) {
	if d.started {
		d.seqOff--
	}
}

// readRTCP forwards the subscriber's keyframe requests to the publisher until
// the sender stops.
func (d *downTrack) readRTCP() {
	for {
		pkts, _, err := d.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				d.up.requestKeyframe()
			case *rtcp.TransportLayerNack:
				for _, pair := range p.Nacks {
					pair.Range(d.retransmit)
				}
			}
		}
	}
}

// retransmit resends the packet this subscriber lost as out, from the
// up-track's cache, rewritten as it was first sent. It runs on the RTCP
// reader goroutine and holds no lock while writing.
func (d *downTrack) retransmit(out uint16) bool {
	b := d.bound.Load()
	if b == nil || d.sent == nil {
		return true
	}
	in, ok := d.sent.lookup(out)
	if !ok {
		return true
	}
	n, ok := d.up.cache.get(in, d.rtxBuf[:])
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
