package sfu

import (
	"runtime"
	"strings"
	"testing"
)

// TestFeedbackNeedsNoGoroutinePerTrack: a subscriber's RTCP (keyframe
// requests, NACKs, bandwidth estimates; TestRetransmitFromCache and the
// keyframe tests check that it is acted on) is handled on its subscribe
// PeerConnection's SRTCP reader, and a published track is forwarded on its
// publish PeerConnection's SRTP reader (push.go): the SFU starts no
// goroutine per published track nor per subscriber's copy. In a room of
// three who all publish audio and video, what runs is the node's RTCP clock
// (rtcpclock.go), where one reader per published track made it 7, and one
// RTCP reader per down-track 18 before that.
func TestFeedbackNeedsNoGoroutinePerTrack(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("fb")
	peers := []*peer{joinPeer(t, r, "a", true), joinPeer(t, r, "b", true), joinPeer(t, r, "c", true)}
	for _, p := range peers {
		for _, q := range peers {
			if p != q {
				waitFor(t, p.part.id+" receives "+q.part.id, func() bool {
					return p.packets(q.part.id, "audio") > 5 && p.packets(q.part.id, "video") > 5
				})
			}
		}
	}
	buf := make([]byte, 1<<22)
	dump := string(buf[:runtime.Stack(buf, true)])
	n := 0
	for _, g := range strings.Split(dump, "\n\n") {
		// The server's goroutines, not the test's own pion clients.
		i := strings.Index(g, "created by iop/sfu.")
		if i >= 0 && !strings.Contains(g[i:], "_test.go") {
			n++
		}
	}
	if want := 1; n > want {
		t.Errorf("%d goroutines started by the SFU for 3 participants publishing 2 tracks each, want at most %d (the clock):\n%s", n, want, dump)
	}
}

// BenchmarkFeedbackReceiverReport is the cost of a subscriber's receiver
// report on the SRTCP reader's goroutine, now that each RTCP packet is
// stamped as evidence of the person (Participant.LastRTCP); "bare" is the
// report's type check alone, as before the stamp, in the same run.
func BenchmarkFeedbackReceiverReport(b *testing.B) {
	rr := []byte{0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	var f feedback
	b.Run("stamped", func(b *testing.B) {
		for b.Loop() {
			f.handle(2, rr)
		}
	})
	b.Run("bare", func(b *testing.B) {
		n := 0
		for b.Loop() {
			if len(rr) < 8 || (rr[1] != rtcpTypeRTPFB && rr[1] != rtcpTypePSFB) {
				n++
			}
		}
		_ = n
	})
}
