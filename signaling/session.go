package signaling

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"iop/rooms"
	"iop/rooms/admission"
	"iop/rooms/audit"
	"iop/rooms/schedule"
	"iop/sfu"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// outQueue is how many messages may wait for a slow client before the
// connection is dropped.
const outQueue = 512

// mediaStartTimeout bounds how long a message waits for the participant's
// PeerConnections to be created after admission.
const mediaStartTimeout = 10 * time.Second

// frame is one queued write: a text message, or a close frame that ends the
// connection after everything before it has been written.
type frame struct {
	data      []byte
	close     bool
	closeCode int
	closeText string
}

// session is one websocket: before join, a person knocking; then a person
// waiting or admitted in a room, with media once admitted.
type session struct {
	srv  *Server
	conn *websocket.Conn

	out        chan frame
	stop       chan struct{}
	writerDone chan struct{}
	abortOnce  sync.Once
	closing    atomic.Bool // a close frame is queued
	cut        atomic.Bool // stop reading once the close frame is out

	limiter *rate.Limiter
	chats   *rate.Limiter // chat messages: a few a minute, the socket stays open when over
	buf     bytes.Buffer
	heard   atomic.Int64 // Unix nanoseconds of the last frame or pong from the client

	// Set by join on the reader goroutine before the session enters the
	// room; read-only afterwards.
	joinedRoom bool
	id         string
	joinRe     string
	addr       string // the client's IP address, for the limits and the audit trail
	// unjoinedCounted and personKey are the session's places in the
	// server's per-address and per-person counts, under the server's mu.
	unjoinedCounted bool
	personKey       string
	grant           rooms.Grant
	ticket          *admission.Ticket
	room            *rooms.Room

	// offerRe is the id of the publish offer being answered; the answer
	// is sent from within HandleOffer on the reader goroutine.
	offerRe string

	mu         sync.Mutex
	admitted   bool
	mediaReady chan struct{} // closed once media is set, or failed to start
	media      *sfu.Participant
	muted      map[string]bool // kinds a therapist muted, for media still starting
	left       bool            // the session has left: media started late is closed
	roomKey    string          // the room joined ("program/room"), for other goroutines
	joined     *rooms.Room     // the room joined, for the media plane's goroutines
	transport  string          // how the media travels, once known
	program    string          // the joined person's program, for other goroutines
	sub        string          // and their id
	// waitingSent is set once the first waiting message went out; only
	// RoomEvent touches it, under the room's lock.
	waitingSent bool
	endReason   string // removed or ended by a therapist
}

func newSession(s *Server, conn *websocket.Conn, addr string) *session {
	return &session{
		srv:        s,
		conn:       conn,
		addr:       addr,
		out:        make(chan frame, outQueue),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		limiter:    rate.NewLimiter(rate.Limit(s.cfg.RatePerSecond), s.cfg.RateBurst),
		chats:      rate.NewLimiter(rate.Every(chatEvery), chatBurst),
		muted:      map[string]bool{},
	}
}

