package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"iop/rooms"
	"iop/sfu"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// outQueue is how many messages may wait for a slow client before the
// connection is dropped.
const outQueue = 512

// frame is one queued write: a text message, or a close frame that ends the
// connection after everything before it has been written.
type frame struct {
	data      []byte
	close     bool
	closeCode int
	closeText string
}

// session is one websocket: before join, a person knocking; after, a
// participant in a room with media.
type session struct {
	srv  *Server
	conn *websocket.Conn
	log  func(msg string, args ...any)

	out        chan frame
	stop       chan struct{}
	writerDone chan struct{}
	abortOnce  sync.Once
	closing    bool // a close frame is queued; only the reader touches it

	limiter *rate.Limiter
	buf     bytes.Buffer

	// set by join, read-only afterwards
	id     string
	joinRe string
	claims *token.Claims
	room   *rooms.Room
	media  *sfu.Participant
}

func newSession(s *Server, conn *websocket.Conn) *session {
	return &session{
		srv:        s,
		conn:       conn,
		log:        s.cfg.Logger.Info,
		out:        make(chan frame, outQueue),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		limiter:    rate.NewLimiter(rate.Limit(s.cfg.RatePerSecond), s.cfg.RateBurst),
	}
}

func (s *session) run() {
	go s.writeLoop()
	reason := s.readLoop()
	s.leave(reason)
	if s.closing {
		// Let the error and close frame go out, then read what the client
		// still sends for a moment so that closing does not reset the
		// connection before it has read them.
		select {
		case <-s.writerDone:
		case <-time.After(s.srv.cfg.WriteTimeout):
		}
		nc := s.conn.NetConn()
		_ = nc.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.CopyN(io.Discard, nc, 1<<20)
	}
	s.abort()
	<-s.writerDone
}

// abort ends the connection at once, from any goroutine.
func (s *session) abort() {
	s.abortOnce.Do(func() {
		close(s.stop)
		_ = s.conn.Close()
	})
}

func (s *session) writeLoop() {
	defer close(s.writerDone)
	ping := time.NewTicker(s.srv.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case f := <-s.out:
			deadline := time.Now().Add(s.srv.cfg.WriteTimeout)
			if f.close {
				_ = s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(f.closeCode, f.closeText), deadline)
				if tc, ok := s.conn.NetConn().(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				return
			}
			_ = s.conn.SetWriteDeadline(deadline)
			if err := s.conn.WriteMessage(websocket.TextMessage, f.data); err != nil {
				s.abort()
				return
			}
		case <-ping.C:
			if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.srv.cfg.WriteTimeout)); err != nil {
				s.abort()
				return
			}
		case <-s.stop:
			return
		}
	}
}

// send queues a message; a client too slow to take its messages is dropped.
func (s *session) send(m protocol.ServerMessage) {
	b, err := json.Marshal(m)
	if err != nil {
		s.srv.cfg.Logger.Error("encode message", "type", m.Type, "err", err)
		return
	}
	s.enqueue(frame{data: b})
}

func (s *session) enqueue(f frame) {
	select {
	case <-s.stop:
	case s.out <- f:
	default:
		s.srv.cfg.Logger.Warn("client too slow, dropping connection", "participant", s.id)
		s.abort()
	}
}

// fail sends an error and closes the connection with closeCode.
func (s *session) fail(code, msg, re string, closeCode int) {
	s.send(protocol.ServerMessage{Type: protocol.TypeError, Code: code, Message: msg, Re: re})
	s.closeWith(closeCode, code)
}

func (s *session) closeWith(code int, text string) {
	if s.closing {
		return
	}
	s.closing = true
	s.enqueue(frame{close: true, closeCode: code, closeText: text})
}

// readLoop reads and dispatches messages until the connection ends, and
// returns why the participant left.
func (s *session) readLoop() string {
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.JoinTimeout))
	s.conn.SetPongHandler(func(string) error {
		if s.media != nil {
			_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
		}
		return nil
	})
	for {
		data, err := s.readFrame()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, errTooLarge):
				s.fail(protocol.CodeTooLarge, "frame larger than 256 KiB", "", websocket.CloseMessageTooBig)
				return protocol.ReasonDropped
			case errors.As(err, &ne) && ne.Timeout() && s.media == nil:
				s.fail(protocol.CodeJoinTimeout, "no join within 5 seconds", "", websocket.ClosePolicyViolation)
				return protocol.ReasonDropped
			case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway):
				return protocol.ReasonLeft
			}
			return protocol.ReasonDropped
		}
		if s.media != nil {
			_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
		}
		if !s.limiter.Allow() {
			s.fail(protocol.CodeRateLimited, "too many messages", "", websocket.ClosePolicyViolation)
			return protocol.ReasonDropped
		}
		if leave := s.handle(data); leave || s.closing {
			if !s.closing {
				s.closeWith(websocket.CloseNormalClosure, "bye")
			}
			return protocol.ReasonLeft
		}
	}
}

var errTooLarge = errors.New("frame too large")

