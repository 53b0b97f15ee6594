// Package signaling is the edge: the /v1/signal websocket protocol, token
// verification and origin checks. It translates client messages into calls
// on rooms (membership) and sfu (media), and room and media events back into
// messages.
package signaling

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"iop/rooms"
	"iop/rooms/admission"
	"iop/rooms/attendance"
	"iop/rooms/audit"
	"iop/rooms/schedule"
	"iop/rooms/store"
	"iop/rooms/telehealth"
	"iop/sfu"
	"iop/sfu/turn"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// Config is what the signaling server needs.
type Config struct {
	Verifier *token.Verifier
	Rooms    *rooms.Manager
	SFU      *sfu.SFU
	// Seats holds seat leases and room claims across nodes; nil runs a
	// single node without capacity limits (unit tests of the protocol).
	Seats rooms.Seats
	// Store keeps revocations, blocks and used invitations; nil skips
	// those checks (unit tests of the protocol).
	Store *store.Store
	// Leeway is the token clock leeway, kept with a used invitation.
	Leeway time.Duration
	// Schedule decides who may join a scheduled session and when; rooms it
	// does not know are ad-hoc. Nil: every room is ad-hoc.
	Schedule *schedule.Store
	// Attendance answers the attendance endpoints of the staff API.
	Attendance *attendance.Store
	// Telehealth keeps clients' consents and check-ins and asks for them
	// where the program's schedule does; nil asks for neither.
	Telehealth *telehealth.Store
	// Audit keeps the audit trail of every access and decision; nil
	// records nothing (unit tests of the protocol).
	Audit *audit.Recorder
	// Minter signs family invitations; PublicURL is the base of their links.
	Minter    *token.Minter
	PublicURL string
	Logger    *slog.Logger

	// TrustedProxies are the reverse proxies (Caddy, an ingress) whose
	// X-Forwarded-For names the client's address (IOP_TRUSTED_PROXIES):
	// the per-address limits and the audit trail use it.
	TrustedProxies []netip.Prefix

	// Origins lists the allowed websocket Origin values (scheme://host[:port]);
	// empty allows only the server's own origin. Requests without an Origin
	// header (non-browser clients) are allowed.
	Origins []string
	// ICEServers are handed to clients in joined.
	ICEServers []protocol.ICEServer
	// TURN, when set, mints each participant TURN credentials of its own,
	// handed out with ICEServers; TURNSession and TURNOverrun bound their
	// life (signaling/ice.go).
	TURN        *turn.Issuer
	TURNSession time.Duration
	TURNOverrun time.Duration

	// JoinTimeout is how long a socket may stay open without joining.
	JoinTimeout time.Duration
	// PingInterval is how often the server pings an idle socket.
	PingInterval time.Duration
	// IdleTimeout closes a joined socket from which nothing (not even a
	// pong) arrived for this long.
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a client.
	WriteTimeout time.Duration
	// RatePerSecond and RateBurst bound the messages one socket may send.
	RatePerSecond float64
	RateBurst     int

	// SocketsPerPerson caps one person's sockets on this node (waiting or
	// admitted, any room): a join beyond it closes their oldest socket
	// with replaced.
	SocketsPerPerson int
	// UnjoinedPerAddr caps the sockets one address holds open before
	// they have joined; more are refused with too_many_connections.
	UnjoinedPerAddr int
	// JoinRate and JoinBurst bound the join attempts from one address
	// (per second, token bucket); more get too_many_joins.
	JoinRate  float64
	JoinBurst int
	// MaxParticipants caps the people this node carries (joined sockets,
	// waiting or admitted); a join beyond it is refused with node_full
	// unless the person already has a socket here (it replaces that one).
	MaxParticipants int
}

// DefaultConfig returns the timeouts and limits of docs/protocol.md (6
// "Keepalive and timeouts", 7 "Limits").
func DefaultConfig() Config {
	return Config{
		JoinTimeout:   5 * time.Second,
		PingInterval:  15 * time.Second,
		IdleTimeout:   45 * time.Second,
		WriteTimeout:  10 * time.Second,
		RatePerSecond: 50,
		RateBurst:     200,

		SocketsPerPerson: 4,
		UnjoinedPerAddr:  20,
		JoinRate:         2,
		JoinBurst:        20,
		MaxParticipants:  200,
	}
}

