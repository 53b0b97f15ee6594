// Package protocol holds the signaling wire format, version 1: the JSON
// messages exchanged over the /v1/signal websocket, their type names and the
// error codes. The server, the Go client and the tests share it; the browser
// client mirrors it in web/js/protocol.js. docs/protocol.md documents it.
package protocol

import (
	"encoding/json"
	"time"
)

// Version is the protocol version a join carries in "v".
const Version = 1

// MaxFrame is the largest text frame the server reads (256 KiB).
const MaxFrame = 256 << 10

// Message types sent by clients.
const (
	TypeJoin      = "join"
	TypeOffer     = "offer"
	TypeAnswer    = "answer"
	TypeCandidate = "candidate"
	TypeMedia     = "media"
	TypeHand      = "hand"
	TypeLayer     = "layer"
	TypeAdmit     = "admit"
	TypeDeny      = "deny"
	TypeMute      = "mute"
	TypeRemove    = "remove"
	TypeLock      = "lock"
	TypeEnd       = "end"
	TypeHost      = "host" // hand the host role to another therapist
	TypeAutoAdmit = "auto_admit"
	// Chat: a message to the room (or, private, to its therapists); a
	// therapist's removal of one; chat on or off for clients and family.
	TypeChat        = "chat"
	TypeChatRemove  = "chat_remove"
	TypeChatEnabled = "chat_enabled"
	// Screen sharing: start sharing the stream named, stop a share (your
	// own, or a therapist another's), let clients and family share or
	// not; the spotlight: one participant large for everyone.
	TypeScreenStart   = "screen_start"
	TypeScreenStop    = "screen_stop"
	TypeScreenAllowed = "screen_allowed"
	TypeSpotlight     = "spotlight"
	TypeLeave         = "leave"
	TypePing          = "ping"
)

// Breakout rooms, sent by therapists: split the admitted clients into
// breakout rooms (evenly or by hand, with an optional timer), move one
// person, visit a breakout (the therapist themself), bring everyone back.
const (
	TypeBreakoutOpen  = "breakout_open"
	TypeBreakoutMove  = "breakout_move"
	TypeBreakoutVisit = "breakout_visit"
	TypeBreakoutClose = "breakout_close"
)

// ClientTypes are every message type a client may send, in the order of
// docs/protocol.md.
var ClientTypes = []string{
	TypeJoin, TypeOffer, TypeAnswer, TypeCandidate, TypeMedia, TypeHand, TypeLayer,
	TypeAdmit, TypeDeny, TypeMute, TypeRemove, TypeLock, TypeEnd, TypeHost, TypeAutoAdmit,
	TypeChat, TypeChatRemove, TypeChatEnabled,
	TypeBreakoutOpen, TypeBreakoutMove, TypeBreakoutVisit, TypeBreakoutClose,
	TypeScreenStart, TypeScreenStop, TypeScreenAllowed, TypeSpotlight,
	TypeLeave, TypePing,
}

// Message types sent by the server (offer, answer and candidate are shared).
const (
	TypeWaiting            = "waiting"
	TypeJoined             = "joined"
	TypeParticipantJoined  = "participant_joined"
	TypeParticipantUpdated = "participant_updated"
	TypeParticipantLeft    = "participant_left"
	TypeWaitingList        = "waiting_list"
	TypeMuted              = "muted"
	TypeRemoved            = "removed"
	TypeEnded              = "ended"
	TypeRedirect           = "redirect"
	TypeRoomUpdated        = "room_updated" // the room's lock state changed
	TypeChatRemoved        = "chat_removed" // a therapist removed a chat message
	TypeTurnedAway         = "turned_away"  // therapists: someone was refused because the room is locked or full
	TypeBreakout           = "breakout"     // the breakout rooms changed: the layout after the change
	TypeError              = "error"
	TypePong               = "pong"
	// TypeEncodings tells a publisher which simulcast layers of one of its
	// videos to send and which to stop encoding: nobody watches them.
	TypeEncodings = "encodings"
)

// PeerConnection names carried in "pc".
const (
	PCPublish   = "publish"
	PCSubscribe = "subscribe"
)

