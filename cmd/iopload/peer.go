package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"iop/signaling/client"
	"iop/signaling/protocol"
)

// newRTCAPI returns the pion API every synthetic participant uses: VP8 and
// Opus, NACK and RTCP reports as a browser would send them, and ICE on
// loopback only, so that no packet leaves the machine.
func newRTCAPI() (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	// Simulcast layers are named in packets by these (RFC 8852).
	for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	se := webrtc.SettingEngine{}
	quiet := logging.NewDefaultLoggerFactory()
	quiet.DefaultLogLevel = logging.LogLevelError
	se.LoggerFactory = quiet
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// rtcPeer is one synthetic participant of iopd: a signaling.client
// Participant whose publish PeerConnection carries a source's packets and
// whose received tracks feed a receiver. Signaling, answers, candidates
// and the PeerConnections are the client's; iopload keeps its traffic
// source and its measurements.
type rtcPeer struct {
	idx       uint32
	therapist bool
	part      *client.Participant
	rx        *receiver
	src       *source
	sink      *rtcSink
	want      subscribing

	ssrcMu sync.Mutex
	ssrcs  []uint32 // the video tracks received, for REMB

	mu      sync.Mutex
	lastErr string // the last error message the server sent after joining
	ended   string // why the server ended the session, if it did

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// joinRTC joins base with tok (through the waiting room), publishes a
// source shaped by tr and starts it once the publish PeerConnection is up.
// want says how it subscribes.
func joinRTC(ctx context.Context, api *webrtc.API, base, tok string, idx uint32, therapist bool, tr traffic, want subscribing, rx *receiver) (*rtcPeer, error) {
	p := &rtcPeer{idx: idx, therapist: therapist, rx: rx, want: want, stop: make(chan struct{})}
	tracks, err := p.tracks(tr)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	rx.joinStart = time.Now()
	p.part, err = client.Join(ctx, base, tok, client.Options{
		API:              api,
		AutoAdmit:        therapist,
		Tracks:           tracks,
		OnRTCP:           p.onRTCP,
		OnTrack:          p.onTrack,
		OnSubscribeOffer: func(sdp string) { rx.answered(sdp, time.Now()) },
		OnPublishAnswer:  func(c *client.Participant) { p.sink.described(c.PublishTransceivers()[1]) },
	})
	var redirect *client.ErrRedirect
	if errors.As(err, &redirect) {
		return nil, fmt.Errorf("the room lives on another node (%s): point -url at it", redirect.URL)
	}
	if err != nil {
		return nil, err
	}
	p.wg.Add(1)
	go p.watch()
	if p.want.RembKbps > 0 {
		p.wg.Add(1)
		go p.sendREMB()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		// A browser's encoder starts once its transport is up: its first
		// frame, a keyframe, is not lost to a PeerConnection still
		// connecting (the Chrome model counts it as the last keyframe).
		select {
		case <-p.part.PublishConnected():
		case <-p.stop:
			return
		}
		p.src.run(p.stop)
	}()
	return p, nil
}

// watch notes the errors the server sends after joining and why it ended
// the session, if it did.
func (p *rtcPeer) watch() {
	defer p.wg.Done()
	for m := range p.part.Events() {
		switch m.Type {
		case protocol.TypeError:
			p.mu.Lock()
			p.lastErr = m.Code + ": " + m.Message
			p.mu.Unlock()
		case protocol.TypeRemoved, protocol.TypeEnded:
			p.mu.Lock()
			p.ended = m.Type
			p.mu.Unlock()
		case protocol.TypeEncodings:
			// The server pauses the layers nobody receives, and resumes them
			// (docs/protocol.md, encodings): the source obeys as a browser does.
			if p.src != nil {
				p.src.setEncodings(m.Active, m.Paused)
			}
		}
	}
}

// rids names the simulcast layers, lowest first, as browsers do.
var rids = [maxLayers]string{"q", "h", "f"}

// tracks makes the audio track and the video track, with one encoding per
// simulcast layer, and the source that writes to them.
func (p *rtcPeer) tracks(tr traffic) ([]client.LocalTrack, error) {
	stream := fmt.Sprintf("load-%d", p.idx)
	p.sink = &rtcSink{simulcast: tr.Layers > 1}
	var err error
	if p.sink.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", stream); err != nil {
		return nil, err
	}
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	video := client.LocalTrack{}
	for l := range max(1, tr.Layers) {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if p.sink.simulcast {
			opts = append(opts, webrtc.WithRTPStreamID(rids[l]))
			video.RIDs = append(video.RIDs, rids[l])
		}
		if p.sink.video[l], err = webrtc.NewTrackLocalStaticRTP(vp8, "video", stream, opts...); err != nil {
			return nil, err
		}
		video.Encodings = append(video.Encodings, p.sink.video[l])
	}
	p.src = newSource(p.idx, tr, p.sink)
	return []client.LocalTrack{{Encodings: []*webrtc.TrackLocalStaticRTP{p.sink.audio}}, video}, nil
}

// rtcSink writes a source's packets to the publish tracks. With simulcast
// it names each packet's layer with the mid and rid header extensions, as
// a browser does (pion does not write them itself), once the publish
// answer has fixed their ids.
type rtcSink struct {
	audio     *webrtc.TrackLocalStaticRTP
	video     [maxLayers]*webrtc.TrackLocalStaticRTP
	simulcast bool
	ext       atomic.Pointer[[maxLayers][]rtp.Extension] // per layer: mid and rid
	pkt       rtp.Packet
}

// described reads the negotiated header extension ids of the video
// transceiver once the publish answer is applied.
func (s *rtcSink) described(videoXC *webrtc.RTPTransceiver) {
	if !s.simulcast || s.ext.Load() != nil {
		return
	}
	ids := map[string]uint8{}
	for _, e := range videoXC.Sender().GetParameters().HeaderExtensions {
		ids[e.URI] = uint8(e.ID)
	}
	mid, rid := ids[sdp.SDESMidURI], ids[sdp.SDESRTPStreamIDURI]
	if mid == 0 || rid == 0 {
		return // not negotiated: the server will not tell the layers apart
	}
	var ext [maxLayers][]rtp.Extension
	for l := range ext {
		var h rtp.Header
		if h.SetExtension(mid, []byte(videoXC.Mid())) != nil || h.SetExtension(rid, []byte(rids[l])) != nil {
			return
		}
		ext[l] = h.Extensions
	}
	s.ext.Store(&ext)
}

func (s *rtcSink) writeRTP(video bool, layer int, hdr *rtp.Header, payload []byte) error {
	s.pkt.Header, s.pkt.Payload = *hdr, payload
	if !video {
		return s.audio.WriteRTP(&s.pkt)
	}
	if s.simulcast {
		ext := s.ext.Load()
		if ext == nil {
			return errNotNegotiated
		}
		s.pkt.Extension, s.pkt.ExtensionProfile, s.pkt.Extensions = true, 0xBEDE, ext[layer]
	}
	return s.video[layer].WriteRTP(&s.pkt)
}

var errNotNegotiated = errors.New("simulcast layers not negotiated yet")

// onRTCP hands the server's keyframe requests for one published encoding
// to the source (track 0 is audio: layer -1), which answers them as its
// publisher model does; pion's NACK responder has seen the NACKs.
func (p *rtcPeer) onRTCP(track, layer int, pkts []rtcp.Packet) {
	if track == 0 {
		layer = -1
	}
	for _, pkt := range pkts {
		switch pkt.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			p.src.requestKeyframe(layer)
		}
	}
}

