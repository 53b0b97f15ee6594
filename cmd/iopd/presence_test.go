package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"text/template"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/rooms/schedule"
	"iop/signaling/client"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// Issue 14, acceptance 1: each finding about attendance as a scripted
// session of headless pion clients on the node's Redis, compared with the
// clients' own clock. Times in attendance are whole seconds, so each
// comparison allows 1 s.

// presenceNode is a node whose websocket gives up on a silent client
// after 8 s (pings every second) instead of 45 s, so that a silent drop
// is seen in seconds; redisURL, when set, is shared with other nodes.
func presenceNode(t *testing.T, redisURL string) *node {
	return testNode(t, func(c *config) {
		c.pingInterval, c.idleTimeout = time.Second, 8*time.Second
		if redisURL != "" {
			c.RedisURL = redisURL
		}
	})
}

// joinTimed joins sub (named after it) to room and returns once admitted and
// publishing (unless opts.NoMedia), with the client's clock at admission
// and when its media began to flow.
func joinTimed(t *testing.T, n *node, sub string, role rooms.Role, room string, opts client.Options) (p *client.Participant, admitted, media time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	opts.AutoAdmit = opts.AutoAdmit || role == rooms.RoleTherapist
	p, err := client.Join(ctx, n.url, n.joinToken(t, sub, sub, role, room), opts)
	if err != nil {
		t.Fatalf("%s joins %s: %v", sub, room, err)
	}
	admitted = time.Now()
	t.Cleanup(p.Close)
	if err := p.WaitPublishing(ctx); err != nil {
		t.Fatalf("%s: %v", sub, err)
	}
	return p, admitted, time.Now()
}

func staffOf(t *testing.T, n *node) string {
	return n.joinToken(t, "staff-billing", "Billing", rooms.RoleStaff, token.AnyRoom)
}

// closedPerson waits until every segment of sub in room is closed and
// there are want of them, and returns the person's roster entry.
func closedPerson(t *testing.T, n *node, staff, room, sub string, want int) *attendance.RoomPerson {
	t.Helper()
	var p *attendance.RoomPerson
	eventually(t, 20*time.Second, sub+"'s segments in "+room+" closed", func() (bool, string) {
		rep, status := faultRoster(t, n.url, room, staff)
		p = rosterPerson(rep, sub)
		if status != http.StatusOK || p == nil || len(p.Segments) != want {
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

// within fails unless got is within 1 s of want (after both are cut to
// whole seconds, as attendance keeps them).
func within(t *testing.T, what string, got int64, want time.Duration) {
	t.Helper()
	w := int64(want.Round(time.Second) / time.Second)
	if got < w-1 || got > w+1 {
		t.Errorf("%s: %d s, the clients' clock says %d s (±1)", what, got, w)
	}
}

func withinTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if d := got.Sub(want.Truncate(time.Second)); d < -time.Second || d > time.Second {
		t.Errorf("%s: %s, the clients' clock says %s (±1 s)", what, got.UTC().Format(time.RFC3339), want.UTC().Format(time.RFC3339Nano))
	}
}

// waitCode waits for an error message with code on p's events.
func waitCode(t *testing.T, p *client.Participant, code string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-p.Events():
			if !ok {
				t.Fatalf("the connection closed without an error %q", code)
			}
			if m.Type == protocol.TypeError && m.Code == code {
				return
			}
		case <-deadline:
			t.Fatalf("no error %q within 10 s", code)
		}
	}
}

// TestPresenceSilentDrop is finding 1: a client whose process freezes (no
// media, no pongs) is counted until its last sign of life, not until the
// server notices; back on a new connection within the grace period, the
// silence is a gap in the same segment.
func TestPresenceSilentDrop(t *testing.T) {
	t.Parallel() // it waits out silences: wall clock, not CPU
	n := presenceNode(t, "")
	room, sub := uniqueRoom("silent"), "cl-"+randomHex(3)
	staff := staffOf(t, n)
	ther, _, _ := joinTimed(t, n, "th-"+randomHex(3), rooms.RoleTherapist, room, client.Options{})
	cli, start, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{})
	eventually(t, 20*time.Second, "the call", func() (bool, string) { return receivesFrom(ther, 20, cli) })
	time.Sleep(2 * time.Second)
	frozeAt := time.Now()
	cli.Freeze()

	// The server notices 8 s later; the segment ends at the freeze.
	p := closedPerson(t, n, staff, room, sub, 1)
	seg := p.Segments[0]
	if seg.Reason != rooms.ReasonDropped {
		t.Errorf("closed for %q, want dropped", seg.Reason)
	}
	withinTime(t, "the frozen client's segment ends", *seg.End, frozeAt)
	within(t, "the frozen client's seconds", seg.Seconds, frozeAt.Sub(start))
	if time.Since(frozeAt) < 3*time.Second {
		// An end at the moment the server noticed would then be within
		// the 1 s the comparison allows, and prove nothing.
		t.Fatalf("the server gave up on the silent client %s after the freeze; the test needs it to take longer", time.Since(frozeAt))
	}

	// Back on a new connection within the grace period: one segment, the
	// time away a gap.
	back, backAt, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{})
	time.Sleep(2 * time.Second)
	leftAt := time.Now()
	back.Leave()
	eventually(t, 20*time.Second, "the resumed segment closed again", func() (bool, string) {
		rep, _ := faultRoster(t, n.url, room, staff)
		p = rosterPerson(rep, sub)
		ok := p != nil && len(p.Segments) == 1 && p.Segments[0].End != nil && len(p.Segments[0].Gaps) == 1
		return ok, describePerson(p)
	})
	seg = p.Segments[0]
	withinTime(t, "the gap begins", seg.Gaps[0].From, frozeAt)
	withinTime(t, "the gap ends", seg.Gaps[0].To, backAt)
	withinTime(t, "the segment ends", *seg.End, leftAt)
	within(t, "the client's seconds", seg.Seconds, frozeAt.Sub(start)+leftAt.Sub(backAt))
}

