// Package rooms is the domain core: room kinds and their capacity, roles and
// what they may do, the waiting room, moderation, and the room events that
// attendance and audit listen to. It knows nothing of websockets or media.
package rooms

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Participant is one connection in a room, waiting or admitted.
type Participant struct {
	ID    string // opaque, one per connection
	Sub   string // stable person id; never shown to other clients
	Name  string
	Role  Role
	Audio bool
	Video bool
	Hand  bool
	// Cohorts a client is enrolled in, for cohort-restricted groups.
	Cohorts []string
	// Program whose attendance, schedule and access this person is in.
	Program string
	// Transport is how the person's media reaches the server (udp, tcp,
	// relay), once it has connected.
	Transport string
	// CheckIn is what a client confirmed before this session (location,
	// privacy, callback phone): for the room's therapists and staff only.
	CheckIn *CheckIn
	// Receiving is what the server receives of this connection's media
	// (Room.SetReceiving, from the media plane's packets): the evidence of
	// modality that attendance counts, where Audio and Video are what the
	// client says. The client cannot set it.
	Receiving Media
}

// Media says which kinds of media are flowing.
type Media struct{ Audio, Video bool }

// EventType names what happened in a room.
type EventType string

// Room event types. Each says who receives it.
const (
	// EventJoined: a participant was admitted (directly, or from the
	// waiting room). Its own listener gets it first with Others set (and,
	// for a therapist, Waiting).
	EventJoined EventType = "joined"
	// EventWaiting: a participant is in the waiting room; its own
	// listener gets it with Position when it arrives and whenever the
	// line moves.
	EventWaiting EventType = "waiting"
	// EventWaitingList: the waiting list changed; therapists get Waiting.
	EventWaitingList EventType = "waiting_list"
	// EventUpdated: mute, camera or hand changed; everyone admitted.
	EventUpdated EventType = "updated"
	// EventMuted: a therapist muted the participant's Kind; the
	// participant gets it (the others get EventUpdated).
	EventMuted EventType = "muted"
	// EventLeft: an admitted participant left for Reason; the others.
	EventLeft EventType = "left"
	// EventRemoved: the participant was removed or denied (Reason); only
	// the participant, who must then disconnect.
	EventRemoved EventType = "removed"
	// EventRoomUpdated: lock state or host changed (Participant: the host,
	// By: who handed over; no By when the host's connection came back);
	// everyone admitted.
	EventRoomUpdated EventType = "room_updated"
	// EventEnded: a therapist ended the session; everyone, waiting or not.
	EventEnded EventType = "ended"
	// EventChat: a chat message (Text, MessageID) from Participant; to
	// everyone admitted, or (Private) to the therapists and the sender.
	// Never stored: listeners other than the members ignore it.
	EventChat EventType = "chat"
	// EventChatRemoved: a therapist removed MessageID; everyone admitted.
	EventChatRemoved EventType = "chat_removed"
	// EventReceiving: the media the server receives from Participant
	// started or stopped (Participant.Receiving); At is the first packet of
	// a kind that started or the last of one that stopped. Listeners only
	// (attendance): the members are not told.
	EventReceiving EventType = "receiving"
	// EventTurnedAway: someone was refused at the door because the room
	// is locked or full (Reason: ReasonLocked, ReasonFull); the admitted
	// therapists, so that nobody is left outside unknown.
	EventTurnedAway EventType = "turned_away"
	// EventBreakout: the breakout rooms changed (Change: open, move,
	// visit, close; Breakout: the layout after it, nil once closed);
	// everyone admitted. See breakout.go.
	EventBreakout EventType = "breakout"
)

// RoomChange is what an EventRoomUpdated changed.
type RoomChange string

// The changes of EventRoomUpdated.
const (
	ChangeLock      RoomChange = "lock"       // locked or unlocked (Locked)
	ChangeHost      RoomChange = "host"       // handed over (Participant, By), or the host came back (no By)
	ChangeAutoAdmit RoomChange = "auto_admit" // automatic admission on or off (AutoAdmit)
	ChangeChat      RoomChange = "chat"       // chat on or off for clients and family (Chat)
	ChangeScreen    RoomChange = "screen"     // a share started or stopped, or clients may share or not (Screen)
	ChangeSpotlight RoomChange = "spotlight"  // the spotlight moved (Spotlight)
)

// Leave reasons.
const (
	ReasonLeft    = "left"
	ReasonDropped = "dropped"
	ReasonRemoved = "removed"
	ReasonDenied  = "denied"
	ReasonEnded   = "ended"
	// ReasonReplaced: a silent connection was replaced by its person's
	// new one (EventRemoved to the old connection).
	ReasonReplaced = "replaced"
	// ReasonMoved: the person joined another session (one room at a time,
	// Manager.MoveOut): this connection is taken out (EventRemoved to it,
	// EventLeft to the others).
	ReasonMoved = "moved"
	// ReasonLocked and ReasonFull say why someone was turned away.
	ReasonLocked = "locked"
	ReasonFull   = "room_full"
)

