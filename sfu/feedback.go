package sfu

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
)

// Feedback from subscribers.
//
// A subscriber's browser sends RTCP for every track it receives: receiver
// reports, NACKs, keyframe requests (PLI, FIR) and its bandwidth estimate
// (REMB). pion's SRTCP session decrypts each packet on the one goroutine
// that reads the PeerConnection's SRTCP and hands it, per destination SSRC,
// to that stream's buffer, where an RTPSender's reader would take it: one
// reader goroutine per down-track, 2N(N-1) in a room of N who publish audio
// and video (420 of 1,001 goroutines in a group of 15). A subscribe
// PeerConnection has instead, in place of those buffers, one feedback sink
// per stream that acts on the packet at once, on the SRTCP session's own
// goroutine: no goroutine and no queue per down-track, and no hand-off.
//
// What the sink does is short and never waits on the media path: a keyframe
// request goes to the publisher's track (keyframe.go: a timer sends it), a
// NACK is answered from the track's cache with one write, a REMB updates the
// subscriber's bandwidth shares (bwe.go). Receiver reports, sender reports,
// SDES and BYE are dropped unread.

// RTCP packet types and formats the sinks act on (RFC 4585, 5104).
const (
	rtcpTypeRTPFB = 205 // transport-layer feedback: NACK (format 1)
	rtcpTypePSFB  = 206 // payload-specific: PLI (1), FIR (4), REMB (15)
)

// feedback routes a subscribe PeerConnection's RTCP to its down-tracks by
// the SSRC the server sends each one with.
type feedback struct {
	mu     sync.RWMutex
	bySSRC map[uint32]*downTrack
	rtx    rtxScratch // only the SRTCP reader's goroutine uses it
	// heard is when the last RTCP packet arrived (unix ns; 0: none): the
	// subscriber's receiver reports come every second or so while its
	// browser runs, evidence that the person is there even when they
	// send no media (Participant.LastRTCP).
	heard atomic.Int64
}

// bind routes ssrc to d (its subscribe PeerConnection negotiated it).
func (f *feedback) bind(ssrc uint32, d *downTrack) {
	f.mu.Lock()
	if f.bySSRC == nil {
		f.bySSRC = map[uint32]*downTrack{}
	}
	f.bySSRC[ssrc] = d
	f.mu.Unlock()
}

// unbind stops routing ssrc to d.
func (f *feedback) unbind(ssrc uint32, d *downTrack) {
	f.mu.Lock()
	if f.bySSRC[ssrc] == d {
		delete(f.bySSRC, ssrc)
	}
	f.mu.Unlock()
}

func (f *feedback) track(ssrc uint32) *downTrack {
	f.mu.RLock()
	d := f.bySSRC[ssrc]
	f.mu.RUnlock()
	return d
}

// sink is the BufferFactory's answer for an incoming RTCP stream of a
// subscribe PeerConnection.
func (f *feedback) sink(ssrc uint32) io.ReadWriteCloser {
	return &feedbackSink{f: f, ssrc: ssrc, closed: make(chan struct{})}
}

// feedbackSink stands where pion keeps one RTCP stream's buffer: what is
// written to it is acted on at once, and nothing is left to read.
type feedbackSink struct {
	f      *feedback
	ssrc   uint32
	once   sync.Once
	closed chan struct{}
}

// Write takes one RTCP packet (pion splits compound packets) addressed to
// the sink's SSRC.
func (s *feedbackSink) Write(b []byte) (int, error) {
	s.f.handle(s.ssrc, b)
	return len(b), nil
}

// WriteWithAttributes is Write; the attributes carry nothing used here.
func (s *feedbackSink) WriteWithAttributes(b []byte, _ packetio.Attributes) (int, error) {
	return s.Write(b)
}

// Read blocks until the stream closes: nothing reads a subscribe
// PeerConnection's RTCP through pion.
func (s *feedbackSink) Read([]byte) (int, error) {
	<-s.closed
	return 0, io.EOF
}

// Close ends the stream.
func (s *feedbackSink) Close() error {
	s.once.Do(func() { close(s.closed) })
	return nil
}

// handle acts on one RTCP packet addressed to ssrc.
func (f *feedback) handle(ssrc uint32, b []byte) {
	f.heard.Store(time.Now().UnixNano())
	if len(b) < 8 || (b[1] != rtcpTypeRTPFB && b[1] != rtcpTypePSFB) {
		return // reports, SDES, BYE: nothing to do
	}
	d := f.track(ssrc)
	if d == nil {
		return // not (or no longer) a down-track of this PeerConnection
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			// Keyframes for the layer the subscriber is to get, not the
			// one it gets now.
			if t := d.target.Load(); t >= 0 && d.up.kind == webrtc.RTPCodecTypeVideo {
				d.up.requestKeyframe(1 << t)
			}
		case *rtcp.TransportLayerNack:
			for _, pair := range p.Nacks {
				pair.Range(func(out uint16) bool { return d.retransmit(out, &f.rtx) })
			}
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			// One estimate for the whole PeerConnection, addressed to
			// every video it receives: applied once, by the first of them
			// that is a down-track here.
			if d.sub != nil && f.firstKnown(p.SSRCs) == ssrc {
				d.sub.bandwidth(uint64(p.Bitrate))
			}
		}
	}
}

// firstKnown returns the first of ssrcs that is routed to a down-track.
func (f *feedback) firstKnown(ssrcs []uint32) uint32 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, s := range ssrcs {
		if f.bySSRC[s] != nil {
			return s
		}
	}
	return 0
}
