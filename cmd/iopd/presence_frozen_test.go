package main

import (
	"context"
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/client"
	"iop/signaling/protocol"
)

// TestPresenceRejoinFrozenDefaults is finding 1's rejoin with the server's
// own timeouts (pings every 15 s, a silent socket given up after 45 s): a
// client whose process freezes comes back on a new connection 8 s or 20 s
// later, long before the server would give up on the frozen one. Its media
// (or, for a client that only watches, its receiver reports) stopped more
// than a few seconds before the rejoin, so the rejoin takes the frozen
// connection out at once: one segment whose time ends at the freeze and
// goes on from the rejoin, the time between a gap, as the client's own
// clock says (±1 s).
func TestPresenceRejoinFrozenDefaults(t *testing.T) {
	t.Parallel() // it waits out silences: wall clock, not CPU
	if testing.Short() {
		t.Skip("waits out a frozen client")
	}
	n := testNode(t)
	if n.cfg.pingInterval != 0 || n.cfg.idleTimeout != 0 {
		t.Fatalf("the node pings every %s and gives up after %s; the test is about signaling's defaults", n.cfg.pingInterval, n.cfg.idleTimeout)
	}
	staff := staffOf(t, n)
	for _, tc := range []struct {
		name    string
		away    time.Duration
		noMedia bool
	}{{"8s", 8 * time.Second, false}, {"20s", 20 * time.Second, false}, {"8s watching without media", 8 * time.Second, true}} {
		t.Run(tc.name, func(t *testing.T) {
			room, sub := uniqueRoom("frozen"), "cl-"+randomHex(3)
			ther, _, _ := joinTimed(t, n, "th-"+randomHex(3), rooms.RoleTherapist, room, client.Options{})
			cli, start, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{NoMedia: tc.noMedia})
			eventually(t, 20*time.Second, "the call", func() (bool, string) {
				if tc.noMedia {
					return receivesFrom(cli, 20, ther)
				}
				return receivesFrom(ther, 20, cli)
			})
			time.Sleep(2 * time.Second)
			frozeAt := time.Now()
			cli.Freeze()
			time.Sleep(tc.away)

			back, backAt, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{NoMedia: tc.noMedia})
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

// TestPresenceReconnectWithSecret: a client whose connection froze comes
// back on a new one with the resume secret of the frozen one (as the
// browser does after a network change) 8 s later, with the server's own
// timeouts: it is in again without the therapist admitting it, the frozen
// connection is told it was replaced, and the time between is a gap.
func TestPresenceReconnectWithSecret(t *testing.T) {
	t.Parallel() // it waits out silences: wall clock, not CPU
	if testing.Short() {
		t.Skip("waits out a frozen client")
	}
	n := testNode(t)
	staff := staffOf(t, n)
	room, sub := uniqueRoom("secret"), "cl-"+randomHex(3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A therapist who admits by hand, once.
	ther, err := client.Join(ctx, n.url, n.joinToken(t, "th-"+randomHex(3), "Therapist", rooms.RoleTherapist, room), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ther.Close)
	joinErr := make(chan error, 1)
	var cli *client.Participant
	go func() {
		var err error
		cli, err = client.Join(ctx, n.url, n.joinToken(t, sub, sub, rooms.RoleClient, room), client.Options{})
		joinErr <- err
	}()
	for admitted := false; !admitted; {
		select {
		case err := <-joinErr:
			if err != nil {
				t.Fatalf("the client joins: %v", err)
			}
			admitted = true
		case <-time.After(200 * time.Millisecond):
			_ = ther.Send(protocol.ClientMessage{Type: protocol.TypeAdmit, Participant: "*"})
		}
	}
	start := time.Now()
	t.Cleanup(cli.Close)
	if err := cli.WaitPublishing(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the call", func() (bool, string) { return receivesFrom(ther, 20, cli) })
	secret := cli.Joined().Resume
	if secret == "" {
		t.Fatal("the client's joined carries no resume secret")
	}
	time.Sleep(2 * time.Second)
	frozeAt := time.Now()
	cli.Freeze()
	time.Sleep(8 * time.Second)

	wait, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	defer cancelWait()
	back, err := client.Join(wait, n.url, n.joinToken(t, sub, sub, rooms.RoleClient, room), client.Options{Resume: secret})
	if err != nil {
		t.Fatalf("back with its secret, the client is not let in without the therapist: %v", err)
	}
	t.Cleanup(back.Close)
	backAt := time.Now()
	if err := back.WaitPublishing(wait); err != nil {
		t.Fatalf("back with its secret, the client does not publish: %v", err)
	}
	waitCode(t, cli, "replaced")
	time.Sleep(2 * time.Second)
	leftAt := time.Now()
	back.Leave()

	p := closedPerson(t, n, staff, room, sub, 1)
	seg := p.Segments[0]
	if len(seg.Gaps) != 1 {
		t.Fatalf("want one gap from the freeze to the reconnect: %s", describePerson(p))
	}
	withinTime(t, "the gap begins (the freeze)", seg.Gaps[0].From, frozeAt)
	withinTime(t, "the gap ends (the reconnect)", seg.Gaps[0].To, backAt)
	withinTime(t, "the segment ends", *seg.End, leftAt)
	within(t, "the client's seconds", seg.Seconds, frozeAt.Sub(start)+leftAt.Sub(backAt))
}

// TestPresenceSilentDropNoMedia: a client who sends no media (camera and
// microphone refused) but watches the group freezes. Its receiver reports
// (RTCP) are its evidence between the server's pings: its time ends at the
// freeze, not at its last message or pong seconds before.
func TestPresenceSilentDropNoMedia(t *testing.T) {
	t.Parallel() // it waits out silences: wall clock, not CPU
	// Pings every 10 s, a silent socket given up after 13 s: the client
	// freezes 8 s after joining, before any ping, so that its messages
	// and pongs alone would end its time at the join.
	n := testNode(t, func(c *config) { c.pingInterval, c.idleTimeout = 10*time.Second, 13*time.Second })
	room, sub := uniqueRoom("nomedia"), "cl-"+randomHex(3)
	staff := staffOf(t, n)
	ther, _, _ := joinTimed(t, n, "th-"+randomHex(3), rooms.RoleTherapist, room, client.Options{})
	cli, start, _ := joinTimed(t, n, sub, rooms.RoleClient, room, client.Options{NoMedia: true})
	eventually(t, 20*time.Second, "the client watches the therapist", func() (bool, string) { return receivesFrom(cli, 20, ther) })
	time.Sleep(time.Until(start.Add(8 * time.Second)))
	frozeAt := time.Now()
	cli.Freeze()

	p := closedPerson(t, n, staff, room, sub, 1)
	seg := p.Segments[0]
	if seg.Reason != rooms.ReasonDropped {
		t.Errorf("closed for %q, want dropped", seg.Reason)
	}
	withinTime(t, "the frozen client's segment ends", *seg.End, frozeAt)
	within(t, "the frozen client's seconds", seg.Seconds, frozeAt.Sub(start))
	if seg.VideoSeconds != 0 {
		t.Errorf("%d s of video from a client that sent none", seg.VideoSeconds)
	}
}
