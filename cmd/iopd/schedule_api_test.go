package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/token"
)

// scheduleAPI is a test's view of one program through the staff API.
type scheduleAPI struct {
	t       *testing.T
	n       *node
	program string
}

// mint returns an API token of program p for sub as role (clients get a
// room of their own: their tokens may not name any room).
func (a *scheduleAPI) mint(p, sub string, role rooms.Role) string {
	a.t.Helper()
	room := token.AnyRoom
	if !role.Staff() {
		room = p + "-room"
	}
	c := tokenClaims(sub, sub, role, room)
	c.Program = p
	tok, err := a.n.minter.Mint(c, time.Hour)
	if err != nil {
		a.t.Fatal(err)
	}
	return tok
}

// call calls the API on the program's path and checks the status.
func (a *scheduleAPI) call(bearer, method, path string, body any, want int) map[string]any {
	a.t.Helper()
	status, out := api(a.t, a.n, method, "/v1/programs/"+a.program+path, bearer, body)
	if status != want {
		a.t.Fatalf("%s %s: %d %v, want %d", method, path, status, out, want)
	}
	return out
}

// TestScheduleAPI: staff build a program through the API (a track and a
// session at a time), enroll a client with their own targets, a therapist
// books an individual session for themself, and the week's occurrences
// list all of it; attendance follows (the client's week shows the targets
// set with the enrollment).
func TestScheduleAPI(t *testing.T) {
	n := testNode(t)
	a := &scheduleAPI{t: t, n: n, program: "api-" + token.RandomID(3)}
	staff := a.mint(a.program, "staff-1", rooms.RoleStaff)
	therapist := a.mint(a.program, "t1", rooms.RoleTherapist)

	loc, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	// Next week, Monday to Monday, in the program's zone.
	now := time.Now().In(loc)
	monday := time.Date(now.Year(), now.Month(), now.Day()+7-(int(now.Weekday())+6)%7, 0, 0, 0, 0, loc)
	y, w := monday.ISOWeek()
	week := isoWeek(y, w)

	prog := a.call(staff, "PUT", "/schedule", map[string]any{
		"name": "API IOP", "time_zone": "America/New_York",
		"tracks": []any{map[string]any{"id": "day", "name": "Day", "sessions": []any{}}},
	}, http.StatusOK)
	if prog["id"] != a.program || prog["time_zone"] != "America/New_York" {
		t.Errorf("stored program %v", prog)
	}
	a.call(staff, "PUT", "/tracks/evening", map[string]any{"name": "Evening", "sessions": []any{
		map[string]any{"id": "eve-group", "title": "Coping skills", "kind": "group", "weekdays": []string{"mon", "tue", "thu"}, "start": "18:00", "length": "1h", "therapists": []string{"t2"}},
	}}, http.StatusOK)
	sess := a.call(staff, "PUT", "/sessions/day-group?track=day", map[string]any{
		"title": "Relapse prevention", "kind": "group", "weekdays": []string{"mon", "wed", "fri"}, "start": "09:00", "length": "1h", "therapists": []string{"t1"},
	}, http.StatusOK)
	if sess["id"] != "day-group" || sess["start"] != "09:00" {
		t.Errorf("stored session %v", sess)
	}

	en := a.call(staff, "PUT", "/enrollments/c1", map[string]any{"track": "day", "start": "2026-01-05", "target_hours": 12, "target_days": 4, "cohorts": []string{"women"}}, http.StatusOK)
	if en["sub"] != "c1" || en["program"] != a.program || en["target_hours"] != 12.0 || en["planned_days"] != 90.0 {
		t.Errorf("stored enrollment %v", en)
	}
	list := a.call(staff, "GET", "/enrollments", nil, http.StatusOK)
	if got, _ := list["enrollments"].([]any); len(got) != 1 {
		t.Errorf("enrollments %v", list)
	}

	// The therapist books for themself (no therapist named: it is them).
	start := monday.AddDate(0, 0, 1).Add(14 * time.Hour) // Tuesday 14:00
	b := a.call(therapist, "POST", "/bookings", map[string]any{"kind": "individual", "start": start.Format(time.RFC3339), "length": "50m", "client": "c1"}, http.StatusOK)
	id, _ := b["id"].(string)
	if !strings.HasPrefix(id, a.program+"-b") || b["therapist"] != "t1" || b["client"] != "c1" {
		t.Fatalf("booking %v", b)
	}
	a.call(therapist, "POST", "/bookings", map[string]any{"kind": "individual", "start": start.Add(2 * time.Hour).Format(time.RFC3339), "length": "50m", "client": "c1", "therapist": "t9"}, http.StatusForbidden)
	clash := a.call(staff, "POST", "/bookings", map[string]any{"kind": "individual", "start": start.Add(20 * time.Minute).Format(time.RFC3339), "length": "50m", "client": "c1", "therapist": "t1"}, http.StatusUnprocessableEntity)
	if msg, _ := clash["message"].(string); clash["code"] != "bad_message" || !strings.Contains(msg, `therapist "t1" is in `+id) {
		t.Errorf("double booking: %v", clash)
	}
	mine := a.call(therapist, "GET", "/people/t1/bookings", nil, http.StatusOK)
	if got, _ := mine["bookings"].([]any); len(got) != 1 {
		t.Errorf("the therapist's bookings: %v", mine)
	}
	a.call(therapist, "GET", "/people/c1/bookings", nil, http.StatusForbidden)

	occ := a.call(staff, "GET", "/occurrences?week="+week, nil, http.StatusOK)
	items, _ := occ["occurrences"].([]any)
	var ids []string
	for _, x := range items {
		ids = append(ids, x.(map[string]any)["id"].(string))
	}
	day := func(offset int, session string) string {
		return a.program + "-" + session + "-" + monday.AddDate(0, 0, offset).Format("20060102")
	}
	want := []string{day(0, "day-group"), day(0, "eve-group"), id, day(1, "eve-group"), day(2, "day-group"), day(3, "eve-group"), day(4, "day-group")}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("occurrences of %s:\n got %v\nwant %v", week, ids, want)
	}
	if first, _ := items[0].(map[string]any); first["start_local"] != monday.Add(9*time.Hour).Format(time.RFC3339) || occ["time_zone"] != "America/New_York" {
		t.Errorf("first occurrence %v (zone %v)", first, occ["time_zone"])
	}

	// Holidays and cancellations take occurrences out; removing them puts
	// them back.
	wed := monday.AddDate(0, 0, 2).Format(time.DateOnly)
	a.call(staff, "PUT", "/holidays/"+wed, nil, http.StatusNoContent)
	a.call(staff, "PUT", "/cancellations/eve-group/"+monday.Format(time.DateOnly), map[string]any{"reason": "therapist ill"}, http.StatusNoContent)
	occ = a.call(staff, "GET", "/occurrences?from="+monday.Format(time.DateOnly)+"&to="+monday.AddDate(0, 0, 7).Format(time.DateOnly), nil, http.StatusOK)
	if got, _ := occ["occurrences"].([]any); len(got) != len(want)-2 {
		t.Errorf("with a holiday and a cancellation: %d occurrences, want %d", len(got), len(want)-2)
	}
	a.call(staff, "DELETE", "/holidays/"+wed, nil, http.StatusNoContent)
	a.call(staff, "DELETE", "/cancellations/eve-group/"+monday.Format(time.DateOnly), nil, http.StatusNoContent)
	a.call(staff, "DELETE", "/holidays/"+wed, nil, http.StatusNotFound)

	// Attendance follows the schedule: the client's week carries the
	// targets of their enrollment, for staff and for the client.
	path := "/v1/attendance/people/c1/weeks/" + week
	for _, tok := range []string{staff, a.mint(a.program, "c1", rooms.RoleClient)} {
		status, rep := api(t, n, "GET", path, tok, nil)
		if status != http.StatusOK || rep["target_hours"] != 12.0 || rep["target_days"] != 4.0 || rep["zone"] != "America/New_York" {
			t.Errorf("the client's week: %d %v", status, rep)
		}
	}

	// Track change, end; a deleted enrollment takes the client's bookings.
	moved := a.call(staff, "POST", "/enrollments/c1/track", map[string]any{"track": "evening", "effective": monday.AddDate(0, 0, 14).Format(time.DateOnly), "reason": "day job"}, http.StatusOK)
	if ch, _ := moved["changes"].([]any); len(ch) != 1 {
		t.Errorf("track change: %v", moved)
	}
	ended := a.call(staff, "POST", "/enrollments/c1/end", map[string]any{"end": monday.AddDate(0, 0, 30).Format(time.DateOnly), "reason": "completion"}, http.StatusOK)
	if ended["end_reason"] != "completion" {
		t.Errorf("ended: %v", ended)
	}
	a.call(therapist, "DELETE", "/bookings/"+id, nil, http.StatusNoContent)
	a.call(therapist, "DELETE", "/bookings/"+id, nil, http.StatusNotFound)
	a.call(staff, "DELETE", "/enrollments/c1", nil, http.StatusNoContent)
	a.call(staff, "DELETE", "/enrollments/c1", nil, http.StatusNotFound)
	a.call(staff, "DELETE", "/sessions/day-group", nil, http.StatusNoContent)
	a.call(staff, "DELETE", "/tracks/evening", nil, http.StatusNoContent)
	a.call(staff, "DELETE", "/tracks/evening", nil, http.StatusNotFound)
	if got := a.call(staff, "GET", "/schedule", nil, http.StatusOK); len(got["tracks"].([]any)) != 1 {
		t.Errorf("after deletes: %v", got)
	}
}

