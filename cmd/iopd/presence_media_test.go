package main

import (
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/client"
)

// TestPresenceRejoinBeforeDetection is the second half of finding 1: a
// client whose process freezes comes back on a new connection before the
// server has given up on the frozen one. The frozen connection's time ends
// at its last sign of life, the time until the rejoin is a gap, not
// counted, and the frozen socket's later timeout changes nothing.
func TestPresenceRejoinBeforeDetection(t *testing.T) {
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
