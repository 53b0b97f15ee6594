package main

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"iop/rooms"
	"iop/signaling/protocol"
)

// held describes what the server holds for participants right now.
func held(n *node) (bool, string) {
	st := n.sfu.Stats()
	sessions := n.sig.Sessions()
	open := n.rooms.Len()
	free := st.PeerConnections == 0 && st.UpTracks == 0 && st.Participants == 0 && sessions == 0 && open == 0
	return free, fmt.Sprintf("%d PeerConnections, %d published tracks, %d media participants, %d sockets, %d rooms",
		st.PeerConnections, st.UpTracks, st.Participants, sessions, open)
}

// TestAbruptDisconnectsReleaseEverything drops participants the ways real
// clients vanish and checks that the server lets go of every socket,
// PeerConnection, track and goroutine they held.
func TestAbruptDisconnectsReleaseEverything(t *testing.T) {
	n := testNode(t)
	const room = "drops"

	// Warm up once so lazily started goroutines (HTTP, Redis pool, pion
	// timers) are part of the baseline.
	w1 := joinPeer(t, n, "warm-1", rooms.RoleTherapist, room)
	w2 := joinPeer(t, n, "warm-2", rooms.RoleClient, room)
	eventually(t, 20*time.Second, "warm-up call", func() (bool, string) { return receivesFrom(w1, 10, w2) })
	w1.Leave()
	w2.Leave()
	eventually(t, 20*time.Second, "warm-up released", func() (bool, string) { return held(n) })
	time.Sleep(500 * time.Millisecond)
	baseline, _ := participantGoroutines()

	// 1. A participant in a live call whose socket drops without a word.
	stay := joinPeer(t, n, "therapist", rooms.RoleTherapist, room)
	gone := joinPeer(t, n, "alex", rooms.RoleClient, room)
	eventually(t, 20*time.Second, "call up", func() (bool, string) { return receivesFrom(stay, 10, gone) })
	gone.Close()
	m := waitEvent(t, stay, 10*time.Second, "participant_left for the dropped client", func(m protocol.ServerMessage) bool {
		return m.Type == protocol.TypeParticipantLeft && m.ID == gone.ID()
	})
	if m.Reason != protocol.ReasonDropped {
		t.Errorf("reason %q, want %q", m.Reason, protocol.ReasonDropped)
	}

	// 2. A participant that offers but whose PeerConnection never completes
	// ICE (it sends no candidates and goes away), then drops its socket.
	c := joinRaw(t, n, "ghost", room)
	ghost := newOfferOnlyPC(t)
	if err := c.Send(protocol.ClientMessage{Type: protocol.TypeOffer, PC: protocol.PCPublish, SDP: ghost}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Read(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for the publish answer: %v", err)
		}
		if m.Type == protocol.TypeAnswer && m.PC == protocol.PCPublish {
			break
		}
	}
	_ = c.Close()

	// 3. A socket that opens and closes without joining.
	_ = dial(t, n).Close()

	// 4. The last one leaves abruptly too.
	stay.Close()

	eventually(t, 30*time.Second, "server releases everything", func() (bool, string) { return held(n) })
	eventually(t, 30*time.Second, "goroutines return to the baseline", func() (bool, string) {
		now, stacks := participantGoroutines()
		return now <= baseline, fmt.Sprintf("%d goroutines, baseline %d:\n%s", now, baseline, stacks)
	})
}

// participantGoroutines counts the goroutines that serve participants: media
// (pion), websockets and the server's session code. Pools that grow with
// load and stay (Redis connections) are not a participant's to release.
func participantGoroutines() (int, string) {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var kept []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, mark := range []string{"github.com/pion/", "github.com/gorilla/websocket", "iop/sfu.", "iop/signaling."} {
			if strings.Contains(g, mark) && !strings.Contains(g, "iop/signaling/client.") {
				n++
				kept = append(kept, g)
				break
			}
		}
	}
	return n, strings.Join(kept, "\n\n")
}

// newOfferOnlyPC makes a real publish offer from a PeerConnection that is
// closed right away, so ICE toward it can never complete.
func newOfferOnlyPC(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}