// TestScheduleAPIRefusals: clients and family may write nothing, staff of
// another program nothing here, therapists only bookings; invalid bodies
// get 422 with a message naming the problem.
func TestScheduleAPIRefusals(t *testing.T) {
	n := testNode(t)
	a := &scheduleAPI{t: t, n: n, program: "api-" + token.RandomID(3)}
	staff := a.mint(a.program, "staff-1", rooms.RoleStaff)
	a.call(staff, "GET", "/schedule", nil, http.StatusNotFound)
	a.call(staff, "PUT", "/schedule", map[string]any{"name": "X", "time_zone": "UTC", "tracks": []any{
		map[string]any{"id": "day", "name": "Day", "sessions": []any{
			map[string]any{"id": "g", "title": "Group", "kind": "group", "weekdays": []string{"mon"}, "start": "09:00", "length": "1h", "therapists": []string{"t1"}},
		}},
	}}, http.StatusOK)
	a.call(staff, "PUT", "/enrollments/c1", map[string]any{"track": "day", "start": "2026-01-05"}, http.StatusOK)

	writes := []struct{ method, path string }{
		{"PUT", "/schedule"}, {"PUT", "/tracks/day"}, {"DELETE", "/tracks/day"},
		{"PUT", "/sessions/g?track=day"}, {"DELETE", "/sessions/g"},
		{"PUT", "/holidays/2026-12-25"}, {"DELETE", "/holidays/2026-12-25"},
		{"PUT", "/cancellations/g/2026-12-07"}, {"DELETE", "/cancellations/g/2026-12-07"},
		{"PUT", "/enrollments/c1"}, {"POST", "/enrollments/c1/track"}, {"POST", "/enrollments/c1/end"}, {"DELETE", "/enrollments/c1"},
		{"POST", "/bookings"}, {"DELETE", "/bookings/" + a.program + "-b000000000000"},
	}
	reads := []string{"/schedule", "/occurrences", "/enrollments", "/people/c1/bookings"}
	outsiders := map[string]string{
		"client":                   a.mint(a.program, "c1", rooms.RoleClient),
		"family":                   a.mint(a.program, "f1", rooms.RoleFamily),
		"staff of another program": a.mint("elsewhere", "staff-9", rooms.RoleStaff),
		"therapist of another":     a.mint("elsewhere", "t1", rooms.RoleTherapist),
	}
	for who, tok := range outsiders {
		for _, wr := range writes {
			out := a.call(tok, wr.method, wr.path, map[string]any{}, http.StatusForbidden)
			if out["code"] != "forbidden" {
				t.Errorf("%s: %s %s: %v", who, wr.method, wr.path, out)
			}
		}
		for _, r := range reads {
			a.call(tok, "GET", r, nil, http.StatusForbidden)
		}
	}
	therapist := a.mint(a.program, "t1", rooms.RoleTherapist)
	for _, wr := range writes {
		if !strings.Contains(wr.path, "bookings") {
			a.call(therapist, wr.method, wr.path, map[string]any{}, http.StatusForbidden)
		}
	}
	a.call("", "GET", "/schedule", nil, http.StatusUnauthorized)

	bad := []struct {
		method, path string
		body         any
		msg          string
	}{
		{"PUT", "/schedule", map[string]any{"time_zone": "Mars/Olympus", "tracks": []any{}}, `unknown time zone "Mars/Olympus"`},
		{"PUT", "/schedule", map[string]any{"id": "other", "time_zone": "UTC", "tracks": []any{}}, `the body's id "other"`},
		{"PUT", "/schedule", "not an object", "body: "},
		{"PUT", "/sessions/big?track=day", map[string]any{"title": "Big", "kind": "group", "weekdays": []string{"tue"}, "start": "09:00", "length": "1h", "cap": 40}, "cap 40"},
		{"PUT", "/sessions/g2?track=day", map[string]any{"title": "Clash", "kind": "group", "weekdays": []string{"mon"}, "start": "09:30", "length": "1h", "therapists": []string{"t1"}}, "t1"},
		{"PUT", "/sessions/g3?track=day", map[string]any{"title": "T", "kind": "group", "weekdays": []string{"tue"}, "start": "25:00", "length": "1h"}, "time of day"},
		{"PUT", "/sessions/g4?track=day", map[string]any{"title": "T", "kind": "group", "colour": "red"}, `unknown field "colour"`},
		{"PUT", "/enrollments/c2", map[string]any{"track": "night", "start": "2026-01-05", "target_hours": 30}, `unknown track "night"`},
		{"PUT", "/enrollments/c2", map[string]any{"track": "day", "start": "2026-01-05", "target_hours": 30}, "target_hours 30"},
		{"POST", "/enrollments/c1/end", map[string]any{"end": "2026-02-01", "reason": "bored"}, "end reason"},
		{"POST", "/enrollments/c1/track", map[string]any{"track": "day"}, "effective"},
		{"PUT", "/holidays/christmas", nil, "yyyy-mm-dd"},
		{"PUT", "/cancellations/nope/2026-12-07", nil, "nope"},
		{"POST", "/bookings", map[string]any{"kind": "group", "start": "2026-12-01T14:00:00Z", "length": "5h", "client": "c1", "therapist": "t1"}, "want individual or family"},
		{"GET", "/occurrences?from=2026-01-01&to=2026-12-01", nil, "92 days"},
		{"GET", "/occurrences?week=2026-49", nil, "week"},
	}
	for _, tc := range bad {
		out := a.call(staff, tc.method, tc.path, tc.body, http.StatusUnprocessableEntity)
		if msg, _ := out["message"].(string); out["code"] != "bad_message" || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s %s: %v, want a message with %q", tc.method, tc.path, out, tc.msg)
		}
	}
	a.call(staff, "DELETE", "/tracks/nope", nil, http.StatusNotFound)
	a.call(staff, "POST", "/enrollments/nobody/track", map[string]any{"track": "day", "effective": "2026-03-02"}, http.StatusNotFound)
	if got := a.call(staff, "GET", "/schedule", nil, http.StatusOK); len(got["tracks"].([]any)[0].(map[string]any)["sessions"].([]any)) != 1 {
		t.Errorf("a refused write changed the program: %v", got)
	}
}