// Server serves the signaling websocket.
type Server struct {
	cfg       Config
	upgrader  websocket.Upgrader
	admission *admission.Admission

	mu       sync.Mutex
	sessions map[*session]struct{}
	draining bool
	wg       sync.WaitGroup

	// The per-person and per-address limits, under mu.
	unjoined  map[string]int           // address -> sockets not joined yet
	people    map[string][]*session    // "program/sub" -> sockets, oldest first
	joinRates map[string]*rate.Limiter // address -> join attempts
	present   int                      // sockets in people
	pending   int                      // joins past the node's cap check, not yet joined or refused
	limits    LimitStats
}

// LimitStats counts what the per-person and per-address limits refused,
// for /metrics.
type LimitStats struct {
	Replaced        uint64 // sockets closed by a newer one of the same person
	RefusedUnjoined uint64 // sockets refused: too many not joined from one address
	RefusedJoinRate uint64 // joins refused: too many per second from one address
	RefusedNodeFull uint64 // joins refused: the node carries MaxParticipants
}

// Limits returns the counts of the limits' refusals so far.
func (s *Server) Limits() LimitStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.limits
}

// New returns a server; zero durations and limits in cfg take their defaults.
func New(cfg Config) *Server {
	def := DefaultConfig()
	if cfg.JoinTimeout <= 0 {
		cfg.JoinTimeout = def.JoinTimeout
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = def.PingInterval
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = def.IdleTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = def.WriteTimeout
	}
	if cfg.RatePerSecond <= 0 {
		cfg.RatePerSecond = def.RatePerSecond
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = def.RateBurst
	}
	if cfg.SocketsPerPerson <= 0 {
		cfg.SocketsPerPerson = def.SocketsPerPerson
	}
	if cfg.UnjoinedPerAddr <= 0 {
		cfg.UnjoinedPerAddr = def.UnjoinedPerAddr
	}
	if cfg.JoinRate <= 0 {
		cfg.JoinRate = def.JoinRate
	}
	if cfg.JoinBurst <= 0 {
		cfg.JoinBurst = def.JoinBurst
	}
	if cfg.MaxParticipants <= 0 {
		cfg.MaxParticipants = def.MaxParticipants
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, sessions: map[*session]struct{}{}, unjoined: map[string]int{},
		people: map[string][]*session{}, joinRates: map[string]*rate.Limiter{}}
	s.admission = admission.New(admission.Config{
		Rooms: cfg.Rooms, Seats: cfg.Seats, Store: cfg.Store, Schedule: cfg.Schedule, Leeway: cfg.Leeway,
		Telehealth: cfg.Telehealth,
	})
	s.upgrader = websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		CheckOrigin:     s.checkOrigin,
	}
	return s
}

// ServeHTTP upgrades GET /v1/signal to a websocket and runs the session.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	draining := s.draining
	if !draining {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if draining {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	// The address's place is taken before the upgrade, so that a client
	// whose handshake has completed is already counted.
	addr := s.clientAddr(r)
	s.mu.Lock()
	over := s.unjoined[addr] >= s.cfg.UnjoinedPerAddr
	if over {
		s.limits.RefusedUnjoined++
	} else {
		s.unjoined[addr]++
	}
	s.mu.Unlock()
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		if !over {
			s.mu.Lock()
			s.uncount(&session{addr: addr, unjoinedCounted: true})
			s.mu.Unlock()
		}
		return // the upgrader has answered with an HTTP error
	}
	sess := newSession(s, conn, addr)
	sess.unjoinedCounted = !over
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	if over {
		// Told in the protocol rather than by an HTTP status, which a
		// browser's WebSocket does not show.
		sess.fail(protocol.CodeTooManyConnections, "too many connections from your address that have not joined", "", websocket.ClosePolicyViolation)
	}
	sess.run()
	s.mu.Lock()
	delete(s.sessions, sess)
	s.uncount(sess)
	s.mu.Unlock()
}