// readFrame reads one text or binary message of at most MaxFrame bytes. The
// limit is enforced here rather than by the websocket library so that the
// client gets a too_large error before the close.
func (s *session) readFrame() ([]byte, error) {
	_, r, err := s.conn.NextReader()
	if err != nil {
		return nil, err
	}
	s.buf.Reset()
	n, err := s.buf.ReadFrom(io.LimitReader(r, protocol.MaxFrame+1))
	if err != nil {
		return nil, err
	}
	if n > protocol.MaxFrame {
		return nil, errTooLarge
	}
	return s.buf.Bytes(), nil
}

// handle dispatches one message and reports whether the participant leaves.
func (s *session) handle(data []byte) (leave bool) {
	var m protocol.ClientMessage
	if err := json.Unmarshal(data, &m); err != nil || m.Type == "" {
		s.reject(m.ID, errorf(protocol.CodeBadMessage, "not a JSON object with a type"))
		return false
	}
	if s.media == nil {
		if m.Type != protocol.TypeJoin {
			s.fail(protocol.CodeNotJoined, "the first message must be join", m.ID, websocket.ClosePolicyViolation)
			return false
		}
		if err := s.join(&m); err != nil {
			s.fail(errorCode(err), err.Error(), m.ID, websocket.ClosePolicyViolation)
		}
		return false
	}
	var err error
	switch m.Type {
	case protocol.TypeJoin:
		err = errorf(protocol.CodeBadMessage, "already joined")
	case protocol.TypeOffer:
		if m.PC != protocol.PCPublish || m.SDP == "" {
			err = errorf(protocol.CodeBadMessage, "offer needs pc \"publish\" and sdp")
			break
		}
		err = s.media.HandleOffer(m.SDP)
	case protocol.TypeAnswer:
		if m.PC != protocol.PCSubscribe || m.SDP == "" {
			err = errorf(protocol.CodeBadMessage, "answer needs pc \"subscribe\" and sdp")
			break
		}
		err = s.media.HandleAnswer(m.SDP)
	case protocol.TypeCandidate:
		err = s.candidate(&m)
	case protocol.TypeMedia:
		if m.Audio == nil && m.Video == nil {
			err = errorf(protocol.CodeBadMessage, "media needs audio or video")
			break
		}
		err = s.update(func(p *rooms.Participant) {
			if m.Audio != nil {
				p.Audio = *m.Audio
			}
			if m.Video != nil {
				p.Video = *m.Video
			}
		})
	case protocol.TypeHand:
		if m.Raised == nil {
			err = errorf(protocol.CodeBadMessage, "hand needs raised")
			break
		}
		err = s.update(func(p *rooms.Participant) { p.Hand = *m.Raised })
	case protocol.TypeLayer:
		if m.Participant == "" {
			err = errorf(protocol.CodeBadMessage, "layer needs participant and quality")
		}
		// One layer per track until simulcast lands: nothing to choose.
	case protocol.TypeAdmit, protocol.TypeDeny, protocol.TypeMute, protocol.TypeRemove, protocol.TypeLock, protocol.TypeEnd:
		err = s.moderate(&m)
	case protocol.TypeLeave:
		return true
	case protocol.TypePing:
		s.send(protocol.ServerMessage{Type: protocol.TypePong, T: m.T, Re: m.ID})
	default:
		err = errorf(protocol.CodeUnknownType, "unknown message type")
	}
	if err != nil {
		s.reject(m.ID, err)
	}
	return false
}

// reject answers a message with an error; before join it also closes.
func (s *session) reject(re string, err error) {
	code := errorCode(err)
	msg := err.Error()
	if code == protocol.CodeInternal {
		s.srv.cfg.Logger.Error("request failed", "participant", s.id, "err", err)
		msg = "internal error"
	}
	if s.media == nil {
		s.fail(code, msg, re, websocket.ClosePolicyViolation)
		return
	}
	s.send(protocol.ServerMessage{Type: protocol.TypeError, Code: code, Message: msg, Re: re})
}

func (s *session) join(m *protocol.ClientMessage) error {
	if m.V != protocol.Version {
		return errorf(protocol.CodeBadMessage, "join needs v: 1")
	}
	c, err := s.srv.cfg.Verifier.Verify(m.Token)
	if err != nil {
		return err
	}
	roomID := c.Room
	if c.Room == token.AnyRoom {
		if m.Room == "" {
			return errorf(protocol.CodeBadMessage, "a token for any room needs a room in join")
		}
		roomID = m.Room
	} else if m.Room != "" && m.Room != c.Room {
		return errorf(protocol.CodeForbidden, "the token is for another room")
	}
	if len(roomID) > 128 {
		return errorf(protocol.CodeBadMessage, "room id too long")
	}
	s.claims = c
	s.id = "p" + token.RandomID(8)
	s.joinRe = m.ID
	kind := c.Kind
	if kind == "" {
		kind = rooms.KindGroup
	}
	me := rooms.Participant{ID: s.id, Sub: c.Subject, Name: c.Name, Role: c.Role, Audio: true, Video: true}
	// A room that empties between Open and Join is closed; open it again.
	for {
		s.room = s.srv.cfg.Rooms.Open(roomID, kind, "", false)
		err = s.room.Join(me, s)
		if !errors.Is(err, rooms.ErrClosed) {
			break
		}
	}
	if err != nil {
		s.room = nil
		return err
	}
	media, err := s.srv.cfg.SFU.Room(roomID).Join(s.id, s)
	if err != nil {
		s.room.Leave(s.id, rooms.ReasonDropped)
		s.room = nil
		return err
	}
	s.media = media
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
	s.log("joined", "participant", s.id, "room", roomID, "role", string(c.Role))
	return nil
}

