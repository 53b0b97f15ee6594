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

// rtcPeer is one synthetic participant of iopd: a signaling websocket, a
// publish PeerConnection carrying a source's packets and a subscribe
// PeerConnection whose tracks feed a receiver.
type rtcPeer struct {
	idx       uint32
	therapist bool
	conn      *client.Conn
	id        string
	rx        *receiver
	src       *source

	pub, sub         *webrtc.PeerConnection
	pubPend, subPend client.CandidateQueue
	sink             *rtcSink
	want             subscribing

	ssrcMu sync.Mutex
	ssrcs  []uint32 // the video tracks received, for REMB

	mu      sync.Mutex
	lastErr string // the last error message the server sent after joining
	ended   string // why the server ended the session, if it did

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// joinRTC opens a signaling socket to base, joins with tok (through the
// waiting room), opens both PeerConnections and starts publishing.
// want says how it subscribes.
func joinRTC(ctx context.Context, api *webrtc.API, base, tok string, idx uint32, therapist bool, tr traffic, want subscribing, rx *receiver) (*rtcPeer, error) {
	conn, err := client.Dial(ctx, base, nil)
	if err != nil {
		return nil, err
	}
	rx.joinStart = time.Now()
	p := &rtcPeer{idx: idx, therapist: therapist, conn: conn, rx: rx, want: want, stop: make(chan struct{})}
	if err := conn.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: protocol.Version, Token: tok, ID: "join"}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("send join: %w", err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	if p.id, err = awaitJoined(conn, deadline); err != nil {
		conn.Close()
		return nil, err
	}
	if err := p.start(api, tr); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// awaitJoined reads until the server admits the participant and returns
// its id.
func awaitJoined(conn *client.Conn, deadline time.Time) (string, error) {
	for {
		m, err := conn.Read(deadline)
		if err != nil {
			return "", fmt.Errorf("wait for joined: %w", err)
		}
		switch m.Type {
		case protocol.TypeJoined:
			if m.You == nil {
				return "", errors.New("joined without a participant id")
			}
			return m.You.ID, nil
		case protocol.TypeWaiting:
		case protocol.TypeError:
			return "", &client.ErrorMessage{Code: m.Code, Message: m.Message}
		case protocol.TypeRedirect:
			return "", fmt.Errorf("the room lives on another node (%s): point -url at it", m.URL)
		default:
			return "", fmt.Errorf("expected joined, got %s", m.Type)
		}
	}
}

func (p *rtcPeer) start(api *webrtc.API, tr traffic) error {
	var err error
	if p.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return err
	}
	if p.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return err
	}
	p.pubPend.PC, p.subPend.PC = p.pub, p.sub
	// A browser's encoder starts once its transport is up: its first
	// frame, a keyframe, is not lost to a PeerConnection still connecting
	// (the Chrome model counts it as the last keyframe).
	connected := make(chan struct{})
	var once sync.Once
	p.pub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	p.pub.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(protocol.PCPublish, c) })
	p.sub.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(protocol.PCSubscribe, c) })
	p.sub.OnTrack(p.onTrack)

	// The source exists before the reader, which applies encodings to it.
	if err := p.addTracks(tr); err != nil {
		return err
	}
	p.wg.Add(1)
	go p.readLoop()
	if p.want.RembKbps > 0 {
		p.wg.Add(1)
		go p.sendREMB()
	}
	offer, err := p.pub.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := p.pub.SetLocalDescription(offer); err != nil {
		return err
	}
	if err := p.conn.Send(protocol.ClientMessage{Type: protocol.TypeOffer, PC: protocol.PCPublish, SDP: offer.SDP}); err != nil {
		return fmt.Errorf("send publish offer: %w", err)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		select {
		case <-connected:
		case <-p.stop:
			return
		}
		p.src.run(p.stop)
	}()
	return nil
}

// rids names the simulcast layers, lowest first, as browsers do.
var rids = [maxLayers]string{"q", "h", "f"}

// addTracks adds the audio track and the video track, with one encoding
// per simulcast layer, to the publish PeerConnection, and starts reading
// the server's RTCP for each.
func (p *rtcPeer) addTracks(tr traffic) error {
	stream := fmt.Sprintf("load-%d", p.idx)
	p.sink = &rtcSink{simulcast: tr.Layers > 1}
	var err error
	if p.sink.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", stream); err != nil {
		return err
	}
	vp8 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	for l := range max(1, tr.Layers) {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if p.sink.simulcast {
			opts = append(opts, webrtc.WithRTPStreamID(rids[l]))
		}
		if p.sink.video[l], err = webrtc.NewTrackLocalStaticRTP(vp8, "video", stream, opts...); err != nil {
			return err
		}
	}
	p.src = newSource(p.idx, tr, p.sink)
	sendonly := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}
	audio, err := p.pub.AddTransceiverFromTrack(p.sink.audio, sendonly)
	if err != nil {
		return err
	}
	p.wg.Add(1)
	go p.readSenderRTCP(audio.Sender(), "", -1)
	if p.sink.videoXC, err = p.pub.AddTransceiverFromTrack(p.sink.video[0], sendonly); err != nil {
		return err
	}
	s := p.sink.videoXC.Sender()
	if !p.sink.simulcast {
		p.wg.Add(1)
		go p.readSenderRTCP(s, "", 0)
		return nil
	}
	for l := 1; l < tr.Layers; l++ {
		if err := s.AddEncoding(p.sink.video[l]); err != nil {
			return err
		}
	}
	for l := range tr.Layers {
		p.wg.Add(1)
		go p.readSenderRTCP(s, rids[l], l)
	}
	return nil
}