// uncount drops sess from the unjoined count of its address; under mu.
func (s *Server) uncount(sess *session) {
	if !sess.unjoinedCounted {
		return
	}
	sess.unjoinedCounted = false
	if s.unjoined[sess.addr]--; s.unjoined[sess.addr] <= 0 {
		delete(s.unjoined, sess.addr)
	}
}

// release drops sess from the unjoined count of its address.
func (s *Server) release(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.uncount(sess)
}

// allowJoin takes one join attempt from addr's bucket.
func (s *Server) allowJoin(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.joinRates[addr]
	if l == nil {
		if len(s.joinRates) >= 4096 {
			// Forget addresses whose bucket has refilled: they are
			// indistinguishable from new ones.
			for a, old := range s.joinRates {
				if old.Tokens() >= float64(s.cfg.JoinBurst) {
					delete(s.joinRates, a)
				}
			}
		}
		l = rate.NewLimiter(rate.Limit(s.cfg.JoinRate), s.cfg.JoinBurst)
		s.joinRates[addr] = l
	}
	if l.Allow() {
		return true
	}
	s.limits.RefusedJoinRate++
	return false
}

// reserve takes a place on the node for a join by program/sub, or reports
// that the node is full; a person who already has a socket here takes no
// new place (their newest socket may replace an older one). The place is
// given back by unreserve once the join is through admission.
func (s *Server) reserve(program, sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.people[program+"/"+sub]) == 0 && s.present+s.pending >= s.cfg.MaxParticipants {
		s.limits.RefusedNodeFull++
		return false
	}
	s.pending++
	return true
}

// unreserve gives back a place taken by reserve.
func (s *Server) unreserve() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending--
}

// joined moves sess from its address's unjoined count to its person's
// sockets, and closes that person's oldest sockets beyond the cap.
func (s *Server) joined(sess *session, program, sub string) {
	key := program + "/" + sub
	s.mu.Lock()
	s.uncount(sess)
	sess.personKey = key
	list := append(s.people[key], sess)
	s.present++
	var old []*session
	if n := len(list) - s.cfg.SocketsPerPerson; n > 0 {
		old, list = list[:n:n], list[n:]
		s.limits.Replaced += uint64(n)
		s.present -= n
	}
	s.people[key] = list
	s.mu.Unlock()
	for _, o := range old {
		o.replaced()
	}
}

// left forgets sess among its person's sockets.
func (s *Server) left(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := sess.personKey
	if key == "" {
		return
	}
	list := s.people[key]
	for i, o := range list {
		if o == sess {
			list = append(list[:i:i], list[i+1:]...)
			s.present--
			break
		}
	}
	if len(list) == 0 {
		delete(s.people, key)
	} else {
		s.people[key] = list
	}
}

// Kick disconnects every live session of a person in a program, telling
// them why (a program-wide block); it returns how many it ended.
func (s *Server) Kick(program, sub, reason string) int {
	s.mu.Lock()
	open := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		open = append(open, sess)
	}
	s.mu.Unlock()
	n := 0
	for _, sess := range open {
		if p, who := sess.identity(); who == sub && p == program {
			sess.kick(reason)
			n++
		}
	}
	return n
}

// MoveRoom sends everyone in room ("program/room") on this node to the
// node at url (the room's owner now): they get redirect and reconnect
// there, their seats and attendance segments carried over by the reconnect
// grace.
func (s *Server) MoveRoom(room, url string) {
	s.mu.Lock()
	open := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		open = append(open, sess)
	}
	s.mu.Unlock()
	for _, sess := range open {
		if sess.inRoom() == room {
			sess.move(url)
		}
	}
}

// Sessions returns how many websockets are open.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close refuses new sockets, closes every open one with 1001 (going away)
// and waits until each has released its room seat and media.
func (s *Server) Close() {
	s.mu.Lock()
	s.draining = true
	open := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		open = append(open, sess)
	}
	s.mu.Unlock()
	// Tell every client the server is going away (so that it reconnects,
	// to another node if there is one), then cut whoever lingers.
	for _, sess := range open {
		sess.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(2 * time.Second):
	}
	for _, sess := range open {
		sess.abort()
	}
	<-done
}