func (s *session) run() {
	go s.writeLoop()
	reason := s.readLoop()
	s.srv.left(s)
	s.leave(reason)
	if s.closing.Load() {
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
				// The reader ends when the client answers the close, or soon;
				// at once for a replaced socket, so that it leaves its room
				// before its person's next socket knocks.
				wait := 2 * time.Second
				if s.cut.Load() {
					wait = 0
				}
				_ = s.conn.NetConn().SetReadDeadline(time.Now().Add(wait))
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

// closeWith queues a close frame after what is queued; safe from any goroutine.
func (s *session) closeWith(code int, text string) {
	if s.closing.Swap(true) {
		return
	}
	// A socket on its way out no longer holds its address's place among
	// those not joined (its client sees the close after this).
	s.srv.release(s)
	s.enqueue(frame{close: true, closeCode: code, closeText: text})
}

// readLoop reads and dispatches messages until the connection ends, and
// returns why the participant left.
func (s *session) readLoop() string {
	if s.closing.Load() {
		return rooms.ReasonDropped // refused before it could say anything
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.JoinTimeout))
	s.conn.SetPongHandler(func(string) error {
		s.heard.Store(time.Now().UnixNano())
		if s.joinedRoom && !s.closing.Load() {
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
				return rooms.ReasonDropped
			case errors.Is(err, errBinary):
				s.reject("", errorf(protocol.CodeBadMessage, "frames must be text (JSON)"))
				if s.closing.Load() {
					return rooms.ReasonDropped
				}
				continue
			case errors.As(err, &ne) && ne.Timeout() && !s.joinedRoom && !s.closing.Load():
				s.fail(protocol.CodeJoinTimeout, "no join within 5 seconds", "", websocket.ClosePolicyViolation)
				return rooms.ReasonDropped
			// 1001 (going away) is what a browser sends when the page
			// reloads or navigates: a drop, so that a reload within the
			// grace period comes back in with its resume secret.
			case websocket.IsCloseError(err, websocket.CloseNormalClosure):
				return rooms.ReasonLeft
			}
			return rooms.ReasonDropped
		}
		s.heard.Store(time.Now().UnixNano())
		if s.joinedRoom && !s.closing.Load() {
			_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
		}
		if !s.limiter.Allow() {
			s.fail(protocol.CodeRateLimited, "too many messages", "", websocket.ClosePolicyViolation)
			return rooms.ReasonDropped
		}
		if leave := s.handle(data); leave {
			s.closeWith(websocket.CloseNormalClosure, "bye")
			return rooms.ReasonLeft
		}
		if s.closing.Load() && !s.joinedRoom {
			return rooms.ReasonDropped
		}
	}
}

var (
	errTooLarge = errors.New("frame too large")
	errBinary   = errors.New("binary frame")
)

// readFrame reads one text message of at most MaxFrame bytes. The limit is
// enforced here rather than by the websocket library so that the client
// gets a too_large error before the close.
func (s *session) readFrame() ([]byte, error) {
	mt, r, err := s.conn.NextReader()
	if err != nil {
		return nil, err
	}
	if mt != websocket.TextMessage {
		return nil, errBinary
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
	if err := json.Unmarshal(data, &m); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			s.reject(m.ID, errorf(protocol.CodeBadMessage, "field "+te.Field+" has the wrong type"))
		} else {
			s.reject(m.ID, errorf(protocol.CodeBadMessage, "not a JSON object"))
		}
		return false
	}
	if m.Type == "" {
		s.reject(m.ID, errorf(protocol.CodeBadMessage, "message has no type"))
		return false
	}
	if !s.joinedRoom {
		if m.Type != protocol.TypeJoin {
			s.fail(protocol.CodeNotJoined, "the first message must be join", m.ID, websocket.ClosePolicyViolation)
			return false
		}
		if err := s.join(&m); err != nil {
			s.reject(m.ID, err)
		}
		return false
	}
	a, known := actions[m.Type]
	var err error
	switch {
	case !known:
		err = errorf(protocol.CodeUnknownType, "unknown message type")
	case a.needs != "" && !s.grant.Can(a.needs):
		err = errorf(protocol.CodeForbidden, "your role may not "+m.Type)
	default:
		leave, err = a.handle(s, &m)
	}
	if err != nil {
		s.reject(m.ID, err)
	}
	return leave
}

// action is what one message type after join needs from the grant (the
// role's Action; "" for none) and how it is handled.
type action struct {
	needs  rooms.Action
	handle func(s *session, m *protocol.ClientMessage) (leave bool, err error)
}

