package signaling

// This file holds the session actor: the state of one websocket, the one
// goroutine that owns it (loop), how other goroutines post work to it, its
// lifecycle, and the dispatch of a joined participant's messages. The other
// parts of a session are transport.go (socket reader and writer), admission.go
// (join and leave), media.go (PeerConnections and the media plane's
// callbacks), moderation.go (the therapist's controls) and events.go (room
// events to wire messages).

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"iop/rooms"
	"iop/rooms/admission"
	"iop/rooms/schedule"
	"iop/sfu"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// inboxSize is how much work may wait for a session's actor: room events
// and media callbacks. Like a full outgoing queue, a full inbox means a
// client too slow to take its messages, and the connection is dropped.
const inboxSize = 512

// session is one websocket: before join, a person knocking; then a person
// waiting or admitted in a room, with media once admitted.
//
// Its fields live under three rules, each named at the field: set before
// the goroutines start and never changed (immutable); used by the socket's
// reader and writer or safe from any goroutine (transport, atomics and
// channels); or owned by the actor, the one goroutine running loop, which
// every other goroutine posts work to (post) instead of sharing them.
type session struct {
	// Immutable.
	srv  *Server
	conn *websocket.Conn
	id   string // the participant id this socket has in its room
	addr string // the client's IP address, for the limits and the audit trail
	// ctx is the session's: every Redis or room call derives its timeout
	// from it, and it ends when the session does.
	ctx    context.Context
	cancel context.CancelFunc

	// Transport: the reader and writer goroutines (transport.go).
	out        chan frame
	stop       chan struct{} // closed by abort
	writerDone chan struct{}
	abortOnce  sync.Once
	closing    atomic.Bool // a close frame is queued
	cut        atomic.Bool // stop reading once the close frame is out
	entered    atomic.Bool // join succeeded: the reader applies the idle timeout
	limiter    *rate.Limiter
	heard      atomic.Int64 // Unix nanoseconds of the last frame or pong from the client

	// Published by the actor for other goroutines, read without waiting
	// for it: where the person is (Server.Kick, MoveRoom) and their media
	// (LastHeard, asked under the room's lock).
	where      atomic.Pointer[place]
	heardMedia atomic.Pointer[sfu.Participant]

	// unjoinedCounted and personKey are the session's places in the
	// server's per-address and per-person counts, under the server's mu.
	unjoinedCounted bool
	personKey       string

	// The inbox: work for the actor, in the order posted.
	inbox    mailbox
	finished chan string // the reader's end: why the participant left

	// Owned by the actor.
	chats       *rate.Limiter // chat messages: a few a minute, the socket stays open when over
	joinRe      string        // the id of the join message, answered by the first event
	grant       rooms.Grant
	ticket      *admission.Ticket
	room        *rooms.Room // nil until join has succeeded
	offerRe     string      // the id of the publish offer being answered
	admitted    bool
	starting    *mediaStart      // the media being started once admitted
	media       *sfu.Participant // the media, once started
	muted       map[string]bool  // kinds a therapist muted, for media still starting
	group       int              // the breakout the participant is in (0: main room)
	screen      string           // the stream id of the screen this person shares now, or ""
	left        bool             // the session has left: media started late is closed
	waitingSent bool             // the first waiting message went out
	endReason   string           // removed or ended by a therapist
}

// place is where a joined person is, for the server's goroutines.
type place struct {
	program, sub string
	room         string // "program/room"
}

func newSession(s *Server, conn *websocket.Conn, addr string) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		srv:        s,
		conn:       conn,
		id:         "p" + token.RandomID(8),
		addr:       addr,
		ctx:        ctx,
		cancel:     cancel,
		out:        make(chan frame, outQueue),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		limiter:    rate.NewLimiter(rate.Limit(s.cfg.RatePerSecond), s.cfg.RateBurst),
		inbox:      mailbox{wake: make(chan struct{}, 1), limit: inboxSize},
		finished:   make(chan string, 1),
		chats:      rate.NewLimiter(rate.Every(chatEvery), chatBurst),
		muted:      map[string]bool{},
	}
}

// run serves the socket until it ends: the writer and the actor on their
// own goroutines, the reader on this one.
func (s *session) run() {
	go s.writeLoop()
	actorDone := make(chan struct{})
	go func() {
		defer close(actorDone)
		s.loop()
	}()
	reason := s.readLoop()
	s.srv.left(s)
	s.finished <- reason
	<-actorDone
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

// loop is the actor: it runs the work posted to the session, one piece at
// a time, until the reader has ended; then it leaves the room, runs what
// was posted until then (media started late is closed) and ends the
// session's context.
func (s *session) loop() {
	defer s.cancel()
	for {
		select {
		case <-s.inbox.wake:
			for _, f := range s.inbox.take() {
				f()
			}
		case reason := <-s.finished:
			for _, f := range s.inbox.take() {
				f()
			}
			s.leave(reason)
			for _, f := range s.inbox.close() {
				f()
			}
			return
		}
	}
}

// post gives f to the actor; it never blocks, so that it is safe under the
// room's lock and from the media plane's goroutines. When the inbox is full
// the client is too slow and is dropped (the policy of the outgoing queue);
// once the session has ended f is dropped. It reports whether f will run.
func (s *session) post(f func()) bool {
	switch s.inbox.put(f, false) {
	case posted:
		return true
	case full:
		s.srv.cfg.Logger.Warn("client too slow, dropping connection", "participant", s.id)
		s.abort()
	}
	return false
}

// postAlways gives f to the actor whatever the inbox holds; for the little
// work that must not be lost while the session lives (media that started).
// It reports false once the session has ended.
func (s *session) postAlways(f func()) bool {
	return s.inbox.put(f, true) == posted
}

// mailbox is a session's inbox: an ordered queue with a bound, which wakes
// the actor and refuses work once closed.
type mailbox struct {
	mu     sync.Mutex
	items  []func()
	closed bool
	limit  int
	wake   chan struct{} // holds one wake-up while items wait
}

type putResult int

const (
	posted putResult = iota
	full
	closed
)

func (b *mailbox) put(f func(), always bool) putResult {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return closed
	case !always && len(b.items) >= b.limit:
		return full
	}
	b.items = append(b.items, f)
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return posted
}

// take returns the waiting work and empties the queue.
func (b *mailbox) take() []func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	items := b.items
	b.items = nil
	return items
}

// close refuses all later work and returns what was waiting.
func (b *mailbox) close() []func() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	items := b.items
	b.items = nil
	return items
}

// handle dispatches one message on the actor and reports whether the
// participant leaves.
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
	if s.room == nil {
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

	protocol.TypeBreakoutOpen:  {rooms.ActBreakout, breakout},
	protocol.TypeBreakoutMove:  {rooms.ActBreakout, breakout},
	protocol.TypeBreakoutVisit: {rooms.ActBreakout, breakout},
	protocol.TypeBreakoutClose: {rooms.ActBreakout, breakout},
	protocol.TypeScreenStart: {rooms.ActPublish, func(s *session, m *protocol.ClientMessage) (bool, error) {
		return false, s.screenStart(m)
	}},
	protocol.TypeScreenStop: {rooms.ActPublish, func(s *session, m *protocol.ClientMessage) (bool, error) {
		return false, s.screenStop(m)
	}},
	protocol.TypeScreenAllowed: {rooms.ActScreen, moderate},
	protocol.TypeSpotlight:     {rooms.ActSpotlight, moderate},
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
	if !s.entered.Load() {
		s.closeWith(websocket.ClosePolicyViolation, m.Code)
	}
}