// TestPresenceOneRoomAtATime is finding 2: a person who joins a second
// room is moved there (error moved on the old connection, which ends then
// with reason moved), on the same node and across nodes; their time is
// counted once.
func TestPresenceOneRoomAtATime(t *testing.T) {
	redisURL := sharedRedis(t)
	n1, n2 := presenceNode(t, redisURL), presenceNode(t, redisURL)
	roomA, roomB, roomC := uniqueRoom("one-a"), uniqueRoom("one-b"), uniqueRoom("one-c")
	sub := "cl-" + randomHex(3)
	staff := staffOf(t, n1)
	joinTimed(t, n1, "th-a-"+randomHex(3), rooms.RoleTherapist, roomA, client.Options{})
	joinTimed(t, n1, "th-b-"+randomHex(3), rooms.RoleTherapist, roomB, client.Options{})
	joinTimed(t, n2, "th-c-"+randomHex(3), rooms.RoleTherapist, roomC, client.Options{})

	a, startA, _ := joinTimed(t, n1, sub, rooms.RoleClient, roomA, client.Options{})
	time.Sleep(2 * time.Second)
	movedAB := time.Now()
	b, startB, _ := joinTimed(t, n1, sub, rooms.RoleClient, roomB, client.Options{}) // same node
	waitCode(t, a, protocol.CodeMoved)
	time.Sleep(2 * time.Second)
	movedBC := time.Now()
	c, startC, _ := joinTimed(t, n2, sub, rooms.RoleClient, roomC, client.Options{}) // another node
	waitCode(t, b, protocol.CodeMoved)
	time.Sleep(2 * time.Second)
	leftAt := time.Now()
	c.Leave()

	pa := closedPerson(t, n1, staff, roomA, sub, 1)
	pb := closedPerson(t, n1, staff, roomB, sub, 1)
	pc := closedPerson(t, n2, staff, roomC, sub, 1)
	for _, x := range []struct {
		what       string
		p          *attendance.RoomPerson
		start, end time.Time
		reason     string
	}{
		{"room A", pa, startA, movedAB, rooms.ReasonMoved},
		{"room B (moved on the same node)", pb, startB, movedBC, rooms.ReasonMoved},
		{"room C (on another node)", pc, startC, leftAt, rooms.ReasonLeft},
	} {
		s := x.p.Segments[0]
		if s.Reason != x.reason {
			t.Errorf("%s: closed for %q, want %q", x.what, s.Reason, x.reason)
		}
		withinTime(t, x.what+" starts", s.Start, x.start)
		withinTime(t, x.what+" ends", *s.End, x.end)
	}
	// Never two open segments: A ends no later than B starts, B no later
	// than C.
	if pa.Segments[0].End.After(pb.Segments[0].Start) || pb.Segments[0].End.After(pc.Segments[0].Start) {
		t.Errorf("the rooms overlap: A %s, B %s, C %s", describePerson(pa), describePerson(pb), describePerson(pc))
	}
	within(t, "the client's seconds in the three rooms", pa.Seconds+pb.Seconds+pc.Seconds, leftAt.Sub(startA))
}