// actions is the one table of the messages a joined participant may send.
// Each names what it needs of the grant; moderation then asks the room's
// host rule. A message type missing here is unknown_type.
var actions = map[string]action{
	protocol.TypeJoin: {"", func(*session, *protocol.ClientMessage) (bool, error) {
		return false, errorf(protocol.CodeBadMessage, "already joined")
	}},
	protocol.TypeLeave: {"", func(*session, *protocol.ClientMessage) (bool, error) { return true, nil }},
	protocol.TypePing: {"", func(s *session, m *protocol.ClientMessage) (bool, error) {
		s.send(protocol.ServerMessage{Type: protocol.TypePong, T: m.T, Re: m.ID})
		return false, nil
	}},
	protocol.TypeMedia: {rooms.ActPublish, func(s *session, m *protocol.ClientMessage) (bool, error) {
		return false, s.mediaState(m)
	}},
	protocol.TypeHand: {rooms.ActPublish, func(s *session, m *protocol.ClientMessage) (bool, error) {
		if m.Raised == nil {
			return false, errorf(protocol.CodeBadMessage, "hand needs raised")
		}
		_, err := s.room.Update(s.id, func(p *rooms.Participant) { p.Hand = *m.Raised })
		return false, err
	}},
	protocol.TypeOffer:     {rooms.ActPublish, mediaMessage},
	protocol.TypeAnswer:    {rooms.ActSubscribe, mediaMessage},
	protocol.TypeCandidate: {rooms.ActSubscribe, mediaMessage},
	protocol.TypeLayer:     {rooms.ActSubscribe, mediaMessage},
	protocol.TypeAdmit:     {rooms.ActAdmit, moderate},
	protocol.TypeDeny:      {rooms.ActAdmit, moderate},
	protocol.TypeMute:      {rooms.ActMute, moderate},
	protocol.TypeRemove:    {rooms.ActRemove, moderate},
	protocol.TypeLock:      {rooms.ActLock, moderate},
	protocol.TypeEnd:       {rooms.ActEnd, moderate},
	protocol.TypeHost:      {rooms.ActHandOver, moderate},
	protocol.TypeAutoAdmit: {rooms.ActAdmit, moderate},
	protocol.TypeChat: {"", func(s *session, m *protocol.ClientMessage) (bool, error) {
		return false, s.chat(m)
	}},
	protocol.TypeChatRemove:  {rooms.ActMute, moderate},
	protocol.TypeChatEnabled: {rooms.ActMute, moderate},
}

// ActionNeeds returns what each client message type needs of the grant
// (its role's Action, "" for none), for the route-table test and docs.
func ActionNeeds() map[string]rooms.Action {
	out := make(map[string]rooms.Action, len(actions))
	for t, a := range actions {
		out[t] = a.needs
	}
	return out
}

func mediaMessage(s *session, m *protocol.ClientMessage) (bool, error) {
	return false, s.mediaMessage(m)
}

func moderate(s *session, m *protocol.ClientMessage) (bool, error) {
	return false, s.moderate(m)
}

// reject answers a message with an error; before join it also closes.
func (s *session) reject(re string, err error) {
	m := protocol.ServerMessage{Type: protocol.TypeError, Code: errorCode(err), Message: err.Error(), Re: re}
	if m.Code == protocol.CodeInternal {
		s.srv.cfg.Logger.Error("request failed", "participant", s.id, "err", err)
		m.Message = "internal error"
	}
	var je *schedule.JoinError
	if errors.As(err, &je) && je.Next != nil {
		n := je.Next
		m.Next = &protocol.NextSession{Room: n.ID, Title: n.Title, Kind: string(n.Kind), Start: n.Start, End: n.End,
			StartLocal: n.StartLocal, JoinOpens: n.JoinOpens, TimeZone: n.TimeZone}
	}
	s.send(m)
	if !s.joinedRoom {
		s.closeWith(websocket.ClosePolicyViolation, m.Code)
	}
}