// Event is something that happened in a room, as members and listeners see it.
type Event struct {
	Type        EventType
	Program     string // the program the room belongs to
	Room        string // the room id within the program
	RoomKind    Kind
	Title       string
	Participant Participant // whom it is about
	By          Participant // the therapist who acted (mute, remove, end, admit)
	Reason      string
	Kind        string // muted: "audio" or "video"
	At          time.Time
	Others      []Participant // EventJoined to the joiner: who was already admitted
	Waiting     []Participant // EventWaitingList
	Position    int           // EventWaiting: 1 is next
	Locked      bool          // the room's lock state after the event
	AutoAdmit   bool          // whether the room lets people in without waiting
	// Change says what EventRoomUpdated changed.
	Change RoomChange
	// Chat is whether clients and family may chat (EventRoomUpdated).
	Chat bool
	// Text, MessageID and Private are a chat message's (EventChat).
	Text      string
	MessageID string
	Private   bool
	Host      string // the host's participant id, "" while absent
	// Screen is the room's screen share and Spotlight the participant
	// shown large for everyone ("" for none), after the event.
	Screen    Screen
	Spotlight string
	Ends      time.Time // a scheduled session's end; zero for an ad-hoc room
	// Resume is the secret of EventJoined to the joiner themself: with it,
	// and only with it, they come back in after a dropped connection.
	Resume string

	// Breakout is the breakout layout after the event; nil while none
	// are open.
	Breakout *Layout
}

// Listener receives room events. Calls are made in event order while the
// room is locked: implementations must return quickly and not call back
// into the room.
type Listener interface {
	RoomEvent(Event)
}

// Heard is what a listener may also tell: when its person was last heard
// from (a media packet, a message, a pong). A connection whose person has
// been silent for SilentAfter when the same person is admitted again is
// taken to be dead and leaves at its last evidence.
type Heard interface {
	LastHeard() time.Time
}

// evidenceSlack is how long a leaving connection must have been silent
// before its time ends at its last evidence rather than now: shorter gaps
// are the ordinary spacing of packets, messages and pongs.
const evidenceSlack = 5 * time.Second

// SilentAfter is how long without a sign of life marks an admitted
// connection as dead once its person comes back on another one: longer
// than the 15 s between the server's pings.
const SilentAfter = 20 * time.Second

// Errors callers branch on; signaling maps each to a protocol code.
var (
	ErrDuplicate   = errors.New("rooms: participant id already in the room")
	ErrNotFound    = errors.New("no such participant")
	ErrClosed      = errors.New("rooms: room closed")
	ErrLocked      = errors.New("the room is locked")
	ErrEnded       = errors.New("the session has ended")
	ErrForbidden   = errors.New("your role may not do this")
	ErrNotAdmitted = errors.New("you are in the waiting room")
	ErrRoomFull    = errors.New("the room is full")
	ErrNotEnrolled = errors.New("this group is for members of a cohort you are not enrolled in")
	ErrNotHost     = errors.New("the host role goes only to a therapist in the session")
	ErrChatOff     = errors.New("chat is turned off in this session")
	// ErrScreenOff: a client or family member may share only once a
	// therapist lets them.
	ErrScreenOff = errors.New("the therapist has not let clients share their screen in this session")
	// ErrScreenBusy: someone else shares now; only the host's share
	// replaces another.
	ErrScreenBusy = errors.New("someone else is sharing their screen")
)

// SeatFunc takes a seat for a client or family member in a room that seats
// cap people of their role, or fails with ErrRoomFull. The returned release
// frees it; the room calls it exactly once, when the person leaves (after
// the grace period if their connection dropped).
type SeatFunc func(cap int) (release func(), err error)

// JoinOptions are what a join brings besides the participant.
type JoinOptions struct {
	// Seat takes the person's seat: at once in a room whose kind is
	// settled, or when they are admitted into an ad-hoc room that was not
	// settled when they arrived. Nil: no seat is needed (tests, staff).
	Seat SeatFunc
	// Resume is the secret of an earlier joined, for coming back in after
	// a dropped connection without waiting again.
	Resume string
}

// Room is one therapy session: who waits, who is admitted, and its state.
type Room struct {
	ref   Ref
	kind  Kind
	title string
	m     *Manager

	mu        sync.Mutex
	members   map[string]*member
	admitted  []string // join order
	waiting   []string // arrival order
	locked    bool
	ended     bool
	closed    bool
	autoAdmit bool
	chatOff   bool // clients and family may not chat
	chatSeq   uint64
	screen    Screen // the share on now, and whether clients and family may share
	spotlight string // the participant shown large for everyone, or ""
	cohort    string
	dropped   map[string]drop // sub -> an admitted client's dropped connection
	opened    bool            // a therapist (or the schedule) settled the kind
	clientCap int             // the schedule's cap for clients; 0: the kind's
	// host is the sub of the session's host: the scheduled therapist, or
	// the first therapist in an ad-hoc room, until handed over.
	host string
	ends time.Time // a scheduled session's end; zero for an ad-hoc room

	// breakout is the open breakout rooms (nil: none); breakoutGen counts
	// openings, so that a timer of an earlier one does nothing.
	breakout    *breakouts
	breakoutGen uint64
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// drop is an admitted person's dropped connection, kept for the grace
// period.
type drop struct {
	at     time.Time
	resume string // the secret they must bring back
}

type member struct {
	p        Participant
	l        Listener
	admitted bool
	seat     SeatFunc
	release  func()    // the seat, once taken
	resume   string    // this connection's resume secret
	since    time.Time // when admitted
}

// ID returns the room id within its program.
func (r *Room) ID() string { return r.ref.ID }

// Ref returns the room's identity: its program and id.
func (r *Room) Ref() Ref { return r.ref }

// Kind returns the room kind.
func (r *Room) Kind() Kind {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.kind
}

// Title returns the room title shown to participants.
func (r *Room) Title() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.title
}

