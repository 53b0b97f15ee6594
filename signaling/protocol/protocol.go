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
	TypeLeave       = "leave"
	TypePing        = "ping"
)

// ClientTypes are every message type a client may send, in the order of
// docs/protocol.md.
var ClientTypes = []string{
	TypeJoin, TypeOffer, TypeAnswer, TypeCandidate, TypeMedia, TypeHand, TypeLayer,
	TypeAdmit, TypeDeny, TypeMute, TypeRemove, TypeLock, TypeEnd, TypeHost, TypeAutoAdmit,
	TypeChat, TypeChatRemove, TypeChatEnabled, TypeLeave, TypePing,
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
	TypeError              = "error"
	TypePong               = "pong"
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
	CodeInternal     = "internal"
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
	// ping
	T json.RawMessage `json:"t,omitempty"`
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
}

// Person is a participant's identity as shown in the joined message's "you"
// and the waiting list.
type Person struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
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
}

// MarshalJSON writes the fields every message of its type must carry even
// when empty: the participants and ice_servers lists of joined, the waiting
// list of waiting_list, and a null candidate for the end of gathering.
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
