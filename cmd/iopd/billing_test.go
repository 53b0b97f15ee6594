package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/schedule"
	"iop/signaling/token"
)

// billingYAML is a program with a day track of three one-hour groups and
// its own audio-only modifier.
const billingYAML = `
program:
  id: %s
  name: Billing test
  time_zone: America/New_York
  billing:
    audio_modifier: FQ
  tracks:
    - id: day
      name: Day
      sessions:
        - {id: g1, title: One, kind: group, weekdays: [mon, wed], start: "09:00", length: 1h, therapists: [th1]}
        - {id: g2, title: Two, kind: group, weekdays: [mon, wed], start: "10:00", length: 1h, therapists: [th1]}
        - {id: g3, title: Three, kind: group, weekdays: [mon, wed], start: "11:00", length: 1h, therapists: [th1]}
enrollments:
  - {sub: c1, track: day, start: 2026-10-01}
  - {sub: c2, track: day, start: 2026-10-01, place_of_service: "02"}
  - {sub: c3, track: day, start: 2026-10-01}
`

// TestBillingExportThroughTheServer is acceptance 4 of issue 14: the
// billing export read with a CSV reader through the real server and Redis,
// line by line and column by column as docs/api.md describes them; staff
// record an absence reason and a correction, both audited and both in the
// export; clients, therapists and another program's staff cannot, and bad
// input changes nothing.
func TestBillingExportThroughTheServer(t *testing.T) {
	ctx := context.Background()
	n := testNode(t)
	program, other := tenants()
	f, err := schedule.LoadYAML(strings.NewReader(fmt.Sprintf(billingYAML, program)))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.schedule.Seed(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := schedule.SyncAttendance(ctx, n.schedule, n.attendance, program); err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	at := func(d, hh, mm int) time.Time { return time.Date(2026, 11, d, hh, mm, 0, 0, ny) }
	room := func(s string, d int) string { return fmt.Sprintf("%s-%s-202611%02d", program, s, d) }

	// Monday 2 November 2026 (the day after the fall-back change).
	seq := 0
	stay := func(rm string, kind rooms.Kind, sub string, role rooms.Role, from, to time.Time, video bool) {
		t.Helper()
		seq++
		id := fmt.Sprintf("%s-%d", sub, seq)
		for _, e := range []attendance.Event{
			{ID: id + "a", Kind: attendance.KindAdmit, Program: program, Segment: id, Room: rm, RoomKind: kind, Sub: sub,
				Name: "Name " + sub, Role: role, At: from, Audio: true, Video: video, NoClinician: role != rooms.RoleTherapist},
			{ID: id + "l", Kind: attendance.KindLeave, Program: program, Segment: id, At: to, Reason: rooms.ReasonLeft},
		} {
			if _, err := n.attendance.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	// With the therapist: the recorder marks each client's state; here the
	// events say it directly, as the recorder writes them.
	withClinician := func(rm string, kind rooms.Kind, sub string, from, to time.Time, video bool) {
		t.Helper()
		seq++
		id := fmt.Sprintf("%s-%d", sub, seq)
		for _, e := range []attendance.Event{
			{ID: id + "a", Kind: attendance.KindAdmit, Program: program, Segment: id, Room: rm, RoomKind: kind, Sub: sub,
				Name: "Name " + sub, Role: rooms.RoleClient, At: from, Audio: true, Video: video},
			{ID: id + "l", Kind: attendance.KindLeave, Program: program, Segment: id, At: to, Reason: rooms.ReasonLeft},
		} {
			if _, err := n.attendance.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, s := range []string{"g1", "g2", "g3"} {
		start := at(2, 9+i, 0)
		stay(room(s, 2), rooms.KindGroup, "th1", rooms.RoleTherapist, start.Add(-5*time.Minute), start.Add(time.Hour), true)
		withClinician(room(s, 2), rooms.KindGroup, "c1", start, start.Add(time.Hour), true)
	}
	// c1 stays 20 minutes after the therapist left: recorded, not billed.
	stay(room("g3", 2), rooms.KindGroup, "c1", rooms.RoleClient, at(2, 12, 0), at(2, 12, 20), true)
	// c2: 20 minutes of the first group, audio only: not attended.
	withClinician(room("g1", 2), rooms.KindGroup, "c2", at(2, 9, 0), at(2, 9, 20), false)
	// Tuesday: an individual session, not on the schedule, 45 minutes.
	stay("ind-c1", rooms.KindIndividual, "th1", rooms.RoleTherapist, at(3, 14, 0), at(3, 14, 45), true)
	withClinician("ind-c1", rooms.KindIndividual, "c1", at(3, 14, 0), at(3, 14, 45), true)

	staff := programToken(t, n, program, "staff-1", "Biller", rooms.RoleStaff, token.AnyRoom)
	therapist := programToken(t, n, program, "th1", "Therapist", rooms.RoleTherapist, token.AnyRoom)
	client := programToken(t, n, program, "c1", "Client", rooms.RoleClient, room("g1", 4))
	foreign := programToken(t, n, other, "staff-9", "Elsewhere", rooms.RoleStaff, token.AnyRoom)
	base := "/v1/programs/" + program + "/attendance"
	headBefore, _ := n.attendance.Head(ctx, program)

	// Refusals first: each changes nothing.
	refusals := []struct {
		name, method, path, bearer string
		body                       any
		status                     int
		code                       string
	}{
		{"a client sets an absence", "PUT", base + "/absences/c2/" + room("g1", 4), client, map[string]any{"reason": "excused"}, 403, "forbidden"},
		{"a therapist sets an absence", "PUT", base + "/absences/c2/" + room("g1", 4), therapist, map[string]any{"reason": "excused"}, 403, "forbidden"},
		{"another program's staff set an absence", "PUT", base + "/absences/c2/" + room("g1", 4), foreign, map[string]any{"reason": "excused"}, 403, "forbidden"},
		{"a reason not in the list", "PUT", base + "/absences/c2/" + room("g1", 4), staff, map[string]any{"reason": "sick"}, 422, "bad_message"},
		{"no reason", "PUT", base + "/absences/c2/" + room("g1", 4), staff, map[string]any{}, 422, "bad_message"},
		{"a session that is not the client's", "PUT", base + "/absences/c2/" + room("g1", 3), staff, map[string]any{"reason": "excused"}, 404, "not_found"},
		{"a stranger", "PUT", base + "/absences/c2/" + room("g1", 4), "", map[string]any{"reason": "excused"}, 401, "unauthorized"},
		{"a client corrects", "POST", base + "/corrections", client, map[string]any{"segment": "c2-8", "start": at(2, 9, 0), "end": at(2, 9, 40), "reason": "x"}, 403, "forbidden"},
		{"another program's staff correct", "POST", base + "/corrections", foreign, map[string]any{"segment": "c2-8", "start": at(2, 9, 0), "end": at(2, 9, 40), "reason": "x"}, 403, "forbidden"},
		{"a correction into the future", "POST", base + "/corrections", staff, map[string]any{"segment": "c2-8", "start": at(2, 9, 0), "end": time.Now().Add(time.Hour), "reason": "x"}, 422, "bad_message"},
		{"a correction without a reason", "POST", base + "/corrections", staff, map[string]any{"segment": "c2-8", "start": at(2, 9, 0), "end": at(2, 9, 40)}, 422, "bad_message"},
		{"a correction of an unknown segment", "POST", base + "/corrections", staff, map[string]any{"segment": "nope", "start": at(2, 9, 0), "end": at(2, 9, 40), "reason": "x"}, 404, "not_found"},
		{"an unknown field", "POST", base + "/corrections", staff, map[string]any{"segment": "c2-8", "minutes": 40, "reason": "x"}, 422, "bad_message"},
	}
	for _, r := range refusals {
		status, body := api(t, n, r.method, r.path, r.bearer, r.body)
		if status != r.status || body["code"] != r.code {
			t.Errorf("%s: %d %v, want %d %s", r.name, status, body, r.status, r.code)
		}
	}
	for _, bad := range []struct{ path, bearer string }{
		{"/v1/attendance/programs/" + program + "/billing/2026-W45.csv", client},
		{"/v1/attendance/programs/" + program + "/billing/2026-W45.csv", therapist + "x"},
		{"/v1/attendance/programs/" + program + "/billing/2026-W45.csv", foreign},
	} {
		if status, _ := api(t, n, "GET", bad.path, bad.bearer, nil); status != http.StatusForbidden && status != http.StatusUnauthorized {
			t.Errorf("GET %s by a client, a forged token or another program: %d", bad.path, status)
		}
	}
	for _, week := range []string{"2026-W45", "2026-W99.csv", "45.csv", "2026-W45.json"} {
		if status, body := api(t, n, "GET", "/v1/attendance/programs/"+program+"/billing/"+week, staff, nil); status != 422 || body["code"] != "bad_message" {
			t.Errorf("billing/%s: %d %v, want 422 bad_message", week, status, body)
		}
	}
	if h, _ := n.attendance.Head(ctx, program); h != headBefore {
		t.Fatalf("refused calls moved the chain from %s to %s", headBefore, h)
	}

	// Wednesday: c2 did not come; c3 came to nothing all week.
	if status, body := api(t, n, "PUT", base+"/absences/c2/"+room("g1", 4), staff, map[string]any{"reason": "no_show"}); status != 200 || body["seq"] == nil {
		t.Fatalf("absence: %d %v", status, body)
	}
	if status, body := api(t, n, "PUT", base+"/absences/c3/"+room("g2", 4), staff, map[string]any{"reason": "cancelled"}); status != 200 {
		t.Fatalf("absence: %d %v", status, body)
	}
	// c2 was there to 09:40 by the therapist's note: a correction.
	status, body := api(t, n, "POST", base+"/corrections", staff, map[string]any{
		"segment": "c2-8", "start": at(2, 9, 0), "end": at(2, 9, 40), "reason": "connection shown as dropped; present to 09:40",
	})
	if status != 201 || body["seq"] == nil {
		t.Fatalf("correction: %d %v", status, body)
	}

	raw := getCSV(t, n, "/v1/attendance/programs/"+program+"/billing/2026-W45.csv", staff)
	r := csv.NewReader(strings.NewReader(raw))
	r.Comment = '#'
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("read the export with encoding/csv: %v\n%s", err, raw)
	}
	header := strings.Split(attendance.BillingHeader, ",")
	if strings.Join(recs[0], ",") != attendance.BillingHeader || len(header) != 20 {
		t.Fatalf("header %v", recs[0])
	}
	lines := map[string]map[string]string{}
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range header {
			m[h] = rec[i]
		}
		lines[m["date_local"]+" "+m["client"]] = m
	}
	want := map[string]map[string]string{
		"2026-11-02 c1": {"program": program, "name": "Name c1", "clinicians": "th1", "session_types": "group",
			"sessions": room("g1", 2) + ";" + room("g2", 2) + ";" + room("g3", 2),
			"codes":    "H0015;90853;90853;90853", "place_of_service": "10", "modifier": "95",
			"direct_seconds": "10800", "no_clinician_seconds": "1200", "video_seconds": "12000", "audio_only_seconds": "0",
			"no_media_seconds": "0", "billable": "true", "group_sizes": room("g1", 2) + ":2;" + room("g2", 2) + ":1;" + room("g3", 2) + ":1",
			"late": "", "left_early": "", "absences": ""},
		"2026-11-02 c2": {"clinicians": "th1", "codes": "90853", "place_of_service": "02", "modifier": "FQ",
			"direct_seconds": "2400", "no_clinician_seconds": "0", "video_seconds": "0", "audio_only_seconds": "2400",
			"billable": "false", "left_early": room("g1", 2), "group_sizes": room("g1", 2) + ":2"},
		"2026-11-03 c1": {"clinicians": "th1", "session_types": "individual", "codes": "90834", "direct_seconds": "2700", "billable": "false"},
		"2026-11-04 c2": {"sessions": "", "codes": "", "modifier": "", "direct_seconds": "0", "billable": "false", "absences": room("g1", 4) + ":no_show"},
		"2026-11-04 c3": {"codes": "", "billable": "false", "absences": room("g2", 4) + ":cancelled"},
	}
	if len(lines) != len(want) {
		t.Errorf("%d lines, want %d:\n%s", len(lines), len(want), raw)
	}
	for key, cols := range want {
		got, ok := lines[key]
		if !ok {
			t.Errorf("no line for %s:\n%s", key, raw)
			continue
		}
		for col, v := range cols {
			if got[col] != v {
				t.Errorf("%s %s = %q, want %q", key, col, got[col], v)
			}
		}
	}
	last := strings.Split(strings.TrimSpace(raw), "\n")
	head, _ := n.attendance.Head(ctx, program)
	if tail := last[len(last)-1]; !strings.HasPrefix(tail, attendance.CSVHeadPrefix+head.String()) {
		t.Errorf("last line %q, want the chain head %s", tail, head)
	}

	// The audit trail: the absences and the correction with their chain
	// seqs, the export with its head.
	n.audit.Close()
	entries, _, err := n.auditLog.Page(ctx, program, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, e := range entries {
		switch {
		case e.Action == "absence" && e.Subject == "c2" && strings.Contains(e.Detail, "seq "):
			found["absence"] = true
		case e.Action == "correction" && e.Subject == "c2" && strings.Contains(e.Detail, "seq "):
			found["correction"] = true
		case e.Action == "attendance_export" && strings.HasSuffix(e.Detail, head.Point()):
			found["export"] = true
		}
	}
	if len(found) != 3 {
		t.Errorf("audit trail has %v of absence, correction and export:\n%+v", found, entries)
	}
}

// TestBillingColumnsDocumented: docs/api.md has a row for every column of
// the billing export, and an example whose header is the export's.
func TestBillingColumnsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, section, ok := strings.Cut(doc, "### `GET /v1/attendance/programs/{program}/billing/{yyyy-Www}.csv`")
	if !ok {
		t.Fatal("docs/api.md has no section for the billing export")
	}
	section, _, _ = strings.Cut(section, "\n### ")
	if !strings.Contains(section, "\n"+attendance.BillingHeader+"\n") {
		t.Error("the example's header is not the export's")
	}
	for _, col := range strings.Split(attendance.BillingHeader, ",") {
		documented := false
		for _, line := range strings.Split(section, "\n") {
			if cell, _, ok := strings.Cut(strings.TrimPrefix(line, "| "), " |"); ok && strings.HasPrefix(line, "| ") &&
				strings.Contains(cell, "`"+col+"`") {
				documented = true
			}
		}
		if !documented {
			t.Errorf("column %s has no row in docs/api.md", col)
		}
	}
}