// Locked reports whether the room refuses new clients and family.
func (r *Room) Locked() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.locked
}

// OpenAs settles an ad-hoc room's kind when its first therapist arrives
// (people who came earlier waited in a room of provisional kind).
func (r *Room) OpenAs(kind Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.opened && kind.Valid() {
		r.kind = kind
	}
	r.opened = true
}

// Scheduled is what the timetable says of a room.
type Scheduled struct {
	Kind   Kind
	Title  string
	Cap    int    // client cap; 0: the kind's
	Cohort string // "" for everyone
	// Host is the first scheduled therapist; "": the first to arrive.
	Host string
	Ends time.Time // the session's scheduled end
	// AutoAdmit: the schedule lets its people in on arrival while a
	// therapist is there (a therapist may still turn it off).
	AutoAdmit bool
}

// Schedule makes the room a scheduled session: its kind, title, client cap,
// cohort, host and end come from the timetable, not from whoever arrives
// first.
func (r *Room) Schedule(s Scheduled) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.Kind.Valid() {
		r.kind = s.Kind
	}
	if s.Title != "" {
		r.title = s.Title
	}
	if !r.opened {
		r.autoAdmit = s.AutoAdmit // once, when the room opens: a therapist's choice stands after
	}
	r.clientCap, r.cohort, r.opened, r.ends = s.Cap, s.Cohort, true, s.Ends
	if r.host == "" {
		r.host = s.Host
	}
}

// Settled reports whether the room's kind is known: scheduled, or opened
// by a therapist. Until then clients and family wait without a seat.
func (r *Room) Settled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.opened
}

// Live reports whether the session is under way: a therapist is admitted
// and nobody has ended it.
func (r *Room) Live() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.ended && !r.closed && r.therapistPresentLocked()
}

// Host returns the sub of the session's host ("" before one is known).
func (r *Room) Host() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.host
}

// seatCapLocked is the kind's cap for role; 0 (no seat yet) before the kind
// is settled.
func (r *Room) seatCapLocked(role Role) int {
	if !r.opened {
		return 0
	}
	if role == RoleClient && r.clientCap > 0 {
		return r.clientCap
	}
	return r.m.policies.Cap(r.kind, role)
}

// Returning reports whether sub's admitted connection dropped within the
// grace period and resume is the secret it was given: they may come back
// in as before. A copied link without the secret is not returning.
func (r *Room) Returning(sub, resume string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.dropped[sub]
	return ok && r.m.now().Sub(d.at) <= r.m.grace && secretEqual(d.resume, resume)
}

func secretEqual(want, got string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// newSecret returns a fresh resume secret.
func newSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// seatLocked takes m's seat unless it has one or needs none; a room whose
// kind is not settled seats nobody yet.
func (r *Room) seatLocked(m *member) error {
	if m.release != nil || m.seat == nil || m.p.Role.Staff() || !r.opened {
		return nil
	}
	release, err := m.seat(r.seatCapLocked(m.p.Role))
	if err != nil {
		return err
	}
	m.release = release
	return nil
}

// releaseLocked gives m's seat back: after the grace period for a dropped
// connection (they may come back), else now. The release runs outside the
// room's lock.
func (r *Room) releaseLocked(m *member, reason string) {
	release := m.release
	m.release = nil
	switch {
	case release == nil:
	case reason == ReasonDropped && m.admitted:
		time.AfterFunc(r.m.grace, release)
	default:
		go release()
	}
}

// turnedAwayLocked tells the admitted therapists that p was refused at the
// door for reason (the room is locked or full).
func (r *Room) turnedAwayLocked(p Participant, reason string) {
	r.emitLocked(Event{Type: EventTurnedAway, Participant: p, Reason: reason}, therapists)
}

// Abandon closes the room if nobody is in it: a join that was refused after
// the room was opened for it leaves nothing behind.
func (r *Room) Abandon() { r.m.closeIfEmpty(r) }

// RestrictToCohort admits only clients and family enrolled in cohort (as
// the first therapist's token or the schedule says); "" lifts it.
func (r *Room) RestrictToCohort(cohort string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cohort = cohort
}

// enrolledLocked reports whether p may be in a cohort-restricted room.
func (r *Room) enrolledLocked(p Participant) bool {
	if r.cohort == "" || p.Role.Staff() {
		return true
	}
	for _, c := range p.Cohorts {
		if c == r.cohort {
			return true
		}
	}
	return false
}

// SetAutoAdmit lets clients and family in without waiting while a
// therapist is present (by is the host or a co-therapist): those waiting now
// are admitted at once, later arrivals on arrival, each still under the
// room's cap and cohort. Everyone admitted is told (room_updated).
func (r *Room) SetAutoAdmit(by string, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActAdmit)
	if err != nil {
		return err
	}
	r.autoAdmit = on
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Change: ChangeAutoAdmit}, allAdmitted)
	if on {
		r.admitWaitingLocked(actor.p)
	}
	return nil
}

