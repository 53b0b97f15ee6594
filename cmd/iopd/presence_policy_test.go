package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/schedule"
	"iop/signaling/client"
	"iop/signaling/token"
)

// policyYAML is a program whose attendance policy is scaled down to
// seconds (an eighth of a session, a 25 s margin, a 25 s day minimum) with one
// one-minute booked session per client, each with its own therapist, at
// the instants the test chose.
const policyYAML = `program:
  id: %[1]s
  name: Policy test
  time_zone: %[2]s
  attendance: {session_share: 0.125, late_margin: 25s, day_minimum: 25s}
  tracks:
    - id: day
      name: Day
      sessions:
        - {id: dawn, title: Dawn group, kind: group, weekdays: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", length: 30m, therapists: [th-dawn]}
enrollments:
  - {sub: c-early, track: day, start: 2026-01-05}
  - {sub: c-late, track: day, start: 2026-01-05}
  - {sub: c-left, track: day, start: 2026-01-05}
  - {sub: c-whole, track: day, start: 2026-01-05}
bookings:
%[3]s`

// TestPresenceSessionPolicy is finding 5 as a scripted session: four
// clients, each in their own booked one-minute session, and the program's
// policy read back through the staff API as a biller would, compared with
// the clients' own clock. One comes 13 s before the start and leaves 5 s
// after it: present longer than the share asks, but not inside the
// window, so not attended. One comes 30 s after the start: late. One
// leaves 28 s before the end: left early. One stays for what the share
// asks, within the margin at both ends: attended, no flag. A day with a
// few seconds does not count toward the target days; one with the day
// minimum does.
func TestPresenceSessionPolicy(t *testing.T) {
	t.Parallel() // it waits out silences: wall clock, not CPU
	n := presenceNode(t, "")
	ctx := context.Background()
	now := time.Now().UTC()
	offset := 12 - now.Hour() // local time about noon: nothing crosses midnight
	zone := fmt.Sprintf("Etc/GMT%+d", -offset)
	if offset == 0 {
		zone = "Etc/GMT"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	program := "pol-" + token.RandomID(3)
	// t0 is when the clients come in; every session lasts a minute.
	t0 := now.Add(8 * time.Second).Truncate(time.Second) // after the therapists are in
	type person struct {
		sub, room      string
		start          time.Time // the session's
		leaveAt        time.Duration
		arrived, left  time.Time // by the client's clock
		late, early    bool
		attended, days bool
	}
	// In the order they come in (the first as near t0 as can be) and
	// leave.
	people := []*person{
		{sub: "c-whole", start: t0.Add(-14 * time.Second), leaveAt: 32 * time.Second, attended: true, days: true},
		{sub: "c-left", start: t0.Add(-15 * time.Second), leaveAt: 17 * time.Second, early: true, attended: true},
		{sub: "c-late", start: t0.Add(-28 * time.Second), leaveAt: 20 * time.Second, late: true, attended: true},
		{sub: "c-early", start: t0.Add(13 * time.Second), leaveAt: 18 * time.Second},
	}
	leaving := slices.SortedFunc(slices.Values(people), func(a, b *person) int { return cmp.Compare(a.leaveAt, b.leaveAt) })
	var bookings strings.Builder
	for _, p := range people {
		p.room = program + "-b" + strings.TrimPrefix(p.sub, "c-")
		fmt.Fprintf(&bookings, "  - {id: %s, kind: individual, start: %q, length: 1m, client: %s, therapist: th-%s}\n",
			p.room, p.start.Format(time.RFC3339), p.sub, p.sub)
	}
	f, err := schedule.LoadYAML(strings.NewReader(fmt.Sprintf(policyYAML, program, zone, bookings.String())))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.schedule.Seed(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := schedule.SyncAttendance(ctx, n.schedule, n.attendance, program); err != nil {
		t.Fatal(err)
	}
	join := func(sub string, role rooms.Role, room string) *client.Participant {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		p, err := client.Join(ctx, n.url, programToken(t, n, program, sub, sub, role, room), client.Options{AutoAdmit: role == rooms.RoleTherapist, NoMedia: role == rooms.RoleTherapist})
		if err != nil {
			t.Fatalf("%s joins %s: %v", sub, room, err)
		}
		t.Cleanup(p.Close)
		return p
	}
	for _, p := range people {
		join("th-"+p.sub, rooms.RoleTherapist, p.room)
	}
	time.Sleep(time.Until(t0))
	clients := map[string]*client.Participant{}
	for _, p := range people {
		clients[p.sub] = join(p.sub, rooms.RoleClient, p.room)
		p.arrived = time.Now()
	}
	for _, p := range leaving {
		time.Sleep(time.Until(t0.Add(p.leaveAt)))
		p.left = time.Now()
		clients[p.sub].Leave()
	}
	// Every session over but the early client's (which needs none): the
	// last ends 46 s after t0.
	time.Sleep(time.Until(t0.Add(47 * time.Second)))
	reportAt := time.Now()

	staff := programToken(t, n, program, "st-"+randomHex(2), "Riley", rooms.RoleStaff, token.AnyRoom)
	y, w := time.Now().In(loc).ISOWeek()
	for _, p := range people {
		closedPerson(t, n, staff, p.room, p.sub, 1)
		var rep attendance.WeekReport
		if status := faultGet(t, n.url, "/v1/attendance/people/"+p.sub+"/weeks/"+isoWeek(y, w), staff, &rep); status != http.StatusOK {
			t.Fatalf("%s's week: %d", p.sub, status)
		}
		var s *attendance.SessionAttendance
		for i := range rep.Scheduled {
			if rep.Scheduled[i].Room == p.room {
				s = &rep.Scheduled[i]
			}
		}
		if s == nil {
			t.Fatalf("%s's week has no judgement of their session %s: %+v", p.sub, p.room, rep.Scheduled)
		}
		end := p.start.Add(time.Minute)
		inside := minTime(p.left, end).Sub(maxTime(p.arrived, p.start))
		within(t, p.sub+": seconds inside the window", s.Seconds, inside)
		if s.Needed != 8 || s.Over != !end.After(reportAt) {
			t.Errorf("%s: needed %d s (want an eighth of 60), over %v at %s (ends %s)", p.sub, s.Needed, s.Over, reportAt, end)
		}
		if s.Attended != p.attended || s.Late != p.late || s.LeftEarly != p.early {
			t.Errorf("%s: attended %v, late %v, left early %v; the clients' clock says %v, %v, %v (%s inside, arrived %s after the start, left %s before the end)",
				p.sub, s.Attended, s.Late, s.LeftEarly, p.attended, p.late, p.early,
				inside.Round(time.Second), p.arrived.Sub(p.start).Round(time.Second), end.Sub(p.left).Round(time.Second))
		}
		if p.late {
			within(t, p.sub+": how late", s.LateSeconds, p.arrived.Sub(p.start))
		}
		if p.early {
			within(t, p.sub+": how early", s.EarlySeconds, end.Sub(p.left))
		}
		present := p.left.Sub(p.arrived)
		if len(rep.Daily) != 1 {
			t.Fatalf("%s: %d days, want today only: %+v", p.sub, len(rep.Daily), rep.Daily)
		}
		within(t, p.sub+": the day's direct seconds", rep.Daily[0].DirectSeconds, present)
		counted := 0
		if p.days {
			counted = 1
		}
		if rep.Daily[0].Counts != p.days || rep.DaysCounted != counted {
			t.Errorf("%s: %s on the day; counts toward the target days %v (days counted %d), want %v with a 25 s minimum",
				p.sub, present.Round(time.Second), rep.Daily[0].Counts, rep.DaysCounted, p.days)
		}
	}
	// The early arrival was there for more than the share asks, only not
	// inside the window: the test proves nothing otherwise.
	if e := people[3]; e.left.Sub(e.arrived) < 10*time.Second {
		t.Errorf("the early client was present %s in all; the test needs more than the 8 s the share asks (and 1 s)", e.left.Sub(e.arrived))
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
