package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/schedule"
	"iop/signaling/token"
)

// TestBrowserBillingExport (issue 14, the billing export on the staff
// page): staff download the billing CSV of chosen dates, of this month and
// of last month from the dashboard; the file saved is the server's export
// with the client's line. A reversed or too long range is explained on the
// page and nothing is downloaded; a client's link shows no dashboard.
func TestBrowserBillingExport(t *testing.T) {
	if testing.Short() {
		t.Skip("browser")
	}
	ctx := context.Background()
	b := &page{ctx: startBrowser(t)}
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
	seq := 0
	stay := func(room, sub string, role rooms.Role, from, to time.Time) {
		t.Helper()
		seq++
		id := fmt.Sprintf("%s-%d", sub, seq)
		for _, e := range []attendance.Event{
			{ID: id + "a", Kind: attendance.KindAdmit, Program: program, Segment: id, Room: room, RoomKind: rooms.KindGroup, Sub: sub,
				Name: "Name " + sub, Role: role, At: from, Audio: true, Video: true},
			{ID: id + "l", Kind: attendance.KindLeave, Program: program, Segment: id, At: to, Reason: rooms.ReasonLeft},
		} {
			if _, err := n.attendance.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Monday 2 November's first group, an hour with the therapist; and a
	// minute of an ad-hoc session with the therapist just now.
	g1 := fmt.Sprintf("%s-g1-20261102", program)
	nov2 := time.Date(2026, 11, 2, 9, 0, 0, 0, ny)
	stay(g1, "th1", rooms.RoleTherapist, nov2, nov2.Add(time.Hour))
	stay(g1, "c1", rooms.RoleClient, nov2, nov2.Add(time.Hour))
	now := time.Now().Truncate(time.Second)
	adhoc := "adhoc-" + randomHex(3)
	stay(adhoc, "th1", rooms.RoleTherapist, now.Add(-90*time.Second), now.Add(-10*time.Second))
	stay(adhoc, "c1", rooms.RoleClient, now.Add(-70*time.Second), now.Add(-10*time.Second))
	today := now.In(ny)

	// A client's link opens no dashboard, so no export.
	client := programToken(t, n, program, "c1", "Client", rooms.RoleClient, g1)
	c := openLink(t, b, n, n.url+"/staff#token="+client, 1280, 800)
	waitForText(t, c, "This link is not for this program’s attendance")
	if shown, err := evaluate[bool](c, `!document.querySelector('[data-view="dashboard"]').hidden`); err != nil || shown {
		t.Fatalf("a client's link shows the dashboard: %v, %v", shown, err)
	}

	staff := programToken(t, n, program, "staff-1", "Biller", rooms.RoleStaff, token.AnyRoom)
	st := openLink(t, b, n, n.url+"/staff#token="+staff+"&week=2026-W45", 1280, 800)
	thisMonth := today.Format("January 2006")
	lastMonth := time.Date(today.Year(), today.Month()-1, 1, 12, 0, 0, 0, ny).Format("January 2006")
	waitFor(t, st, "the billing export with this month and last month named", fmt.Sprintf(
		`!document.querySelector('[data-view="dashboard"]').hidden && document.querySelector('[data-billing-label="this"]').textContent.includes(%q) && document.querySelector('[data-billing-label="last"]').textContent.includes(%q)`,
		thisMonth, lastMonth))

	dir := t.TempDir()
	cctx, cancel := context.WithTimeout(st.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.CallBrowser(cctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir,
	}); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	setField := func(sel, value string) {
		t.Helper()
		script := fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (e.type === 'radio') { e.checked = true; } else { e.value = %q; } e.dispatchEvent(new Event('change', { bubbles: true })); return true; })()`, sel, value)
		if _, err := evaluate[bool](st, script); err != nil {
			t.Fatalf("set %s: %v", sel, err)
		}
	}
	result := `document.querySelector('[data-billing-result]')`
	submit := `[data-billing-form] button[type="submit"]`
	downloaded := func(name string) map[string]map[string]string {
		t.Helper()
		file := filepath.Join(dir, name)
		var raw []byte
		eventually(t, 10*time.Second, "the downloaded "+name, func() (bool, string) {
			var err error
			raw, err = os.ReadFile(file)
			return err == nil && strings.Contains(string(raw), attendance.CSVHeadPrefix), fmt.Sprint(err)
		})
		return billingLines(t, string(raw))
	}

	// Dates chosen the wrong way round, then too many: said on the page, nothing fetched.
	setField(`[name="period"][value="range"]`, "")
	waitFor(t, st, "the date fields", `!document.querySelector('[data-billing-dates]').hidden`)
	setField(`#billing-from`, "2026-11-30")
	setField(`#billing-to`, "2026-11-01")
	click(t, st, submit)
	waitFor(t, st, "the reversed range explained", result+`.classList.contains('is-refused') && `+result+`.getAttribute('role') === 'alert' && `+result+`.textContent.includes('The last date (2026-11-01) comes before the first (2026-11-30)')`)
	saveArtifact(t, st, "staff-billing-refused.png")
	setField(`#billing-from`, "2026-01-01")
	setField(`#billing-to`, "2026-12-31")
	click(t, st, submit)
	waitFor(t, st, "the long range explained", result+`.textContent.includes('That is 365 days; one export covers at most 92')`)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused range downloaded %v", entries)
	}

	// November: the client's line of 2 November.
	setField(`#billing-from`, "2026-11-01")
	setField(`#billing-to`, "2026-11-30")
	click(t, st, submit)
	name := "billing-" + program + "-2026-11-01-2026-11-30.csv"
	waitFor(t, st, "the receipt", result+`.textContent.includes('Downloaded `+name+`: 1 line')`)
	saveArtifact(t, st, "staff-billing-downloaded.png")
	lines := downloaded(name)
	l := lines["2026-11-02 c1"]
	if l == nil || l["codes"] != "90853" || l["direct_seconds"] != "3600" || l["clinicians"] != "th1" || l["sessions"] != g1 {
		t.Fatalf("November's billing CSV: the client's line of 2 November is %v (lines %v)", l, keysOf(lines))
	}

	// This month: today's minute with the therapist (unless the month began
	// in the last minutes, and the minute fell in last month).
	first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, ny)
	setField(`[name="period"][value="this"]`, "")
	waitFor(t, st, "the date fields hidden", `document.querySelector('[data-billing-dates]').hidden`)
	click(t, st, submit)
	monthEnd := first.AddDate(0, 1, -1)
	name = fmt.Sprintf("billing-%s-%s-%s.csv", program, first.Format("2006-01-02"), monthEnd.Format("2006-01-02"))
	waitFor(t, st, "this month's receipt", result+`.textContent.includes('Downloaded `+name+`')`)
	lines = downloaded(name)
	if now.Add(-70 * time.Second).After(first) {
		l = lines[today.Format("2006-01-02")+" c1"]
		if l == nil || l["sessions"] != adhoc || l["direct_seconds"] != "60" || l["clinicians"] != "th1" {
			t.Errorf("this month's billing CSV: today's line is %v (lines %v)", l, keysOf(lines))
		}
	}

	// Last month: a file of its own dates.
	setField(`[name="period"][value="last"]`, "")
	click(t, st, submit)
	lf := first.AddDate(0, -1, 0)
	name = fmt.Sprintf("billing-%s-%s-%s.csv", program, lf.Format("2006-01-02"), first.AddDate(0, 0, -1).Format("2006-01-02"))
	waitFor(t, st, "last month's receipt", result+`.textContent.includes('Downloaded `+name+`')`)
	downloaded(name)
	checkConsole(t, st)
}