// Join enters p into the room: therapists and staff are admitted at once;
// clients and family wait until a therapist admits them (or at once, in an
// auto-admit room with a therapist present). It reports whether p was
// admitted. l receives p's own first event (EventJoined with Others, or
// EventWaiting with Position) before Join returns, then every later event.
//
// Clients and family take their seat (opt.Seat) at once in a room whose kind
// is settled, and are refused with ErrRoomFull when the kind's cap is
// reached; in an ad-hoc room no therapist has opened yet they wait without
// one, and take it when admitted. Someone whose admitted connection dropped
// within the grace period comes back in without waiting when opt.Resume is
// the secret their joined carried.
func (r *Room) Join(p Participant, l Listener, opt JoinOptions) (admitted bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.closed:
		return false, ErrClosed
	case r.ended, !p.Role.Staff() && r.m.endedRecently(r.ref):
		return false, ErrEnded
	case r.members[p.ID] != nil:
		return false, fmt.Errorf("join %s: %w", r.ref, ErrDuplicate)
	case r.locked && !p.Role.Staff():
		r.turnedAwayLocked(p, ReasonLocked)
		return false, ErrLocked
	case !r.enrolledLocked(p):
		return false, ErrNotEnrolled
	}
	if p.Role == RoleTherapist {
		r.m.forgetEnded(r.ref) // a therapist opens the room again: a new session
	}
	m := &member{p: p, l: l, seat: opt.Seat, resume: newSecret()}
	if err := r.seatLocked(m); err != nil {
		if errors.Is(err, ErrRoomFull) {
			r.turnedAwayLocked(p, ReasonFull)
		}
		return false, err
	}
	r.members[p.ID] = m
	if p.Role == RoleTherapist && r.host == "" {
		r.host = p.Sub // the opener of an ad-hoc room, or the first of an unassigned session
	}
	if p.Role.Staff() || (r.autoAdmit && r.therapistPresentLocked()) || r.returningLocked(p.Sub, opt.Resume) {
		if err := r.admitLocked(m, Participant{}); err != nil {
			delete(r.members, p.ID)
			r.releaseLocked(m, ReasonLeft)
			return false, err
		}
		if p.Role == RoleTherapist && r.autoAdmit {
			r.admitWaitingLocked(p)
		}
		return true, nil
	}
	r.waiting = append(r.waiting, p.ID)
	r.waitingChangedLocked()
	return false, nil
}

// replaceSilentLocked takes out the admitted connections of m's person
// that have been silent for SilentAfter (the person came back on m before
// the server noticed the old one drop): each leaves as dropped at its last
// evidence, so the time between counts for nobody, and is told so that its
// socket closes.
func (r *Room) replaceSilentLocked(m *member) {
	now := r.m.now()
	for _, id := range append([]string(nil), r.admitted...) {
		old := r.members[id]
		if old == m || old.p.Sub != m.p.Sub {
			continue
		}
		h, ok := old.l.(Heard)
		if !ok {
			continue
		}
		last := h.LastHeard()
		if last.IsZero() || now.Sub(last) < r.m.silentAfter {
			continue
		}
		r.emitLocked(Event{Type: EventRemoved, Participant: old.p, Reason: ReasonReplaced}, only(old))
		r.dropLocked(old, ReasonDropped, last)
	}
}

// admitWaitingLocked admits everyone waiting who may be in the room and
// finds a seat; the others keep waiting.
func (r *Room) admitWaitingLocked(by Participant) {
	for _, w := range append([]string(nil), r.waiting...) {
		if m := r.members[w]; r.enrolledLocked(m.p) {
			_ = r.admitLocked(m, by)
		}
	}
}

// returningLocked reports whether sub was admitted and dropped within the
// grace period and brings the secret they were given: they come back in
// without waiting again. A matching secret is used up.
func (r *Room) returningLocked(sub, resume string) bool {
	d, ok := r.dropped[sub]
	if !ok || !secretEqual(d.resume, resume) {
		return false
	}
	delete(r.dropped, sub)
	return r.m.now().Sub(d.at) <= r.m.grace
}

func (r *Room) therapistPresentLocked() bool {
	for _, id := range r.admitted {
		if r.members[id].p.Role == RoleTherapist {
			return true
		}
	}
	return false
}

