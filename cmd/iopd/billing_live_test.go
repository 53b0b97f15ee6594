package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/schedule"
	"iop/signaling/client"
	"iop/signaling/token"
)

// Billing gaps of issue 14 with headless pion clients through the real
// server and Redis: what the billing export says of a session is compared
// with the clients' own clock (whole seconds: ±1 s per stretch).

// billingJoin joins with tok and returns once admitted and, unless
// opts.NoMedia, publishing, with the client's clock at admission.
func billingJoin(t *testing.T, n *node, who, tok string, opts client.Options) (*client.Participant, time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p, err := client.Join(ctx, n.url, tok, opts)
	if err != nil {
		t.Fatalf("%s joins: %v", who, err)
	}
	admitted := time.Now()
	t.Cleanup(p.Close)
	if !opts.NoMedia {
		if err := p.WaitPublishing(ctx); err != nil {
			t.Fatalf("%s: %v", who, err)
		}
	}
	return p, admitted
}

// billingClosed waits until sub has a segment in room and all of them are
// closed, and returns the roster entry.
func billingClosed(t *testing.T, n *node, staff, room, sub string) *attendance.RoomPerson {
	t.Helper()
	var p *attendance.RoomPerson
	eventually(t, 20*time.Second, sub+"'s segments in "+room+" closed", func() (bool, string) {
		rep, status := faultRoster(t, n.url, room, staff)
		p = rosterPerson(rep, sub)
		if status != http.StatusOK || p == nil || len(p.Segments) == 0 {
			return false, fmt.Sprintf("roster %d: %s", status, describePerson(p))
		}
		for _, s := range p.Segments {
			if s.End == nil {
				return false, describePerson(p)
			}
		}
		return true, ""
	})
	return p
}

// billingLine reads the program's billing export of the dates around now
// and returns client's line of the date of at (in loc).
func billingLine(t *testing.T, n *node, program, staff, sub string, at time.Time, loc *time.Location) map[string]string {
	t.Helper()
	d := attendance.DateOf(at, loc)
	raw := getCSV(t, n, fmt.Sprintf("/v1/attendance/programs/%s/billing.csv?from=%s&to=%s", program, d.AddDays(-1), d.AddDays(1)), staff)
	l := billingLines(t, raw)[d.String()+" "+sub]
	if l == nil {
		t.Fatalf("no billing line for %s on %s:\n%s", sub, d, raw)
	}
	return l
}

func seconds(t *testing.T, l map[string]string, col string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(l[col], 10, 64)
	if err != nil {
		t.Fatalf("%s = %q: %v", col, l[col], err)
	}
	return n
}

// TestBillingModifierAndCorrectionLive: a client on audio only while the
// therapist is there, then on video for longer after the therapist left,
// gets the audio-only modifier (video held for more of the session, but
// not of what is billed). A staff correction then says the therapist was
// there to the end: the client's seconds become direct, and the export
// follows.
func TestBillingModifierAndCorrectionLive(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	program := "bill-" + token.RandomID(3) // a chain of its own: verify reads this test's events only
	room, sub, thSub := uniqueRoom("bill-mod"), "cl-"+randomHex(3), "th-"+randomHex(3)
	staff := programToken(t, n, program, "staff-billing", "Billing", rooms.RoleStaff, token.AnyRoom)
	ther, _ := billingJoin(t, n, "the therapist", programToken(t, n, program, thSub, thSub, rooms.RoleTherapist, room), client.Options{AutoAdmit: true})
	cli, start := billingJoin(t, n, "the client", programToken(t, n, program, sub, sub, rooms.RoleClient, room), client.Options{})
	cli.SendMedia(true, false) // audio only while the therapist is there
	audioFrom := time.Now()
	time.Sleep(5 * time.Second)
	therapistLeft := time.Now()
	ther.Leave()
	time.Sleep(500 * time.Millisecond)
	cli.SendMedia(true, true) // video, alone, for longer
	time.Sleep(9 * time.Second)
	leftAt := time.Now()
	cli.Leave()

	p := billingClosed(t, n, staff, room, sub)
	th := billingClosed(t, n, staff, room, thSub)
	within(t, "direct service (with the therapist)", p.DirectSeconds, therapistLeft.Sub(start))
	loc, err := time.LoadLocation(faultZone(t, n.url, room, staff))
	if err != nil {
		t.Fatal(err)
	}
	l := billingLine(t, n, program, staff, sub, start, loc)
	within(t, "the line's direct seconds", seconds(t, l, "direct_seconds"), therapistLeft.Sub(start))
	within(t, "the line's seconds without a clinician", seconds(t, l, "no_clinician_seconds"), leftAt.Sub(therapistLeft))
	if v, a := seconds(t, l, "video_seconds"), seconds(t, l, "audio_only_seconds"); v <= a {
		t.Fatalf("video %d s, audio only %d s: the test needs more video than audio in the day", v, a)
	}
	if l["modifier"] != "93" {
		t.Errorf("modifier %q, want 93: the direct service (%s of it after the switch) was audio only", l["modifier"], therapistLeft.Sub(audioFrom).Round(time.Second))
	}

	// The therapist's note: she was there to the end. A correction of her
	// segment moves the client's seconds to direct service.
	seg := th.Segments[0]
	end := leftAt.Truncate(time.Second).Add(time.Second)
	time.Sleep(time.Until(end) + 100*time.Millisecond) // a correction may not reach into the future
	status, body := api(t, n, "POST", "/v1/programs/"+program+"/attendance/corrections", staff, map[string]any{
		"segment": seg.ID, "start": seg.Start, "end": end, "reason": "stayed to the end per her note",
	})
	if status != http.StatusCreated {
		t.Fatalf("correction: %d %v", status, body)
	}
	l = billingLine(t, n, program, staff, sub, start, loc)
	within(t, "direct seconds after the correction", seconds(t, l, "direct_seconds"), leftAt.Sub(start))
	if got := seconds(t, l, "no_clinician_seconds"); got != 0 {
		t.Errorf("%d s without a clinician after the correction, want 0", got)
	}
	if l["modifier"] != "95" {
		t.Errorf("modifier after the correction %q, want 95: most of the direct service is now on video", l["modifier"])
	}
	p = billingClosed(t, n, staff, room, sub)
	within(t, "the roster's direct seconds after the correction", p.DirectSeconds, leftAt.Sub(start))
	if v, err := n.attendance.Verify(context.Background(), program); err != nil || !v.OK {
		t.Errorf("verify after the correction: %+v, %v", v, err)
	}
}