// Error codes carried in an error message's "code".
const (
	CodeBadMessage   = "bad_message"
	CodeUnknownType  = "unknown_type"
	CodeNotJoined    = "not_joined"
	CodeNotAdmitted  = "not_admitted"
	CodeTooLarge     = "too_large"
	CodeJoinTimeout  = "join_timeout"
	CodeUnauthorized = "unauthorized"
	CodeForbidden    = "forbidden"
	CodeRoomFull     = "room_full"
	CodeLocked       = "locked"
	CodeRemoved      = "removed"
	CodeNotEnrolled  = "not_enrolled"
	CodeWrongTrack   = "wrong_track"
	CodeTooEarly     = "too_early"
	CodeTooLate      = "too_late"
	CodeEnded        = "ended"
	CodeNotFound     = "not_found"
	CodeRateLimited  = "rate_limited"
	CodeSlowDown     = "slow_down" // too many chat messages: the socket stays open
	CodeChatOff      = "chat_off"  // a therapist turned chat off
	// CodeScreenOff: clients and family share only once a therapist let
	// them (screen_allowed).
	CodeScreenOff = "screen_off"
	// CodeScreenBusy: someone else shares; only the host's share replaces
	// another.
	CodeScreenBusy = "screen_busy"
	CodeInternal   = "internal"
	// CodeReplaced closes a person's oldest socket when they open more
	// than the node allows (IOP_SOCKETS_PER_PERSON).
	CodeReplaced = "replaced"
	// CodeMoved closes a person's connection to a session when they join
	// another one: a person is in one room at a time.
	CodeMoved = "moved"
	// CodeTooManyConnections refuses a socket from an address that holds
	// too many sockets that have not joined (IOP_UNJOINED_PER_ADDR).
	CodeTooManyConnections = "too_many_connections"
	// CodeTooManyJoins answers a join from an address over its join rate
	// (IOP_JOIN_RATE, IOP_JOIN_BURST).
	CodeTooManyJoins = "too_many_joins"
	// CodeConsentRequired refuses a client's join until they have
	// acknowledged the program's current telehealth consent.
	CodeConsentRequired = "consent_required"
	// CodeCheckInRequired refuses a client's join without the check-in
	// the program asks for at every session.
	CodeCheckInRequired = "checkin_required"
	// CodeBadCheckIn refuses a malformed check-in (or one from anyone but
	// a client); the message names the field.
	CodeBadCheckIn = "bad_checkin"
)

// Error codes of breakout rooms: CodeNoBreakouts refuses a move, visit or
// close while no breakout rooms are open; CodeBadGroup a breakout number
// outside 0..rooms.
const (
	CodeNoBreakouts = "no_breakouts"
	CodeBadGroup    = "bad_group"
	// CodeNodeFull answers a join when this node already carries
	// IOP_MAX_PARTICIPANTS people (waiting or admitted).
	CodeNodeFull = "node_full"
	// CodeTooManyTracks refuses a publish offer that sends more tracks
	// than IOP_TRACKS_PER_PERSON.
	CodeTooManyTracks = "too_many_tracks"
	// CodeTooManyCandidates refuses a candidate beyond
	// IOP_CANDIDATES_PER_PC for one PeerConnection and description.
	CodeTooManyCandidates = "too_many_candidates"
	// CodeTooManyRenegotiations refuses a publish offer beyond
	// IOP_RENEGOTIATIONS_PER_MIN.
	CodeTooManyRenegotiations = "too_many_renegotiations"
)

// Reasons carried in participant_left.
const (
	ReasonLeft    = "left"
	ReasonDropped = "dropped"
	ReasonRemoved = "removed"
)