// TestPresenceClinician is finding 3: a client who stays after the
// therapist left keeps being counted, but as time without a clinician,
// not as direct service, in the roster and the CSV.
func TestPresenceClinician(t *testing.T) {
	t.Parallel()
	n := presenceNode(t, "")
	room, sub := uniqueRoom("clin"), "cl-"+randomHex(3)
	staff := staffOf(t, n)
	ther, _, _ := joinTimed(t, n, "th-"+randomHex(3), rooms.RoleTherapist, room, client.Options{})
	cli, start, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{})
	time.Sleep(3 * time.Second)
	therapistLeft := time.Now()
	ther.Leave()
	time.Sleep(3 * time.Second)
	leftAt := time.Now()
	cli.Leave()

	p := closedPerson(t, n, staff, room, sub, 1)
	within(t, "present", p.Seconds, leftAt.Sub(start))
	within(t, "direct (with the therapist)", p.DirectSeconds, therapistLeft.Sub(start))
	within(t, "without a clinician", p.NoClinicianSeconds, leftAt.Sub(therapistLeft))
	if p.DirectSeconds+p.NoClinicianSeconds != p.Seconds {
		t.Errorf("direct %d + without a clinician %d != %d s", p.DirectSeconds, p.NoClinicianSeconds, p.Seconds)
	}

	y, w := time.Now().In(time.UTC).ISOWeek()
	recs := readCSV(t, getCSV(t, n, "/v1/attendance/programs/demo/weeks/"+isoWeek(y, w)+".csv", staff))
	row := csvRow(t, recs, sub, room)
	if row["direct_seconds"] != fmt.Sprint(p.DirectSeconds) || row["no_clinician_seconds"] != fmt.Sprint(p.NoClinicianSeconds) {
		t.Errorf("CSV row %v; the roster says %d direct, %d without a clinician", row, p.DirectSeconds, p.NoClinicianSeconds)
	}
}

