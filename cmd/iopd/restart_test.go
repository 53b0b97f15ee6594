package main

import (
	"testing"

	"iop/rooms"
	"iop/signaling/protocol"
	"iop/signaling/token"
)

// TestRestartNoSelfRedirect: a node holding a room is killed (SIGKILL, so
// its room claim stays in Redis until it lapses) and started again at the
// same address, once with a new random node id and once with a stable
// IOP_NODE_ID: a join to the room is admitted by the restarted node at
// once, never redirected to its own URL.
func TestRestartNoSelfRedirect(t *testing.T) {
	t.Parallel()
	bin := buildIopd(t)
	redisURL := sharedRedis(t)
	minter := token.NewMinter(token.Config{Secret: []byte(testSecret), Audience: token.DefaultAudience})
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"random node id", nil},
		{"stable node id", []string{"IOP_NODE_ID=restart-node-" + randomHex(3)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			room := uniqueRoom("restart")
			tok := func(sub string) string { return mintJoin(t, minter, sub, rooms.RoleTherapist, room, "") }
			port := freePort(t)
			first := startIopdAt(t, bin, redisURL, port, tc.env...)
			if first == nil {
				t.Fatal("iopd did not come up")
			}
			_, m := knock(t, first.url, tok("therapist-1"))
			expectAnswer(t, "therapist before the kill", m, protocol.TypeJoined)
			first.kill()

			again := startIopdAt(t, bin, redisURL, port, tc.env...)
			if again == nil {
				t.Fatal("iopd did not come up again on its port")
			}
			_, m = knock(t, again.url, tok("therapist-2"))
			if m.Type == protocol.TypeRedirect {
				t.Fatalf("the restarted node redirects to %s (itself: %s)", m.URL, again.url)
			}
			expectAnswer(t, "therapist after the restart", m, protocol.TypeJoined)
		})
	}
}
