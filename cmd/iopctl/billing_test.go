package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"iop/rooms/attendance"
	"iop/rooms/audit"
	"iop/signaling/token"
)

// TestIopctlBilling: the billing export, an absence reason and a
// correction through iopctl, each audited; a reason not in the list is
// refused; verify checks the heads that exports recorded in the audit
// trail.
func TestIopctlBilling(t *testing.T) {
	url := testRedis(t)
	vars := map[string]string{"IOP_REDIS_URL": url}
	p := "bill-" + token.RandomID(3)
	yaml := `program:
  id: ` + p + `
  name: Billing
  time_zone: UTC
  tracks:
    - id: day
      name: Day
      sessions:
        - {id: g1, title: One, kind: group, weekdays: [mon, wed], start: "09:00", length: 1h, therapists: [th1]}
enrollments:
  - {sub: c1, track: day, start: 2026-11-01}
`
	file := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, vars, "schedule", "seed", file)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	att := attendance.New(rdb, attendance.Options{})
	appendVisit(t, att, p, "c1", p+"-g1-20261130", time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))

	if _, err := iopctl(t, vars, "attendance", "absence", p, "c1", p+"-g1-20261202", "sick", "-author", "staff-1"); err == nil {
		t.Error("absence reason sick was accepted")
	}
	if _, err := iopctl(t, vars, "attendance", "absence", p, "c1", p+"-g1-20261201", "excused", "-author", "staff-1"); err == nil {
		t.Error("an absence for a session that does not meet was accepted")
	}
	out := mustRun(t, vars, "attendance", "absence", p, "c1", p+"-g1-20261202", "no_show", "-author", "staff-1")
	contains(t, "absence", out, []string{"recorded no_show for c1"})
	// A session the outage kept out of the record: the client's presence
	// is direct service only once the therapist's is recorded too.
	out = mustRun(t, vars, "attendance", "correct", p, "-room", p+"-extra", "-sub", "c1", "-video",
		"-start", "2026-12-01T14:00:00Z", "-end", "2026-12-01T14:30:00Z", "-reason", "joined by phone in the outage", "-author", "staff-1")
	contains(t, "correct", out, []string{"recorded the correction of c1"})
	out = mustRun(t, vars, "attendance", "billing", p, "-from", "2026-12-01", "-to", "2026-12-01")
	contains(t, "billing before the therapist's presence", out, []string{"2026-12-01," + p + ",c1,Alex,,group," + p + "-extra,,10,,0,1800,1800,0,0,false"})
	mustRun(t, vars, "attendance", "correct", p, "-room", p+"-extra", "-sub", "th1", "-role", "therapist", "-video",
		"-start", "2026-12-01T14:00:00Z", "-end", "2026-12-01T14:30:00Z", "-reason", "ran the group by phone in the outage", "-author", "staff-1")

	out = mustRun(t, vars, "attendance", "billing", p, "-week", "2026-W49")
	contains(t, "billing", out, []string{
		attendance.BillingHeader,
		"2026-11-30," + p + ",c1,Alex,,group," + p + "-g1-20261130,90853,10,95,3600,0,3600,0,0,false",
		"2026-12-01," + p + ",c1,Alex,th1,group," + p + "-extra,90853,10,95,1800,0,1800,0,0,false",
		"2026-12-02," + p + ",c1,Alex,,,,,10,,0,0,0,0,0,false,,,," + p + "-g1-20261202:no_show",
		attendance.CSVHeadPrefix + "chain " + p + " seq 5 ",
	})

	// A range of dates across two ISO weeks: only its own dates.
	out = mustRun(t, vars, "attendance", "billing", p, "-from", "2026-11-30", "-to", "2026-12-01")
	contains(t, "billing range", out, []string{"2026-11-30," + p + ",c1,", "2026-12-01," + p + ",c1,"})
	if strings.Contains(out, "2026-12-02,") {
		t.Errorf("the range to 2026-12-01 has a line of 2026-12-02:\n%s", out)
	}
	for _, bad := range [][]string{
		{"-from", "2026-12-01", "-to", "2026-11-30"},
		{"-from", "2026-01-01", "-to", "2026-12-31"},
		{"-from", "2026-11-30"},
		{"-week", "2026-W49", "-from", "2026-11-30", "-to", "2026-12-01"},
	} {
		if out, err := iopctl(t, vars, append([]string{"attendance", "billing", p}, bad...)...); err == nil {
			t.Errorf("billing %v was accepted:\n%s", bad, out)
		}
	}

	// iopd records each export's head in the audit trail; verify checks
	// the chain still holds it.
	head, _ := att.Head(context.Background(), p)
	l := audit.New(rdb, audit.Options{})
	if _, err := l.Append(context.Background(), audit.Entry{Program: p, Actor: "staff-1", Role: "staff", Action: audit.ActionAttendanceExport,
		Detail: "GET /v1/attendance/programs/" + p + "/billing/2026-W49.csv " + head.Point()}); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, vars, "attendance", "verify", p)
	contains(t, "verify", out, []string{"OK " + p, "1 exported heads hold"})
	entries, _, err := l.Page(context.Background(), p, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+":"+e.Subject)
	}
	if got := strings.Join(actions, " "); got != "absence:c1 correction:c1 correction:th1 attendance_export:" {
		t.Errorf("audit trail %q", got)
	}
}
