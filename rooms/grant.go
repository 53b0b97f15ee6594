package rooms

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// AnyRoom is the room of a therapist's or staff member's token that is not
// for one session: a therapist may open or join any room of the program
// with it, staff may use the staff API. It is never a room itself.
const AnyRoom = "*"

// Ref names one room: a room belongs to exactly one program, so its
// identity is the pair. Two programs may use the same room id and never
// meet.
type Ref struct {
	Program string
	ID      string
}

// String is the room's key in memory, in Redis keys and in the media
// plane: "program/id". Neither part may contain "/" (see ValidRoomID).
func (r Ref) String() string { return r.Program + "/" + r.ID }

// ParseRef reads a Ref written by String.
func ParseRef(s string) (Ref, error) {
	program, id, ok := strings.Cut(s, "/")
	if !ok || program == "" || id == "" {
		return Ref{}, fmt.Errorf("bad room reference %q", s)
	}
	return Ref{Program: program, ID: id}, nil
}

// idGrammar is what program and room ids look like: a letter or digit,
// then letters, digits, "_", "-" or "."; at most 128 characters in all
// (programs: 64). It keeps ids safe in Redis keys, URLs, logs and file
// names.
var idGrammar = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// maxProgramID is the longest program id (the schedule's and the audit
// trail's limit).
const maxProgramID = 64

// ErrBadID is wrapped by ValidRoomID and ValidProgramID.
var ErrBadID = errors.New("bad id")

// ValidRoomID checks a room id against the one grammar of docs/protocol.md:
// 1 to 128 characters, a letter or digit first, then letters, digits, "_",
// "-" or ".". "*" (AnyRoom) is never a room.
func ValidRoomID(id string) error {
	if !idGrammar.MatchString(id) {
		return fmt.Errorf("room %.40q: %w: want 1-128 letters, digits, '_', '-' or '.', starting with a letter or digit", id, ErrBadID)
	}
	return nil
}

// ValidProgramID checks a program id against the same grammar, at most 64
// characters.
func ValidProgramID(id string) error {
	if !idGrammar.MatchString(id) || len(id) > maxProgramID {
		return fmt.Errorf("program %.40q: %w: want 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit", id, ErrBadID)
	}
	return nil
}

// Grant is what one verified token allows: made once from the token's
// claims, it is the one authority every websocket action and every HTTP
// route asks. It never changes after it is made.
type Grant struct {
	Program string // the program everything the bearer does is in
	Sub     string // stable person id
	Name    string // display name
	Role    Role
	// Room is the one room the token is for, or AnyRoom.
	Room string
	// Kind is the kind of ad-hoc room a therapist opens (empty: group).
	Kind Kind
	// Cohort, on a therapist's grant, restricts the ad-hoc room they open.
	Cohort string
	// Cohorts are the cohorts a client's token names (the enrollment wins
	// in scheduled sessions).
	Cohorts []string
	// Invitation is set for a single-use family invitation.
	Invitation *Invitation
}

// Invitation is the single-use part of a family member's grant.
type Invitation struct {
	JTI     string // consumed on first use
	Expires int64  // unix seconds; the consumption is kept until then
}

// Permission is what a route or a message asks the grant for.
type Permission string

// The permissions of the HTTP API and the websocket protocol. Each route
// and each message names exactly one (signaling's route and action
// tables); Grant.May answers it.
const (
	// PermJoin: join a room's media (the target's Program and Room).
	PermJoin Permission = "join"
	// PermInvite: create a family invitation for a room of the program
	// (the room then checks that the inviter is its host or co-therapist).
	PermInvite Permission = "invite"
	// PermBlock: block or unblock a person program-wide.
	PermBlock Permission = "block"
	// PermReadAttendance: read attendance of the program, or (a client)
	// their own (the target's Sub).
	PermReadAttendance Permission = "read_attendance"
	// PermAmendAttendance: record why a client missed a session and
	// correct the attendance record (new events, never edits).
	PermAmendAttendance Permission = "amend_attendance"
	// PermManageSchedule: change the program's schedule and enrollment.
	PermManageSchedule Permission = "manage_schedule"
	// PermBook: book, list and cancel individual and family sessions: the
	// program's schedule managers, or a therapist for sessions they run
	// (the target's Sub is the therapist; empty when not yet known).
	PermBook Permission = "book"
	// PermReadAudit: read the program's audit trail.
	PermReadAudit Permission = "read_audit"
	// PermSelf: the bearer's own sessions, in their program.
	PermSelf Permission = "self"
	// PermCalendar: a client's own calendar feed address.
	PermCalendar Permission = "calendar"
	// PermCheck: the join page's connectivity check, for anyone whose token
	// may join a session's media.
	PermCheck Permission = "check"
	// PermLink: the join page asks whether its own link still works
	// before it turns the camera on; any bearer of a token of the program
	// may ask about that token, and a token that does not verify is
	// answered only "invalid".
	PermLink Permission = "link"
	// PermConsent: a client acknowledges their program's telehealth
	// consent, for themself.
	PermConsent Permission = "consent"
	// PermSecret: a route whose secret path is the credential (the
	// calendar feed); no token.
	PermSecret Permission = "secret"
)