// join verifies the token and asks admission to let the person in: into
// the room, waiting or admitted, or to the room's node (redirect), or
// refused with one code.
func (s *session) join(m *protocol.ClientMessage) error {
	if m.V != protocol.Version {
		return errorf(protocol.CodeBadMessage, "join needs v: 1")
	}
	if len(m.Room) > 256 || len(m.Resume) > 256 {
		return errorf(protocol.CodeBadMessage, "room or resume too long")
	}
	if !s.srv.allowJoin(s.addr) {
		return errorf(protocol.CodeTooManyJoins, "too many joins from your address; try again in a few seconds")
	}
	c, err := s.srv.cfg.Verifier.Verify(m.Token)
	if err != nil {
		return err
	}
	g := c.Grant()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.id = "p" + token.RandomID(8)
	s.joinRe = m.ID
	s.grant = g
	t, err := s.srv.admission.Admit(ctx, admission.Request{Grant: g, Room: m.Room, Resume: m.Resume, ID: s.id, Listener: s})
	var redirect *admission.Redirect
	if errors.As(err, &redirect) {
		s.send(protocol.ServerMessage{Type: protocol.TypeRedirect, URL: redirect.URL, Re: m.ID})
		s.closeWith(websocket.CloseNormalClosure, "redirect")
		return nil
	}
	ref, _ := admission.RoomRef(admission.Request{Grant: g, Room: m.Room})
	if err != nil {
		s.srv.record(g, audit.ActionRefuse, ref.ID, "", errorCode(err), "join", s.addr)
		return err
	}
	s.ticket, s.room = t, t.Room
	s.joinedRoom = true
	s.srv.joined(s, g.Program, g.Sub)
	s.mu.Lock()
	s.roomKey, s.program, s.sub, s.joined = t.Room.Ref().String(), g.Program, g.Sub, t.Room
	transport := s.transport // media that connected before join returned
	s.mu.Unlock()
	if transport != "" {
		_, _ = t.Room.Update(s.id, func(p *rooms.Participant) { p.Transport = transport })
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
	s.srv.record(g, audit.ActionJoin, ref.ID, g.Sub, "", string(g.Role), s.addr)
	s.srv.cfg.Logger.Info("joined", "participant", s.id, "room", ref.ID, "role", string(g.Role))
	return nil
}

// identity returns the joined person's program and id ("" before join).
func (s *session) identity() (program, sub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.program, s.sub
}

// leave releases the room, media and seat after the connection ends.
func (s *session) leave(reason string) {
	s.mu.Lock()
	s.left = true
	media := s.media
	if s.endReason != "" {
		reason = s.endReason
	}
	s.mu.Unlock()
	var last time.Time
	if media != nil {
		last = media.LastMedia()
		media.Close()
	}
	if s.ticket != nil {
		// A dropped connection's time ends at the last sign of the person:
		// a media packet, a message or a pong.
		if reason == rooms.ReasonDropped {
			if heard := time.Unix(0, s.heard.Load()); heard.After(last) {
				last = heard
			}
		} else {
			last = time.Time{}
		}
		s.ticket.LeaveAt(reason, last)
		s.srv.cfg.Logger.Info("left", "participant", s.id, "room", s.room.ID(), "reason", reason)
	}
}

// startMedia creates the participant's PeerConnections in the media room
// of room ("program/room") once admitted. It may start before join has
// returned (admitted at once), so it takes the room from the event.
func (s *session) startMedia(ready chan struct{}, room string) {
	defer close(ready)
	media, err := s.srv.cfg.SFU.Room(room).Join(s.id, s)
	if err != nil {
		s.srv.cfg.Logger.Error("start media", "participant", s.id, "err", err)
		s.abort()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.left {
		go media.Close()
		return
	}
	for kind := range s.muted {
		media.SetForwarding(kind, false)
	}
	s.media = media
	go s.watchReceiving(media)
}

// mediaOf waits for the participant's media, or reports not_admitted.
func (s *session) mediaOf() (*sfu.Participant, error) {
	s.mu.Lock()
	ready := s.mediaReady
	s.mu.Unlock()
	if ready == nil {
		return nil, errorf(protocol.CodeNotAdmitted, "you are in the waiting room")
	}
	select {
	case <-ready:
	case <-time.After(mediaStartTimeout):
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.media == nil {
		return nil, errors.New("media did not start")
	}
	return s.media, nil
}

// mediaMessage handles offer, answer, candidate and layer.
func (s *session) mediaMessage(m *protocol.ClientMessage) error {
	media, err := s.mediaOf()
	if err != nil {
		return err
	}
	switch m.Type {
	case protocol.TypeOffer:
		if m.PC != protocol.PCPublish || m.SDP == "" {
			return errorf(protocol.CodeBadMessage, "offer needs pc \"publish\" and sdp")
		}
		s.offerRe = m.ID
		return media.HandleOffer(m.SDP)
	case protocol.TypeAnswer:
		if m.PC != protocol.PCSubscribe || m.SDP == "" {
			return errorf(protocol.CodeBadMessage, "answer needs pc \"subscribe\" and sdp")
		}
		return media.HandleAnswer(m.SDP)
	case protocol.TypeCandidate:
		return s.candidate(media, m)
	case protocol.TypeLayer:
		if m.Participant == "" || (m.Quality != "low" && m.Quality != "medium" && m.Quality != "high") {
			return errorf(protocol.CodeBadMessage, "layer needs participant and quality low, medium or high")
		}
		if !s.room.Has(m.Participant) {
			return errorf(protocol.CodeNotFound, "no such participant")
		}
		return media.SetLayer(m.Participant, m.Quality)
	}
	return nil
}

// mediaState records the sender's own mute state; turning a kind back on
// also lifts a therapist's mute of it (the client decides).
func (s *session) mediaState(m *protocol.ClientMessage) error {
	if m.Audio == nil && m.Video == nil {
		return errorf(protocol.CodeBadMessage, "media needs audio or video")
	}
	_, err := s.room.Update(s.id, func(p *rooms.Participant) {
		if m.Audio != nil {
			p.Audio = *m.Audio
		}
		if m.Video != nil {
			p.Video = *m.Video
		}
	})
	if err != nil {
		return err
	}
	for kind, on := range map[string]*bool{"audio": m.Audio, "video": m.Video} {
		if on != nil && *on {
			s.setForwarding(kind, true)
		}
	}
	return nil
}

// setForwarding applies a mute or unmute to the media plane, now or when
// the media starts.
func (s *session) setForwarding(kind string, on bool) {
	s.mu.Lock()
	if on {
		delete(s.muted, kind)
	} else {
		s.muted[kind] = true
	}
	media := s.media
	s.mu.Unlock()
	if media != nil {
		media.SetForwarding(kind, on)
	}
}

func (s *session) candidate(media *sfu.Participant, m *protocol.ClientMessage) error {
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
		return media.AddCandidate(pc, nil)
	}
	return media.AddCandidate(pc, &webrtc.ICECandidateInit{
		Candidate:        m.Candidate.Candidate,
		SDPMid:           m.Candidate.SDPMid,
		SDPMLineIndex:    m.Candidate.SDPMLineIndex,
		UsernameFragment: m.Candidate.UsernameFragment,
	})
}

// moderate handles the therapist's controls; the room's host rule decides
// who may do them to whom.
func (s *session) moderate(m *protocol.ClientMessage) error {
	if !s.isAdmitted() {
		return errorf(protocol.CodeNotAdmitted, "you are in the waiting room")
	}
	switch m.Type {
	case protocol.TypeChatRemove:
		if m.MessageID == "" || len(m.MessageID) > 32 {
			return errorf(protocol.CodeBadMessage, "chat_remove needs message_id")
		}
		return s.room.RemoveChat(s.id, m.MessageID)
	case protocol.TypeChatEnabled:
		if m.ChatEnabled == nil {
			return errorf(protocol.CodeBadMessage, "chat_enabled needs chat_enabled true or false")
		}
		return s.room.SetChat(s.id, *m.ChatEnabled)
	}
	needsTarget := m.Type != protocol.TypeLock && m.Type != protocol.TypeEnd && m.Type != protocol.TypeAutoAdmit
	if needsTarget && m.Participant == "" {
		return errorf(protocol.CodeBadMessage, m.Type+" needs participant")
	}
	switch m.Type {
	case protocol.TypeAdmit:
		return s.room.Admit(s.id, m.Participant)
	case protocol.TypeDeny:
		return s.room.Deny(s.id, m.Participant)
	case protocol.TypeMute:
		if m.Kind != "audio" && m.Kind != "video" {
			return errorf(protocol.CodeBadMessage, "mute needs kind audio or video")
		}
		return s.room.Mute(s.id, m.Participant, m.Kind)
	case protocol.TypeRemove:
		if len(m.Reason) > 500 {
			return errorf(protocol.CodeBadMessage, "reason too long")
		}
		// The removed person may not come back with this or a new token:
		// recorded before they are told, so that no rejoin slips in between.
		p, err := s.room.MayModerate(s.id, m.Participant, rooms.ActRemove)
		if err != nil {
			return err
		}
		if st := s.srv.cfg.Store; st != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := st.RevokeFromRoom(ctx, s.room.Ref().String(), p.Sub, 0); err != nil {
				return err
			}
		}
		_, err = s.room.Remove(s.id, m.Participant, m.Reason)
		return err
	case protocol.TypeLock:
		if m.Locked == nil {
			return errorf(protocol.CodeBadMessage, "lock needs locked")
		}
		return s.room.SetLocked(s.id, *m.Locked)
	case protocol.TypeEnd:
		return s.room.End(s.id)
	case protocol.TypeHost:
		return s.room.HandOver(s.id, m.Participant)
	case protocol.TypeAutoAdmit:
		if m.AutoAdmit == nil {
			return errorf(protocol.CodeBadMessage, "auto_admit needs auto_admit true or false")
		}
		return s.room.SetAutoAdmit(s.id, *m.AutoAdmit)
	}
	return nil
}

func (s *session) isAdmitted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.admitted
}