// admitLocked moves m into the admitted set and tells everyone; it fails
// with ErrRoomFull when m has no seat and none is free.
func (r *Room) admitLocked(m *member, by Participant) error {
	if m.admitted {
		return nil
	}
	if err := r.seatLocked(m); err != nil {
		return err
	}
	r.replaceSilentLocked(m)
	wasWaiting := r.removeWaitingLocked(m.p.ID)
	others := make([]Participant, 0, len(r.admitted))
	for _, id := range r.admitted {
		others = append(others, r.members[id].p)
	}
	m.admitted = true
	m.since = r.m.now()
	r.admitted = append(r.admitted, m.p.ID)
	self := Event{Type: EventJoined, Participant: m.p, By: by, Others: others, Resume: m.resume}
	if m.p.Role == RoleTherapist {
		self.Waiting = r.waitingLocked()
	}
	r.emitLocked(self, only(m))
	r.emitLocked(Event{Type: EventJoined, Participant: m.p, By: by}, admittedExcept(m))
	if m.p.Role == RoleTherapist && m.p.Sub == r.host && r.hostIDLocked() == m.p.ID && len(others) > 0 {
		// The host is back (or arrived after the others): everyone learns
		// their participant id as the room's host.
		r.emitLocked(Event{Type: EventRoomUpdated, Participant: m.p, Change: ChangeHost}, admittedExcept(m))
	}
	if wasWaiting {
		r.waitingChangedLocked()
	}
	return nil
}

func (r *Room) removeWaitingLocked(id string) bool {
	for i, x := range r.waiting {
		if x == id {
			r.waiting = append(r.waiting[:i], r.waiting[i+1:]...)
			return true
		}
	}
	return false
}

// waitingChangedLocked sends each waiting person their position, then the
// waiting list to the therapists.
func (r *Room) waitingChangedLocked() {
	for i, id := range r.waiting {
		m := r.members[id]
		r.emitLocked(Event{Type: EventWaiting, Participant: m.p, Position: i + 1}, only(m))
	}
	r.emitLocked(Event{Type: EventWaitingList, Waiting: r.waitingLocked()}, therapists)
}

func (r *Room) waitingLocked() []Participant {
	list := make([]Participant, 0, len(r.waiting))
	for _, id := range r.waiting {
		list = append(list, r.members[id].p)
	}
	return list
}

// WaitingList returns who waits, in arrival order.
func (r *Room) WaitingList() []Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waitingLocked()
}

// actorLocked returns the admitted member acting, if the host rule
// (mayModerate) lets them do a to target (nil for the room itself).
func (r *Room) actorLocked(by string, target *member, a Action) (*member, error) {
	m := r.members[by]
	if m == nil || !m.admitted {
		return nil, ErrNotAdmitted
	}
	var tp *Participant
	if target != nil {
		tp = &target.p
	}
	if err := mayModerate(m.p, tp, r.host, r.hostPresentLocked(), a); err != nil {
		return nil, err
	}
	return m, nil
}

// hostPresentLocked reports whether the host is admitted in the room.
func (r *Room) hostPresentLocked() bool {
	return r.host != "" && r.hostIDLocked() != ""
}

// hostIDLocked returns the participant id of the host's first admitted
// connection, or "".
func (r *Room) hostIDLocked() string {
	for _, id := range r.admitted {
		if m := r.members[id]; m.p.Sub == r.host && m.p.Role == RoleTherapist {
			return id
		}
	}
	return ""
}

// MayModerate reports whether by may do a to id (a waiting or admitted
// participant) under the host rule, and returns whom it is about, so
// that a caller can record a removal before it happens.
func (r *Room) MayModerate(by, id string, a Action) (Participant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	target := r.members[id]
	if target == nil || id == by {
		return Participant{}, ErrNotFound
	}
	if _, err := r.actorLocked(by, target, a); err != nil {
		return Participant{}, err
	}
	return target.p, nil
}

// Admit lets a waiting participant in; id "*" admits everyone waiting who
// finds a seat. Admitting one person into a full room fails with
// ErrRoomFull and leaves them waiting.
func (r *Room) Admit(by, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id == "*" {
		actor, err := r.actorLocked(by, nil, ActAdmit)
		if err != nil {
			return err
		}
		r.admitWaitingLocked(actor.p)
		return nil
	}
	m := r.members[id]
	if m == nil || m.admitted {
		return ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActAdmit)
	if err != nil {
		return err
	}
	if !r.enrolledLocked(m.p) {
		return ErrNotEnrolled
	}
	return r.admitLocked(m, actor.p)
}

// Deny turns a waiting participant away; they are told and must disconnect.
func (r *Room) Deny(by, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil || m.admitted {
		return ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActAdmit)
	if err != nil {
		return err
	}
	r.emitLocked(Event{Type: EventRemoved, Participant: m.p, By: actor.p, Reason: ReasonDenied}, only(m))
	r.removeWaitingLocked(id)
	delete(r.members, id)
	r.releaseLocked(m, ReasonDenied)
	r.waitingChangedLocked()
	return nil
}