// leave releases the room and media after the connection ends.
func (s *session) leave(reason string) {
	if s.media != nil {
		s.media.Close()
	}
	if s.room != nil {
		s.room.Leave(s.id, reason)
		s.log("left", "participant", s.id, "room", s.room.ID(), "reason", reason)
	}
}

func (s *session) update(change func(*rooms.Participant)) error {
	_, err := s.room.Update(s.id, change)
	return err
}

func (s *session) candidate(m *protocol.ClientMessage) error {
	var pc sfu.PC
	switch m.PC {
	case protocol.PCPublish:
		pc = sfu.Publish
	case protocol.PCSubscribe:
		pc = sfu.Subscribe
	default:
		return errorf(protocol.CodeBadMessage, "candidate needs pc \"publish\" or \"subscribe\"")
	}
	if m.Candidate == nil {
		return s.media.AddCandidate(pc, nil)
	}
	return s.media.AddCandidate(pc, &webrtc.ICECandidateInit{
		Candidate:        m.Candidate.Candidate,
		SDPMid:           m.Candidate.SDPMid,
		SDPMLineIndex:    m.Candidate.SDPMLineIndex,
		UsernameFragment: m.Candidate.UsernameFragment,
	})
}

// moderate handles the therapist's controls. The waiting room and moderation
// arrive with the rooms work; until then nobody waits and nothing is muted.
func (s *session) moderate(m *protocol.ClientMessage) error {
	if s.claims.Role != rooms.RoleTherapist {
		return errorf(protocol.CodeForbidden, "only therapists may "+m.Type)
	}
	switch m.Type {
	case protocol.TypeAdmit, protocol.TypeDeny:
		return errorf(protocol.CodeNotFound, "nobody is waiting")
	}
	return errorf(protocol.CodeInternal, m.Type+" is not supported by this server yet")
}

// RoomEvent turns room events into messages for this participant.
func (s *session) RoomEvent(e rooms.Event) {
	switch e.Type {
	case rooms.EventJoined:
		if e.Participant.ID == s.id {
			s.send(protocol.ServerMessage{
				Type:         protocol.TypeJoined,
				Re:           s.joinRe,
				You:          &protocol.Person{ID: s.id, Name: e.Participant.Name, Role: string(e.Participant.Role)},
				Room:         &protocol.Room{ID: s.room.ID(), Kind: string(s.room.Kind()), Title: s.room.Title()},
				Participants: participants(e.Others),
				ICEServers:   s.srv.cfg.ICEServers,
			})
			return
		}
		p := participant(e.Participant)
		s.send(protocol.ServerMessage{Type: protocol.TypeParticipantJoined, Participant: &p})
	case rooms.EventUpdated:
		p := participant(e.Participant)
		s.send(protocol.ServerMessage{Type: protocol.TypeParticipantUpdated, Participant: &p})
	case rooms.EventLeft:
		s.send(protocol.ServerMessage{Type: protocol.TypeParticipantLeft, ID: e.Participant.ID, Reason: e.Reason})
	}
}

func participant(p rooms.Participant) protocol.Participant {
	return protocol.Participant{ID: p.ID, Name: p.Name, Role: string(p.Role), Audio: p.Audio, Video: p.Video, Hand: p.Hand}
}

func participants(ps []rooms.Participant) []protocol.Participant {
	out := make([]protocol.Participant, len(ps))
	for i, p := range ps {
		out[i] = participant(p)
	}
	return out
}

// SendDescription implements sfu.Signaler.
func (s *session) SendDescription(pc sfu.PC, d webrtc.SessionDescription) {
	typ := protocol.TypeAnswer
	if d.Type == webrtc.SDPTypeOffer {
		typ = protocol.TypeOffer
	}
	s.send(protocol.ServerMessage{Type: typ, PC: string(pc), SDP: d.SDP})
}

// SendCandidate implements sfu.Signaler.
func (s *session) SendCandidate(pc sfu.PC, c *webrtc.ICECandidateInit) {
	m := protocol.ServerMessage{Type: protocol.TypeCandidate, PC: string(pc)}
	if c != nil {
		m.Candidate = &protocol.Candidate{
			Candidate:        c.Candidate,
			SDPMid:           c.SDPMid,
			SDPMLineIndex:    c.SDPMLineIndex,
			UsernameFragment: c.UsernameFragment,
		}
	}
	s.send(m)
}

// MediaFailed implements sfu.Signaler: the participant has dropped.
func (s *session) MediaFailed(pc sfu.PC) {
	s.srv.cfg.Logger.Warn("media connection failed", "participant", s.id, "pc", string(pc))
	s.abort()
}
