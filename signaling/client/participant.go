package client

// participant.go holds the participant: joining and waiting for admission,
// the signaling read loop that answers offers and adds candidates, and
// leaving.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"iop/signaling/protocol"
)

// Options shape a participant.
type Options struct {
	// Room is sent in join (only for a token whose room is "*").
	Room string
	// Resume is the resume secret of an earlier joined (Participant.Resume),
	// to come back in after a dropped connection without waiting again.
	Resume string
	// NoMedia joins without publishing anything.
	NoMedia bool
	// VideoFrameSize is the size of a synthetic video frame in bytes.
	VideoFrameSize int
	// AutoAdmit makes a therapist admit everyone who waits.
	AutoAdmit bool
	// Stall, when set, can stop the participant reading its subscribe
	// PeerConnection's socket (a slow or frozen subscriber).
	Stall *Stall

	// API is the pion API of both PeerConnections (nil: one for loopback
	// with pion's default interceptors).
	API *webrtc.API
	// Tracks, when set, are published instead of the synthetic audio and
	// video; the caller writes their packets (once PublishConnected).
	Tracks []LocalTrack
	// OnRTCP receives the RTCP the server sends about a published
	// encoding of Tracks: track is its index in Tracks, layer the
	// encoding's (0 without simulcast).
	OnRTCP func(track, layer int, pkts []rtcp.Packet)
	// OnTrack, when set, owns each received track (it reads it) instead
	// of the participant counting its packets. It may run before Join
	// returns, hence the participant.
	OnTrack func(*Participant, *webrtc.TrackRemote)
	// OnSubscribeOffer is told each subscribe offer once it is answered.
	OnSubscribeOffer func(sdp string)
	// OnPublishAnswer runs each time the server's publish answer has been
	// applied (possibly before Join returns).
	OnPublishAnswer func(*Participant)
}

// LocalTrack is one published track of the caller's: one encoding, or
// one per simulcast layer (lowest first) named by RIDs.
type LocalTrack struct {
	Encodings []*webrtc.TrackLocalStaticRTP
	RIDs      []string // with simulcast: the rid of each encoding
}

// TrackKey names one received track: whose it is and its kind.
type TrackKey struct {
	Participant string
	Kind        string // "audio" or "video"
}

// TrackStats is what arrived on one received track.
type TrackStats struct {
	Packets   int
	Keyframes int  // video packets starting a keyframe
	Ended     bool // the server removed the track
}

// Participant is a headless participant: a signaling connection, a publish
// PeerConnection sending synthetic audio and video, and a subscribe
// PeerConnection counting what it receives.
type Participant struct {
	conn   *Conn
	joined protocol.ServerMessage
	opts   Options

	pub, sub         *webrtc.PeerConnection
	pubPend, subPend CandidateQueue

	audio, video *webrtc.TrackLocalStaticSample
	published    []*webrtc.RTPTransceiver // one per Options.Tracks
	connected    chan struct{}            // closed once the publish PC connects
	keyframeReqs atomic.Int64
	// quietAudio and quietVideo stop writing that kind (Pause).
	quietAudio, quietVideo atomic.Bool
	// frozen stops its RTCP (Freeze; only with the default API).
	frozen       atomic.Bool
	wantKeyframe atomic.Bool

	mu       sync.Mutex
	received map[TrackKey]*TrackStats
	offers   int

	events chan protocol.ServerMessage
	done   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

// Join connects to the server at base, joins with tok, and once admitted
// opens both PeerConnections and starts publishing.
func Join(ctx context.Context, base, tok string, opts Options) (*Participant, error) {
	conn, err := Dial(ctx, base, nil)
	if err != nil {
		return nil, err
	}
	if err := conn.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: protocol.Version, Token: tok, Room: opts.Room, Resume: opts.Resume, ID: "join"}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("send join: %w", err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	m, err := awaitAdmission(conn, deadline)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if opts.VideoFrameSize <= 0 {
		opts.VideoFrameSize = 3000
	}
	p := &Participant{
		conn: conn, joined: m, opts: opts,
		received:  map[TrackKey]*TrackStats{},
		events:    make(chan protocol.ServerMessage, 1024),
		done:      make(chan struct{}),
		connected: make(chan struct{}),
	}
	if err := p.start(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// ErrRedirect is returned by Join when the room lives on another node.
type ErrRedirect struct{ URL string }

func (e *ErrRedirect) Error() string { return "room lives at " + e.URL }

// awaitAdmission reads until joined, through the waiting room.
func awaitAdmission(conn *Conn, deadline time.Time) (protocol.ServerMessage, error) {
	for {
		m, err := conn.Read(deadline)
		if err != nil {
			return m, fmt.Errorf("wait for joined: %w", err)
		}
		switch m.Type {
		case protocol.TypeJoined:
			return m, nil
		case protocol.TypeWaiting, protocol.TypeCandidate:
		case protocol.TypeError:
			return m, &ErrorMessage{Code: m.Code, Message: m.Message}
		case protocol.TypeRemoved:
			return m, &ErrorMessage{Code: protocol.CodeRemoved, Message: m.Reason}
		case protocol.TypeRedirect:
			return m, &ErrRedirect{URL: m.URL}
		default:
			return m, fmt.Errorf("expected joined, got %s", m.Type)
		}
	}
}

// Send writes a message on the signaling connection (moderation, media state).
func (p *Participant) Send(m protocol.ClientMessage) error { return p.conn.Send(m) }

// ID returns the participant id the server gave this connection.
func (p *Participant) ID() string { return p.joined.You.ID }

// Joined returns the server's joined message.
func (p *Participant) Joined() protocol.ServerMessage { return p.joined }

// Events delivers every server message other than offers, answers and
// candidates (participant_joined, participant_left, error, ...).
func (p *Participant) Events() <-chan protocol.ServerMessage { return p.events }

// Conn returns the signaling connection, for sending raw messages.
func (p *Participant) Conn() *Conn { return p.conn }

// KeyframeRequests counts the PLIs and FIRs the server sent for this
// participant's video.
func (p *Participant) KeyframeRequests() int64 { return p.keyframeReqs.Load() }

// Received returns a snapshot of what arrived per publisher and kind.
func (p *Participant) Received() map[TrackKey]TrackStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[TrackKey]TrackStats, len(p.received))
	for k, v := range p.received {
		out[k] = *v
	}
	return out
}

// SubscribeOffers counts the server's subscribe offers so far.
func (p *Participant) SubscribeOffers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.offers
}

