package rooms

import (
	"fmt"
	"strconv"
	"strings"
)

// Role is what a person is in a program.
type Role string

// The roles of docs/protocol.md (3, "Tokens") and the README's role table.
const (
	RoleTherapist Role = "therapist"
	RoleClient    Role = "client"
	RoleFamily    Role = "family"
	RoleStaff     Role = "staff"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	_, ok := permissions[r]
	return ok
}

// Staff reports whether r is program staff (therapist or staff): they never
// wait and take no seat.
func (r Role) Staff() bool { return r == RoleTherapist || r == RoleStaff }

// Action is something a role may be allowed to do.
type Action string

// The actions the server checks.
const (
	ActPublish         Action = "publish"          // send audio and video in a session
	ActSubscribe       Action = "subscribe"        // receive the others' audio and video
	ActAdmit           Action = "admit"            // admit or deny from the waiting room
	ActMute            Action = "mute"             // mute another participant
	ActRemove          Action = "remove"           // remove another participant
	ActLock            Action = "lock"             // lock or unlock the room
	ActEnd             Action = "end"              // end the session for everyone
	ActInvite          Action = "invite"           // invite family members
	ActReadAttendance  Action = "read_attendance"  // read the program's attendance
	ActManageSchedule  Action = "manage_schedule"  // change schedule and enrollment
	ActReadAudit       Action = "read_audit"       // read the program's audit trail
	ActAmendAttendance Action = "amend_attendance" // record absence reasons and corrections
	ActHandOver        Action = "hand_over"        // make another therapist the host
	ActBreakout        Action = "breakout"         // split into breakout rooms, move people, visit, bring back
	// ActScreen: share a screen without the host's leave, let clients and
	// family share, and stop another's share (the host rule decides whose).
	ActScreen Action = "screen"
	// ActSpotlight: show one speaker large for everyone.
	ActSpotlight Action = "spotlight"
)

// permissions is the one table of what each role may do; the server
// enforces it (through Grant.May and the room's host rule, mayModerate) and
// the web client only hides buttons. Clients and family act only in the
// sessions their token grants; staff join media only with a token for that
// session.
var permissions = map[Role][]Action{
	RoleTherapist: {ActPublish, ActSubscribe, ActAdmit, ActMute, ActRemove, ActLock, ActEnd, ActInvite, ActHandOver, ActReadAttendance, ActScreen, ActSpotlight, ActBreakout},
	RoleClient:    {ActPublish, ActSubscribe},
	RoleFamily:    {ActPublish, ActSubscribe},
	RoleStaff:     {ActPublish, ActSubscribe, ActReadAttendance, ActManageSchedule, ActReadAudit, ActAmendAttendance},
}

// Can reports whether role r may do a.
func (r Role) Can(a Action) bool {
	for _, x := range permissions[r] {
		if x == a {
			return true
		}
	}
	return false
}

// Kind is the kind of therapy session a room holds.
type Kind string

// The room kinds of docs/protocol.md (4.4, "Rooms, seats and the waiting room").
const (
	KindGroup         Kind = "group"
	KindIndividual    Kind = "individual"
	KindFamily        Kind = "family"
	KindComplementary Kind = "complementary"
	KindSupport       Kind = "support"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	_, ok := DefaultPolicies()[k]
	return ok
}

// Policy is a room kind's capacity. Therapists and staff never count.
type Policy struct {
	MaxClients int // the next client is refused with room_full
	MaxFamily  int // invited family members
	MinClients int // recommended minimum, for the schedule's warnings
}

// Policies holds the policy of each kind; a program may override them.
type Policies map[Kind]Policy

// DefaultPolicies returns the numbers of docs/protocol.md (4.4): groups of 8 to 15,
// exactly one client in individual therapy, one client and up to six
// family members in family therapy, complementary and support groups under
// group rules.
func DefaultPolicies() Policies {
	return Policies{
		KindGroup:         {MaxClients: 15, MinClients: 8},
		KindIndividual:    {MaxClients: 1, MinClients: 1},
		KindFamily:        {MaxClients: 1, MaxFamily: 6, MinClients: 1},
		KindComplementary: {MaxClients: 15, MinClients: 8},
		KindSupport:       {MaxClients: 15, MinClients: 8},
	}
}

// For returns the policy of kind k (group rules for an unknown kind).
func (p Policies) For(k Kind) Policy {
	if pol, ok := p[k]; ok {
		return pol
	}
	return p[KindGroup]
}

// Cap returns how many people of role r a room of kind k seats.
func (p Policies) Cap(k Kind, r Role) int {
	pol := p.For(k)
	if r == RoleFamily {
		return pol.MaxFamily
	}
	return pol.MaxClients
}

// ParseCaps overrides client caps from "kind=n,kind=n" (IOP_ROOM_CAPS).
func (p Policies) ParseCaps(s string) error {
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 1 || !Kind(k).Valid() {
			return fmt.Errorf("room cap %q: want kind=number with a known kind", part)
		}
		pol := p[Kind(k)]
		pol.MaxClients = n
		p[Kind(k)] = pol
	}
	return nil
}

// mayModerate is the host rule of a session: actor does a to target in a
// room whose host is the person host (a sub; "" while there is none).
// Therapists moderate; the host moderates everyone but themself;
// co-therapists (the other therapists) moderate clients and family only;
// nobody acts on the host but the host. Ending the session for everyone and
// handing the host role over are the host's, or anyone's who may end while
// no host is present (hostPresent false). target is nil for actions on the
// room (lock, end).
func mayModerate(actor Participant, target *Participant, host string, hostPresent bool, a Action) error {
	if !actor.Role.Can(a) {
		return ErrForbidden
	}
	isHost := host != "" && actor.Sub == host
	switch a {
	case ActEnd, ActHandOver:
		if !isHost && hostPresent {
			return fmt.Errorf("%w: only the host may do this while present", ErrForbidden)
		}
		return nil
	}
	if target == nil || isHost {
		return nil
	}
	switch {
	case host != "" && target.Sub == host:
		return fmt.Errorf("%w: nobody moderates the host", ErrForbidden)
	case target.Role != RoleClient && target.Role != RoleFamily:
		return fmt.Errorf("%w: co-therapists moderate clients and family only", ErrForbidden)
	}
	return nil
}
