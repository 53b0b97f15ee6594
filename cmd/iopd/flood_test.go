package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/client"
	"iop/signaling/protocol"
)

// TestSocketFlood (issue 18, finding 1): one client token opens many
// sockets into a room whose therapist is present. The person keeps at most
// IOP_SOCKETS_PER_PERSON of them; the rest are replaced, the therapist's
// waiting list ends with the kept sockets only, and the node's
// sockets return to what the therapist and the kept sockets need. 60
// sockets in go test; IOP_FLOOD_SOCKETS=800 for the size.
func TestSocketFlood(t *testing.T) {
	total := 60
	if v, err := strconv.Atoi(os.Getenv("IOP_FLOOD_SOCKETS")); err == nil && v > 0 {
		total = v
	}
	n := testNode(t)
	room := uniqueRoom("flood")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	th, err := client.Join(ctx, n.url, n.joinToken(t, "dana", "Dana", rooms.RoleTherapist, room), client.Options{})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(th.Close)
	var lists, longest, last atomic.Int64
	go func() {
		for m := range th.Events() {
			if m.Type == protocol.TypeWaitingList {
				lists.Add(1)
				last.Store(int64(len(m.Waiting)))
				if l := int64(len(m.Waiting)); l > longest.Load() {
					longest.Store(l)
				}
			}
		}
	}()
	tok := n.joinToken(t, "flooder", "Flo", rooms.RoleClient, room)
	goroutinesBefore := metricValue(t, n, "go_goroutines")
	fdsBefore := metricValue(t, n, "process_open_fds")
	var open []*client.Conn
	for i := range total {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := client.Dial(ctx, n.url, nil)
		cancel()
		if err != nil {
			t.Fatalf("socket %d: %v", i, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		if m := joinAs(t, c, tok); m.Type != protocol.TypeWaiting {
			t.Fatalf("socket %d: %s %s, want waiting", i, m.Type, m.Code)
		}
		open = append(open, c)
	}
	keep := n.cfg.SocketsPerPerson
	for i, c := range open[:total-keep] {
		if code, err := readUntilClosed(c); err != nil || code != protocol.CodeReplaced {
			t.Fatalf("socket %d: closed with %q, %v; want replaced", i, code, err)
		}
		_ = c.Close() // the test's end of it: this process's descriptors are counted too
	}
	// Sockets: the therapist's one and the person's kept ones.
	eventually(t, 20*time.Second, "sockets back to the kept ones", func() (bool, string) {
		v := metricValue(t, n, "iop_sockets")
		return v == strconv.Itoa(1+keep), "iop_sockets " + v
	})
	eventually(t, 20*time.Second, "the waiting list holds the kept sockets only", func() (bool, string) {
		return last.Load() == int64(keep), fmt.Sprintf("waiting list of %d", last.Load())
	})
	t.Logf("therapist got %d waiting_list messages, longest %d", lists.Load(), longest.Load())
	t.Logf("%d sockets with one token: %d replaced (iop_limit_refusals_total %s); goroutines %s -> %s, fds %s -> %s",
		total, total-keep, metricValue(t, n, `iop_limit_refusals_total{limit="sockets_per_person"}`),
		goroutinesBefore, metricValue(t, n, "go_goroutines"), fdsBefore, metricValue(t, n, "process_open_fds"))
}

// readUntilClosed reads c until the server closes it, and returns the
// error code it was told.
func readUntilClosed(c *client.Conn) (string, error) {
	code := ""
	for {
		m, err := c.Read(time.Now().Add(20 * time.Second))
		if err != nil {
			if code == "" {
				return "", err
			}
			return code, nil
		}
		if m.Type == protocol.TypeError {
			code = m.Code
		}
	}
}