// TestPresenceModality is finding 4: modality is what the server received.
// A client that never sends media is no_media (not video); one whose
// camera stops sending becomes audio_only at its last video packet; one
// that says its camera is off while its browser sends black frames is
// audio_only from then.
func TestPresenceModality(t *testing.T) {
	t.Parallel()
	n := presenceNode(t, "")
	room := uniqueRoom("modality")
	quietSub, stopSub, claimSub := "cl-quiet-"+randomHex(2), "cl-stop-"+randomHex(2), "cl-claim-"+randomHex(2)
	staff := staffOf(t, n)
	joinTimed(t, n, "th-"+randomHex(3), rooms.RoleTherapist, room, client.Options{})
	quiet, quietStart, _ := joinTimed(t, n, quietSub, rooms.RoleClient, room, client.Options{NoMedia: true})
	stop, stopStart, stopMedia := joinTimed(t, n, stopSub, rooms.RoleClient, room, client.Options{})
	claim, claimStart, claimMedia := joinTimed(t, n, claimSub, rooms.RoleClient, room, client.Options{})
	time.Sleep(3 * time.Second)
	off := time.Now()
	stop.SendMedia(true, false) // the camera stops sending, without a word
	no := false
	if err := claim.Send(protocol.ClientMessage{Type: protocol.TypeMedia, Video: &no}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second) // past the 3 s after which silence ends a kind
	end := time.Now()
	for _, p := range []*client.Participant{quiet, stop, claim} {
		p.Leave()
	}

	q := closedPerson(t, n, staff, room, quietSub, 1)
	within(t, "the silent client's seconds", q.Seconds, end.Sub(quietStart))
	if q.VideoSeconds != 0 || q.AudioOnlySeconds != 0 || q.NoMediaSeconds != q.Seconds || q.Segments[0].Modality != attendance.ModalityNoMedia {
		t.Errorf("a client that never sent media: %d s video, %d audio only, %d no media of %d, modality %s; want all no_media",
			q.VideoSeconds, q.AudioOnlySeconds, q.NoMediaSeconds, q.Seconds, q.Segments[0].Modality)
	}
	for _, c := range []struct {
		what         string
		sub          string
		start, media time.Time
	}{
		{"the camera that stopped sending", stopSub, stopStart, stopMedia},
		{"the camera turned off", claimSub, claimStart, claimMedia},
	} {
		p := closedPerson(t, n, staff, room, c.sub, 1)
		within(t, c.what+": present", p.Seconds, end.Sub(c.start))
		within(t, c.what+": before its media arrived", p.NoMediaSeconds, c.media.Sub(c.start))
		within(t, c.what+": video", p.VideoSeconds, off.Sub(c.media))
		within(t, c.what+": audio only", p.AudioOnlySeconds, end.Sub(off))
	}
}

// readCSV reads the billing export as a CSV reader does, the chain head
// line being a comment.
func readCSV(t *testing.T, body string) [][]string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(body))
	r.Comment = '#'
	recs, err := r.ReadAll()
	if err != nil || len(recs) < 1 {
		t.Fatalf("the export does not read as CSV: %v\n%s", err, body)
	}
	return recs
}

// csvRow returns sub's row in room by column name.
func csvRow(t *testing.T, recs [][]string, sub, room string) map[string]string {
	t.Helper()
	for _, r := range recs[1:] {
		row := map[string]string{}
		for i, h := range recs[0] {
			row[h] = r[i]
		}
		if row["sub"] == sub && row["room"] == room {
			return row
		}
	}
	t.Fatalf("no CSV row for %s in %s", sub, room)
	return nil
}

// TestPresenceMoveStaysInProgram: the same person id in another program,
// joining a room there (even of the same name), moves nobody here: a
// person is one (program, sub).
func TestPresenceMoveStaysInProgram(t *testing.T) {
	n := presenceNode(t, "")
	example, other := tenants()
	room := uniqueRoom("prog")
	rawJoin(t, n, programToken(t, n, example, "th-"+randomHex(3), "Dana", rooms.RoleTherapist, room))
	here := rawJoin(t, n, programToken(t, n, example, "alex", "Alex", rooms.RoleTherapist, room))
	rawJoin(t, n, programToken(t, n, other, "alex", "Alex", rooms.RoleTherapist, room))
	rawJoin(t, n, programToken(t, n, other, "alex", "Alex", rooms.RoleTherapist, uniqueRoom("prog-2")))
	if code := here.ask(t, protocol.ClientMessage{Type: protocol.TypeHand, Raised: new(bool)}); code != "" {
		t.Errorf("after the same id joined rooms of another program, this program's connection answers %q", code)
	}
}

// overrunYAML is a program with one daily group, starting at Over.
const overrunYAML = `program:
  id: {{.ID}}
  name: Test IOP
  time_zone: {{.Zone}}
  tracks:
    - id: day
      name: Day
      sessions:
        - {id: over, title: Process group, kind: group, weekdays: [mon, tue, wed, thu, fri, sat, sun], start: "{{.Over}}", length: 1h, therapists: [t1]}
enrollments:
  - {sub: c1, track: day, start: 2026-01-05}
`

