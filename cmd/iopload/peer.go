package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
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
	audio, video     *webrtc.TrackLocalStaticRTP

	mu      sync.Mutex
	lastErr string // the last error message the server sent after joining
	ended   string // why the server ended the session, if it did

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// joinRTC opens a signaling socket to base, joins with tok (through the
// waiting room), opens both PeerConnections and starts publishing.
func joinRTC(ctx context.Context, api *webrtc.API, base, tok string, idx uint32, therapist bool, tr traffic, rx *receiver) (*rtcPeer, error) {
	conn, err := client.Dial(ctx, base, nil)
	if err != nil {
		return nil, err
	}
	rx.joinStart = time.Now()
	p := &rtcPeer{idx: idx, therapist: therapist, conn: conn, rx: rx, stop: make(chan struct{})}
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
	p.pub.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(protocol.PCPublish, c) })
	p.sub.OnICECandidate(func(c *webrtc.ICECandidate) { p.sendCandidate(protocol.PCSubscribe, c) })
	p.sub.OnTrack(p.onTrack)

	p.wg.Add(1)
	go p.readLoop()

	stream := fmt.Sprintf("load-%d", p.idx)
	if p.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", stream); err != nil {
		return err
	}
	if p.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", stream); err != nil {
		return err
	}
	p.src = newSource(p.idx, tr, &rtcSink{audio: p.audio, video: p.video})
	for _, t := range []webrtc.TrackLocal{p.audio, p.video} {
		xc, err := p.pub.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		p.wg.Add(1)
		go p.readSenderRTCP(xc.Sender())
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
		p.src.run(p.stop)
	}()
	return nil
}

// rtcSink writes a source's packets to the publish tracks.
type rtcSink struct {
	audio, video *webrtc.TrackLocalStaticRTP
	pkt          rtp.Packet
}

func (s *rtcSink) writeRTP(video bool, hdr *rtp.Header, payload []byte) error {
	s.pkt.Header, s.pkt.Payload = *hdr, payload
	if video {
		return s.video.WriteRTP(&s.pkt)
	}
	return s.audio.WriteRTP(&s.pkt)
}

// readSenderRTCP turns the server's keyframe requests into keyframes (and
// lets pion's NACK responder see the NACKs).
func (p *rtcPeer) readSenderRTCP(s *webrtc.RTPSender) {
	defer p.wg.Done()
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.src.requestKeyframe()
			}
		}
	}
}

func (p *rtcPeer) onTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1500)
		var cache *rxStream
		var key streamKey
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			p.rx.packet(buf[:n], time.Now(), &cache, &key)
		}
	}()
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
			}
		case protocol.TypeCandidate:
			q := &p.pubPend
			if m.PC == protocol.PCSubscribe {
				q = &p.subPend
			}
			if m.Candidate != nil {
				q.Add(webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex, UsernameFragment: m.Candidate.UsernameFragment})
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