// RoomEvent turns room events into messages for this participant. It runs
// under the room's lock: it only queues messages and starts goroutines.
func (s *session) RoomEvent(e rooms.Event) {
	self := e.Participant.ID == s.id
	switch {
	case e.Type == rooms.EventJoined && self:
		s.admittedEvent(e)
	case e.Type == rooms.EventWaiting && self:
		m := protocol.ServerMessage{Type: protocol.TypeWaiting, Room: roomInfo(e), Position: e.Position}
		if !s.waitingSent {
			m.Re = s.joinRe // the first answers the join; later ones say the line moved
			s.waitingSent = true
		}
		s.send(m)
	case e.Type == rooms.EventJoined:
		p := participant(e.Participant)
		s.send(protocol.ServerMessage{Type: protocol.TypeParticipantJoined, Participant: &p})
	case e.Type == rooms.EventWaitingList:
		s.send(protocol.ServerMessage{Type: protocol.TypeWaitingList, Waiting: people(e.Waiting)})
	case e.Type == rooms.EventUpdated:
		p := participant(e.Participant)
		s.send(protocol.ServerMessage{Type: protocol.TypeParticipantUpdated, Participant: &p})
	case e.Type == rooms.EventMuted && self:
		s.setForwarding(e.Kind, false)
		s.send(protocol.ServerMessage{Type: protocol.TypeMuted, Kind: e.Kind, By: e.By.Name})
	case e.Type == rooms.EventLeft:
		reason := e.Reason
		if reason == rooms.ReasonEnded || reason == rooms.ReasonMoved {
			reason = rooms.ReasonLeft
		}
		s.send(protocol.ServerMessage{Type: protocol.TypeParticipantLeft, ID: e.Participant.ID, Reason: reason})
	case e.Type == rooms.EventRemoved && self && e.Reason == rooms.ReasonReplaced:
		s.replaced() // silent, and the person is back on a new connection
	case e.Type == rooms.EventRemoved && self && e.Reason == rooms.ReasonMoved:
		s.ending(rooms.ReasonMoved)
		s.fail(protocol.CodeMoved, "you joined another session; you are no longer in this one", "", websocket.ClosePolicyViolation)
	case e.Type == rooms.EventRemoved && self:
		s.ending(rooms.ReasonRemoved)
		s.send(protocol.ServerMessage{Type: protocol.TypeRemoved, Reason: e.Reason})
		s.closeWith(websocket.CloseNormalClosure, "removed")
	case e.Type == rooms.EventRoomUpdated:
		s.send(protocol.ServerMessage{Type: protocol.TypeRoomUpdated, Room: roomInfo(e)})
	case e.Type == rooms.EventChat:
		s.send(protocol.ServerMessage{
			Type: protocol.TypeChat, MessageID: e.MessageID, Text: e.Text, Private: e.Private, At: e.At.UTC(),
			From: &protocol.Person{ID: e.Participant.ID, Name: e.Participant.Name, Role: string(e.Participant.Role)},
		})
	case e.Type == rooms.EventChatRemoved:
		s.send(protocol.ServerMessage{Type: protocol.TypeChatRemoved, MessageID: e.MessageID})
	case e.Type == rooms.EventTurnedAway:
		p := participant(e.Participant)
		s.send(protocol.ServerMessage{Type: protocol.TypeTurnedAway, Participant: &p, Reason: e.Reason})
	case e.Type == rooms.EventEnded:
		s.ending(rooms.ReasonEnded)
		s.send(protocol.ServerMessage{Type: protocol.TypeEnded})
		s.closeWith(websocket.CloseNormalClosure, "ended")
	}
}

