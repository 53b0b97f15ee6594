package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/schedule"
	"iop/signaling/token"
)

// billingLines reads a billing export with a CSV reader: its lines by
// "date client", each by column name.
func billingLines(t *testing.T, raw string) map[string]map[string]string {
	t.Helper()
	recs := readCSV(t, raw)
	if strings.Join(recs[0], ",") != attendance.BillingHeader {
		t.Fatalf("header %v", recs[0])
	}
	lines := map[string]map[string]string{}
	for _, rec := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = rec[i]
		}
		lines[m["date_local"]+" "+m["client"]] = m
	}
	return lines
}

// TestBillingRangeThroughTheServer: a billing month across ISO weeks
// through the real server and Redis, read with a CSV reader: only its own
// dates; bad, reversed and too long ranges are refused with a clear error;
// a client and another program's staff are forbidden; the export is
// audited with its chain head.
func TestBillingRangeThroughTheServer(t *testing.T) {
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
	room := func(s string, m time.Month, d int) string { return fmt.Sprintf("%s-%s-2026%02d%02d", program, s, m, d) }
	seq := 0
	stay := func(rm, sub string, role rooms.Role, from time.Time) {
		t.Helper()
		seq++
		id := fmt.Sprintf("%s-%d", sub, seq)
		for _, e := range []attendance.Event{
			{ID: id + "a", Kind: attendance.KindAdmit, Program: program, Segment: id, Room: rm, RoomKind: rooms.KindGroup, Sub: sub,
				Name: "Name " + sub, Role: role, At: from, Audio: true, Video: true},
			{ID: id + "l", Kind: attendance.KindLeave, Program: program, Segment: id, At: from.Add(time.Hour), Reason: rooms.ReasonLeft},
		} {
			if _, err := n.attendance.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	// c1 at the first group on 26 October, 2 November (after the fall-back
	// change), 30 November and 2 December: November holds two of them.
	for _, d := range []struct {
		m   time.Month
		day int
	}{{10, 26}, {11, 2}, {11, 30}, {12, 2}} {
		start := time.Date(2026, d.m, d.day, 9, 0, 0, 0, ny)
		stay(room("g1", d.m, d.day), "th1", rooms.RoleTherapist, start)
		stay(room("g1", d.m, d.day), "c1", rooms.RoleClient, start)
	}

	staff := programToken(t, n, program, "staff-1", "Biller", rooms.RoleStaff, token.AnyRoom)
	therapist := programToken(t, n, program, "th1", "Therapist", rooms.RoleTherapist, token.AnyRoom)
	client := programToken(t, n, program, "c1", "Client", rooms.RoleClient, room("g1", 11, 30))
	foreign := programToken(t, n, other, "staff-9", "Elsewhere", rooms.RoleStaff, token.AnyRoom)
	path := "/v1/attendance/programs/" + program + "/billing.csv"

	for _, who := range []struct{ what, bearer string }{{"a client", client}, {"another program's staff", foreign}} {
		if status, body := api(t, n, "GET", path+"?from=2026-11-01&to=2026-11-30", who.bearer, nil); status != http.StatusForbidden || body["code"] != "forbidden" {
			t.Errorf("%s reads the billing month: %d %v, want 403 forbidden", who.what, status, body)
		}
	}
	for _, q := range []struct{ query, says string }{
		{"?from=2026-11-30&to=2026-11-01", "comes before"},
		{"?from=2026-01-01&to=2026-12-31", "at most 92"},
		{"?from=2026-11-31&to=2026-12-01", "not a date"},
		{"?from=2026-11-01", "not a date"},
		{"", "not a date"},
		{"?from=2026-11-01&to=2026-11-30&to=2026-12-01", "one from and one to"},
		{"?from=2026-11-01&to=2026-11-30&week=2026-W45", "one from and one to"},
	} {
		status, body := api(t, n, "GET", path+q.query, staff, nil)
		if msg, _ := body["message"].(string); status != 422 || body["code"] != "bad_message" || !strings.Contains(msg, q.says) {
			t.Errorf("billing.csv%s: %d %v, want 422 bad_message saying %q", q.query, status, body, q.says)
		}
	}

	raw := getCSV(t, n, path+"?from=2026-11-01&to=2026-11-30", staff)
	lines := billingLines(t, raw)
	if len(lines) != 2 || lines["2026-11-02 c1"] == nil || lines["2026-11-30 c1"] == nil {
		t.Fatalf("November's export has lines %v, want c1 on 2026-11-02 and 2026-11-30:\n%s", keysOf(lines), raw)
	}
	for k, l := range lines {
		if l["codes"] != "90853" || l["direct_seconds"] != "3600" || l["clinicians"] != "th1" || l["modifier"] != "95" {
			t.Errorf("%s: %v, want 90853 with th1, 3600 s direct, modifier 95", k, l)
		}
	}
	head, _ := n.attendance.Head(ctx, program)
	if last := strings.Split(strings.TrimSpace(raw), "\n"); !strings.HasPrefix(last[len(last)-1], attendance.CSVHeadPrefix+head.String()) {
		t.Errorf("last line %q, want the chain head %s", last[len(last)-1], head)
	}
	// The week route gives the same line as the range of that week.
	week := billingLines(t, getCSV(t, n, "/v1/attendance/programs/"+program+"/billing/2026-W45.csv", therapist))
	if fmt.Sprint(week["2026-11-02 c1"]) != fmt.Sprint(lines["2026-11-02 c1"]) {
		t.Errorf("the week's line %v, the month's %v", week["2026-11-02 c1"], lines["2026-11-02 c1"])
	}

	n.audit.Close()
	entries, _, err := n.auditLog.Page(ctx, program, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, e := range entries {
		if e.Action == "attendance_export" && strings.Contains(e.Detail, "billing.csv") && strings.HasSuffix(e.Detail, head.Point()) {
			audited = true
		}
	}
	if !audited {
		t.Errorf("the month's export is not in the audit trail with its head %s: %+v", head.Point(), entries)
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestWeeklyHoursCountDirectServiceThroughTheServer: the weekly hours
// target is met on direct service only. Three days of three hours present,
// the last twenty minutes of each after the therapist left, are 9 h
// present but 8 h of direct service: below the 9 h target, and no day
// billable.
func TestWeeklyHoursCountDirectServiceThroughTheServer(t *testing.T) {
	ctx := context.Background()
	n := testNode(t)
	program, _ := tenants()
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
	for i, day := range []int{26, 27, 28} {
		at := func(hh, mm int) time.Time { return time.Date(2026, 10, day, hh, mm, 0, 0, ny) }
		rm := fmt.Sprintf("%s-day-%d", program, day)
		for _, e := range []attendance.Event{
			{ID: fmt.Sprintf("th%da", i), Kind: attendance.KindAdmit, Program: program, Segment: fmt.Sprintf("th%d", i), Room: rm, RoomKind: rooms.KindGroup,
				Sub: "th1", Role: rooms.RoleTherapist, At: at(9, 0), Audio: true, Video: true},
			{ID: fmt.Sprintf("c%da", i), Kind: attendance.KindAdmit, Program: program, Segment: fmt.Sprintf("c%d", i), Room: rm, RoomKind: rooms.KindGroup,
				Sub: "c1", Name: "Name c1", Role: rooms.RoleClient, At: at(9, 0), Audio: true, Video: true},
			{ID: fmt.Sprintf("th%dl", i), Kind: attendance.KindLeave, Program: program, Segment: fmt.Sprintf("th%d", i), At: at(11, 40), Reason: rooms.ReasonLeft},
			{ID: fmt.Sprintf("c%dm", i), Kind: attendance.KindMedia, Program: program, Segment: fmt.Sprintf("c%d", i), At: at(11, 40), Audio: true, Video: true, NoClinician: true},
			{ID: fmt.Sprintf("c%dl", i), Kind: attendance.KindLeave, Program: program, Segment: fmt.Sprintf("c%d", i), At: at(12, 0), Reason: rooms.ReasonLeft},
		} {
			if _, err := n.attendance.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	staff := programToken(t, n, program, "staff-1", "Biller", rooms.RoleStaff, token.AnyRoom)
	status, body := api(t, n, "GET", "/v1/attendance/people/c1/weeks/2026-W44", staff, nil)
	if status != http.StatusOK {
		t.Fatalf("week: %d %v", status, body)
	}
	if body["seconds"] != float64(32400) || body["direct_seconds"] != float64(28800) || body["no_clinician_seconds"] != float64(3600) {
		t.Fatalf("week %v: want 32400 s present, 28800 s direct, 3600 s without a clinician", body)
	}
	if body["status"] != "below" || body["billable_days"] != float64(0) || body["days_counted"] != float64(3) {
		t.Errorf("status %v, billable days %v, days counted %v: want below (8 h of direct service for a 9 h target), 0, 3",
			body["status"], body["billable_days"], body["days_counted"])
	}
}
