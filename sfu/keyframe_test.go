package sfu

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"iop/sfu/codec"
)

// chromePLIWindow is how long after its last keyframe Chrome ignores a
// keyframe request (measured: 0.3-0.5 s; PLIs sent 1 s or more after the
// last keyframe were all answered). The model takes the upper end.
const chromePLIWindow = 500 * time.Millisecond

// chromeKeys answers keyframe requests as Chrome's VP8 simulcast encoder
// does: a request within chromePLIWindow of the last keyframe is ignored,
// whatever layer it names; any other makes the next frame a keyframe on
// every layer at once. It sends no periodic keyframes (Chrome's come every
// 3,000 frames, 100 s at 30 fps). cmd/iopload has the same model.
type chromeKeys struct {
	mu      sync.Mutex
	lastKey time.Time
	keyNext bool
	plis    int // requests received
	ignored int // of which ignored
	keys    int // keyframes made (every layer at once)
}

// request handles a PLI or FIR that arrived at now.
func (c *chromeKeys) request(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.plis++
	if !c.lastKey.IsZero() && now.Sub(c.lastKey) < chromePLIWindow {
		c.ignored++
		return
	}
	c.keyNext = true
}

// frame reports whether the frame captured at now is a keyframe; the first
// one is.
func (c *chromeKeys) frame(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.keyNext && !c.lastKey.IsZero() {
		return false
	}
	c.keyNext, c.lastKey = false, now
	c.keys++
	return true
}

// counts returns the requests received, ignored and the keyframes made.
func (c *chromeKeys) counts() (plis, ignored, keys int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plis, c.ignored, c.keys
}

// chromePublisher joins room r as id and publishes one VP8 video in three
// simulcast layers (rids q, h, f) over a real PeerConnection at 30 fps,
// answering keyframe requests as Chrome does (chromeKeys). Each packet's
// payload names its layer in its third byte (see vp8). It stops when the
// test ends.
func chromePublisher(t *testing.T, r *Room, id string) (*peer, *chromeKeys) {
	t.Helper()
	p := joinPeerAPI(t, r, id, false, simulcastAPI(t))
	keys := &chromeKeys{}
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	var tracks [maxLayers]*webrtc.TrackLocalStaticRTP
	for i, rid := range []string{"q", "h", "f"} {
		tr, err := webrtc.NewTrackLocalStaticRTP(codec, "video", "s", webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		tracks[i] = tr
	}
	tc, err := p.pub.AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range tracks[1:] {
		if err := tc.Sender().AddEncoding(tr); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := p.pub.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.pub.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	p.work <- func() {
		if err := p.part.HandleOffer(offer.SDP); err != nil {
			t.Errorf("offer: %v", err)
		}
	}
	waitFor(t, "the publish answer", func() bool { return p.pub.RemoteDescription() != nil })
	ids := map[string]uint8{}
	for _, e := range tc.Sender().GetParameters().HeaderExtensions {
		ids[e.URI] = uint8(e.ID)
	}
	midID, ridID := ids["urn:ietf:params:rtp-hdrext:sdes:mid"], ids["urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"]
	if midID == 0 || ridID == 0 {
		t.Fatalf("mid/rid extensions not negotiated: %v", ids)
	}
	for _, tr := range tracks {
		go func() {
			for {
				pkts, _, err := tc.Sender().ReadSimulcastRTCP(tr.RID())
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						keys.request(time.Now())
					}
				}
			}
		}()
	}
	go func() {
		var seq uint16
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-p.done:
				return
			case now := <-tick.C:
				key := keys.frame(now)
				for l, tr := range tracks {
					pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(i * 3000), Marker: true},
						Payload: vp8(key, byte(l))}
					_ = pkt.SetExtension(midID, []byte(tc.Mid()))
					_ = pkt.SetExtension(ridID, []byte(tr.RID()))
					_ = tr.WriteRTP(pkt)
				}
				seq++
			}
		}
	}()
	return p, keys
}

// firstVideo records when a subscriber's first video packet from a
// publisher arrived and whether it started a keyframe.
type firstVideo struct {
	at  atomic.Int64 // Unix nanoseconds, 0 until then
	key atomic.Bool
}

func (f *firstVideo) see(pkt *rtp.Packet) {
	if f.at.CompareAndSwap(0, time.Now().UnixNano()) {
		f.key.Store(codec.VP8KeyframeStart(pkt.Payload))
	}
}