// admittedEvent sends joined (and a therapist's waiting list) and starts
// the participant's media.
func (s *session) admittedEvent(e rooms.Event) {
	m := protocol.ServerMessage{
		Type:         protocol.TypeJoined,
		You:          &protocol.Person{ID: s.id, Name: e.Participant.Name, Role: string(e.Participant.Role)},
		Room:         roomInfo(e),
		Participants: participants(e.Others),
		ICEServers:   s.srv.iceServers(s.id, s.srv.turnExpiry(e.Ends, time.Now())),
		Resume:       e.Resume,
	}
	if e.By.ID == "" {
		m.Re = s.joinRe // answers the join; after an admit it answers nobody's message
	}
	// Admitted before joined is queued: the client may answer it at once.
	ready := make(chan struct{})
	s.mu.Lock()
	s.admitted = true
	s.mediaReady = ready
	s.mu.Unlock()
	s.send(m)
	if e.Participant.Role == rooms.RoleTherapist {
		s.send(protocol.ServerMessage{Type: protocol.TypeWaitingList, Waiting: people(e.Waiting)})
	}
	go s.startMedia(ready, rooms.Ref{Program: e.Program, ID: e.Room}.String())
}

// inRoom returns the room the session joined ("program/room"), or "".
func (s *session) inRoom() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomKey
}

