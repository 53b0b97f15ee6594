package sfu

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestReceivedStreamAsksForWhatIsMissing: the numbers a stream asks for are
// the ones lost, each at most nackTries times, never one that arrived late
// or one older than the window; the loss in the report is what was lost.
func TestReceivedStreamAsksForWhatIsMissing(t *testing.T) {
	now := time.Now()
	st := &receivedStream{ssrc: 1, clockRate: 90000}
	for _, s := range []uint16{65530, 65531, 65533, 65535, 2, 3} { // 65532, 65534, 0, 1 lost, across the wrap
		st.arrived(s, 0, now)
	}
	if got, want := st.nack(nil), []uint16{65532, 65534, 0, 1}; !slices.Equal(got, want) {
		t.Fatalf("asked for %v, want %v", got, want)
	}
	st.arrived(65534, 0, now) // retransmitted
	for i := 1; i < nackTries; i++ {
		if got, want := st.nack(nil), []uint16{65532, 0, 1}; !slices.Equal(got, want) {
			t.Fatalf("round %d: asked for %v, want %v", i+1, got, want)
		}
	}
	if got := st.nack(nil); len(got) != 0 {
		t.Errorf("after %d rounds asked again for %v", nackTries, got)
	}
	rep, ok := st.report(now)
	if !ok || rep.TotalLost != 3 || rep.LastSequenceNumber != 1<<16|3 {
		t.Errorf("report %+v: want 3 lost, highest 65536+3", rep)
	}
	if rep.FractionLost != 3*256/10 {
		t.Errorf("fraction lost %d/256, want 3 of 10", rep.FractionLost)
	}
	st.arrived(3+nackWindow+10, 0, now) // a jump past the window: a new start
	if got := st.nack(nil); len(got) != 0 {
		t.Errorf("after a jump past the window asked for %d numbers from %v, want none", len(got), got[:min(3, len(got))])
	}
	st.arrived(3+nackWindow+12, 0, now)
	if got, want := st.nack(nil), []uint16{3 + nackWindow + 11}; !slices.Equal(got, want) {
		t.Errorf("after the jump asked for %v, want %v", got, want)
	}
}

// TestPublisherGetsNACKsAndReports: a publisher whose packet is lost on the
// way is asked for it again (a NACK naming it, at most nackTries times),
// and gets receiver reports on its stream, through real PeerConnections.
// With no NACK the subscribers' picture would freeze until the next
// keyframe.
func TestPublisherGetsNACKsAndReports(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("nack")
	p := joinPeerAPI(t, r, "p", false, twccClientAPI(t))
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "s")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := p.pub.AddTrack(video)
	if err != nil {
		t.Fatal(err)
	}
	offer, err := p.pub.CreateOffer(nil)
	if err == nil {
		err = p.pub.SetLocalDescription(offer)
	}
	if err != nil {
		t.Fatal(err)
	}
	p.work <- func() {
		if err := p.part.HandleOffer(offer.SDP); err != nil {
			t.Errorf("offer: %v", err)
		}
	}
	var mu sync.Mutex
	asked := map[uint16]int{}
	reports := 0
	go func() {
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			mu.Lock()
			for _, pk := range pkts {
				switch pk := pk.(type) {
				case *rtcp.TransportLayerNack:
					for _, pair := range pk.Nacks {
						pair.Range(func(s uint16) bool { asked[s]++; return true })
					}
				case *rtcp.ReceiverReport:
					reports++
				}
			}
			mu.Unlock()
		}
	}()
	const lost = 120
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		payload := []byte{0x10, 1, 2, 3}
		for seq := uint16(100); ; seq++ {
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
			if seq == lost {
				continue
			}
			_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: payload})
		}
	}()
	waitFor(t, "a NACK for the lost packet and a receiver report", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return asked[lost] > 0 && reports > 0
	})
	time.Sleep(time.Duration(nackTries+2) * clockTick)
	mu.Lock()
	defer mu.Unlock()
	for s, n := range asked {
		if s != lost {
			// Lost in the kernel's socket buffer on a loaded machine.
			t.Logf("also asked for %d", s)
		}
		if n > nackTries {
			t.Errorf("asked for %d %d times, want at most %d", s, n, nackTries)
		}
	}
}
