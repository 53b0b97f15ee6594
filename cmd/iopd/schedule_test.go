package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"text/template"
	"time"

	"iop/rooms"
	"iop/rooms/schedule"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// scheduleYAML is a program whose sessions meet every day at times set
// around now, in a zone where it is about noon (so nothing crosses local
// midnight during the test).
const scheduleYAML = `program:
  id: {{.ID}}
  name: Test IOP
  time_zone: {{.Zone}}
  tracks:
    - id: day
      name: Day
      sessions:
        - {id: soon, title: Relapse prevention, kind: group, weekdays: [mon, tue, wed, thu, fri, sat, sun], start: "{{.Soon}}", length: 2m, therapists: [t1]}
        - {id: later, title: Stress management, kind: group, weekdays: [mon, tue, wed, thu, fri, sat, sun], start: "{{.Later}}", length: 2m, therapists: [t1]}
        - {id: over, title: Process group, kind: group, weekdays: [mon, tue, wed, thu, fri, sat, sun], start: "{{.Over}}", length: 1h, therapists: [t1]}
    - id: evening
      name: Evening
      sessions:
        - {id: eve, title: Coping skills, kind: group, weekdays: [mon, tue, wed, thu, fri, sat, sun], start: "{{.Soon}}", length: 1h, therapists: [t2]}
enrollments:
  - {sub: c1, track: day, start: 2026-01-05}
  - {sub: c2, track: day, start: 2026-01-05}
  - {sub: c3, track: evening, start: 2026-01-05}
`

// TestScheduledJoins: through the real server, a scheduled session refuses
// a client of the other track with their next session, opens 10 minutes
// before its start (9 minutes early joins, 11 minutes early does not),
// refuses after its end plus grace, and a booked individual session takes
// only its client and therapist. The client's page data (/v1/me/sessions)
// and calendar feed come from the same schedule.
func TestScheduledJoins(t *testing.T) {
	n := testNode(t)
	ctx := context.Background()
	now := time.Now().UTC()
	offset := 12 - now.Hour() // local hour about noon
	zone := fmt.Sprintf("Etc/GMT%+d", -offset)
	if offset == 0 {
		zone = "Etc/GMT"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	local := now.In(loc).Truncate(time.Minute).Add(time.Minute) // the next whole minute
	program := "sched-" + token.RandomID(3)
	var yaml strings.Builder
	err = template.Must(template.New("y").Parse(scheduleYAML)).Execute(&yaml, map[string]string{
		"ID": program, "Zone": zone,
		"Soon":  local.Add(8 * time.Minute).Format("15:04"),  // 8-9 minutes away
		"Later": local.Add(11 * time.Minute).Format("15:04"), // 11-12 minutes away
		"Over":  local.Add(-2 * time.Hour).Format("15:04"),   // ended 59-60 minutes ago
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := schedule.LoadYAML(strings.NewReader(yaml.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.schedule.Seed(ctx, f); err != nil {
		t.Fatal(err)
	}
	date := local.Format("20060102")
	room := func(session string) string { return program + "-" + session + "-" + date }
	mint := func(sub string, role rooms.Role, r string) string {
		c := tokenClaims(sub, sub, role, r)
		c.Program = program
		tok, err := n.minter.Mint(c, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	joinNext := func(tok string) (string, *protocol.NextSession) {
		c := dial(t, n)
		_ = c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: tok})
		m, err := c.Read(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if m.Type == protocol.TypeError {
			return m.Code, m.Next
		}
		return m.Type, nil
	}

	if code, _ := joinNext(mint("c1", rooms.RoleClient, room("soon"))); code != protocol.TypeWaiting {
		t.Errorf("9 minutes early: %s, want waiting", code)
	}
	code, next := joinNext(mint("c1", rooms.RoleClient, room("later")))
	if code != protocol.CodeTooEarly {
		t.Errorf("11 minutes early: %s, want too_early", code)
	} else if next == nil || next.StartLocal.IsZero() {
		t.Errorf("too_early without the next session: %+v", next)
	}
	code, next = joinNext(mint("c1", rooms.RoleClient, room("eve")))
	if code != protocol.CodeWrongTrack || next == nil || next.Room != room("soon") {
		t.Errorf("day client in the evening session: %s next %+v, want wrong_track with their next session", code, next)
	}
	if code, _ := joinNext(mint("c1", rooms.RoleClient, room("over"))); code != protocol.CodeTooLate {
		t.Errorf("after the end and grace: %s, want too_late", code)
	}
	if code, _ := joinNext(mint("stranger", rooms.RoleClient, room("soon"))); code != protocol.CodeNotEnrolled {
		t.Errorf("not enrolled: %s, want not_enrolled", code)
	}
	if got := n.rooms.Get(rooms.Ref{Program: program, ID: room("soon")}); got == nil || got.Title() != "Relapse prevention" {
		t.Errorf("the scheduled room's title comes from the schedule: %v", got)
	}

	b, err := n.schedule.Book(ctx, program, schedule.Booking{Kind: rooms.KindIndividual, Start: local.Add(5 * time.Minute),
		Length: schedule.Duration(2 * time.Minute), Client: "c3", Therapist: "t3"})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := joinNext(mint("t3", rooms.RoleTherapist, b.ID)); code != protocol.TypeJoined {
		t.Errorf("the booking's therapist: %s", code)
	}
	if code, _ := joinNext(mint("c3", rooms.RoleClient, b.ID)); code != protocol.TypeWaiting {
		t.Errorf("the booking's client: %s, want waiting", code)
	}
	if code, _ := joinNext(mint("c1", rooms.RoleClient, b.ID)); code == protocol.TypeWaiting || code == protocol.TypeJoined {
		t.Errorf("another client joined someone else's individual session: %s", code)
	}

	status, body := api(t, n, "GET", "/v1/me/sessions", mint("c1", rooms.RoleClient, room("soon")), nil)
	sessions, _ := body["sessions"].([]any)
	if status != http.StatusOK || len(sessions) == 0 || sessions[0].(map[string]any)["join_opens"] == nil {
		t.Fatalf("my sessions: %d %v", status, body)
	}
	status, body = api(t, n, "GET", "/v1/me/calendar", mint("c1", rooms.RoleClient, room("soon")), nil)
	feedURL, _ := body["url"].(string)
	if status != http.StatusOK || !strings.HasPrefix(feedURL, n.url+"/v1/calendar/") {
		t.Fatalf("calendar url: %d %v", status, body)
	}
	resp, err := http.Get(feedURL)
	if err != nil {
		t.Fatal(err)
	}
	ics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/calendar") || !strings.Contains(string(ics), "BEGIN:VEVENT") {
		t.Fatalf("feed: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), ics)
	}
	for _, secret := range []string{"Relapse prevention", "Test IOP", program} {
		if strings.Contains(string(ics), secret) {
			t.Errorf("the calendar feed shows %q", secret)
		}
	}
	if status, _ := api(t, n, "DELETE", "/v1/me/calendar", mint("c1", rooms.RoleClient, room("soon")), nil); status != http.StatusNoContent {
		t.Errorf("revoke: %d", status)
	}
	if resp, err := http.Get(feedURL); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("a revoked feed still answers: %v %v", err, resp.StatusCode)
	}
}