// move sends the participant to the room's node: a redirect, then close;
// they count as dropped so that their return continues seat and minutes.
func (s *session) move(url string) {
	s.ending(rooms.ReasonDropped)
	s.send(protocol.ServerMessage{Type: protocol.TypeRedirect, URL: url})
	s.closeWith(websocket.CloseNormalClosure, "redirect")
}

var _ rooms.Heard = (*session)(nil)

// LastHeard implements rooms.Heard: the later of the last media packet and
// the last message or pong from the client.
func (s *session) LastHeard() time.Time {
	var last time.Time
	if h := s.heard.Load(); h != 0 {
		last = time.Unix(0, h)
	}
	s.mu.Lock()
	media := s.media
	s.mu.Unlock()
	if media != nil {
		if m := media.LastMedia(); m.After(last) {
			last = m
		}
	}
	return last
}

// replaced closes a socket the same person has replaced with a newer one
// beyond the per-person cap; they count as dropped (their newer socket
// carries on).
func (s *session) replaced() {
	s.ending(rooms.ReasonDropped)
	s.cut.Store(true)
	s.fail(protocol.CodeReplaced, "you opened this session in another window or device; this one is closed", "", websocket.ClosePolicyViolation)
}

// kick ends a live session from outside (a program-wide block).
func (s *session) kick(reason string) {
	s.ending(rooms.ReasonRemoved)
	s.send(protocol.ServerMessage{Type: protocol.TypeRemoved, Reason: reason})
	s.closeWith(websocket.CloseNormalClosure, "removed")
}

// ending records that a therapist ended this participant's time in the room.
func (s *session) ending(reason string) {
	s.mu.Lock()
	s.endReason = reason
	s.mu.Unlock()
}

// roomInfo describes the room as the event saw it (RoomEvent runs under the
// room's lock, so it must not call back into the room).
func roomInfo(e rooms.Event) *protocol.Room {
	return &protocol.Room{ID: e.Room, Kind: string(e.RoomKind), Title: e.Title, Locked: e.Locked, Host: e.Host, AutoAdmit: e.AutoAdmit, Chat: e.Chat}
}

func participant(p rooms.Participant) protocol.Participant {
	return protocol.Participant{ID: p.ID, Name: p.Name, Role: string(p.Role), Audio: p.Audio, Video: p.Video, Hand: p.Hand, Transport: p.Transport}
}

func participants(ps []rooms.Participant) []protocol.Participant {
	out := make([]protocol.Participant, len(ps))
	for i, p := range ps {
		out[i] = participant(p)
	}
	return out
}

func people(ps []rooms.Participant) []protocol.Person {
	out := make([]protocol.Person, len(ps))
	for i, p := range ps {
		out[i] = protocol.Person{ID: p.ID, Name: p.Name, Role: string(p.Role)}
	}
	return out
}

// SendDescription implements sfu.Signaler.
func (s *session) SendDescription(pc sfu.PC, d webrtc.SessionDescription) {
	m := protocol.ServerMessage{Type: protocol.TypeAnswer, PC: string(pc), SDP: d.SDP}
	if d.Type == webrtc.SDPTypeOffer {
		m.Type = protocol.TypeOffer
	} else {
		m.Re = s.offerRe
	}
	s.send(m)
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
