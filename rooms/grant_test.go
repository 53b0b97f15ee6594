package rooms

import (
	"errors"
	"strings"
	"testing"
)

// TestRoomGrammar: the one grammar of room and program ids.
func TestRoomGrammar(t *testing.T) {
	for _, ok := range []string{"a", "group-1", "example-day-relapse-prevention-20261130", "Room_2.b", strings.Repeat("r", 128)} {
		if err := ValidRoomID(ok); err != nil {
			t.Errorf("ValidRoomID(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "a/b", "../etc", "-a", ".a", "a b", "a:b", "ä", strings.Repeat("r", 129), "a\n"} {
		if err := ValidRoomID(bad); !errors.Is(err, ErrBadID) {
			t.Errorf("ValidRoomID(%q) accepted", bad)
		}
	}
	if ValidProgramID(strings.Repeat("p", 64)) != nil || ValidProgramID(strings.Repeat("p", 65)) == nil {
		t.Error("program ids are 1 to 64 characters")
	}
}

// TestGrantOtherProgram: no permission reaches into another program, for
// any role; PermSecret asks for no program at all.
func TestGrantOtherProgram(t *testing.T) {
	perms := []Permission{PermJoin, PermInvite, PermBlock, PermReadAttendance, PermManageSchedule, PermBook, PermReadAudit, PermSelf, PermCalendar}
	for _, role := range []Role{RoleTherapist, RoleClient, RoleFamily, RoleStaff} {
		g := Grant{Program: "a", Sub: "s", Role: role, Room: AnyRoom}
		if role == RoleClient || role == RoleFamily {
			g.Room = "r1"
		}
		for _, p := range perms {
			if err := g.May(p, Target{Program: "b", Room: "r1", Sub: "s"}); !errors.Is(err, ErrForbidden) {
				t.Errorf("%s may %s in another program: %v", role, p, err)
			}
		}
		if err := g.May(PermSecret, Target{Program: "b"}); err != nil {
			t.Errorf("%s: the secret route: %v", role, err)
		}
	}
	if err := (Grant{Role: RoleStaff, Room: AnyRoom}).May(PermReadAudit, Target{}); !errors.Is(err, ErrForbidden) {
		t.Error("a grant without a program reads an audit trail")
	}
}