// Target is what a permission is asked about: the program of the path
// (empty: the grant's own), a room and a person where they matter.
type Target struct {
	Program string
	Room    string
	Sub     string
}

// ErrOtherProgram is the refusal of anything in another program.
var ErrOtherProgram = fmt.Errorf("%w: that belongs to another program", ErrForbidden)

// May answers whether the grant allows p on t, with nil or an error that
// wraps ErrForbidden and says why. It is the one place that answers "may".
func (g Grant) May(p Permission, t Target) error {
	if t.Program == "" {
		t.Program = g.Program
	}
	if p == PermSecret {
		return nil
	}
	if g.Program == "" || t.Program != g.Program {
		return ErrOtherProgram
	}
	deny := func(why string) error { return fmt.Errorf("%w: %s", ErrForbidden, why) }
	if !g.Role.Valid() {
		return deny("unknown role")
	}
	switch p {
	case PermJoin:
		switch {
		case t.Room == "" || t.Room == AnyRoom:
			return deny("name a room")
		case g.Role == RoleStaff && g.Room == AnyRoom:
			return deny("a staff token for any room is for the staff API only")
		case g.Room == t.Room, g.Room == AnyRoom && g.Role == RoleTherapist:
			return nil
		}
		return deny("the token is for another room")
	case PermInvite:
		if !g.Role.Can(ActInvite) {
			return deny("only a therapist of this session may invite")
		}
		if g.Room != AnyRoom && g.Room != t.Room {
			return deny("the token is for another room")
		}
		return nil
	case PermBlock:
		if g.Role.Can(ActAdmit) || g.Role.Can(ActManageSchedule) {
			return nil
		}
		return deny("only therapists and staff of this program may block")
	case PermReadAttendance:
		if g.Role.Can(ActReadAttendance) {
			return nil
		}
		if g.Role == RoleClient && t.Sub != "" && t.Sub == g.Sub {
			return nil
		}
		return deny("attendance is for the program's therapists and staff; a client reads only their own")
	case PermAmendAttendance:
		if g.Role.Can(ActAmendAttendance) {
			return nil
		}
		return deny("only staff of this program may record absences and corrections")
	case PermManageSchedule:
		if g.Role.Can(ActManageSchedule) {
			return nil
		}
		return deny("only staff of this program may manage its schedule")
	case PermBook:
		if g.Role.Can(ActManageSchedule) {
			return nil
		}
		if g.Role == RoleTherapist && (t.Sub == "" || t.Sub == g.Sub) {
			return nil
		}
		return deny("a therapist books, lists and cancels only sessions they run")
	case PermReadAudit:
		if g.Role.Can(ActReadAudit) {
			return nil
		}
		return deny("the audit trail is for the program's staff")
	case PermSelf:
		return nil
	case PermLink:
		return nil
	case PermCheck:
		if g.Role == RoleStaff && g.Room == AnyRoom {
			return deny("a staff token for any room is for the staff API only")
		}
		return nil
	case PermConsent:
		if g.Role == RoleClient {
			return nil
		}
		return deny("only clients acknowledge the telehealth consent")
	case PermCalendar:
		if g.Role == RoleClient {
			return nil
		}
		return deny("calendar feeds are for clients")
	}
	return deny(fmt.Sprintf("unknown permission %q", p))
}

// Manager reports whether the grant manages the program's schedule (as
// opposed to a therapist acting on their own bookings).
func (g Grant) Manager() bool { return g.Role.Can(ActManageSchedule) }

// Can reports whether the grant's role may do a at all, for the messages of
// a session (the room's host rule then decides whom to).
func (g Grant) Can(a Action) bool { return g.Role.Can(a) }