// Candidate is an RTCIceCandidateInit as browsers send it.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// ClientMessage is any message a client sends; which fields matter depends
// on Type (see docs/protocol.md).
type ClientMessage struct {
	Type string `json:"type"`
	ID   string `json:"id,omitempty"`

	// join
	V      int    `json:"v,omitempty"`
	Token  string `json:"token,omitempty"`
	Room   string `json:"room,omitempty"`
	Resume string `json:"resume,omitempty"`
	// CheckIn is a client's check-in for this session.
	CheckIn *CheckIn `json:"checkin,omitempty"`

	// offer, answer, candidate
	PC        string     `json:"pc,omitempty"`
	SDP       string     `json:"sdp,omitempty"`
	Candidate *Candidate `json:"candidate,omitempty"`

	// media
	Audio *bool `json:"audio,omitempty"`
	Video *bool `json:"video,omitempty"`
	// hand
	Raised *bool `json:"raised,omitempty"`
	// layer, admit, deny, mute, remove, host
	Participant string `json:"participant,omitempty"`
	Quality     string `json:"quality,omitempty"`
	Kind        string `json:"kind,omitempty"`
	Reason      string `json:"reason,omitempty"`
	// lock
	Locked *bool `json:"locked,omitempty"`
	// auto_admit
	AutoAdmit *bool `json:"auto_admit,omitempty"`
	// chat: the text, and whether it goes to the therapists only
	Text    string `json:"text,omitempty"`
	Private bool   `json:"private,omitempty"`
	// chat_remove
	MessageID string `json:"message_id,omitempty"`
	// chat_enabled
	ChatEnabled *bool `json:"chat_enabled,omitempty"`
	// breakout_open: how many breakout rooms, an optional timer in
	// seconds, and (by hand) participant id -> breakout 0..rooms.
	Rooms   int            `json:"rooms,omitempty"`
	Seconds int            `json:"seconds,omitempty"`
	Assign  map[string]int `json:"assign,omitempty"`
	// breakout_move, breakout_visit: the breakout, 0 for the main room.
	Group *int `json:"group,omitempty"`
	// screen_start: the id of the MediaStream the screen's tracks are
	// published in (the msid of the publish offer)
	Stream string `json:"stream,omitempty"`
	// screen_allowed
	ScreenAllowed *bool `json:"screen_allowed,omitempty"`
	// ping
	T json.RawMessage `json:"t,omitempty"`
}

// CheckIn is what a client confirms before each session: location (a US
// state or territory code, or "other" with other saying where), whether
// they are in a private place, and a callback phone. Only the room's
// therapists and staff receive it.
type CheckIn struct {
	Location string `json:"location"`
	Other    string `json:"other,omitempty"`
	Private  bool   `json:"private"`
	Phone    string `json:"phone"`
}

// Room describes the room a participant is in.
type Room struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Title  string `json:"title"`
	Locked bool   `json:"locked"`
	// Host is the participant id of the session's host while admitted.
	Host string `json:"host,omitempty"`
	// AutoAdmit: clients and family come in without waiting while a
	// therapist is present.
	AutoAdmit bool `json:"auto_admit"`
	// Chat: clients and family may chat.
	Chat bool `json:"chat"`
	// Breakout is the breakout layout while breakout rooms are open.
	Breakout *Breakout `json:"breakout,omitempty"`
	// Screen is the screen share on now, if any.
	Screen *Screen `json:"screen,omitempty"`
	// ScreenAllowed: clients and family may share their screen.
	ScreenAllowed bool `json:"screen_allowed"`
	// Spotlight is the participant shown large for everyone, if any.
	Spotlight string `json:"spotlight,omitempty"`
}

// Breakout is the breakout layout: how many breakout rooms are open, when
// the timer brings everyone back (absent: no timer), and which admitted
// participant is in which breakout; those not listed are in the main room.
type Breakout struct {
	Rooms  int            `json:"rooms"`
	Ends   time.Time      `json:"ends,omitzero"`
	Groups map[string]int `json:"groups"`
}

// Screen is a room's screen share: who shares, and the id of the stream
// their screen reaches the others in ("<participant>~screen"; their camera
// and microphone come in the stream "<participant>").
type Screen struct {
	Participant string `json:"participant"`
	Stream      string `json:"stream"`
}

// Participant describes an admitted participant to the others.
type Participant struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Role  string `json:"role"`
	Audio bool   `json:"audio"`
	Video bool   `json:"video"`
	Hand  bool   `json:"hand"`
	// Transport is how the participant's media reaches the server: "udp",
	// "tcp" or "relay"; absent until it has connected.
	Transport string `json:"transport,omitempty"`
	// CheckIn is a client's check-in, to therapists and staff only.
	CheckIn *CheckIn `json:"checkin,omitempty"`
	// Group is the breakout room the participant is in; absent: the main
	// room.
	Group int `json:"group,omitempty"`
}