// Mute turns off a participant's audio or video: the media plane stops
// forwarding it (the participant's listener acts on EventMuted) and everyone
// sees the new state.
func (r *Room) Mute(by, id, kind string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil || !m.admitted || id == by {
		return ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActMute)
	if err != nil {
		return err
	}
	switch kind {
	case "audio":
		m.p.Audio = false
	case "video":
		m.p.Video = false
	default:
		return fmt.Errorf("mute kind %q: %w", kind, ErrNotFound)
	}
	r.emitLocked(Event{Type: EventMuted, Participant: m.p, By: actor.p, Kind: kind}, only(m))
	r.emitLocked(Event{Type: EventUpdated, Participant: m.p, By: actor.p}, allAdmitted)
	return nil
}

// Remove takes a participant (waiting or admitted) out of the session with
// the therapist's reason; they are told and must disconnect. It returns
// whom it removed, so that the caller can bar them from rejoining.
func (r *Room) Remove(by, id, reason string) (Participant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil || id == by {
		return Participant{}, ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActRemove)
	if err != nil {
		return Participant{}, err
	}
	r.emitLocked(Event{Type: EventRemoved, Participant: m.p, By: actor.p, Reason: reason}, only(m))
	r.dropLocked(m, ReasonRemoved, time.Time{})
	return m.p, nil
}

// SetLocked locks or unlocks the room to new clients and family.
func (r *Room) SetLocked(by string, locked bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActLock)
	if err != nil {
		return err
	}
	r.locked = locked
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Change: ChangeLock}, allAdmitted)
	return nil
}

// End ends the session for everyone, waiting or admitted; they are told
// and must disconnect. The room refuses joins until it closes.
func (r *Room) End(by string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActEnd)
	if err != nil {
		return err
	}
	r.ended = true
	r.emitLocked(Event{Type: EventEnded, By: actor.p}, everyone)
	return nil
}

// HandOver makes the admitted therapist id the session's host: the host
// does it, or any therapist while the host is away.
func (r *Room) HandOver(by, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil || !m.admitted {
		return ErrNotFound
	}
	actor, err := r.actorLocked(by, m, ActHandOver)
	if err != nil {
		return err
	}
	if m.p.Role != RoleTherapist {
		return ErrNotHost
	}
	r.host = m.p.Sub
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Participant: m.p, Change: ChangeHost}, allAdmitted)
	return nil
}

// Update changes a participant's own state (mute, camera, hand). Admitted
// participants' changes are broadcast; a waiting participant's are kept
// for when they are admitted.
func (r *Room) Update(id string, change func(*Participant)) (Participant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil {
		return Participant{}, ErrNotFound
	}
	who := m.p
	change(&m.p)
	m.p.ID, m.p.Sub, m.p.Role, m.p.Name, m.p.Receiving = who.ID, who.Sub, who.Role, who.Name, who.Receiving
	if m.admitted {
		r.emitLocked(Event{Type: EventUpdated, Participant: m.p}, admittedExcept(m))
	}
	return m.p, nil
}

// SetReceiving records what the server receives of participant id's media
// from at on (kept between their admission and now). Only an admitted
// participant's media counts; listeners get EventReceiving.
func (r *Room) SetReceiving(id string, media Media, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	if m == nil || !m.admitted || m.p.Receiving == media {
		return
	}
	m.p.Receiving = media
	now := r.m.now()
	if at.IsZero() || at.After(now) {
		at = now
	}
	r.emitLocked(Event{Type: EventReceiving, Participant: m.p, At: maxTime(at, m.since)}, nobody)
}

// Person returns the participant (waiting or admitted) with id.
func (r *Room) Person(id string) (Participant, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.members[id]; m != nil {
		return m.p, true
	}
	return Participant{}, false
}

// Has reports whether an admitted participant with id is in the room.
func (r *Room) Has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[id]
	return m != nil && m.admitted
}

// Leave takes a participant out for reason (left, dropped) and tells the
// others. Leaving twice, or after removal, is harmless.
func (r *Room) Leave(id, reason string) { r.LeaveAt(id, reason, time.Time{}) }

// LeaveAt is Leave for a connection whose person was last heard from at
// (zero: now): a dropped connection's time in the room ends at its last
// evidence, not when the server noticed the drop. at is kept between the
// person's admission and now.
func (r *Room) LeaveAt(id, reason string, at time.Time) {
	r.mu.Lock()
	m := r.members[id]
	if m != nil {
		r.dropLocked(m, reason, at)
	}
	empty := len(r.members) == 0
	r.mu.Unlock()
	if empty {
		r.m.closeIfEmpty(r)
	}
}

