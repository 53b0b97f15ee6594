package main

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"iop/rooms"
	"iop/rooms/attendance"
	"iop/signaling/client"
)

// TestPresenceRejoinBeforeDetection is the second half of finding 1: a
// client whose process freezes comes back on a new connection before the
// server has given up on the frozen one. The frozen connection's time ends
// at its last sign of life, the time until the rejoin is a gap, not
// counted, and the frozen socket's later timeout changes nothing.
func TestPresenceRejoinBeforeDetection(t *testing.T) {
	t.Parallel() // it waits out silences: wall clock, not CPU
	// Pings every second, a silent socket given up after 15 s: the client
	// is back well before that.
	n := testNode(t, func(c *config) { c.pingInterval, c.idleTimeout = time.Second, 15*time.Second })
	room, sub := uniqueRoom("rejoin"), "cl-"+randomHex(3)
	staff := staffOf(t, n)
	ther, _, _ := joinTimed(t, n, "th-"+randomHex(3), rooms.RoleTherapist, room, client.Options{})
	cli, start, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{})
	eventually(t, 20*time.Second, "the call", func() (bool, string) { return receivesFrom(ther, 20, cli) })
	time.Sleep(2 * time.Second)
	frozeAt := time.Now()
	cli.Freeze()
	time.Sleep(7 * time.Second) // silent longer than a ping interval and the spacing of packets

	back, backAt, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{})
	if time.Since(frozeAt) > 13*time.Second {
		t.Fatalf("the rejoin took until %s after the freeze; the test needs it before the server's 15 s timeout", time.Since(frozeAt))
	}
	time.Sleep(2 * time.Second)
	leftAt := time.Now()
	back.Leave()
	// Past the frozen socket's timeout: whatever it does then must not add
	// time.
	time.Sleep(time.Until(frozeAt.Add(16 * time.Second)))

	p := closedPerson(t, n, staff, room, sub, 1)
	seg := p.Segments[0]
	if len(seg.Gaps) != 1 {
		t.Fatalf("want one gap from the freeze to the rejoin: %s", describePerson(p))
	}
	withinTime(t, "the gap begins (the freeze)", seg.Gaps[0].From, frozeAt)
	withinTime(t, "the gap ends (the rejoin)", seg.Gaps[0].To, backAt)
	withinTime(t, "the segment ends", *seg.End, leftAt)
	if seg.Reason != rooms.ReasonLeft {
		t.Errorf("the segment closed for %q, want left", seg.Reason)
	}
	within(t, "the client's seconds", seg.Seconds, frozeAt.Sub(start)+leftAt.Sub(backAt))
	within(t, "the client's direct seconds", p.DirectSeconds, frozeAt.Sub(start)+leftAt.Sub(backAt))
	if p.Seconds != seg.Seconds {
		t.Errorf("the person has %d s, their one segment %d s", p.Seconds, seg.Seconds)
	}
}

// TestPresenceAudioOnlySwitch is finding 4's audio-only switch: a client
// whose camera goes off mid-session (its video stops arriving; its audio
// goes on) has video seconds up to the last video packet and audio-only
// seconds from then, as its clock says, in the roster, the person's week,
// the segment CSV and the billing export alike.
func TestPresenceAudioOnlySwitch(t *testing.T) {
	t.Parallel()
	n := presenceNode(t, "")
	room, sub := uniqueRoom("audio"), "cl-"+randomHex(3)
	staff := staffOf(t, n)
	joinTimed(t, n, "th-"+randomHex(3), rooms.RoleTherapist, room, client.Options{NoMedia: true})
	cli, start, media := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{})
	time.Sleep(4 * time.Second)
	off := time.Now()
	cli.SendMedia(true, false) // the camera goes off; the microphone stays on
	time.Sleep(6 * time.Second)
	end := time.Now()
	cli.Leave()

	video, audioOnly, noMedia := off.Sub(media), end.Sub(off), media.Sub(start)
	p := closedPerson(t, n, staff, room, sub, 1)
	within(t, "roster: video", p.VideoSeconds, video)
	within(t, "roster: audio only", p.AudioOnlySeconds, audioOnly)
	within(t, "roster: before the media arrived", p.NoMediaSeconds, noMedia)
	if p.VideoSeconds+p.AudioOnlySeconds+p.NoMediaSeconds != p.Seconds {
		t.Errorf("roster: %d video + %d audio only + %d no media != %d s", p.VideoSeconds, p.AudioOnlySeconds, p.NoMediaSeconds, p.Seconds)
	}

	loc, err := time.LoadLocation(faultZone(t, n.url, room, staff))
	if err != nil {
		t.Fatal(err)
	}
	y, w := time.Now().In(loc).ISOWeek()
	week := isoWeek(y, w)
	var rep attendance.WeekReport
	if status := faultGet(t, n.url, "/v1/attendance/people/"+sub+"/weeks/"+week, staff, &rep); status != http.StatusOK || len(rep.Sessions) != 1 {
		t.Fatalf("the person's week: %d, %+v", status, rep)
	}
	s := rep.Sessions[0]
	within(t, "week JSON: video", s.VideoSeconds, video)
	within(t, "week JSON: audio only", s.AudioOnlySeconds, audioOnly)
	if rep.VideoSeconds != s.VideoSeconds || rep.AudioOnlySeconds != s.AudioOnlySeconds {
		t.Errorf("week JSON totals %d video, %d audio only; its one session %d, %d", rep.VideoSeconds, rep.AudioOnlySeconds, s.VideoSeconds, s.AudioOnlySeconds)
	}

	row := csvRow(t, readCSV(t, getCSV(t, n, "/v1/attendance/programs/demo/weeks/"+week+".csv", staff)), sub, room)
	for col, want := range map[string]time.Duration{"video_seconds": video, "audio_only_seconds": audioOnly, "no_media_seconds": noMedia} {
		got, err := strconv.ParseInt(row[col], 10, 64)
		if err != nil {
			t.Errorf("segment CSV %s = %q", col, row[col])
		}
		within(t, "segment CSV: "+col, got, want)
	}

	recs := readCSV(t, getCSV(t, n, "/v1/attendance/programs/demo/billing/"+week+".csv", staff))
	var line map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		if m["client"] == sub {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no billing line for the client:\n%v", recs)
	}
	for col, want := range map[string]time.Duration{"video_seconds": video, "audio_only_seconds": audioOnly} {
		got, err := strconv.ParseInt(line[col], 10, 64)
		if err != nil {
			t.Errorf("billing CSV %s = %q", col, line[col])
		}
		within(t, "billing CSV: "+col, got, want)
	}
}
