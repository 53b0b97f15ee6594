package rooms

// room.go holds the Room type, its fields, what it reports of itself, and
// its schedule.

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"sync"
	"time"
)

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
