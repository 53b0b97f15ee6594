package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/signaling"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// who may call each route of the API, within their own program. Every
// route of the server's table must be here, and nothing else: a route added
// without a rule fails TestRouteTable.
var routeRules = map[string][]rooms.Role{
	"POST /v1/rooms/{room}/invites":                                  {rooms.RoleTherapist},
	"PUT /v1/programs/{program}/blocks/{sub}":                        {rooms.RoleTherapist, rooms.RoleStaff},
	"DELETE /v1/programs/{program}/blocks/{sub}":                     {rooms.RoleTherapist, rooms.RoleStaff},
	"GET /v1/attendance/rooms/{room}":                                {rooms.RoleTherapist, rooms.RoleStaff},
	"GET /v1/attendance/people/{sub}/weeks/{week}":                   {rooms.RoleTherapist, rooms.RoleStaff, rooms.RoleClient}, // a client: their own
	"GET /v1/attendance/programs/{program}/weeks/{week}":             {rooms.RoleTherapist, rooms.RoleStaff},
	"GET /v1/audit/programs/{program}":                               {rooms.RoleStaff},
	"GET /v1/me/sessions":                                            {rooms.RoleTherapist, rooms.RoleStaff, rooms.RoleClient, rooms.RoleFamily},
	"POST /v1/me/consent":                                            {rooms.RoleClient},
	"GET /v1/programs/{program}/consents":                            {rooms.RoleTherapist, rooms.RoleStaff},
	"GET /v1/programs/{program}/rooms/{room}/checkins":               {rooms.RoleTherapist, rooms.RoleStaff},
	"GET /v1/me/calendar":                                            {rooms.RoleClient},
	"POST /v1/me/calendar":                                           {rooms.RoleClient},
	"DELETE /v1/me/calendar":                                         {rooms.RoleClient},
	"GET /v1/link":                                                   allRoles,                                                  // about the bearer's own link; without a token: "invalid"
	"GET /v1/connectivity":                                           {rooms.RoleTherapist, rooms.RoleClient, rooms.RoleFamily}, // a join token that may join media (staff: for one room)
	"POST /v1/connectivity":                                          {rooms.RoleTherapist, rooms.RoleClient, rooms.RoleFamily},
	"GET /v1/calendar/{file}":                                        {rooms.RoleTherapist, rooms.RoleStaff, rooms.RoleClient, rooms.RoleFamily}, // the secret address is the credential
	"GET /v1/programs/{program}/schedule":                            {rooms.RoleStaff},
	"PUT /v1/programs/{program}/schedule":                            {rooms.RoleStaff},
	"PUT /v1/programs/{program}/tracks/{track}":                      {rooms.RoleStaff},
	"DELETE /v1/programs/{program}/tracks/{track}":                   {rooms.RoleStaff},
	"PUT /v1/programs/{program}/sessions/{session}":                  {rooms.RoleStaff},
	"DELETE /v1/programs/{program}/sessions/{session}":               {rooms.RoleStaff},
	"PUT /v1/programs/{program}/holidays/{date}":                     {rooms.RoleStaff},
	"DELETE /v1/programs/{program}/holidays/{date}":                  {rooms.RoleStaff},
	"PUT /v1/programs/{program}/cancellations/{session}/{date}":      {rooms.RoleStaff},
	"DELETE /v1/programs/{program}/cancellations/{session}/{date}":   {rooms.RoleStaff},
	"GET /v1/programs/{program}/occurrences":                         {rooms.RoleStaff},
	"GET /v1/programs/{program}/enrollments":                         {rooms.RoleStaff},
	"PUT /v1/programs/{program}/enrollments/{sub}":                   {rooms.RoleStaff},
	"POST /v1/programs/{program}/enrollments/{sub}/track":            {rooms.RoleStaff},
	"POST /v1/programs/{program}/enrollments/{sub}/end":              {rooms.RoleStaff},
	"DELETE /v1/programs/{program}/enrollments/{sub}":                {rooms.RoleStaff},
	"POST /v1/programs/{program}/bookings":                           {rooms.RoleStaff, rooms.RoleTherapist}, // a therapist: sessions they run
	"GET /v1/programs/{program}/people/{sub}/bookings":               {rooms.RoleStaff, rooms.RoleTherapist},
	"DELETE /v1/programs/{program}/bookings/{id}":                    {rooms.RoleStaff, rooms.RoleTherapist},
	"GET /v1/attendance/programs/{program}/billing/{week}":           {rooms.RoleTherapist, rooms.RoleStaff},
	"GET /v1/attendance/programs/{program}/billing.csv":              {rooms.RoleTherapist, rooms.RoleStaff},
	"PUT /v1/programs/{program}/attendance/absences/{sub}/{room}":    {rooms.RoleStaff},
	"DELETE /v1/programs/{program}/attendance/absences/{sub}/{room}": {rooms.RoleStaff},
	"POST /v1/programs/{program}/attendance/corrections":             {rooms.RoleStaff},
}

