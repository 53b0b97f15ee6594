package sfu

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
)

// TestPushedQueueReadsAsWritten: a publish stream's queue hands its reader
// the packets written before the reader attached, in order, then reads
// every later packet within the write that brought it, on the writer's
// goroutine; once closed, it reads what is left and ends the reader once.
func TestPushedQueueReadsAsWritten(t *testing.T) {
	var shed shedMeter
	var pushed pushStreams
	q := newMediaQueue(&shed, &pushed)(packetio.RTPBufferPacket, 42).(*mediaQueue)
	if got := pushed.take(7); got != nil {
		t.Fatal("a queue was found for an SSRC nobody sends")
	}
	write := func(seq int) {
		t.Helper()
		if _, err := q.Write([]byte{byte(seq)}); err != nil {
			t.Fatalf("write %d: %v", seq, err)
		}
	}
	for seq := range 3 {
		write(seq)
	}

	var got []int
	buf := make([]byte, 1500)
	readOne := func() bool {
		n, err := q.Read(buf)
		if err != nil {
			return false
		}
		got = append(got, int(buf[n-1]))
		return true
	}
	var ended atomic.Int32
	endedCh := make(chan struct{}, 2)
	end := func() { ended.Add(1); endedCh <- struct{}{} }

	if pushed.take(42) != q {
		t.Fatal("the stream's queue was not kept for its reader")
	}
	q.attach(readOne, end)
	if want := []int{0, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("attach read %v, want the packets written before, in order: %v", got, want)
	}
	for seq := 3; seq < 100; seq++ {
		write(seq)
		if len(got) != seq+1 || got[seq] != seq || q.Count() != 0 {
			t.Fatalf("after writing %d the reader had %d packets (last %v), %d queued; want each read within its write", seq, len(got), got[len(got)-1], q.Count())
		}
	}
	if n := shed.n.Load(); n != 0 {
		t.Errorf("%d packets shed by a queue that was read as written", n)
	}

	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	_ = q.Close() // pion may close a stream twice: it is forgotten once
	if pushed.open != 0 {
		t.Errorf("%d streams counted open after the only one closed", pushed.open)
	}
	select {
	case <-endedCh:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader was not ended after the stream closed")
	}
	if _, err := q.Write([]byte{1}); err == nil {
		t.Error("a closed queue took a packet")
	}
	time.Sleep(50 * time.Millisecond)
	if n := ended.Load(); n != 1 {
		t.Errorf("the reader was ended %d times, want once", n)
	}
	if len(got) != 100 {
		t.Errorf("%d packets read, want 100", len(got))
	}
}

// TestPushedQueueEndsOnReadError: a read that fails (pion's track ended)
// ends the reader at once, and later writes are left queued for nobody.
func TestPushedQueueEndsOnReadError(t *testing.T) {
	var shed shedMeter
	q := newMediaQueue(&shed, &pushStreams{})(packetio.RTPBufferPacket, 1).(*mediaQueue)
	t.Cleanup(func() { _ = q.Close() })
	ended := make(chan struct{}, 2)
	reads := 0
	q.attach(func() bool {
		reads++
		_, _ = q.Read(make([]byte, 1500))
		return false
	}, func() { ended <- struct{}{} })
	if _, err := q.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("a failed read did not end the reader")
	}
	if _, err := q.Write([]byte{2}); err != nil {
		t.Fatal(err)
	}
	if reads != 1 || q.Count() != 1 {
		t.Errorf("%d reads, %d queued after the reader ended; want 1 read and the later packet left queued", reads, q.Count())
	}
}