// TestPresenceOverrunReturn is finding 6: a group that overruns its
// window does not refuse its own people: while the therapist is still in
// the room, a client who drops comes back in, and their time is counted
// around the gap as the clients' clock says.
func TestPresenceOverrunReturn(t *testing.T) {
	t.Parallel()
	n := presenceNode(t, "")
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
	local := now.In(loc).Truncate(time.Minute)
	program := "overrun-" + token.RandomID(3)
	seed := func(start time.Time) {
		t.Helper()
		var yaml strings.Builder
		if err := template.Must(template.New("y").Parse(overrunYAML)).Execute(&yaml, map[string]string{
			"ID": program, "Zone": zone, "Over": start.Format("15:04"),
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
	}
	seed(local.Add(5 * time.Minute)) // the window is open
	room := program + "-over-" + local.Format("20060102")
	join := func(sub string, role rooms.Role) (*client.Participant, time.Time) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		p, err := client.Join(ctx, n.url, programToken(t, n, program, sub, sub, role, room), client.Options{AutoAdmit: role == rooms.RoleTherapist})
		if err != nil {
			t.Fatalf("%s joins the overrunning group: %v", sub, err)
		}
		at := time.Now()
		t.Cleanup(p.Close)
		return p, at
	}
	join("t1", rooms.RoleTherapist)
	cli, start := join("c1", rooms.RoleClient)
	// The group runs on past its window: here the window closes at once,
	// the session being moved to have started two hours ago.
	seed(local.Add(-2 * time.Hour))
	if _, err := n.schedule.Check(ctx, program, room, "c1", rooms.RoleClient, time.Now()); err == nil {
		t.Fatal("the join window is still open: the test would prove nothing")
	}
	staff := programToken(t, n, program, "st-1", "Riley", rooms.RoleStaff, token.AnyRoom)
	time.Sleep(2 * time.Second)
	droppedAt := time.Now()
	cli.Close() // the browser crashes
	closedPerson(t, n, staff, room, "c1", 1)
	time.Sleep(2 * time.Second)                  // the browser restarts
	back, backAt := join("c1", rooms.RoleClient) // not too_late: the room is live
	time.Sleep(2 * time.Second)
	leftAt := time.Now()
	back.Leave()
	var p *attendance.RoomPerson
	eventually(t, 20*time.Second, "the resumed segment closed", func() (bool, string) {
		rep, _ := faultRoster(t, n.url, room, staff)
		p = rosterPerson(rep, "c1")
		return p != nil && len(p.Segments) == 1 && p.Segments[0].End != nil && len(p.Segments[0].Gaps) == 1, describePerson(p)
	})
	within(t, "the returning client's seconds", p.Seconds, droppedAt.Sub(start)+leftAt.Sub(backAt))
	within(t, "their time without a clinician", p.NoClinicianSeconds, 0)
}

// TestPresenceAutoAdmit is finding 7: with automatic admission on, a
// client's time starts when they knock, not when a therapist gets to the
// waiting list.
func TestPresenceAutoAdmit(t *testing.T) {
	t.Parallel()
	n := presenceNode(t, "")
	room, sub := uniqueRoom("auto"), "cl-"+randomHex(3)
	staff := staffOf(t, n)
	host := rawJoin(t, n, n.joinToken(t, "th-"+randomHex(3), "Dana", rooms.RoleTherapist, room))
	if got := host.ask(t, protocol.ClientMessage{Type: protocol.TypeAutoAdmit, AutoAdmit: ptr(true)}); got != "" {
		t.Fatal(got)
	}
	time.Sleep(1500 * time.Millisecond) // the therapist's own time runs; the client's must not lag behind its knock
	knock := time.Now()
	cli, _, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{})
	time.Sleep(2 * time.Second)
	leftAt := time.Now()
	cli.Leave()
	p := closedPerson(t, n, staff, room, sub, 1)
	withinTime(t, "the auto-admitted client's time starts", p.Segments[0].Start, knock)
	within(t, "the auto-admitted client's seconds", p.Seconds, leftAt.Sub(knock))
}
