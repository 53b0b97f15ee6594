package main

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Every synthetic RTP packet ends with a stamp: who sent it, which of its
// packets it is and when it left. Receivers read it to count loss per
// publisher and the one-way latency on loopback (one clock for both ends).
// The stamp sits at the end of the payload so that the start stays a valid
// VP8 payload descriptor and frame header (an SFU may look for keyframes).
//
//	magic   2 bytes  "IO"
//	flags   1 byte   stampVideo | stampKey | stampFirst | stampLast
//	layer   1 byte   the simulcast layer of a video packet (0 lowest; 0 without simulcast)
//	pub     4 bytes  publisher index in this run
//	seq     4 bytes  per publisher and kind, from 0
//	sent    8 bytes  Unix nanoseconds when the packet was handed to the stack
const stampLen = 20

const (
	stampVideo = 1 << iota // a video packet (else audio)
	stampKey               // part of a keyframe
	stampFirst             // first packet of a frame
	stampLast              // last packet of a frame (RTP marker)
)

// stamp is what a receiver reads back from a packet.
type stamp struct {
	flags byte
	layer byte
	pub   uint32
	seq   uint32
	sent  int64
}

func putStamp(payload []byte, s stamp) {
	b := payload[len(payload)-stampLen:]
	b[0], b[1], b[2], b[3] = 'I', 'O', s.flags, s.layer
	binary.BigEndian.PutUint32(b[4:], s.pub)
	binary.BigEndian.PutUint32(b[8:], s.seq)
	binary.BigEndian.PutUint64(b[12:], uint64(s.sent))
}