func (p *Participant) sendCandidate(pc string, c *webrtc.ICECandidate) {
	m := protocol.ClientMessage{Type: protocol.TypeCandidate, PC: pc}
	if c != nil {
		j := c.ToJSON()
		m.Candidate = &protocol.Candidate{Candidate: j.Candidate, SDPMid: j.SDPMid, SDPMLineIndex: j.SDPMLineIndex, UsernameFragment: j.UsernameFragment}
	}
	_ = p.conn.Send(m)
}

// readLoop applies the server's descriptions and candidates and passes every
// other message to Events.
func (p *Participant) readLoop() {
	defer p.wg.Done()
	defer close(p.events)
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
				if p.opts.OnPublishAnswer != nil {
					p.opts.OnPublishAnswer(p)
				}
			}
		case protocol.TypeCandidate:
			pend := &p.pubPend
			if m.PC == protocol.PCSubscribe {
				pend = &p.subPend
			}
			if m.Candidate != nil {
				pend.Add(webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex, UsernameFragment: m.Candidate.UsernameFragment})
			}
		default:
			if p.opts.AutoAdmit && m.Type == protocol.TypeWaitingList && len(m.Waiting) > 0 {
				_ = p.conn.Send(protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: "*"})
			}
			select {
			case p.events <- m:
			default: // nobody is reading events; they are not needed
			}
		}
	}
}

func (p *Participant) answer(sdp string) {
	p.mu.Lock()
	p.offers++
	p.mu.Unlock()
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
	if p.opts.OnSubscribeOffer != nil {
		p.opts.OnSubscribeOffer(sdp)
	}
}

// WaitPublishing waits until the publish PeerConnection is connected.
func (p *Participant) WaitPublishing(ctx context.Context) error {
	for {
		if p.opts.NoMedia || p.pub.ConnectionState() == webrtc.PeerConnectionStateConnected {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publish PeerConnection still %s: %w", p.pub.ConnectionState(), ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SendMedia sets which kinds of media the participant writes: a camera turned
// off (video false) sends no video from then on; a muted microphone that
// a browser stops no audio. Signaling is not told (see Media).
func (p *Participant) SendMedia(audio, video bool) {
	p.quietAudio.Store(!audio)
	p.quietVideo.Store(!video)
}

// Freeze makes the participant fall silent as a frozen process would: no
// media, no RTCP (unless Options.API was given), no pongs, no messages;
// its sockets and PeerConnections stay open until the server gives up on
// them.
func (p *Participant) Freeze() {
	p.SendMedia(false, false)
	p.frozen.Store(true)
	p.conn.StopPongs()
}

// Leave sends leave and closes everything.
func (p *Participant) Leave() {
	_ = p.conn.Send(protocol.ClientMessage{Type: protocol.TypeLeave})
	p.Close()
}

// Close closes everything without a word to the server, as a crash would.
func (p *Participant) Close() {
	p.once.Do(func() {
		close(p.done)
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