var allRoles = []rooms.Role{rooms.RoleTherapist, rooms.RoleClient, rooms.RoleFamily, rooms.RoleStaff}

// TestRouteTable walks the server's route table: every route, every role,
// with a token of the path's program and of another one. A role the rule
// lets in is never answered 401 or 403; any other is answered 403; another
// program's token is refused on every route that names a program.
func TestRouteTable(t *testing.T) {
	n := testNode(t)
	program, other := tenants()
	table := n.sig.Routes()
	seen := map[string]bool{}
	for _, rt := range table {
		seen[rt.Pattern] = true
		if _, ok := routeRules[rt.Pattern]; !ok {
			t.Errorf("route %s (permission %s) has no rule in this test: say who may call it", rt.Pattern, rt.Perm)
		}
	}
	for pattern := range routeRules {
		if !seen[pattern] {
			t.Errorf("rule for %s, which the server does not serve", pattern)
		}
	}
	week := attendance.WeekOf(time.Now(), time.UTC).String()
	for _, rt := range table {
		method, path, _ := strings.Cut(rt.Pattern, " ")
		for _, role := range allRoles {
			for _, tokenProgram := range []string{program, other} {
				sub := fmt.Sprintf("%s-%s", role, randomHex(2))
				room := token.AnyRoom
				if !role.Staff() {
					room = "r1"
				}
				tok := programToken(t, n, tokenProgram, sub, "Person", role, room)
				p := strings.NewReplacer(
					"{program}", program, "{room}", "r1", "{sub}", sub, "{week}", week, "{file}", "no-such-feed.ics",
					"{id}", "no-such-booking", "{track}", "t1", "{session}", "s1", "{date}", "2026-12-24",
				).Replace(path)
				status := callWith(t, n, method, p, tok)
				allowed := slices.Contains(routeRules[rt.Pattern], role)
				if tokenProgram != program && strings.Contains(path, "{program}") {
					allowed = false
				}
				refused := status == http.StatusForbidden || status == http.StatusUnauthorized
				switch {
				case allowed && refused:
					t.Errorf("%s %s as %s of %s: %d, want it let through", method, p, role, tokenProgram, status)
				case !allowed && status != http.StatusForbidden:
					t.Errorf("%s %s as %s of %s: %d, want 403", method, p, role, tokenProgram, status)
				}
			}
		}
		// The link check answers a stranger too, with "invalid" only.
		if rt.Perm != rooms.PermSecret && rt.Perm != rooms.PermLink {
			if status := callWith(t, n, method, strings.ReplaceAll(path, "{program}", program), ""); status != http.StatusUnauthorized {
				t.Errorf("%s %s without a token: %d, want 401", method, path, status)
			}
		}
	}
}

// callWith calls a route with an empty JSON object as the body of a write.
func callWith(t *testing.T, n *node, method, path, bearer string) int {
	t.Helper()
	var body any
	if method != http.MethodGet && method != http.MethodDelete {
		body = map[string]any{}
	}
	status, _ := api(t, n, method, path, bearer, body)
	return status
}

// actionRules says which roles may send each message after join; the
// others get forbidden. Every client message type must be here.
var actionRules = map[string][]rooms.Role{
	protocol.TypeJoin:        allRoles, // answered "already joined"
	protocol.TypeOffer:       allRoles,
	protocol.TypeAnswer:      allRoles,
	protocol.TypeCandidate:   allRoles,
	protocol.TypeMedia:       allRoles,
	protocol.TypeHand:        allRoles,
	protocol.TypeLayer:       allRoles,
	protocol.TypeAdmit:       {rooms.RoleTherapist},
	protocol.TypeDeny:        {rooms.RoleTherapist},
	protocol.TypeMute:        {rooms.RoleTherapist},
	protocol.TypeRemove:      {rooms.RoleTherapist},
	protocol.TypeLock:        {rooms.RoleTherapist},
	protocol.TypeEnd:         {rooms.RoleTherapist},
	protocol.TypeHost:        {rooms.RoleTherapist},
	protocol.TypeAutoAdmit:   {rooms.RoleTherapist},
	protocol.TypeChat:        allRoles,
	protocol.TypeChatRemove:  {rooms.RoleTherapist},
	protocol.TypeChatEnabled: {rooms.RoleTherapist},
	// Sharing: anyone admitted asks (the room then says screen_off or
	// screen_busy, and whose share a therapist may stop); letting clients
	// share and the spotlight are the therapists'.
	protocol.TypeScreenStart:   allRoles,
	protocol.TypeScreenStop:    allRoles,
	protocol.TypeScreenAllowed: {rooms.RoleTherapist},
	protocol.TypeSpotlight:     {rooms.RoleTherapist},
	protocol.TypeBreakoutOpen:  {rooms.RoleTherapist},
	protocol.TypeBreakoutMove:  {rooms.RoleTherapist},
	protocol.TypeBreakoutVisit: {rooms.RoleTherapist},
	protocol.TypeBreakoutClose: {rooms.RoleTherapist},
	protocol.TypeLeave:         allRoles,
	protocol.TypePing:          allRoles,
}

