// Package rooms is the domain core: room kinds and their capacity, roles and
// what they may do, the waiting room, moderation, and the room events that
// attendance and audit listen to. It knows nothing of websockets or media.
package rooms

import (
	"errors"
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
// from. When the same person is admitted again on another connection, a
// connection whose last sign of life was a packet (media, or RTCP about
// the media it receives) and has been silent for more than evidenceSlack
// (they stopped: media and reports flow without pause while a client
// runs), or any other silent for SilentAfter (longer than the pings'
// spacing), is taken to be dead and leaves at its last evidence.
type Heard interface {
	// LastHeard is the latest of its last packet, message and pong.
	LastHeard() time.Time
	// LastPacket is its last media or RTCP packet; zero if it has sent
	// none.
	LastPacket() time.Time
}

// evidenceSlack is how long a leaving connection must have been silent
// before its time ends at its last evidence rather than now: shorter gaps
// are the ordinary spacing of packets, messages and pongs.
const evidenceSlack = 5 * time.Second

// SilentAfter is how long without a sign of life marks an admitted
// connection that sends no packets (no media, no RTCP) as dead once its
// person comes back on another one: longer than the 15 s between the
// server's pings. One that sends them is dead once silent for more than
// evidenceSlack.
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