// TestPublisherSprayingStreamsIsDropped: a publisher whose packets come under
// ever new SSRCs (each authenticated: an admitted participant's browser,
// altered) made pion keep a stream per SSRC until the PeerConnection
// closed. The server holds at most streamsPerTrack per track it may
// publish, then drops the publisher; the others' call goes on.
func TestPublisherSprayingStreamsIsDropped(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("spray")
	var spray ssrcSpray
	spray.next.Store(0x5eed0000)
	viewer := joinPeer(t, r, "viewer", false)
	other := joinPeer(t, r, "other", true)
	attacker := joinPeerAPI(t, r, "attacker", true, clientAPI(t, true, &spray))
	waitFor(t, "the viewer receives the attacker's video", func() bool { return viewer.packets("attacker", "video") > 5 })
	waitFor(t, "the viewer receives the other's video", func() bool { return viewer.packets("other", "video") > 5 })

	limit := streamsPerTrack * s.cfg.MaxTracksPerParticipant
	spray.on.Store(true)
	waitFor(t, "the attacker is dropped", attacker.failed.Load)
	if got := s.Stats().Refused.Streams; got != 1 {
		t.Errorf("refusals counted: %d, want 1", got)
	}
	// Until signaling closes its connection (not here: no websocket), the
	// attacker goes on; what the server holds for it stays bounded.
	waitFor(t, "the attacker sprays on", func() bool { return spray.next.Load()-0x5eed0000 > uint32(4*limit) })
	if open := openStreams(attacker.part); open > limit {
		t.Errorf("%d streams held for the attacker after %d SSRCs, limit %d", open, spray.next.Load()-0x5eed0000, limit)
	}
	if viewer.failed.Load() || other.failed.Load() {
		t.Error("someone else was dropped too")
	}
	before := viewer.packets("other", "video")
	waitFor(t, "the viewer still receives the other's video", func() bool { return viewer.packets("other", "video") > before+20 })
}

// ssrcSpray is a client interceptor that, once on, sends every video packet
// under a new SSRC.
type ssrcSpray struct {
	interceptor.NoOp
	on   atomic.Bool
	next atomic.Uint32
}

func (s *ssrcSpray) NewInterceptor(string) (interceptor.Interceptor, error) { return s, nil }

func (s *ssrcSpray) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if s.on.Load() && info.MimeType == webrtc.MimeTypeVP8 {
			sprayed := h.Clone()
			sprayed.SSRC = s.next.Add(1)
			return w.Write(&sprayed, payload, a)
		}
		return w.Write(h, payload, a)
	})
}

// TestScreenSharedAgainAndAgainKeepsThePublisher: a browser that starts
// and stops sharing its screen again and again (the web client stops the
// screen's transceivers each time) closes the streams it opened: they do
// not add up toward the bound on a publisher's streams, which never drops
// an honest one. (pion, unlike Chrome, does not reuse a stopped media
// section, so six shares fill the eight sections a publish offer may have.)
func TestScreenSharedAgainAndAgainKeepsThePublisher(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("shares")
	viewer := joinPeer(t, r, "viewer", false)
	p := joinPeer(t, r, "presenter", true)
	waitFor(t, "the viewer receives the presenter's video", func() bool { return viewer.packets("presenter", "video") > 5 })
	renegotiate := func() {
		t.Helper()
		offer, err := p.pub.CreateOffer(nil)
		if err == nil {
			err = p.pub.SetLocalDescription(offer)
		}
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		p.work <- func() { done <- p.part.HandleOffer(offer.SDP) }
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the answer applied", func() bool { return p.pub.SignalingState() == webrtc.SignalingStateStable })
	}
	shares := 2*s.cfg.MaxTracksPerParticipant - 2
	for i := range shares {
		screen, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", "shared")
		if err != nil {
			t.Fatal(err)
		}
		tc, err := p.pub.AddTransceiverFromTrack(screen, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		renegotiate()
		waitFor(t, "the server opens the screen's stream", func() bool {
			_ = screen.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Marker: true}, Payload: []byte{0x10, 0, 0x9d, 0x01, 0x2a}})
			time.Sleep(5 * time.Millisecond)
			return openStreams(p.part) == 3
		})
		if err := tc.Stop(); err != nil {
			t.Fatal(err)
		}
		renegotiate()
		waitFor(t, "the share's stream closes", func() bool { return openStreams(p.part) == 2 })
	}
	if p.failed.Load() {
		t.Fatalf("the presenter was dropped after sharing its screen %d times", shares)
	}
}

func openStreams(p *Participant) int {
	p.pushed.mu.Lock()
	defer p.pushed.mu.Unlock()
	return p.pushed.open
}
