package client

// media.go holds the participant's two PeerConnections: the pion setup,
// publishing local tracks and their RTCP, receiving subscribed tracks, and
// the queue that holds remote candidates until a description is set.

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"iop/signaling/protocol"

	"iop/sfu/codec"
)

// newAPI returns a pion API for a headless client on loopback; a stall,
// when set, gates its sockets' reads; frozen, when set, stops its RTCP.
func newAPI(stall *Stall, frozen *atomic.Bool) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	ir.Add(freezeFactory{frozen})
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if stall != nil {
		n, err := newStalledNet(stall)
		if err != nil {
			return nil, err
		}
		se.SetNet(n)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

func (p *Participant) start() error {
	api := p.opts.API
	var err error
	if api == nil {
		if api, err = newAPI(nil, &p.frozen); err != nil {
			return err
		}
	}
	subAPI := api
	if p.opts.Stall != nil {
		if subAPI, err = newAPI(p.opts.Stall, &p.frozen); err != nil {
			return err
		}
	}
	var servers []webrtc.ICEServer
	for _, s := range p.joined.ICEServers {
		servers = append(servers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	cfg := webrtc.Configuration{ICEServers: servers}
	if p.pub, err = api.NewPeerConnection(cfg); err != nil {
		return err
	}
	if p.sub, err = subAPI.NewPeerConnection(cfg); err != nil {
		return err
	}
	p.pubPend.PC, p.subPend.PC = p.pub, p.sub
	var once sync.Once
	p.pub.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(p.connected) })
		}
	})
	p.pub.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(protocol.PCPublish, c) })
	p.sub.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(protocol.PCSubscribe, c) })
	p.sub.OnTrack(p.onTrack)

	p.wg.Add(1)
	go p.readLoop()
	if p.opts.NoMedia {
		return nil
	}
	if len(p.opts.Tracks) > 0 {
		if err := p.publishTracks(); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		return nil
	}
	if err := p.publish(); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// publish adds synthetic audio and video to the publish PC and offers it.
func (p *Participant) publish() error {
	var err error
	stream := "local"
	p.audio, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", stream)
	if err != nil {
		return err
	}
	p.video, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", stream)
	if err != nil {
		return err
	}
	for _, t := range []webrtc.TrackLocal{p.audio, p.video} {
		tr, err := p.pub.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		p.wg.Add(1)
		go p.readSenderRTCP(tr.Sender())
	}
	if err := p.offer(); err != nil {
		return err
	}
	p.wg.Add(1)
	go p.sendMedia()
	return nil
}

// offer sends the publish offer.
func (p *Participant) offer() error {
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
	return nil
}

// publishTracks adds Options.Tracks to the publish PC (a simulcast track's
// further encodings to its sender), reads the server's RTCP about each
// encoding for OnRTCP, and offers them.
func (p *Participant) publishTracks() error {
	sendonly := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}
	for i, t := range p.opts.Tracks {
		if len(t.Encodings) == 0 {
			return fmt.Errorf("track %d has no encoding", i)
		}
		tr, err := p.pub.AddTransceiverFromTrack(t.Encodings[0], sendonly)
		if err != nil {
			return err
		}
		p.published = append(p.published, tr)
		for _, e := range t.Encodings[1:] {
			if err := tr.Sender().AddEncoding(e); err != nil {
				return err
			}
		}
		if len(t.RIDs) == 0 {
			p.wg.Add(1)
			go p.readTrackRTCP(tr.Sender(), i, 0, "")
			continue
		}
		for l, rid := range t.RIDs {
			p.wg.Add(1)
			go p.readTrackRTCP(tr.Sender(), i, l, rid)
		}
	}
	return p.offer()
}

// readTrackRTCP hands the RTCP of one published encoding (rid "": the
// sender's only one) to OnRTCP; pion's interceptors (NACK) see it first.
func (p *Participant) readTrackRTCP(s *webrtc.RTPSender, track, layer int, rid string) {
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
		if p.opts.OnRTCP != nil {
			p.opts.OnRTCP(track, layer, pkts)
		}
	}
}

// PublishTransceivers returns the transceivers of Options.Tracks, in order.
func (p *Participant) PublishTransceivers() []*webrtc.RTPTransceiver { return p.published }

// PublishConnected is closed once the publish PeerConnection has connected:
// a browser's encoder starts then, so its first keyframe is not lost.
func (p *Participant) PublishConnected() <-chan struct{} { return p.connected }

// WriteSubscribeRTCP sends RTCP on the subscribe PeerConnection (keyframe
// requests, REMB).
func (p *Participant) WriteSubscribeRTCP(pkts []rtcp.Packet) error { return p.sub.WriteRTCP(pkts) }

// sendMedia writes Opus every 20 ms and VP8 at 30 fps, with a keyframe at
// the start, every 3 s, and soon after each keyframe request.
func (p *Participant) sendMedia() {
	defer p.wg.Done()
	audioTick := time.NewTicker(20 * time.Millisecond)
	defer audioTick.Stop()
	videoTick := time.NewTicker(33 * time.Millisecond)
	defer videoTick.Stop()
	opus := make([]byte, 80)
	frame := make([]byte, p.opts.VideoFrameSize)
	n := 0
	for {
		select {
		case <-p.done:
			return
		case <-audioTick.C:
			if !p.quietAudio.Load() {
				_ = p.audio.WriteSample(media.Sample{Data: opus, Duration: 20 * time.Millisecond})
			}
		case <-videoTick.C:
			if p.quietVideo.Load() {
				continue
			}
			key := n%90 == 0 || p.wantKeyframe.Swap(false)
			n++
			// VP8 payload header: bit 0 of the first byte clear marks a keyframe.
			if key {
				frame[0] = 0x10
			} else {
				frame[0] = 0x11
			}
			_ = p.video.WriteSample(media.Sample{Data: frame, Duration: 33 * time.Millisecond})
		}
	}
}

func (p *Participant) readSenderRTCP(s *webrtc.RTPSender) {
	defer p.wg.Done()
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.keyframeReqs.Add(1)
				p.wantKeyframe.Store(true)
			}
		}
	}
}

func (p *Participant) onTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if p.opts.OnTrack != nil {
		p.opts.OnTrack(p, t)
		return
	}
	key := TrackKey{Participant: t.StreamID(), Kind: t.Kind().String()}
	p.mu.Lock()
	st := &TrackStats{}
	p.received[key] = st
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			pkt, _, err := t.ReadRTP()
			if err != nil {
				p.mu.Lock()
				st.Ended = true
				p.mu.Unlock()
				return
			}
			p.mu.Lock()
			st.Packets++
			if key.Kind == "video" && codec.VP8KeyframeStart(pkt.Payload) {
				st.Keyframes++
			}
			p.mu.Unlock()
		}
	}()
}

// CandidateQueue holds a PeerConnection's remote candidates until its
// remote description is set (they may arrive first), then adds them.
type CandidateQueue struct {
	PC    *webrtc.PeerConnection
	mu    sync.Mutex
	ready bool
	held  []webrtc.ICECandidateInit
}

// Add adds a remote candidate now, or once the description is set.
func (q *CandidateQueue) Add(c webrtc.ICECandidateInit) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.ready {
		q.held = append(q.held, c)
		return
	}
	_ = q.PC.AddICECandidate(c)
}

// Described adds the held candidates: the remote description is set.
func (q *CandidateQueue) Described() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ready {
		return
	}
	q.ready = true
	for _, c := range q.held {
		_ = q.PC.AddICECandidate(c)
	}
	q.held = nil
}
