package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/rooms/schedule"
	"iop/signaling/client"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// checkInPhone is the callback phone of the tests' check-ins; it must
// never reach the log (checkPrivate) or the audit trail.
const checkInPhone = "+1 (555) 014-7391"

// telehealthProgram stores a program that asks its clients for a check-in
// at every session and for consent version (none when "").
func telehealthProgram(t *testing.T, n *node, program, version string) {
	t.Helper()
	p := schedule.Program{ID: program, Name: "Telehealth test", TimeZone: "UTC",
		Telehealth: schedule.Telehealth{CheckIn: true}}
	if version != "" {
		p.Telehealth.Consent = &schedule.Consent{Version: version, Text: "Consent text " + version + ".\n\nSecond paragraph."}
	}
	if err := n.schedule.PutProgram(context.Background(), p); err != nil {
		t.Fatalf("store the program: %v", err)
	}
}

// joinWith joins tok with a check-in and returns the answer's type or
// error code.
func joinWith(t *testing.T, n *node, tok string, ci *protocol.CheckIn) (string, *client.Conn) {
	t.Helper()
	c := dial(t, n)
	if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: tok, CheckIn: ci}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Read(time.Now().Add(10 * time.Second))
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if m.Type == protocol.TypeError {
		return m.Code, c
	}
	return m.Type, c
}

