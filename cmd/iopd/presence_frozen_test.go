package main

import (
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/client"
)

// TestPresenceRejoinFrozenDefaults is finding 1's rejoin with the server's
// own timeouts (pings every 15 s, a silent socket given up after 45 s): a
// client whose process freezes comes back on a new connection 8 s or 20 s
// later, long before the server would give up on the frozen one. Its media
// stopped more than a few seconds before the rejoin, so the rejoin takes
// the frozen connection out at once: one segment whose time ends at the
// freeze and goes on from the rejoin, the time between a gap, as the
// client's own clock says (±1 s).
func TestPresenceRejoinFrozenDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a frozen client")
	}
	n := testNode(t)
	if n.cfg.pingInterval != 0 || n.cfg.idleTimeout != 0 {
		t.Fatalf("the node pings every %s and gives up after %s; the test is about signaling's defaults", n.cfg.pingInterval, n.cfg.idleTimeout)
	}
	staff := staffOf(t, n)
	for _, away := range []time.Duration{8 * time.Second, 20 * time.Second} {
		t.Run(away.String(), func(t *testing.T) {
			room, sub := uniqueRoom("frozen"), "cl-"+randomHex(3)
			ther, _, _ := joinTimed(t, n, "th-"+randomHex(3), rooms.RoleTherapist, room, client.Options{})
			cli, start, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{})
			eventually(t, 20*time.Second, "the call", func() (bool, string) { return receivesFrom(ther, 20, cli) })
			time.Sleep(2 * time.Second)
			frozeAt := time.Now()
			cli.Freeze()
			time.Sleep(away)

			back, backAt, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{})
			time.Sleep(2 * time.Second)
			leftAt := time.Now()
			back.Leave()
			if time.Since(frozeAt) > 40*time.Second {
				t.Fatalf("the client left %s after the freeze; the test needs it before the server's 45 s timeout", time.Since(frozeAt))
			}

			p := closedPerson(t, n, staff, room, sub, 1)
			seg := p.Segments[0]
			if len(seg.Gaps) != 1 {
				t.Fatalf("want one gap from the freeze to the rejoin: %s", describePerson(p))
			}
			withinTime(t, "the gap begins (the freeze)", seg.Gaps[0].From, frozeAt)
			withinTime(t, "the gap ends (the rejoin)", seg.Gaps[0].To, backAt)
			withinTime(t, "the segment ends", *seg.End, leftAt)
			within(t, "the client's seconds", seg.Seconds, frozeAt.Sub(start)+leftAt.Sub(backAt))
			within(t, "the client's direct seconds", p.DirectSeconds, frozeAt.Sub(start)+leftAt.Sub(backAt))
			ther.Leave()
		})
	}
}