// dropLocked takes m out for reason; at is its person's last evidence
// (zero: now), which the others' EventLeft carries when it is over
// evidenceSlack old, kept no earlier than m's admission.
func (r *Room) dropLocked(m *member, reason string, at time.Time) {
	delete(r.members, m.p.ID)
	r.releaseLocked(m, reason)
	if m.admitted && reason == ReasonDropped && !m.p.Role.Staff() {
		if r.dropped == nil {
			r.dropped = map[string]drop{}
		}
		r.dropped[m.p.Sub] = drop{at: r.m.now(), resume: m.resume}
	}
	if !m.admitted {
		r.removeWaitingLocked(m.p.ID)
		r.waitingChangedLocked()
		return
	}
	for i, x := range r.admitted {
		if x == m.p.ID {
			r.admitted = append(r.admitted[:i], r.admitted[i+1:]...)
			break
		}
	}
	e := Event{Type: EventLeft, Participant: m.p, Reason: reason}
	if now := r.m.now(); !at.IsZero() && (now.Sub(at) > evidenceSlack || reason == ReasonMoved) && !at.After(now) {
		// A move ends here exactly when the other admission began.
		e.At = maxTime(at, m.since)
	}
	r.emitLocked(e, allAdmitted)
	r.presenterLeftLocked(m)
}

// Participants returns the admitted participants in join order.
func (r *Room) Participants() []Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Participant, 0, len(r.admitted))
	for _, id := range r.admitted {
		out = append(out, r.members[id].p)
	}
	return out
}

// audience selects which members receive an event.
type audience func(*member) bool

var (
	allAdmitted = func(m *member) bool { return m.admitted }
	everyone    = func(*member) bool { return true }
	therapists  = func(m *member) bool { return m.admitted && m.p.Role == RoleTherapist }
	nobody      = func(*member) bool { return false }
)

func only(x *member) audience           { return func(m *member) bool { return m == x } }
func admittedExcept(x *member) audience { return func(m *member) bool { return m.admitted && m != x } }

// emitLocked sends e to the members the audience selects, in a stable
// order, then to the manager's listeners (attendance, audit), which see
// every event once.
func (r *Room) emitLocked(e Event, to audience) {
	e.Program, e.Room, e.RoomKind, e.Title = r.ref.Program, r.ref.ID, r.kind, r.title
	if e.At.IsZero() {
		e.At = r.m.now()
	}
	e.Locked, e.AutoAdmit, e.Chat = r.locked, r.autoAdmit, !r.chatOff
	e.Host = r.hostIDLocked()
	e.Screen, e.Spotlight = r.screen, r.spotlight
	e.Ends = r.ends
	e.Breakout = r.layoutLocked()
	for _, id := range r.admitted {
		if m := r.members[id]; to(m) {
			m.l.RoomEvent(e)
		}
	}
	for _, id := range r.waiting {
		if m := r.members[id]; to(m) {
			m.l.RoomEvent(e)
		}
	}
	if e.Type == EventChat {
		return // chat goes to the members only: never to attendance, audit or any store
	}
	if e.Others == nil || e.Type != EventJoined {
		for _, l := range r.m.listeners {
			l.RoomEvent(e)
		}
	}
}

// Manager holds the rooms of this node.
type Manager struct {
	now       func() time.Time
	listeners []Listener
	policies  Policies
	grace     time.Duration
	// silentAfter is SilentAfter, or SetPingInterval's.
	silentAfter time.Duration

	mu     sync.Mutex
	rooms  map[Ref]*Room
	pinned map[Ref]bool

	// endedMu guards ended, the rooms whose session a therapist ended and
	// when; it is taken after m.mu and r.mu, never before.
	endedMu sync.Mutex
	ended   map[Ref]time.Time
}

// EndedFor is how long after a session ended (and its room emptied) a
// client or family member who opens its link is told it ended, unless a
// therapist opens the room again first.
const EndedFor = time.Hour

// markEnded remembers that ref's session ended now.
func (m *Manager) markEnded(ref Ref) {
	m.endedMu.Lock()
	defer m.endedMu.Unlock()
	now := m.now()
	for k, at := range m.ended {
		if now.Sub(at) > EndedFor {
			delete(m.ended, k)
		}
	}
	m.ended[ref] = now
}

// endedRecently reports whether ref's session ended within EndedFor and no
// therapist has opened the room since.
func (m *Manager) endedRecently(ref Ref) bool {
	m.endedMu.Lock()
	defer m.endedMu.Unlock()
	at, ok := m.ended[ref]
	return ok && m.now().Sub(at) <= EndedFor
}

// Ended reports whether ref's session ended: it is ending now, or it ended
// within EndedFor and no therapist has opened the room since.
func (m *Manager) Ended(ref Ref) bool {
	if r := m.Get(ref); r != nil {
		r.mu.Lock()
		ended := r.ended
		r.mu.Unlock()
		if ended {
			return true
		}
	}
	return m.endedRecently(ref)
}

// forgetEnded forgets that ref's session ended: a therapist opened it again.
func (m *Manager) forgetEnded(ref Ref) {
	m.endedMu.Lock()
	defer m.endedMu.Unlock()
	delete(m.ended, ref)
}

