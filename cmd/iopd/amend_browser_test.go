package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"iop/rooms"
	"iop/rooms/schedule"
	"iop/signaling/token"
)

// TestBrowserStaffAmends (issue 14, through the staff page): staff record
// why a client missed a session and add a presence the record lacks, in the
// client's week on the attendance page; the week report read through the
// API then holds both (the added presence direct only where the record has
// the therapist), and the page's week shows them. A therapist's
// attempt is refused on the page in the server's words and changes
// nothing; a client's link does not open the page at all; a reversed
// correction is refused and changes nothing; the added presence then gets
// new bounds through the page.
func TestBrowserStaffAmends(t *testing.T) {
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
	room := func(s string, d int) string { return fmt.Sprintf("%s-%s-202611%02d", program, s, d) }
	missed := room("g1", 4) // Wednesday 4 November, 09:00 New York
	staff := programToken(t, n, program, "staff-1", "Biller", rooms.RoleStaff, token.AnyRoom)
	therapist := programToken(t, n, program, "th1", "Therapist", rooms.RoleTherapist, token.AnyRoom)
	client := programToken(t, n, program, "c1", "Client", rooms.RoleClient, missed)
	week := func(sub string) map[string]any {
		t.Helper()
		status, body := api(t, n, "GET", "/v1/attendance/people/"+sub+"/weeks/2026-W45", staff, nil)
		if status != http.StatusOK {
			t.Fatalf("week of %s: %d %v", sub, status, body)
		}
		return body
	}
	absenceOf := func(sub, rm string) string {
		t.Helper()
		for _, s := range week(sub)["scheduled"].([]any) {
			if m := s.(map[string]any); m["room"] == rm {
				r, _ := m["absence"].(string)
				return r
			}
		}
		t.Fatalf("%s is not among %s's scheduled sessions", rm, sub)
		return ""
	}
	open := func(bearer string) *page {
		t.Helper()
		tab := openLink(t, b, n, n.url+"/staff#token="+bearer+"&week=2026-W45", 1280, 800)
		waitFor(t, tab, "the dashboard with c2", `!document.querySelector('[data-view="dashboard"]').hidden && !!document.querySelector('[data-action="detail"][data-person="c2"]')`)
		return tab
	}
	choose := func(tab *page, sel, value string) {
		t.Helper()
		script := fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.value = %q; e.dispatchEvent(new Event('change', { bubbles: true })); return e.value; })()`, sel, value)
		if got, err := evaluate[string](tab, script); err != nil || got != value {
			t.Fatalf("set %s to %q: got %q, %v", sel, value, got, err)
		}
	}
	head := func() string { h, _ := n.attendance.Head(ctx, program); return fmt.Sprint(h) }

	// A client's link does not open the dashboard.
	c := openLink(t, b, n, n.url+"/staff#token="+client, 1280, 800)
	waitForText(t, c, "This link is not for this program’s attendance")

	// A therapist sees the week but may not record: the page says so, nothing changes.
	before := head()
	th := open(therapist)
	click(t, th, `[data-action="detail"][data-person="c2"]`)
	waitFor(t, th, "the absence form", `document.querySelector('dialog[data-dialog="detail"]').open && !!document.querySelector('#absence-room option[value="`+missed+`"]')`)
	choose(th, "#absence-room", missed)
	choose(th, "#absence-reason", "no_show")
	click(t, th, `[data-absence-form] button[type="submit"]`)
	waitFor(t, th, "the refusal", `(() => { const r = document.querySelector('[data-absence-result]'); return !r.hidden && r.classList.contains('is-refused') && r.getAttribute('role') === 'alert' && r.textContent.includes('only staff of this program may record absences and corrections') && r.textContent.includes('Nothing was changed'); })()`)
	saveArtifact(t, th, "staff-absence-refused.png")
	if h := head(); h != before {
		t.Fatalf("a refused absence moved the chain from %s to %s", before, h)
	}
	if r := absenceOf("c2", missed); r != "" {
		t.Fatalf("after a therapist's refused attempt c2's absence is %q", r)
	}

	// Staff record it: the API's week holds it, the page's week shows it.
	st := open(staff)
	click(t, st, `[data-action="detail"][data-person="c2"]`)
	waitFor(t, st, "the absence form", `!!document.querySelector('#absence-room option[value="`+missed+`"]')`)
	choose(st, "#absence-room", missed)
	choose(st, "#absence-reason", "excused")
	click(t, st, `[data-absence-form] button[type="submit"]`)
	waitFor(t, st, "the receipt", `(() => { const r = document.querySelector('[data-absence-result]'); return !r.hidden && !r.classList.contains('is-refused') && r.textContent.includes('Recorded: Excused'); })()`)
	if r := absenceOf("c2", missed); r != "excused" {
		t.Fatalf("the week report through the API has c2's absence at %s as %q, want excused", missed, r)
	}
	waitFor(t, st, "the reason in the client's week", `document.querySelector('[data-detail-scheduled] li[data-room="`+missed+`"] [data-scheduled-status]')?.textContent.includes('Excused')`)
	waitFor(t, st, "the reason in the week's table", `document.querySelector('tr[data-person="c2"] .absence-reasons li[data-absence="excused"]')?.textContent.startsWith('Excused: One')`)
	saveArtifact(t, st, "staff-absence-recorded.png")
	click(t, st, `[data-action="close-detail"]`)

	// A presence the record lacks: c3 was in Monday's first group by phone,
	// and so was its therapist, from 09:10 (the outage kept both out of the
	// record). c3's time counts as direct service only from 09:10.
	monday := room("g1", 2)
	if status, body := api(t, n, "POST", "/v1/programs/"+program+"/attendance/corrections", staff, map[string]any{
		"room": monday, "kind": "group", "sub": "th1", "role": "therapist", "video": true,
		"start": "2026-11-02T09:10:00-05:00", "end": "2026-11-02T10:00:00-05:00", "reason": "ran the group by phone during the outage",
	}); status != http.StatusCreated {
		t.Fatalf("the therapist's presence: %d %v", status, body)
	}
	click(t, st, `[data-action="detail"][data-person="c3"]`)
	waitFor(t, st, "the correction form", `!!document.querySelector('#correction-room option[value="`+monday+`"]')`)
	choose(st, "#correction-room", monday)
	waitFor(t, st, "a new presence offered", `document.querySelector('#correction-segment').value === '' && !document.querySelector('[data-correction-new]').hidden`)
	before = head()
	choose(st, "#correction-start", "2026-11-02T09:50")
	choose(st, "#correction-end", "2026-11-02T09:00")
	choose(st, "#correction-reason", "joined by phone during the outage, per the therapist's note")
	click(t, st, `[data-correction-form] button[type="submit"]`)
	waitFor(t, st, "the refusal of reversed bounds", `(() => { const r = document.querySelector('[data-correction-result]'); return !r.hidden && r.classList.contains('is-refused') && r.textContent.includes('Nothing was changed'); })()`)
	if h := head(); h != before {
		t.Fatalf("a refused correction moved the chain from %s to %s", before, h)
	}
	choose(st, "#correction-start", "2026-11-02T09:00")
	choose(st, "#correction-end", "2026-11-02T09:50")
	click(t, st, `[data-correction-form] button[type="submit"]`)
	waitFor(t, st, "the correction's receipt", `(() => { const r = document.querySelector('[data-correction-result]'); return !r.hidden && !r.classList.contains('is-refused') && r.textContent.includes('Recorded'); })()`)
	var seconds, without float64
	for _, s := range week("c3")["sessions"].([]any) {
		if m := s.(map[string]any); m["room"] == monday {
			seconds, _ = m["direct_seconds"].(float64)
			without, _ = m["no_clinician_seconds"].(float64)
		}
	}
	if seconds != 2400 || without != 600 {
		raw, _ := json.Marshal(week("c3")["sessions"])
		t.Fatalf("c3's Monday group after the correction: %v s direct and %v s without a clinician, want 2400 (from 09:10) and 600; sessions %s", seconds, without, raw)
	}
	waitFor(t, st, "the presence in the client's week", `!!document.querySelector('[data-detail-sessions] tr[data-room="`+monday+`"]')`)
	saveArtifact(t, st, "staff-correction-recorded.png")

	// The presence is now one of c3's segments of that session: new bounds for it.
	waitFor(t, st, "the segment offered", `document.querySelector('#correction-room').value === '`+monday+`' && document.querySelector('#correction-segment').options.length === 2`)
	segment, err := evaluate[string](st, `document.querySelector('#correction-segment').options[1].value`)
	if err != nil || segment == "" {
		t.Fatalf("the segment's id: %q, %v", segment, err)
	}
	choose(st, "#correction-segment", segment)
	waitFor(t, st, "its bounds in the form", `document.querySelector('#correction-start').value === '2026-11-02T09:00' && document.querySelector('#correction-end').value === '2026-11-02T09:50' && document.querySelector('[data-correction-new]').hidden`)
	choose(st, "#correction-end", "2026-11-02T09:40")
	choose(st, "#correction-reason", "left at 09:40 by the therapist's note")
	click(t, st, `[data-correction-form] button[type="submit"]`)
	waitFor(t, st, "the second correction's receipt", `(() => { const r = document.querySelector('[data-correction-result]'); return !r.hidden && !r.classList.contains('is-refused') && r.textContent.includes('9:40'); })()`)
	seconds = 0
	for _, s := range week("c3")["sessions"].([]any) {
		if m := s.(map[string]any); m["room"] == monday {
			seconds, _ = m["direct_seconds"].(float64)
		}
	}
	if seconds != 1800 {
		t.Fatalf("c3's Monday group after new bounds: %v direct seconds, want 1800 (09:10 to 09:40)", seconds)
	}
	// The refusals are the only errors: the browser logs each refused call.
	for tab, refused := range map[*page]string{th: "403", st: "422"} {
		for _, msg := range tab.problems() {
			if !strings.Contains(msg, "Failed to load resource: the server responded with a status of "+refused) {
				t.Errorf("console: %s", msg)
			}
		}
	}
}