// onTrack feeds a received track to the receiver.
func (p *rtcPeer) onTrack(c *client.Participant, t *webrtc.TrackRemote) {
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		if p.want.Quality != "" {
			// The server names each track's stream after its publisher.
			_ = c.Send(protocol.ClientMessage{Type: protocol.TypeLayer, Participant: t.StreamID(), Quality: p.want.Quality})
		}
		p.ssrcMu.Lock()
		p.ssrcs = append(p.ssrcs, uint32(t.SSRC()))
		p.ssrcMu.Unlock()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1500)
		var cache *rxStream
		var key streamKey
		// As a browser does, a video that receives packets but has no
		// whole keyframe to start from asks for one, once a second.
		shown := t.Kind() != webrtc.RTPCodecTypeVideo
		var asked time.Time
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			st, ok := p.rx.packet(buf[:n], now, &cache, &key)
			if shown || !ok || now.Sub(asked) < time.Second {
				continue
			}
			if shown = p.rx.shows(st.pub); !shown {
				if asked.IsZero() {
					asked = now // the first packets: the keyframe may still be on its way
					continue
				}
				asked = now
				_ = c.WriteSubscribeRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
			}
		}
	}()
}

// subscribing is how a synthetic participant subscribes.
type subscribing struct {
	// Quality is the simulcast layer asked of every publisher with layer
	// messages; "" leaves the choice to the server.
	Quality string
	// RembKbps, if set, is the downlink bandwidth reported to the server
	// twice a second (REMB for every video received), as a browser on a
	// weak connection would.
	RembKbps int
}

// sendREMB reports the configured bandwidth for every video received until
// the participant leaves. Interval: browsers send REMB about once a second
// and on a drop; twice a second keeps the test short.
func (p *rtcPeer) sendREMB() {
	defer p.wg.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		p.ssrcMu.Lock()
		ssrcs := append([]uint32(nil), p.ssrcs...)
		p.ssrcMu.Unlock()
		if len(ssrcs) > 0 {
			_ = p.part.WriteSubscribeRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(p.want.RembKbps) * 1000, SSRCs: ssrcs}})
		}
	}
}

// problem returns what went wrong with the session, or "".
func (p *rtcPeer) problem() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended != "" {
		return "session " + p.ended
	}
	return p.lastErr
}

// leave says goodbye and closes everything; crash closes without a word,
// as a browser tab that dies would.
func (p *rtcPeer) leave(crash bool) {
	if !crash {
		_ = p.part.Send(protocol.ClientMessage{Type: protocol.TypeLeave})
	}
	p.close()
}

func (p *rtcPeer) close() {
	p.once.Do(func() {
		close(p.stop)
		p.part.Close()
		p.wg.Wait()
	})
}