// TestCheckInAndConsent: in a program that asks for both, a client is
// refused until they acknowledge the current consent, then until they
// check in; a malformed check-in is refused with bad_checkin and stores
// nothing; the therapist sees the check-in in the waiting list and the
// participant list, another client never does; a new consent version asks
// again; therapists do not check in.
func TestCheckInAndConsent(t *testing.T) {
	n := testNode(t)
	program, _ := tenants()
	telehealthProgram(t, n, program, "v1")
	room := uniqueRoom("checkin")
	alex := programToken(t, n, program, "c-alex", "Alex", rooms.RoleClient, room)
	sam := programToken(t, n, program, "c-sam", "Sam", rooms.RoleClient, room)
	good := &protocol.CheckIn{Location: "NY", Private: true, Phone: checkInPhone}

	status, link := api(t, n, "GET", "/v1/link", alex, nil)
	consent, _ := link["consent"].(map[string]any)
	if status != http.StatusOK || link["status"] != "valid" || link["checkin"] != true || consent["version"] != "v1" || !strings.Contains(consent["text"].(string), "Consent text v1") {
		t.Fatalf("link check of a client who owes consent and check-in: %d %v", status, link)
	}
	if code, _ := joinWith(t, n, alex, good); code != protocol.CodeConsentRequired {
		t.Fatalf("join before consent: %s, want consent_required", code)
	}
	if status, body := api(t, n, "POST", "/v1/me/consent", alex, map[string]any{"version": "v0"}); status != http.StatusUnprocessableEntity || body["code"] != protocol.CodeBadMessage {
		t.Errorf("consent to a version that is not current: %d %v, want 422 bad_message", status, body)
	}
	ther := programToken(t, n, program, "t-dana", "Dana", rooms.RoleTherapist, room)
	if status, _ := api(t, n, "POST", "/v1/me/consent", ther, map[string]any{"version": "v1"}); status != http.StatusForbidden {
		t.Errorf("a therapist acknowledging consent: %d, want 403", status)
	}
	for _, tok := range []string{alex, sam} {
		if status, body := api(t, n, "POST", "/v1/me/consent", tok, map[string]any{"version": "v1"}); status != http.StatusCreated || body["version"] != "v1" {
			t.Fatalf("consent: %d %v", status, body)
		}
	}
	if _, link := api(t, n, "GET", "/v1/link", alex, nil); link["consent"] != nil || link["checkin"] != true {
		t.Errorf("link check after consent: %v, want check-in only", link)
	}
	if code, _ := joinWith(t, n, alex, nil); code != protocol.CodeCheckInRequired {
		t.Fatalf("join without check-in: %s, want checkin_required", code)
	}
	long := strings.Repeat("x", rooms.MaxCheckInOther+1)
	for _, bad := range []protocol.CheckIn{
		{Location: "ZZ", Phone: checkInPhone},
		{Location: "", Phone: checkInPhone},
		{Location: "other", Phone: checkInPhone},
		{Location: "other", Other: long, Phone: checkInPhone},
		{Location: "other", Other: "Lisbon\x00", Phone: checkInPhone},
		{Location: "NY", Other: "Lisbon", Phone: checkInPhone},
		{Location: "NY", Phone: ""},
		{Location: "NY", Phone: "12345"},
		{Location: "NY", Phone: "call me maybe 5550147391"},
		{Location: "NY", Phone: "+1 555 014 7391 555 014 7391 99"},
		{Location: "NY", Phone: "555 014 7391 x"},
	} {
		code, _ := joinWith(t, n, alex, &bad)
		if code != protocol.CodeBadCheckIn {
			t.Errorf("check-in %+v: %s, want bad_checkin", bad, code)
		}
	}

	staff := programToken(t, n, program, "s-case", "Case manager", rooms.RoleStaff, token.AnyRoom)
	checkins := func(bearer string) (int, []any) {
		status, body := api(t, n, "GET", "/v1/programs/"+program+"/rooms/"+room+"/checkins", bearer, nil)
		list, _ := body["checkins"].([]any)
		return status, list
	}
	if status, list := checkins(staff); status != http.StatusOK || len(list) != 0 {
		t.Fatalf("check-ins after refused joins only: %d %v, want none stored", status, list)
	}

	if code, _ := joinWith(t, n, ther, &protocol.CheckIn{Location: "NY", Phone: checkInPhone}); code != protocol.CodeBadCheckIn {
		t.Errorf("a therapist's check-in: %s, want bad_checkin (therapists do not check in)", code)
	}
	host := rawJoin(t, n, ther)
	if code, _ := joinWith(t, n, alex, good); code != protocol.TypeWaiting {
		t.Fatalf("join with consent and check-in: %s, want waiting", code)
	}
	wl := waitType(t, host.c, protocol.TypeWaitingList)
	for len(wl.Waiting) == 0 {
		wl = waitType(t, host.c, protocol.TypeWaitingList)
	}
	if ci := wl.Waiting[0].CheckIn; ci == nil || *ci != *good {
		t.Errorf("the therapist's waiting list: %+v, want Alex's check-in %+v", wl.Waiting[0], good)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: wl.Waiting[0].ID}); got != "" {
		t.Fatalf("admit: %s", got)
	}
	// A co-therapist who comes in later sees it in the participant list.
	co := dial(t, n)
	if err := co.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: programToken(t, n, program, "t-kim", "Kim", rooms.RoleTherapist, room)}); err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, p := range waitType(t, co, protocol.TypeJoined).Participants {
		if p.Name == "Alex" {
			seen = p.CheckIn != nil && *p.CheckIn == *good
		}
	}
	if !seen {
		t.Errorf("the co-therapist's participant list has no check-in of Alex")
	}
	samCheckIn := &protocol.CheckIn{Location: "other", Other: "Toronto, Canada", Private: false, Phone: "416.555.0100 ext 12"}
	code, samConn := joinWith(t, n, sam, samCheckIn)
	if code != protocol.TypeWaiting {
		t.Fatalf("Sam joins: %s", code)
	}
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: "*"}); got != "" {
		t.Fatalf("admit Sam: %s", got)
	}
	joined := waitType(t, samConn, protocol.TypeJoined)
	for _, p := range joined.Participants {
		if p.CheckIn != nil {
			t.Errorf("another client sees %s's check-in: %+v", p.Name, p.CheckIn)
		}
	}

	status, list := checkins(staff)
	if status != http.StatusOK || len(list) != 2 {
		t.Fatalf("check-ins as the program's staff: %d %v, want Alex's and Sam's", status, list)
	}
	first, _ := json.Marshal(list)
	for _, want := range []string{`"sub":"c-alex"`, `"location":"NY"`, `"private":true`, `"phone":"+1 (555) 014-7391"`, `"other":"Toronto, Canada"`, `"phone":"416.555.0100 ext 12"`} {
		if !strings.Contains(string(first), want) {
			t.Errorf("check-ins %s: missing %s", first, want)
		}
	}
	if status, _ := checkins(ther); status != http.StatusOK {
		t.Errorf("check-ins as the program's therapist: %d, want 200", status)
	}
	_, other := tenants()
	for who, bearer := range map[string]string{
		"the client":                  alex,
		"another program's staff":     programToken(t, n, other, "s-other", "Other staff", rooms.RoleStaff, token.AnyRoom),
		"another program's therapist": programToken(t, n, other, "t-other", "Other", rooms.RoleTherapist, token.AnyRoom),
		"a stranger":                  "",
		"a forged token":              strings.TrimSuffix(staff, staff[len(staff)-4:]) + "AAAA",
	} {
		status, got := checkins(bearer)
		if status != http.StatusForbidden && status != http.StatusUnauthorized {
			t.Errorf("check-ins as %s: %d %v, want refused", who, status, got)
		}
		status, body := api(t, n, "GET", "/v1/programs/"+program+"/consents", bearer, nil)
		if status != http.StatusForbidden && status != http.StatusUnauthorized {
			t.Errorf("consents as %s: %d %v, want refused", who, status, body)
		}
	}

	// A new version of the consent: the next join asks again.
	telehealthProgram(t, n, program, "v2")
	if code, _ := joinWith(t, n, sam, samCheckIn); code != protocol.CodeConsentRequired {
		t.Errorf("join after the consent changed: %s, want consent_required", code)
	}
	if status, body := api(t, n, "POST", "/v1/me/consent", sam, map[string]any{"version": "v2"}); status != http.StatusCreated {
		t.Fatalf("consent v2: %d %v", status, body)
	}
	status, body := api(t, n, "GET", "/v1/programs/"+program+"/consents", staff, nil)
	all, _ := json.Marshal(body["consents"])
	if status != http.StatusOK || strings.Count(string(all), `"sub":"c-sam"`) != 2 || strings.Count(string(all), `"version":"v1"`) != 2 || !strings.Contains(string(all), `"version":"v2"`) {
		t.Errorf("consents: %d %s, want Alex v1, Sam v1 and v2", status, all)
	}

	// The reads are in the audit trail; the check-in's content is not.
	status, trail := api(t, n, "GET", "/v1/audit/programs/"+program, staff, nil)
	raw, _ := json.Marshal(trail)
	if status != http.StatusOK || !strings.Contains(string(raw), "/checkins") || !strings.Contains(string(raw), `"consent"`) {
		t.Errorf("audit trail: %d, want the check-in read and the acknowledgements: %s", status, raw)
	}
	for _, secret := range []string{"014-7391", "Toronto", "416.555"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit trail holds check-in data %q", secret)
		}
	}
}

// TestCheckInNotAskedWithoutProgram: a program without a schedule (or one
// that asks for neither) lets its clients join as before.
func TestCheckInNotAskedWithoutProgram(t *testing.T) {
	n := testNode(t)
	program, _ := tenants()
	room := uniqueRoom("plain")
	rawJoin(t, n, programToken(t, n, program, "t-1", "Dana", rooms.RoleTherapist, room))
	if code, _ := joinCode(t, n, programToken(t, n, program, "c-1", "Alex", rooms.RoleClient, room)); code != protocol.TypeWaiting {
		t.Errorf("a client of a program that asks nothing: %s, want waiting", code)
	}
	if status, body := api(t, n, "POST", "/v1/me/consent", programToken(t, n, program, "c-1", "Alex", rooms.RoleClient, room), map[string]any{"version": "v1"}); status != http.StatusNotFound {
		t.Errorf("consent where there is none: %d %v, want 404", status, body)
	}
}