// rtcSink writes a source's packets to the publish tracks. With simulcast
// it names each packet's layer with the mid and rid header extensions, as
// a browser does (pion does not write them itself), once the publish
// answer has fixed their ids.
type rtcSink struct {
	audio     *webrtc.TrackLocalStaticRTP
	video     [maxLayers]*webrtc.TrackLocalStaticRTP
	videoXC   *webrtc.RTPTransceiver
	simulcast bool
	ext       atomic.Pointer[[maxLayers][]rtp.Extension] // per layer: mid and rid
	pkt       rtp.Packet
}

// described reads the negotiated header extension ids once the publish
// answer is applied.
func (s *rtcSink) described() {
	if !s.simulcast || s.ext.Load() != nil {
		return
	}
	ids := map[string]uint8{}
	for _, e := range s.videoXC.Sender().GetParameters().HeaderExtensions {
		ids[e.URI] = uint8(e.ID)
	}
	mid, rid := ids[sdp.SDESMidURI], ids[sdp.SDESRTPStreamIDURI]
	if mid == 0 || rid == 0 {
		return // not negotiated: the server will not tell the layers apart
	}
	var ext [maxLayers][]rtp.Extension
	for l := range ext {
		var h rtp.Header
		if h.SetExtension(mid, []byte(s.videoXC.Mid())) != nil || h.SetExtension(rid, []byte(rids[l])) != nil {
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

// readSenderRTCP hands the server's keyframe requests for one layer to the
// source (layer -1: audio), which answers them as its publisher model
// does, and lets pion's NACK responder see the NACKs. rid names the layer's encoding with simulcast.
func (p *rtcPeer) readSenderRTCP(s *webrtc.RTPSender, rid string, layer int) {
	defer p.wg.Done()
	for {
		var pkts []rtcp.Packet
		var err error
		if rid != "" {
			pkts, _, err = s.ReadSimulcastRTCP(rid)
		} else {
			pkts, _, err = s.ReadRTCP()
		}
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.src.requestKeyframe(layer)
			}
		}
	}
}

func (p *rtcPeer) onTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		if p.want.Quality != "" {
			// The server names each track's stream after its publisher.
			_ = p.conn.Send(protocol.ClientMessage{Type: protocol.TypeLayer, Participant: t.StreamID(), Quality: p.want.Quality})
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
				_ = p.sub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
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
			_ = p.sub.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(p.want.RembKbps) * 1000, SSRCs: ssrcs}})
		}
	}
}

func (p *rtcPeer) sendCandidate(pc string, c *webrtc.ICECandidate) {
	m := protocol.ClientMessage{Type: protocol.TypeCandidate, PC: pc}
	if c != nil {
		j := c.ToJSON()
		m.Candidate = &protocol.Candidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex, UsernameFragment: j.UsernameFragment}
	}
	_ = p.conn.Send(m)
}

// readLoop applies the server's descriptions and candidates, admits whoever
// waits if p is the therapist, and notes errors and the session's end.
func (p *rtcPeer) readLoop() {
	defer p.wg.Done()
	for {
		m, err := p.conn.Read(time.Now().Add(24 * time.Hour))
		if err != nil {
			return
		}
		switch m.Type {
		case protocol.TypeOffer:
			p.answer(m.SDP)
		case protocol.TypeAnswer:
			if err := p.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err == nil {
				p.pubPend.Described()
				p.sink.described()
			}
		case protocol.TypeCandidate:
			q := &p.pubPend
			if m.PC == protocol.PCSubscribe {
				q = &p.subPend
			}
			if m.Candidate != nil {
				q.Add(webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex, UsernameFragment: m.Candidate.UsernameFragment})
			}
		case protocol.TypeEncodings:
			if p.src != nil {
				p.src.setEncodings(m.Active, m.Paused)
			}
		case protocol.TypeWaitingList:
			if p.therapist && len(m.Waiting) > 0 {
				_ = p.conn.Send(protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: "*"})
			}
		case protocol.TypeError:
			p.mu.Lock()
			p.lastErr = m.Code + ": " + m.Message
			p.mu.Unlock()
		case protocol.TypeRemoved, protocol.TypeEnded:
			p.mu.Lock()
			p.ended = m.Type
			p.mu.Unlock()
		}
	}
}

func (p *rtcPeer) answer(sdp string) {
	if err := p.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return
	}
	p.subPend.Described()
	ans, err := p.sub.CreateAnswer(nil)
	if err != nil {
		return
	}
	if err := p.sub.SetLocalDescription(ans); err != nil {
		return
	}
	_ = p.conn.Send(protocol.ClientMessage{Type: protocol.TypeAnswer, PC: protocol.PCSubscribe, SDP: ans.SDP})
	p.rx.answered(sdp, time.Now())
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
		_ = p.conn.Send(protocol.ClientMessage{Type: protocol.TypeLeave})
	}
	p.close()
}

func (p *rtcPeer) close() {
	p.once.Do(func() {
		close(p.stop)
		_ = p.conn.Close()
		if p.pub != nil {
			_ = p.pub.Close()
		}
		if p.sub != nil {
			_ = p.sub.Close()
		}
		p.wg.Wait()
	})
}
