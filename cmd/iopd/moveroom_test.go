package main

import (
	"context"
	"testing"
	"time"

	"iop/rooms"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// TestRoomTakenByAnotherNodeMovesItsPeople: if another node takes a room
// while this one still serves it (its claim lapsed during a Redis outage),
// this node's participants are sent to the new owner instead of the group
// being split across two nodes.
func TestRoomTakenByAnotherNodeMovesItsPeople(t *testing.T) {
	t.Parallel()
	url := sharedRedis(t)
	a := testNode(t, func(c *config) { c.RedisURL = url })
	b := testNode(t, func(c *config) { c.RedisURL = url })
	room := "moved-" + token.RandomID(3)

	c := dial(t, a)
	if err := c.Send(protocol.ClientMessage{Type: protocol.TypeJoin, V: 1, Token: a.joinToken(t, "t-1", "Dana", rooms.RoleTherapist, room)}); err != nil {
		t.Fatal(err)
	}
	waitType(t, c, protocol.TypeJoined)

	// Node B takes the room, as it could after A's claim expired.
	key := "iop:room:{" + demoRef(room).String() + "}:owner"
	if err := a.store.Redis.Set(context.Background(), key, b.cfg.NodeID+" "+b.url, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second) // A renews every 5 s
	for {
		m, err := c.Read(deadline)
		if err != nil {
			t.Fatalf("no redirect to the room's new node: %v", err)
		}
		if m.Type == protocol.TypeRedirect {
			if m.URL != b.url {
				t.Errorf("redirected to %q, want node B %q", m.URL, b.url)
			}
			break
		}
	}
}