// readStamp finds the stamp of a raw RTP packet (header, payload, padding).
func readStamp(pkt []byte) (stamp, bool) {
	if len(pkt) < 12+stampLen || pkt[0]>>6 != 2 {
		return stamp{}, false
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 { // padding: its length is the last byte
		end -= int(pkt[end-1])
	}
	off := 12 + int(pkt[0]&0x0f)*4
	if pkt[0]&0x10 != 0 { // header extension
		if len(pkt) < off+4 {
			return stamp{}, false
		}
		off += 4 + int(binary.BigEndian.Uint16(pkt[off+2:]))*4
	}
	if end-off < stampLen {
		return stamp{}, false
	}
	b := pkt[end-stampLen : end]
	if b[0] != 'I' || b[1] != 'O' {
		return stamp{}, false
	}
	return stamp{
		flags: b[2],
		layer: b[3],
		pub:   binary.BigEndian.Uint32(b[4:]),
		seq:   binary.BigEndian.Uint32(b[8:]),
		sent:  int64(binary.BigEndian.Uint64(b[12:])),
	}, true
}

// traffic is the shape of what every publisher sends.
type traffic struct {
	VideoKbps        int           // mean video payload bitrate (of the top layer with simulcast)
	Layers           int           // simulcast layers: 1, or 3 (rids q, h, f)
	FPS              int           // video frames per second
	KeyframeInterval time.Duration // a keyframe this often (0: none), and on request
	KeyframeScale    float64       // keyframe size over the mean delta frame size
	MaxPayload       int           // largest RTP payload; frames are split evenly
	AudioPayload     int           // Opus payload bytes per 20 ms
	Publisher        string        // how keyframe requests are answered: publisherChrome ("" too) or publisherEager
}

// How a synthetic publisher answers keyframe requests (PLI, FIR).
const (
	// publisherChrome answers as Chrome does: a request within
	// chromePLIWindow of its last keyframe is ignored, whatever layer it
	// names; any other keys every simulcast layer at the next frame.
	publisherChrome = "chrome"
	// publisherEager keys the layer a request names at the next frame,
	// every time.
	publisherEager = "eager"
)

// chromePLIWindow is how long after its last keyframe Chrome ignores a
// keyframe request: measured 0.3-0.5 s (requests 1 s or more after the
// last keyframe were all answered); the model takes the upper end. The
// sfu package's tests use the same model.
const chromePLIWindow = 500 * time.Millisecond

func defaultTraffic() traffic {
	return traffic{VideoKbps: 1500, Layers: 1, FPS: 30, KeyframeInterval: 3 * time.Second, KeyframeScale: 6, MaxPayload: 1160, AudioPayload: 80, Publisher: publisherChrome}
}

// maxLayers is the most simulcast layers a publisher sends.
const maxLayers = 3

// layerShare is each simulcast layer's share of the top layer's bitrate:
// about 150, 500 and 1,500 kbps for a 1.5 Mbps top layer, as a browser
// sends quarter, half and full resolution.
var layerShare = [maxLayers]float64{0.1, 1.0 / 3, 1}

// layerKbps is the mean bitrate of video layer l.
func (t traffic) layerKbps(l int) float64 {
	if t.Layers <= 1 {
		return float64(t.VideoKbps)
	}
	return float64(t.VideoKbps) * layerShare[l]
}

// packetSink takes a publisher's packets: a WebRTC track or a UDP socket.
// The payload is only valid during the call.
type packetSink interface {
	writeRTP(video bool, layer int, hdr *rtp.Header, payload []byte) error
}

// source generates one publisher's synthetic VP8 and Opus packets in real
// time: frames of random size around the mean at FPS, a bigger keyframe
// every KeyframeInterval (if set) and when asked, Opus every 20 ms. The sizes come from a generator
// seeded with the publisher index, so that the relay baseline carries
// traffic of the same shape as the server (keyframes on request aside: the
// relay sends no PLI).
type source struct {
	pub     uint32
	tr      traffic
	sink    packetSink
	wantKey [maxLayers]atomic.Bool
	paused  atomic.Bool // sends nothing while set
	// layerOff marks the layers the server asked to pause (an encodings
	// message): a browser stops encoding them, and starts a layer it
	// resumes with a keyframe.
	layerOff [maxLayers]atomic.Bool
	clock    func() time.Time

	// lastKey is when the last keyframe was sent (Unix nanoseconds);
	// plis counts the keyframe requests received, ignored those the
	// Chrome model ignored.
	lastKey       atomic.Int64
	plis, ignored atomic.Int64

	rng              *rand.Rand
	videoSeq         [maxLayers]uint32
	audioSeq         uint32
	videoRTP         [maxLayers]uint16
	audioRTP         uint16
	videoTS, audioTS uint32
	frames           int
	buf              []byte
	hdr              rtp.Header

	// sent counts packets handed to the sink (both kinds).
	sent atomic.Int64
}

func newSource(pub uint32, tr traffic, sink packetSink) *source {
	tr.Layers = min(max(tr.Layers, 1), maxLayers)
	s := &source{
		pub: pub, tr: tr, sink: sink,
		clock:    time.Now,
		rng:      rand.New(rand.NewPCG(uint64(pub)+1, 0x10ad)),
		audioRTP: uint16(pub * 104729),
		buf:      make([]byte, 1500),
	}
	for l := range s.videoRTP {
		s.videoRTP[l] = uint16(pub*7919 + uint32(l)*1000)
	}
	return s
}

// requestKeyframe answers a keyframe request (PLI) for a layer: as Chrome
// does, or else by keying that layer at the next frame.
func (s *source) requestKeyframe(layer int) {
	if layer < 0 || layer >= maxLayers {
		return
	}
	s.plis.Add(1)
	if s.tr.Publisher == publisherEager {
		s.wantKey[layer].Store(true)
		return
	}
	if last := s.lastKey.Load(); last != 0 && s.clock().UnixNano()-last < int64(chromePLIWindow) {
		s.ignored.Add(1)
		return
	}
	for l := range s.wantKey {
		s.wantKey[l].Store(true)
	}
}

// setEncodings applies an encodings message as a browser does: the layers
// named paused stop, those named active send, a resumed one starting with a
// keyframe.
func (s *source) setEncodings(active, paused []string) {
	for l, rid := range rids {
		switch {
		case slices.Contains(paused, rid):
			s.layerOff[l].Store(true)
		case slices.Contains(active, rid) && s.layerOff[l].Swap(false):
			s.wantKey[l].Store(true)
		}
	}
}

// keyEvery is the number of frames from one periodic keyframe to the next,
// 0 for none.
func (s *source) keyEvery() int {
	if s.tr.KeyframeInterval <= 0 {
		return 0
	}
	frameEvery := time.Second / time.Duration(max(1, s.tr.FPS))
	return max(1, int(s.tr.KeyframeInterval/frameEvery))
}

// run sends until stop closes. The first frame is a keyframe; the phase of
// each publisher is random, so that keyframes do not all coincide.
func (s *source) run(stop <-chan struct{}) {
	frameEvery := time.Second / time.Duration(max(1, s.tr.FPS))
	keyEvery := s.keyEvery()
	if keyEvery > 0 {
		s.frames = s.rng.IntN(keyEvery) // a keyframe comes at frames%keyEvery == 0
	}
	for l := range s.wantKey {
		s.wantKey[l].Store(true)
	}
	select {
	case <-stop:
		return
	case <-time.After(time.Duration(s.rng.Int64N(int64(frameEvery)))):
	}
	audio := time.NewTicker(20 * time.Millisecond)
	defer audio.Stop()
	video := time.NewTicker(frameEvery)
	defer video.Stop()
	s.sendFrame(keyEvery)
	for {
		select {
		case <-stop:
			return
		case <-audio.C:
			if !s.paused.Load() {
				s.sendAudio()
			}
		case <-video.C:
			if !s.paused.Load() {
				s.sendFrame(keyEvery)
			}
		}
	}
}

// frameSize draws the size of the next frame of layer l, in bytes.
func (s *source) frameSize(l int, key bool, keyEvery int) int {
	mean := s.tr.layerKbps(l) * 1000 / 8 / float64(max(1, s.tr.FPS))
	// Keep the mean bitrate: one keyframe of scale k among keyEvery frames.
	delta := mean
	if keyEvery > 0 {
		delta = mean * float64(keyEvery) / (float64(keyEvery-1) + s.tr.KeyframeScale)
	}
	size := delta
	if key {
		size = delta * s.tr.KeyframeScale
	}
	size *= 0.75 + 0.5*s.rng.Float64() // +-25%
	return max(int(size), stampLen+16)
}

// sendFrame sends one captured frame: one encoding of it per layer, all
// with the same RTP timestamp, as a simulcast encoder does. keyEvery is
// the number of frames between periodic keyframes, 0 for none.
func (s *source) sendFrame(keyEvery int) {
	periodic := keyEvery > 0 && s.frames%keyEvery == 0
	s.frames++
	s.videoTS += 90000 / uint32(max(1, s.tr.FPS))
	for l := range s.tr.Layers {
		if s.layerOff[l].Load() {
			continue
		}
		key := s.wantKey[l].Swap(false) || periodic
		if key {
			s.lastKey.Store(s.clock().UnixNano())
		}
		s.sendEncoding(l, key, s.frameSize(l, key, keyEvery))
	}
}

// sendEncoding splits one layer's frame of size bytes into packets.
func (s *source) sendEncoding(l int, key bool, size int) {
	maxPayload := max(s.tr.MaxPayload, 2*stampLen+16)
	n := (size + maxPayload - 1) / maxPayload
	per := size / n
	for i := range n {
		p := s.buf[:per]
		clear(p)
		var flags byte = stampVideo
		if key {
			flags |= stampKey
		}
		if i == 0 {
			flags |= stampFirst
			// VP8 payload descriptor: S=1, partition 0; then the frame
			// tag, whose bit 0 is clear on a keyframe, and for a keyframe
			// the start code and a 640x480 size.
			p[0] = 0x10
			if key {
				copy(p[1:], []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01})
			} else {
				copy(p[1:], []byte{0x11, 0x02, 0x00})
			}
		}
		if i == n-1 {
			flags |= stampLast
		}
		s.hdr = rtp.Header{Version: 2, Marker: i == n-1, PayloadType: 96, SequenceNumber: s.videoRTP[l], Timestamp: s.videoTS, SSRC: s.pub*4 + 1 + uint32(l)}
		s.videoRTP[l]++
		putStamp(p, stamp{flags: flags, layer: byte(l), pub: s.pub, seq: s.videoSeq[l], sent: time.Now().UnixNano()})
		s.videoSeq[l]++
		if s.sink.writeRTP(true, l, &s.hdr, p) == nil {
			s.sent.Add(1)
		}
	}
}

func (s *source) sendAudio() {
	p := s.buf[:max(s.tr.AudioPayload, stampLen+1)]
	clear(p)
	p[0] = 0x78 // an Opus TOC byte: SILK-only wideband 20 ms
	s.audioTS += 960
	s.hdr = rtp.Header{Version: 2, Marker: false, PayloadType: 111, SequenceNumber: s.audioRTP, Timestamp: s.audioTS, SSRC: s.pub * 4}
	s.audioRTP++
	putStamp(p, stamp{pub: s.pub, seq: s.audioSeq, sent: time.Now().UnixNano()})
	s.audioSeq++
	if s.sink.writeRTP(false, 0, &s.hdr, p) == nil {
		s.sent.Add(1)
	}
}