// familyYAML is a program with two family sessions booked at Start, for
// c1 with th1 and for c2 with th2; a session is attended at 1 % of its
// length (9 s of 15 min), so that seconds of a test can attend it.
const familyYAML = `program:
  id: {{.ID}}
  name: Family billing
  time_zone: {{.Zone}}
  attendance: {session_share: 0.01}
  tracks:
    - id: day
      name: Day
      sessions:
        - {id: g, title: Group, kind: group, weekdays: [sun], start: "03:00", length: 1h, therapists: [th1]}
enrollments:
  - {sub: c1, track: day, start: 2026-01-05}
  - {sub: c2, track: day, start: 2026-01-05}
bookings:
  - {kind: family, start: "{{.Start}}", length: 15m, client: c1, therapist: th1}
  - {kind: family, start: "{{.Start}}", length: 15m, client: c2, therapist: th2}
`

// TestBillingFamilyLive: a family session with the client and their
// mother bills 90847 on the client's line; one the father attended without
// the client bills 90846 on that client's line of the date, with the
// therapist who saw him, and none of his seconds as the client's.
func TestBillingFamilyLive(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	ctx := context.Background()
	now := time.Now().UTC()
	offset := 12 - now.Hour() // local hour about noon: nothing crosses midnight
	zone := fmt.Sprintf("Etc/GMT%+d", -offset)
	if offset == 0 {
		zone = "Etc/GMT"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	program := "family-" + token.RandomID(3)
	var yaml strings.Builder
	if err := template.Must(template.New("y").Parse(familyYAML)).Execute(&yaml, map[string]string{
		"ID": program, "Zone": zone, "Start": now.In(loc).Truncate(time.Minute).Add(-time.Minute).Format(time.RFC3339),
	}); err != nil {
		t.Fatal(err)
	}
	f, err := schedule.LoadYAML(strings.NewReader(yaml.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.schedule.Seed(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := schedule.SyncAttendance(ctx, n.schedule, n.attendance, program); err != nil {
		t.Fatal(err)
	}
	withC1, withoutC2 := f.Bookings[0].ID, f.Bookings[1].ID
	join := func(sub string, role rooms.Role, room string) (*client.Participant, time.Time) {
		t.Helper()
		return billingJoin(t, n, sub, programToken(t, n, program, sub, "Name "+sub, role, room), client.Options{AutoAdmit: role == rooms.RoleTherapist})
	}
	join("th1", rooms.RoleTherapist, withC1)
	join("th2", rooms.RoleTherapist, withoutC2)
	c1, c1At := join("c1", rooms.RoleClient, withC1)
	mother, _ := join("family-mother", rooms.RoleFamily, withC1)
	father, fatherAt := join("family-father", rooms.RoleFamily, withoutC2)
	time.Sleep(12 * time.Second)
	c1Left := time.Now()
	for _, p := range []*client.Participant{c1, mother, father} {
		p.Leave()
	}
	fatherLeft := time.Now()

	staff := programToken(t, n, program, "st-1", "Riley", rooms.RoleStaff, token.AnyRoom)
	billingClosed(t, n, staff, withC1, "c1")
	billingClosed(t, n, staff, withC1, "family-mother")
	fa := billingClosed(t, n, staff, withoutC2, "family-father")
	within(t, "the father's direct service", fa.DirectSeconds, fatherLeft.Sub(fatherAt))

	l1 := billingLine(t, n, program, staff, "c1", c1At, loc)
	if l1["codes"] != "90847" || l1["session_types"] != "family" || l1["sessions"] != withC1 || l1["clinicians"] != "th1" {
		t.Errorf("c1 with her mother: %v, want 90847 for %s with th1", l1, withC1)
	}
	within(t, "c1's direct seconds", seconds(t, l1, "direct_seconds"), c1Left.Sub(c1At))

	l2 := billingLine(t, n, program, staff, "c2", fatherAt, loc)
	if l2["codes"] != "90846" || l2["session_types"] != "family" || l2["sessions"] != withoutC2 || l2["clinicians"] != "th2" || l2["modifier"] != "95" {
		t.Errorf("c2's father without c2: %v, want 90846 for %s with th2, modifier 95", l2, withoutC2)
	}
	if l2["direct_seconds"] != "0" || l2["video_seconds"] != "0" || l2["billable"] != "false" {
		t.Errorf("c2's line counts the father's seconds as c2's: %v", l2)
	}
	for k := range billingLines(t, getCSV(t, n, fmt.Sprintf("/v1/attendance/programs/%s/billing.csv?from=%s&to=%s", program,
		attendance.DateOf(now, loc), attendance.DateOf(now, loc)), staff)) {
		if !strings.HasSuffix(k, " c1") && !strings.HasSuffix(k, " c2") {
			t.Errorf("a line %q that is not a client's", k)
		}
	}
}