// TestKeyframeAfterAnotherSubscribersSwitch is the black tile of two
// browsers and a silent therapist: Chrome keys all simulcast layers for
// one request and ignores requests within half a second of its last
// keyframe. Another subscriber's switch to the low layer makes it key all
// layers; 150 ms later a new subscriber's answer arrives and it needs the
// medium layer. Its request falls into the ignored window; the server must
// ask again once Chrome will answer, and the new subscriber's video must
// start (with a keyframe) within 2 s.
func TestKeyframeAfterAnotherSubscribersSwitch(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("tiles")
	_, keys := chromePublisher(t, r, "pub")
	var fromA firstVideo
	a := joinPeerAPI(t, r, "a", false, clientAPI(t, true), func(p *peer) {
		p.seen = func(track string, pkt *rtp.Packet) {
			if track == "pub/video-1" {
				fromA.see(pkt)
			}
		}
	})
	waitFor(t, "the first subscriber's video", func() bool { return fromA.at.Load() != 0 })
	if !fromA.key.Load() {
		t.Error("the first subscriber's video started without a keyframe")
	}
	// Quiet: the last keyframe is now well over Chrome's window ago.
	time.Sleep(1200 * time.Millisecond)

	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var fromB firstVideo
	joinPeerAPI(t, r, "b", false, clientAPI(t, true), func(p *peer) {
		p.beforeAnswer = func() {
			once.Do(func() {
				close(held)
				<-release
			})
		}
		p.seen = func(track string, pkt *rtp.Packet) {
			if track == "pub/video-1" {
				fromB.see(pkt)
			}
		}
	})
	<-held // b's subscribe offer is answered, the answer held back
	_, _, keysBefore := keys.counts()
	if err := a.part.SetLayer("pub", "low"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	answered := time.Now()
	close(release)

	deadline := answered.Add(2 * time.Second)
	for fromB.at.Load() == 0 && time.Now().Before(deadline.Add(time.Second)) {
		time.Sleep(10 * time.Millisecond)
	}
	plis, ignored, keysAfter := keys.counts()
	at := fromB.at.Load()
	switch {
	case at == 0:
		t.Fatalf("the new subscriber received no video within 3 s of its answer (publisher: %d keyframe requests, %d ignored, %d keyframes, %d since the layer change)",
			plis, ignored, keysAfter, keysAfter-keysBefore)
	case time.Unix(0, at).After(deadline):
		t.Errorf("the new subscriber's video started %v after its answer, want within 2 s", time.Unix(0, at).Sub(answered).Round(time.Millisecond))
	case !fromB.key.Load():
		t.Error("the new subscriber's video started without a keyframe")
	}
	t.Logf("video %v after the answer; publisher: %d keyframe requests, %d ignored, %d keyframes",
		time.Unix(0, at).Sub(answered).Round(time.Millisecond), plis, ignored, keysAfter)
}

// TestKeyframePacer: a keyframe request never leaves sooner than the
// interval after the last keyframe seen (Chrome would ignore it), and one
// that goes unanswered is repeated after twice the interval, then after
// twice as long each time, up to the maximum; a keyframe starts over.
func TestKeyframePacer(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	t0 := time.Now()
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	p := keyframePacer{interval: ms(500), max: ms(4000)}
	p.keyframe(at(0))
	for _, step := range []struct {
		key  bool // a keyframe is seen at this time instead of asking
		now  int
		send bool
		wait int
	}{
		{now: 150, send: false, wait: 350},  // 150 ms after a keyframe: too early
		{now: 500, send: true, wait: 1000},  // the interval is over
		{now: 900, send: false, wait: 600},  // unanswered: wait for the retry
		{now: 1500, send: true, wait: 2000}, // retry, then twice as long
		{now: 3500, send: true, wait: 4000},
		{now: 7500, send: true, wait: 4000}, // at most the maximum
		{key: true, now: 7600},              // answered
		{now: 7700, send: false, wait: 400}, // a new request waits for the interval only
		{now: 8100, send: true, wait: 1000},
	} {
		if step.key {
			p.keyframe(at(step.now))
			continue
		}
		send, wait := p.ask(at(step.now))
		if send != step.send || wait != ms(step.wait) {
			t.Errorf("at %d ms: send %v, look again in %v; want %v, %v", step.now, send, wait, step.send, ms(step.wait))
		}
	}
}

// TestKeyframeRequestsRepeatUntilAnswered: a subscriber waiting for its
// first keyframe gets the publisher asked again and again, less often each
// time, until a keyframe arrives; then the asking stops, and /metrics-style
// stats show the wait while it lasts.
func TestKeyframeRequestsRepeatUntilAnswered(t *testing.T) {
	u, ls := testTrack(nil, webrtc.RTPCodecTypeVideo, true, layerLow, layerMedium, layerHigh)
	s := u.pub.sfu
	s.cfg.KeyframeInterval, s.cfg.KeyframeRetryMax, s.cfg.KeyframeWaitLog = 10*time.Millisecond, 80*time.Millisecond, 50*time.Millisecond
	var logged syncBuffer
	s.cfg.Logger = slog.New(slog.NewJSONHandler(&logged, nil))
	u.kf.pacer.interval, u.kf.pacer.max = s.cfg.KeyframeInterval, s.cfg.KeyframeRetryMax
	t.Cleanup(u.close)
	w := &captureAll{}
	d := newDownTrack(u) // a grid tile: medium
	u.attach(d)
	d.bound.Store(&binding{ssrc: 9, pt: 96, write: w})
	d.retarget() // bound: it now waits, as after pion's Bind

	waitFor(t, "repeated keyframe requests", func() bool { return s.keyframeRequests.Load() >= 4 })
	waitFor(t, "the long wait logged", func() bool { return strings.Contains(logged.String(), "waits for a keyframe") })
	if line := logged.String(); strings.Count(line, "\n") != 1 || strings.Contains(line, u.pub.id) || !strings.Contains(line, `"to_layer":"medium"`) {
		t.Errorf("logged %q: want one line, the layer and no participant", line)
	}
	var waits KeyframeWaits
	waits.add(u, time.Now())
	if waits.Waiting != 1 || waits.Longest <= 0 {
		t.Errorf("waits %+v, want one down-track waiting for some time", waits)
	}
	u.forward(&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: vp8(true, layerMedium)}, ls[layerMedium])
	if string(w.from) != string([]byte{layerMedium}) {
		t.Fatalf("forwarded %v, want the medium keyframe", w.from)
	}
	time.Sleep(200 * time.Millisecond) // the timer has looked again
	n := s.keyframeRequests.Load()
	time.Sleep(300 * time.Millisecond)
	if m := s.keyframeRequests.Load(); m != n {
		t.Errorf("%d more keyframe requests after the keyframe arrived", m-n)
	}
	waits = KeyframeWaits{}
	waits.add(u, time.Now())
	if waits.Waiting != 0 {
		t.Errorf("waits %+v after the keyframe, want none", waits)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStartsLowRatherThanBlack: a subscriber's video that shows nothing
// yet waits for a keyframe of its target layer, but not for ever: once it
// has waited twice the keyframe interval, a keyframe of a lower layer
// starts it (a smaller picture rather than a black tile), and the target's
// next keyframe moves it up.
func TestStartsLowRatherThanBlack(t *testing.T) {
	u, ls := testTrack(nil, webrtc.RTPCodecTypeVideo, true, layerLow, layerMedium, layerHigh)
	t.Cleanup(u.close)
	w := &captureAll{}
	d := newDownTrack(u) // a grid tile: medium
	u.attach(d)
	d.bound.Store(&binding{ssrc: 9, pt: 96, write: w})
	d.retarget()
	key := func(l int) {
		u.forward(&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: vp8(true, byte(l))}, ls[l])
	}
	delta := func(l int) {
		u.forward(&rtp.Packet{Header: rtp.Header{Version: 2}, Payload: vp8(false, byte(l))}, ls[l])
	}

	key(layerLow)
	if len(w.from) != 0 {
		t.Fatalf("started on %v at once, want to wait for the medium layer", w.from)
	}
	d.waitFrom.Store(time.Now().Add(-2*u.pub.sfu.cfg.KeyframeInterval - time.Millisecond).UnixNano())
	key(layerHigh) // above the target: never
	key(layerLow)
	delta(layerLow)
	delta(layerMedium)
	key(layerMedium)
	delta(layerLow)
	delta(layerMedium)
	if want := []byte{layerLow, layerLow, layerMedium, layerMedium}; string(w.from) != string(want) {
		t.Errorf("forwarded layers %v, want %v", w.from, want)
	}
}