// TestActionTable walks the websocket's action table: every message type
// has a rule, and each role, admitted in a room of its program, is refused
// with forbidden exactly where the rule says. Another program's therapist
// reaches nobody of the room (TestTenancyOtherProgramsTherapist).
func TestActionTable(t *testing.T) {
	needs := signaling.ActionNeeds()
	for _, typ := range protocol.ClientTypes {
		if _, ok := needs[typ]; !ok {
			t.Errorf("message %s has no entry in the server's action table", typ)
		}
		if _, ok := actionRules[typ]; !ok {
			t.Errorf("message %s has no rule in this test", typ)
		}
	}
	for typ := range needs {
		if !slices.Contains(protocol.ClientTypes, typ) {
			t.Errorf("the server handles %s, which protocol.ClientTypes does not list", typ)
		}
	}
	n := testNode(t)
	program, _ := tenants()
	room := uniqueRoom("actions")
	hostClaims := tokenClaims("t-host", "Dana", rooms.RoleTherapist, room)
	hostClaims.Program, hostClaims.Kind = program, rooms.KindFamily // seats a client and family
	hostToken, err := n.minter.Mint(hostClaims, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	host := rawJoin(t, n, hostToken)
	people := map[rooms.Role]rawSession{rooms.RoleTherapist: rawJoin(t, n, programToken(t, n, program, "t-co", "Kim", rooms.RoleTherapist, room))}
	for _, role := range []rooms.Role{rooms.RoleClient, rooms.RoleFamily, rooms.RoleStaff} {
		code, c := joinCode(t, n, programToken(t, n, program, string(role)+"-1", "Person", role, room))
		if code == protocol.TypeWaiting {
			if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: "*"}); got != "" {
				t.Fatalf("admit: %s", got)
			}
			code = waitType(t, c, protocol.TypeJoined).Type
		}
		if code != protocol.TypeJoined && code != protocol.TypeWaiting {
			t.Fatalf("%s joins: %s", role, code)
		}
		people[role] = rawSession{c: c, id: idOf(t, n, rooms.Ref{Program: program, ID: room}, string(role)+"-1")}
	}
	for _, typ := range protocol.ClientTypes {
		if typ == protocol.TypeLeave {
			continue // leaves: nothing to refuse
		}
		for role, s := range people {
			m := protocol.ClientMessage{Type: typ, Participant: "no-such-participant", Kind: "audio", Quality: "low", Locked: ptr(false), Raised: ptr(false), Audio: ptr(true)}
			switch typ {
			case protocol.TypeEnd, protocol.TypeLock:
				m.Participant = ""
			case protocol.TypeHost:
				m.Participant = s.id // taking the host role
			}
			got := s.ask(t, m)
			allowed := slices.Contains(actionRules[typ], role)
			if role == rooms.RoleTherapist && (typ == protocol.TypeEnd || typ == protocol.TypeHost) {
				allowed = false // a co-therapist while the host is present
			}
			if allowed == (got == protocol.CodeForbidden) {
				t.Errorf("%s sent by a %s: %q, want forbidden=%v", typ, role, got, !allowed)
			}
		}
	}
}

// idOf finds the participant id of sub in the room.
func idOf(t *testing.T, n *node, ref rooms.Ref, sub string) string {
	t.Helper()
	r := n.rooms.Get(ref)
	for _, p := range r.Participants() {
		if p.Sub == sub {
			return p.ID
		}
	}
	t.Fatalf("%s is not admitted in %s", sub, ref)
	return ""
}