// MoveOut takes person sub of program out of every room of this node but
// keep, waiting or admitted: they joined keep, and a person is in one room
// at a time. Each of their connections elsewhere gets EventRemoved (Reason
// ReasonMoved) and leaves at at (zero: now), the time of the other
// admission, so their time here ends where it begins there. It returns
// how many connections it took out.
func (m *Manager) MoveOut(program, sub string, keep Ref, at time.Time) int {
	n := 0
	for _, r := range m.Rooms() {
		if r.ref.Program != program || r.ref == keep {
			continue
		}
		r.mu.Lock()
		var gone []*member
		for _, x := range r.members {
			if x.p.Sub == sub {
				gone = append(gone, x)
			}
		}
		for _, x := range gone {
			r.emitLocked(Event{Type: EventRemoved, Participant: x.p, Reason: ReasonMoved}, only(x))
			r.dropLocked(x, ReasonMoved, at)
		}
		empty := len(r.members) == 0
		r.mu.Unlock()
		if empty && len(gone) > 0 {
			m.closeIfEmpty(r)
		}
		n += len(gone)
	}
	return n
}

// NewManager returns a manager whose room events also go to listeners
// (attendance, audit).
func NewManager(policies Policies, listeners ...Listener) *Manager {
	if policies == nil {
		policies = DefaultPolicies()
	}
	return &Manager{now: time.Now, listeners: listeners, policies: policies, grace: DefaultGrace, silentAfter: SilentAfter, rooms: map[Ref]*Room{}, pinned: map[Ref]bool{}, ended: map[Ref]time.Time{}}
}

// DefaultGrace is how long someone whose connection dropped keeps their seat
// and may come back in without waiting again.
const DefaultGrace = 60 * time.Second

// Grace returns the reconnect grace period.
func (m *Manager) Grace() time.Duration { return m.grace }

// Policies returns the capacity rules of each room kind.
func (m *Manager) Policies() Policies { return m.policies }

// Open returns the room ref, creating it with kind and title if it does
// not exist. A pinned room stays when it empties (the dev-mode demo room);
// others close with their last participant.
func (m *Manager) Open(ref Ref, kind Kind, title string, pinned bool) *Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.rooms[ref]
	if r == nil {
		if title == "" {
			title = ref.ID
		}
		r = &Room{ref: ref, kind: kind, title: title, m: m, members: map[string]*member{}}
		m.rooms[ref] = r
	}
	if pinned {
		m.pinned[ref] = true
	}
	return r
}

// Get returns the room ref, or nil.
func (m *Manager) Get(ref Ref) *Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[ref]
}

// Rooms returns the open rooms.
func (m *Manager) Rooms() []*Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		out = append(out, r)
	}
	return out
}

// Len returns how many rooms are open.
func (m *Manager) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms)
}

func (m *Manager) closeIfEmpty(r *Room) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rooms[r.ref] != r {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.members) != 0 {
		return
	}
	// An ended session reopens fresh next time a therapist opens it; until
	// then, for EndedFor, clients and family are told it ended rather than
	// left waiting for nobody. A pinned room stays open.
	if r.ended {
		m.markEnded(r.ref)
	}
	r.ended, r.locked, r.host = false, false, ""
	r.resetBreakoutsLocked()
	r.screen, r.spotlight = Screen{}, ""
	if m.pinned[r.ref] {
		return
	}
	r.closed = true
	delete(m.rooms, r.ref)
}

// Chat relays a chat message of the admitted participant by: to everyone
// admitted in by's group (the whole room unless breakouts are open), or
// (private) to the session's therapists, wherever they are, and by. Clients and
// family may not while chat is off. Nothing of it is kept: the room only
// numbers messages so that a therapist can remove one for everyone.
func (r *Room) Chat(by, text string, private bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.members[by]
	if m == nil || !m.admitted {
		return ErrNotAdmitted
	}
	if r.chatOff && !m.p.Role.Staff() {
		return ErrChatOff
	}
	r.chatSeq++
	e := Event{Type: EventChat, Participant: m.p, Text: text, Private: private, MessageID: fmt.Sprintf("m%d", r.chatSeq)}
	// While breakout rooms are open a message to the room reaches the
	// sender's own group.
	to := func(x *member) bool { return x.admitted && r.sameGroupLocked(x, m) }
	if private {
		to = func(x *member) bool { return x == m || (x.admitted && x.p.Role == RoleTherapist) }
	}
	r.emitLocked(e, to)
	return nil
}

// RemoveChat takes a chat message off everyone's screen (a therapist:
// the host or a co-therapist).
func (r *Room) RemoveChat(by, messageID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActMute)
	if err != nil {
		return err
	}
	r.emitLocked(Event{Type: EventChatRemoved, By: actor.p, MessageID: messageID}, allAdmitted)
	return nil
}

// SetChat turns chat on or off for clients and family (a therapist);
// everyone admitted is told.
func (r *Room) SetChat(by string, on bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	actor, err := r.actorLocked(by, nil, ActMute)
	if err != nil {
		return err
	}
	r.chatOff = !on
	r.emitLocked(Event{Type: EventRoomUpdated, By: actor.p, Change: ChangeChat}, allAdmitted)
	return nil
}

// Hosts reports whether sub is the session's host or a therapist admitted
// in it (a co-therapist): those who may invite family to it.
func (r *Room) Hosts(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sub == "" {
		return false
	}
	if r.host == sub {
		return true
	}
	for _, id := range r.admitted {
		if m := r.members[id]; m.p.Sub == sub && m.p.Role == RoleTherapist {
			return true
		}
	}
	return false
}