// Person is a participant's identity as shown in the joined message's "you"
// and the waiting list.
type Person struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
	// CheckIn is a waiting client's check-in, in a therapist's waiting
	// list.
	CheckIn *CheckIn `json:"checkin,omitempty"`
}

// ICEServer is an RTCIceServer for the client's PeerConnections.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// NextSession tells a refused person when and where to come instead.
type NextSession struct {
	Room       string    `json:"room"`
	Title      string    `json:"title"`
	Kind       string    `json:"kind"`
	Start      time.Time `json:"start"`
	End        time.Time `json:"end"`
	StartLocal time.Time `json:"start_local"`
	JoinOpens  time.Time `json:"join_opens"`
	TimeZone   string    `json:"time_zone"`
}

// ServerMessage is any message the server sends; which fields are set
// depends on Type.
type ServerMessage struct {
	Type string `json:"type"`
	Re   string `json:"re,omitempty"`

	// joined, waiting
	You          *Person       `json:"you,omitempty"`
	Room         *Room         `json:"room,omitempty"`
	Participants []Participant `json:"participants,omitempty"`
	ICEServers   []ICEServer   `json:"ice_servers,omitempty"`
	Resume       string        `json:"resume,omitempty"`
	Position     int           `json:"position,omitempty"`
	Waiting      []Person      `json:"waiting,omitempty"`
	Participant  *Participant  `json:"participant,omitempty"`

	// offer, answer, candidate
	PC        string     `json:"pc,omitempty"`
	SDP       string     `json:"sdp,omitempty"`
	Candidate *Candidate `json:"candidate,omitempty"`
	// EndOfCandidates makes a candidate message carry "candidate": null.
	EndOfCandidates bool `json:"-"`

	// participant_left
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason,omitempty"`
	// muted
	Kind string `json:"kind,omitempty"`
	By   string `json:"by,omitempty"`
	// redirect
	URL string `json:"url,omitempty"`
	// breakout: the layout after the change (absent once everyone is
	// back) and what changed: open, move, visit or close.
	Breakout *Breakout `json:"breakout,omitempty"`
	Change   string    `json:"change,omitempty"`
	// chat, chat_removed
	MessageID string    `json:"message_id,omitempty"`
	From      *Person   `json:"from,omitempty"`
	Text      string    `json:"text,omitempty"`
	Private   bool      `json:"private,omitempty"`
	At        time.Time `json:"at,omitzero"`
	// error
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Next is the person's next session, with too_early, too_late,
	// wrong_track and not_enrolled when one is known.
	Next *NextSession `json:"next,omitempty"`
	// pong
	T json.RawMessage `json:"t,omitempty"`
	// encodings: the publish media section and the rids of its layers
	Mid    string   `json:"mid,omitempty"`
	Active []string `json:"active,omitempty"`
	Paused []string `json:"paused,omitempty"`
}

// MarshalJSON writes the fields every message of its type must carry even
// when empty: the participants and ice_servers lists of joined, the waiting
// list of waiting_list, both lists of encodings, and a null candidate for
// the end of gathering.
func (m ServerMessage) MarshalJSON() ([]byte, error) {
	type plain ServerMessage
	switch m.Type {
	case TypeJoined:
		return json.Marshal(struct {
			plain
			Participants []Participant `json:"participants"`
			ICEServers   []ICEServer   `json:"ice_servers"`
		}{plain(m), nonNil(m.Participants), nonNil(m.ICEServers)})
	case TypeWaitingList:
		return json.Marshal(struct {
			plain
			Waiting []Person `json:"waiting"`
		}{plain(m), nonNil(m.Waiting)})
	case TypeEncodings:
		return json.Marshal(struct {
			plain
			Active []string `json:"active"`
			Paused []string `json:"paused"`
		}{plain(m), nonNil(m.Active), nonNil(m.Paused)})
	case TypeCandidate:
		if m.EndOfCandidates || m.Candidate == nil {
			return json.Marshal(struct {
				plain
				Candidate *Candidate `json:"candidate"`
			}{plain: plain(m)})
		}
	}
	return json.Marshal(plain(m))
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