func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if len(s.cfg.Origins) == 0 {
		u, err := url.Parse(origin)
		return err == nil && strings.EqualFold(u.Host, r.Host)
	}
	for _, o := range s.cfg.Origins {
		if strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	return false
}

// errorCode maps an error from the domain, admission, the media plane or
// token verification to its protocol code. It is the one place where that
// happens.
func errorCode(err error) string {
	var pe *protocolError
	var je *schedule.JoinError
	switch {
	case errors.As(err, &pe):
		return pe.code
	case errors.As(err, &je):
		if je.Code == schedule.CodeCancelled {
			return protocol.CodeTooLate // the session will not take place
		}
		return je.Code
	case errors.Is(err, token.ErrUnauthorized), errors.Is(err, admission.ErrInvitationUsed):
		return protocol.CodeUnauthorized
	case errors.Is(err, sfu.ErrTooManyTracks):
		return protocol.CodeTooManyTracks
	case errors.Is(err, sfu.ErrTooManyCandidates):
		return protocol.CodeTooManyCandidates
	case errors.Is(err, sfu.ErrTooManyOffers):
		return protocol.CodeTooManyRenegotiations
	case errors.Is(err, sfu.ErrBadSDP), errors.Is(err, admission.ErrBadRoom):
		return protocol.CodeBadMessage
	case errors.Is(err, admission.ErrBlocked), errors.Is(err, rooms.ErrForbidden), errors.Is(err, rooms.ErrNotHost):
		return protocol.CodeForbidden
	case errors.Is(err, admission.ErrRemoved):
		return protocol.CodeRemoved
	case errors.Is(err, rooms.ErrNotFound), errors.Is(err, schedule.ErrNotFound), errors.Is(err, attendance.ErrNoSegment):
		return protocol.CodeNotFound
	case errors.Is(err, rooms.ErrRoomFull):
		return protocol.CodeRoomFull
	case errors.Is(err, rooms.ErrLocked):
		return protocol.CodeLocked
	case errors.Is(err, rooms.ErrNotAdmitted):
		return protocol.CodeNotAdmitted
	case errors.Is(err, rooms.ErrEnded):
		return protocol.CodeEnded
	case errors.Is(err, rooms.ErrNotEnrolled):
		return protocol.CodeNotEnrolled
	case errors.Is(err, rooms.ErrChatOff):
		return protocol.CodeChatOff
	case errors.Is(err, rooms.ErrBadCheckIn):
		return protocol.CodeBadCheckIn
	case errors.Is(err, telehealth.ErrCheckInRequired):
		return protocol.CodeCheckInRequired
	case errors.Is(err, telehealth.ErrConsentRequired):
		return protocol.CodeConsentRequired
	case errors.Is(err, telehealth.ErrNoConsent):
		return protocol.CodeNotFound
	case errors.Is(err, telehealth.ErrStaleConsent):
		return protocol.CodeBadMessage
	case errors.Is(err, rooms.ErrNoBreakouts):
		return protocol.CodeNoBreakouts
	case errors.Is(err, rooms.ErrBadGroup):
		return protocol.CodeBadGroup
	case errors.Is(err, rooms.ErrScreenOff):
		return protocol.CodeScreenOff
	case errors.Is(err, rooms.ErrScreenBusy):
		return protocol.CodeScreenBusy
	case errors.Is(err, schedule.ErrInvalid), errors.Is(err, attendance.ErrTargets), errors.Is(err, audit.ErrInvalid),
		errors.Is(err, attendance.ErrAmend), errors.Is(err, attendance.ErrInvalid):
		return protocol.CodeBadMessage
	}
	return protocol.CodeInternal
}

// protocolError is an error that already knows its code: a refusal the
// edge itself decides (a malformed message or body).
type protocolError struct {
	code string
	msg  string
}

func (e *protocolError) Error() string { return e.msg }

func errorf(code, msg string) error { return &protocolError{code: code, msg: msg} }

// refuse is errorf with a format.
func refuse(code, format string, args ...any) error {
	return &protocolError{code: code, msg: fmt.Sprintf(format, args...)}
}
