package sfu

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// newTestSFU starts an SFU on a free loopback UDP port; tweaks change its
// configuration first.
func newTestSFU(t testing.TB, tweaks ...func(*Config)) *SFU {
	t.Helper()
	cfg := DefaultConfig()
	cfg.UDPAddr = "127.0.0.1:0"
	cfg.IncludeLoopback = true
	for _, f := range tweaks {
		f(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// peer is a pion client wired straight to a Participant (no websocket): it
// implements Signaler and applies what the SFU sends in order.
type peer struct {
	t        testing.TB
	part     *Participant
	pub, sub *webrtc.PeerConnection
	work     chan func()
	done     chan struct{}
	mute     chan struct{} // stops the synthetic media

	mu       sync.Mutex
	received map[string]*atomic.Int64 // stream id + "/" + kind -> packets
	failed   atomic.Bool
	// seen, when set, is told of every packet received on track id
	// (stream id + "/" + track id).
	seen func(track string, pkt *rtp.Packet)
	// beforeAnswer, when set, runs before each subscribe answer is sent
	// to the server: a test holds the answer back with it.
	beforeAnswer func()
	// encodings, when set, is told of every encodings message (pause.go).
	encodings func(mid string, active, paused []string)
}

// clientAPI is a browser-like pion client; a bare one has no interceptors
// (no NACK, no reports), so that a benchmark counts only the server's work;
// extra interceptors come after those.
func clientAPI(t testing.TB, bare bool, extra ...interceptor.Factory) *webrtc.API {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if !bare {
		if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range extra {
		ir.Add(f)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// joinPeer joins room as id; with publish it sends VP8 and Opus samples
// until the test ends.
func joinPeer(t testing.TB, r *Room, id string, publish bool) *peer {
	return joinPeerAPI(t, r, id, publish, clientAPI(t, false))
}

func joinPeerAPI(t testing.TB, r *Room, id string, publish bool, api *webrtc.API, opts ...func(*peer)) *peer {
	t.Helper()
	p := &peer{t: t, work: make(chan func(), 256), done: make(chan struct{}), mute: make(chan struct{}), received: map[string]*atomic.Int64{}}
	for _, o := range opts {
		o(p)
	}
	var err error
	if p.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if p.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	joined := make(chan struct{})
	go func() {
		<-joined // p.part is set
		for {
			select {
			case f := <-p.work:
				f()
			case <-p.done:
				return
			}
		}
	}()
	p.sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c := p.counter(tr.StreamID() + "/" + tr.Kind().String())
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			c.Add(1)
			if p.seen != nil {
				var pkt rtp.Packet
				if pkt.Unmarshal(buf[:n]) == nil {
					p.seen(tr.StreamID()+"/"+tr.ID(), &pkt)
				}
			}
		}
	})
	p.pub.OnICECandidate(func(c *webrtc.ICECandidate) { p.trickle(Publish, c) })
	p.sub.OnICECandidate(func(c *webrtc.ICECandidate) { p.trickle(Subscribe, c) })
	if p.part, err = r.Join(id, p); err != nil {
		t.Fatal(err)
	}
	close(joined)
	t.Cleanup(p.close)
	if publish {
		p.publish()
	}
	return p
}

func (p *peer) counter(key string) *atomic.Int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.received[key]
	if c == nil {
		c = &atomic.Int64{}
		p.received[key] = c
	}
	return c
}

func (p *peer) packets(from, kind string) int64 { return p.counter(from + "/" + kind).Load() }

func (p *peer) trickle(pc PC, c *webrtc.ICECandidate) {
	if c == nil {
		return
	}
	init := c.ToJSON()
	p.work <- func() { _ = p.part.AddCandidate(pc, &init) }
}

func (p *peer) publish() {
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "s")
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "s")
	for _, tr := range []webrtc.TrackLocal{audio, video} {
		if _, err := p.pub.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			p.t.Fatal(err)
		}
	}
	offer, err := p.pub.CreateOffer(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.pub.SetLocalDescription(offer); err != nil {
		p.t.Fatal(err)
	}
	p.work <- func() {
		if err := p.part.HandleOffer(offer.SDP); err != nil {
			p.t.Errorf("offer: %v", err)
		}
	}
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		frame := make([]byte, 1000)
		for i := 0; ; i++ {
			select {
			case <-p.done:
				return
			case <-p.mute:
				return
			case <-tick.C:
				_ = audio.WriteSample(media.Sample{Data: frame[:60], Duration: 20 * time.Millisecond})
				frame[0] = 0x11
				if i%50 == 0 {
					frame[0] = 0x10
				}
				_ = video.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond})
			}
		}
	}()
}

// SendDescription implements Signaler.
func (p *peer) SendDescription(pc PC, d webrtc.SessionDescription) {
	p.work <- func() {
		if pc == Publish {
			_ = p.pub.SetRemoteDescription(d)
			return
		}
		if err := p.sub.SetRemoteDescription(d); err != nil {
			p.fail("subscribe offer", err)
			return
		}
		ans, err := p.sub.CreateAnswer(nil)
		if err == nil {
			err = p.sub.SetLocalDescription(ans)
		}
		if err == nil && p.beforeAnswer != nil {
			p.beforeAnswer()
		}
		if err == nil {
			err = p.part.HandleAnswer(ans.SDP)
		}
		if err != nil {
			p.fail("subscribe answer", err)
		}
	}
}

// SendCandidate implements Signaler.
func (p *peer) SendCandidate(pc PC, c *webrtc.ICECandidateInit) {
	if c == nil {
		return
	}
	p.work <- func() {
		target := p.pub
		if pc == Subscribe {
			target = p.sub
		}
		_ = target.AddICECandidate(*c)
	}
}

// fail reports an error unless the peer is being closed.
func (p *peer) fail(what string, err error) {
	select {
	case <-p.done:
	default:
		if !errors.Is(err, ErrClosed) {
			p.t.Errorf("%s %s: %v", p.part.id, what, err)
		}
	}
}

// MediaFailed implements Signaler.
func (p *peer) MediaFailed(PC) { p.failed.Store(true) }

// SendEncodings implements Signaler.
func (p *peer) SendEncodings(mid string, active, paused []string) {
	if p.encodings != nil {
		p.encodings(mid, active, paused)
	}
}

func (p *peer) close() {
	select {
	case <-p.done:
		return
	default:
	}
	close(p.done)
	p.part.Close()
	_ = p.pub.Close()
	_ = p.sub.Close()
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFanOut: in a room of three, everyone receives the other two and not
// themselves; a participant of another room receives nothing; when one
// leaves, the SFU lets go of its PeerConnections.
func TestFanOut(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("r")
	a := joinPeer(t, r, "a", true)
	b := joinPeer(t, r, "b", true)
	c := joinPeer(t, r, "c", true)
	x := joinPeer(t, s.Room("other"), "x", true)
	all := []*peer{a, b, c}
	for _, p := range all {
		for _, q := range all {
			if p == q {
				continue
			}
			waitFor(t, p.part.id+" receives "+q.part.id, func() bool {
				return p.packets(q.part.id, "audio") > 10 && p.packets(q.part.id, "video") > 10
			})
		}
		if p.packets(p.part.id, "video") != 0 || p.packets("x", "video") != 0 {
			t.Errorf("%s receives itself or another room", p.part.id)
		}
	}
	for _, from := range []string{"a", "b", "c"} {
		if x.packets(from, "video") != 0 {
			t.Errorf("x in another room receives %s", from)
		}
	}
	if st := s.Stats(); st.Rooms != 2 || st.Participants != 4 || st.PeerConnections != 8 || st.UpTracks != 8 {
		t.Errorf("stats %+v, want 2 rooms, 4 participants, 8 PCs, 8 tracks", st)
	}
	c.close()
	x.close()
	waitFor(t, "c's and x's PeerConnections and tracks released", func() bool {
		st := s.Stats()
		return st.PeerConnections == 4 && st.UpTracks == 4 && st.Rooms == 1
	})
	for _, p := range all {
		if p.failed.Load() {
			t.Errorf("%s: media failed", p.part.id)
		}
	}
}

// TestRetransmitFromCache: a subscriber's NACK is answered with the packet
// it lost, under the sequence number it was sent with, from the published
// track's cache.
func TestRetransmitFromCache(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("rtx")
	pub := joinPeer(t, r, "pub", true)
	var mu sync.Mutex
	got := map[uint16][]byte{}
	dups := map[uint16]int{}
	sub := joinPeerAPI(t, r, "sub", false, clientAPI(t, true), func(p *peer) {
		p.seen = func(track string, pkt *rtp.Packet) {
			if track != "pub/bench" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if _, ok := got[pkt.SequenceNumber]; ok {
				dups[pkt.SequenceNumber]++
			}
			got[pkt.SequenceNumber] = append([]byte(nil), pkt.Payload...)
		}
	})
	waitFor(t, "subscriber receives video", func() bool { return sub.packets("pub", "video") > 0 })
	close(pub.mute)
	video, ls := testTrack(pub.part, webrtc.RTPCodecTypeVideo, false, 0)
	sub.part.subscribe(video)
	waitFor(t, "the track bound", func() bool {
		downs := *video.downs.Load()
		return len(downs) == 1 && downs[0].bound.Load() != nil
	})
	pkt := testPacket()
	raw := make([]byte, 1500)
	down := (*video.downs.Load())[0]
	real := down.bound.Load()
	startOnKeyframe(video, ls[0], 999)
	for i := 0; i < 50; i++ {
		pkt.SequenceNumber = uint16(1000 + i)
		pkt.Payload[0] = byte(i)
		n, err := pkt.MarshalTo(raw)
		if err != nil {
			t.Fatal(err)
		}
		ls[0].cache.put(pkt.SequenceNumber, raw[:n], 0)
		if i == 20 { // lost on the way to the subscriber
			down.bound.Store(&binding{ssrc: real.ssrc, pt: real.pt, write: discardWriter{}})
		}
		video.forward(pkt, ls[0])
		down.bound.Store(real)
	}
	waitFor(t, "packets arrive", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 50 // the keyframe and 49 of the 50 after it
	})
	mu.Lock()
	var lost uint16
	for seq := range got {
		if _, next := got[seq+1]; !next && got[seq][0] == 19 {
			lost = seq + 1
		}
	}
	mu.Unlock()
	sender := real.ssrc
	if err := sub.sub.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: sender,
		Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{lost})}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the retransmission", func() bool {
		mu.Lock()
		defer mu.Unlock()
		_, ok := got[lost]
		return ok
	})
	mu.Lock()
	defer mu.Unlock()
	if got[lost][0] != 20 {
		t.Errorf("retransmitted payload %d, want the lost packet's 20", got[lost][0])
	}
	if len(dups) != 0 {
		t.Errorf("packets came twice: %v", dups)
	}
}

// captureWriter records what a down-track writes.
type captureWriter struct{ hdrs []rtp.Header }

func (w *captureWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.hdrs = append(w.hdrs, *h)
	return len(payload), nil
}
func (w *captureWriter) Write(b []byte) (int, error) { return len(b), nil }

type discardWriter struct{}

func (discardWriter) WriteRTP(_ *rtp.Header, payload []byte) (int, error) { return len(payload), nil }
func (discardWriter) Write(b []byte) (int, error)                         { return len(b), nil }

// testTrack makes a published track with the given layers and no reader
// (the test forwards by hand). A nil pub gets a publisher whose
// PeerConnection never connects, so keyframe requests go nowhere.
func testTrack(pub *Participant, kind webrtc.RTPCodecType, simulcast bool, layers ...int) (*upTrack, []*layer) {
	if pub == nil {
		pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			panic(err)
		}
		pub = &Participant{id: "pub", sfu: &SFU{cfg: DefaultConfig()}, pub: pc}
	}
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	if kind == webrtc.RTPCodecTypeAudio {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}
	}
	u := newUpTrack(pub, "bench", kind, codec, simulcast)
	var out []*layer
	for _, i := range layers {
		l, _ := u.addLayer(i, nil, uint32(100+i))
		out = append(out, l)
	}
	return u, out
}

// TestDownTrackRewrite: each subscriber gets its own SSRC and payload type
// and a gapless sequence even when padding-only packets are dropped.
func TestDownTrackRewrite(t *testing.T) {
	u, ls := testTrack(nil, webrtc.RTPCodecTypeAudio, false, 0)
	w := &captureWriter{}
	d := newDownTrack(u)
	d.bound.Store(&binding{ssrc: 1234, pt: 109, write: w})
	if !u.attach(d) {
		t.Fatal("attach failed")
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 99, PayloadType: 111, SequenceNumber: 65534, Timestamp: 1000}, Payload: []byte{1, 2, 3}}
	if err := pkt.SetExtension(1, []byte{1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if i == 2 {
			pkt.Payload = nil // padding only
		} else {
			pkt.Payload = []byte{1, 2, 3}
		}
		u.forward(pkt, ls[0])
		pkt.SequenceNumber++
		pkt.Timestamp += 960
	}
	if len(w.hdrs) != 4 {
		t.Fatalf("wrote %d packets, want 4 (padding dropped)", len(w.hdrs))
	}
	for i, h := range w.hdrs {
		if h.SSRC != 1234 || h.PayloadType != 109 || h.Extension {
			t.Errorf("packet %d: ssrc %d pt %d ext %v", i, h.SSRC, h.PayloadType, h.Extension)
		}
		if i > 0 && h.SequenceNumber != w.hdrs[i-1].SequenceNumber+1 {
			t.Errorf("sequence gap: %d after %d", h.SequenceNumber, w.hdrs[i-1].SequenceNumber)
		}
	}
	if w.hdrs[3].Timestamp-w.hdrs[0].Timestamp != 4*960 {
		t.Errorf("timestamps not carried: %d", w.hdrs[3].Timestamp-w.hdrs[0].Timestamp)
	}
	u.detach(d)
	u.forward(pkt, ls[0])
	if len(w.hdrs) != 4 {
		t.Error("a detached down-track still receives packets")
	}
}

// TestForwardAllocatesNothing: the per-packet fan-out path (our part of it)
// makes no allocation, whatever the number of subscribers.
func TestForwardAllocatesNothing(t *testing.T) {
	u, l := fanOut(15, discardWriter{})
	pkt := testPacket()
	if n := testing.AllocsPerRun(1000, func() { u.forward(pkt, l) }); n != 0 {
		t.Errorf("forward allocates %.1f times per packet", n)
	}
}

func fanOut(n int, w webrtc.TrackLocalWriter) (*upTrack, *layer) {
	u, ls := testTrack(nil, webrtc.RTPCodecTypeVideo, false, 0)
	for i := 0; i < n; i++ {
		d := newDownTrack(u)
		d.bound.Store(&binding{ssrc: uint32(i + 1), pt: 96, write: w})
		u.attach(d)
	}
	startOnKeyframe(u, ls[0], 0)
	return u, ls[0]
}

// startOnKeyframe forwards a keyframe's first packet numbered seq on layer
// l of u, so that its down-tracks forward what follows.
func startOnKeyframe(u *upTrack, l *layer, seq uint16) {
	pkt := testPacket()
	pkt.SequenceNumber = seq
	pkt.Payload = vp8(true, 0)
	u.forward(pkt, l)
}

func testPacket() *rtp.Packet {
	return &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 7, PayloadType: 96, SequenceNumber: 1, Timestamp: 1}, Payload: make([]byte, 1200)}
}

// BenchmarkForwardRewrite measures the SFU's own per-packet work: one
// published packet rewritten for N subscribers, writes discarded.
func BenchmarkForwardRewrite(b *testing.B) {
	for _, n := range []int{1, 4, 14} {
		b.Run(subs(n), func(b *testing.B) {
			u, l := fanOut(n, discardWriter{})
			pkt := testPacket()
			b.ReportAllocs()
			for b.Loop() {
				u.forward(pkt, l)
				pkt.SequenceNumber++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/fwd")
		})
	}
}

// BenchmarkForward measures the whole forwarding path: one published packet
// written to N down-tracks bound to real subscribe PeerConnections (NACK
// buffer, RTCP reports, SRTP, the UDP mux, the loopback socket), with the
// copies batched into one sendmmsg (batch.go) and without (batch=off).
func BenchmarkForward(b *testing.B) {
	for _, off := range []bool{false, true} {
		for _, n := range []int{1, 4, 14} {
			name := subs(n)
			if off {
				name += "/batch=off"
			}
			b.Run(name, func(b *testing.B) { benchmarkForward(b, n, off) })
		}
	}
}

func benchmarkForward(b *testing.B, n int, off bool) {
	s := newTestSFU(b, func(c *Config) { c.NoUDPBatch = off })
	r := s.Room("bench")
	pubPeer := joinPeer(b, r, "pub", true)
	subsPeers := make([]*peer, n)
	for i := range subsPeers {
		subsPeers[i] = joinPeerAPI(b, r, "sub"+string(rune('a'+i)), false, clientAPI(b, true))
	}
	for _, sp := range subsPeers {
		waitFor(b, "subscriber receives video", func() bool { return sp.packets("pub", "video") > 0 })
	}
	close(pubPeer.mute)
	// A track of the benchmark's own, so that its packets' sequence
	// numbers are the only ones on these down-tracks.
	video, ls := testTrack(pubPeer.part, webrtc.RTPCodecTypeVideo, false, 0)
	for _, sp := range subsPeers {
		sp.part.subscribe(video)
	}
	waitFor(b, "the benchmark track bound at every subscriber", func() bool {
		for _, d := range *video.downs.Load() {
			if d.bound.Load() == nil {
				return false
			}
		}
		return len(*video.downs.Load()) == n
	})
	startOnKeyframe(video, ls[0], 0)
	pkt := testPacket()
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		video.forward(pkt, ls[0])
		pkt.SequenceNumber++
		pkt.Timestamp += 3000
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/fwd")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*n), "allocs/fwd")
}

func subs(n int) string {
	return "subscribers=" + string(rune('0'+n/10)) + string(rune('0'+n%10))
}

// vp8 returns a VP8 payload (descriptor with S=1) marking a keyframe or
// not, with a byte saying which layer it came from.
func vp8(key bool, from byte) []byte {
	p := []byte{0x10, 0x01, from}
	if key {
		p[1] = 0x00
	}
	return p
}

// captureAll records headers and payload markers.
type captureAll struct {
	hdrs []rtp.Header
	from []byte
}

func (w *captureAll) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.hdrs = append(w.hdrs, *h)
	w.from = append(w.from, payload[2])
	return len(payload), nil
}
func (w *captureAll) Write(b []byte) (int, error) { return len(b), nil }

// TestSimulcastSwitchesOnKeyframes: a subscriber gets one layer, starts on
// a keyframe of the layer it wants, and moves to another layer only at that
// layer's keyframe, its sequence numbers and timestamps running on without
// a gap or a step back.
func TestSimulcastSwitchesOnKeyframes(t *testing.T) {
	u, ls := testTrack(nil, webrtc.RTPCodecTypeVideo, true, layerLow, layerMedium, layerHigh)
	w := &captureAll{}
	d := newDownTrack(u)
	d.bound.Store(&binding{ssrc: 9, pt: 96, write: w})
	u.attach(d)

	seq := [3]uint16{100, 5000, 30000}
	ts := [3]uint32{1, 777777, 99999999}
	send := func(layer int, key bool) {
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq[layer], Timestamp: ts[layer]}, Payload: vp8(key, byte(layer))}
		seq[layer]++
		ts[layer] += 3000
		u.forward(pkt, ls[layer])
	}
	frame := func(keyOn int) {
		for l := 0; l < 3; l++ {
			send(l, l == keyOn)
		}
	}
	frame(-1)
	if len(w.hdrs) != 0 {
		t.Fatalf("forwarded %d packets before any keyframe", len(w.hdrs))
	}
	frame(layerHigh) // a keyframe on a layer nobody wants
	frame(layerMedium)
	for i := 0; i < 5; i++ {
		frame(-1)
	}
	d.setWant(layerHigh)
	frame(-1)
	frame(layerLow)
	frame(layerHigh)
	frame(-1)

	want := []byte{1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2}
	if string(w.from) != string(want) {
		t.Fatalf("layers forwarded %v, want %v", w.from, want)
	}
	for i := 1; i < len(w.hdrs); i++ {
		if w.hdrs[i].SequenceNumber != w.hdrs[i-1].SequenceNumber+1 {
			t.Errorf("packet %d: sequence %d after %d", i, w.hdrs[i].SequenceNumber, w.hdrs[i-1].SequenceNumber)
		}
		if step := w.hdrs[i].Timestamp - w.hdrs[i-1].Timestamp; step == 0 || step > 90000 {
			t.Errorf("packet %d: timestamp step %d", i, step)
		}
		if w.hdrs[i].SSRC != 9 {
			t.Errorf("packet %d: ssrc %d", i, w.hdrs[i].SSRC)
		}
	}

	// A layer that stops existing is not waited for: wanting low when
	// only medium and high exist aims at medium.
	u2, _ := testTrack(nil, webrtc.RTPCodecTypeVideo, true, layerMedium, layerHigh)
	d2 := newDownTrack(u2)
	d2.setWant(layerLow)
	if d2.target.Load() != layerMedium {
		t.Errorf("target %d, want the nearest layer %d", d2.target.Load(), layerMedium)
	}
}

// TestSimulcastThroughPeerConnections: a publisher sends three layers (rids
// q, h, f) over a real PeerConnection; a subscriber gets the medium one by
// default and the high one after asking for it.
func TestSimulcastThroughPeerConnections(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("sim")
	var mu sync.Mutex
	var got []byte
	sub := joinPeerAPI(t, r, "sub", false, clientAPI(t, true), func(p *peer) {
		p.seen = func(track string, pkt *rtp.Packet) {
			if strings.HasPrefix(track, "pub/video") && len(pkt.Payload) > 2 {
				mu.Lock()
				got = append(got, pkt.Payload[2])
				mu.Unlock()
			}
		}
	})
	pub := joinSimulcast(t, r, "pub", nil)
	stop := make(chan struct{})
	defer close(stop)
	go pub.send(stop, func(i int) bool { return i%20 == 0 })
	layers := func() map[byte]int {
		mu.Lock()
		defer mu.Unlock()
		c := map[byte]int{}
		for _, b := range got {
			c[b]++
		}
		return c
	}
	waitFor(t, "the medium layer", func() bool { return layers()[1] > 20 })
	if c := layers(); c[0] != 0 || c[2] != 0 {
		t.Fatalf("the subscriber received other layers too: %v", c)
	}
	if err := sub.part.SetLayer("pub", "high"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the high layer", func() bool { return layers()[2] > 20 })
	mu.Lock()
	last := got[len(got)-1]
	mu.Unlock()
	if last != 2 {
		t.Errorf("still receiving layer %d after asking for high", last)
	}
}

// simulcastAPI is a pion client that can send simulcast (rid header
// extensions registered).
func simulcastAPI(t testing.TB) *webrtc.API {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{"urn:ietf:params:rtp-hdrext:sdes:mid", "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"} {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
}

// simulcastPeer is a pion publisher of one video in three simulcast layers
// (rids q, h, f), each packet a VP8 frame marked with its layer.
type simulcastPeer struct {
	*peer
	tc     *webrtc.RTPTransceiver
	tracks [3]*webrtc.TrackLocalStaticRTP
	midID  uint8
	ridID  uint8
	// active says, per layer, whether it is sent; all are at first. A
	// layer turned active again starts with a keyframe, as a browser's
	// encoder does.
	active [3]atomic.Bool
	resume [3]atomic.Bool
	// pli is set by a keyframe request: the next frame is a keyframe on
	// every layer, as Chrome answers one.
	pli atomic.Bool
}

// joinSimulcast joins r as id and publishes a simulcast video, with opts
// applied to the peer; packets flow once send runs.
func joinSimulcast(t *testing.T, r *Room, id string, opts ...func(*peer)) *simulcastPeer {
	t.Helper()
	var live []func(*peer)
	for _, o := range opts {
		if o != nil {
			live = append(live, o)
		}
	}
	sp := &simulcastPeer{peer: joinPeerAPI(t, r, id, false, simulcastAPI(t), live...)}
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	for i, rid := range []string{"q", "h", "f"} {
		tr, err := webrtc.NewTrackLocalStaticRTP(codec, "video", "s", webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		sp.tracks[i] = tr
		sp.active[i].Store(true)
	}
	var err error
	sp.tc, err = sp.pub.AddTransceiverFromTrack(sp.tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range sp.tracks[1:] {
		if err := sp.tc.Sender().AddEncoding(tr); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := sp.pub.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.pub.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	sp.work <- func() {
		if err := sp.part.HandleOffer(offer.SDP); err != nil {
			t.Errorf("offer: %v", err)
		}
	}
	// pion does not name the layers in packets itself: write the mid and
	// rid header extensions with the negotiated ids, as a browser does.
	waitFor(t, "the publish answer", func() bool { return sp.pub.RemoteDescription() != nil })
	ids := map[string]uint8{}
	for _, e := range sp.tc.Sender().GetParameters().HeaderExtensions {
		ids[e.URI] = uint8(e.ID)
	}
	sp.midID, sp.ridID = ids["urn:ietf:params:rtp-hdrext:sdes:mid"], ids["urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"]
	if sp.midID == 0 || sp.ridID == 0 {
		t.Fatalf("mid/rid extensions not negotiated: %v", ids)
	}
	for _, tr := range sp.tracks {
		go func() {
			for {
				pkts, _, err := sp.tc.Sender().ReadSimulcastRTCP(tr.RID())
				if err != nil {
					return
				}
				for _, pkt := range pkts {
					switch pkt.(type) {
					case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
						sp.pli.Store(true)
					}
				}
			}
		}()
	}
	return sp
}

// setActive applies an encodings message as a browser does: the layers
// named paused stop, the ones named active send (starting with a keyframe
// if they were paused).
func (sp *simulcastPeer) setActive(active, paused []string) {
	for i, tr := range sp.tracks {
		switch {
		case slices.Contains(paused, tr.RID()):
			sp.active[i].Store(false)
		case slices.Contains(active, tr.RID()) && !sp.active[i].Swap(true):
			sp.resume[i].Store(true)
		}
	}
}

// send writes a frame on every active layer every 10 ms until stop closes;
// frame i is a keyframe when key(i) says so or a keyframe was requested,
// and the first frame of each layer and of a resumed layer always is.
func (sp *simulcastPeer) send(stop <-chan struct{}, key func(i int) bool) {
	var seq [3]uint16
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		asked := sp.pli.Swap(false)
		for l, tr := range sp.tracks {
			if !sp.active[l].Load() {
				continue
			}
			k := i == 0 || key(i) || asked || sp.resume[l].Swap(false)
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq[l], Timestamp: uint32(i * 900), Marker: true},
				Payload: vp8(k, byte(l))}
			_ = pkt.SetExtension(sp.midID, []byte(sp.tc.Mid()))
			_ = pkt.SetExtension(sp.ridID, []byte(tr.RID()))
			_ = tr.WriteRTP(pkt)
			seq[l]++
		}
	}
}

// bandwidthSubscriber is a subscriber of two simulcast videos (150, 500
// and 1,500 kbps) and one audio track (40 kbps), all wanted in full.
func bandwidthSubscriber() (*Participant, []*downTrack) {
	p := &Participant{downs: map[*upTrack]*downTrack{}}
	var videos []*downTrack
	for i := 0; i < 2; i++ {
		u, ls := testTrack(nil, webrtc.RTPCodecTypeVideo, true, layerLow, layerMedium, layerHigh)
		u.id = fmt.Sprintf("video-%d", i)
		for j, kbps := range []uint64{150, 500, 1500} {
			ls[j].rate.Store(kbps * 1000)
		}
		d := newDownTrack(u)
		d.sub = p
		d.setWant(layerHigh)
		p.downs[u] = d
		videos = append(videos, d)
	}
	a, ls := testTrack(nil, webrtc.RTPCodecTypeAudio, false, 0)
	ls[0].rate.Store(40_000)
	p.downs[a] = newDownTrack(a)
	return p, videos
}

// TestBandwidthPicksLayers: a subscriber's estimated bandwidth, after the
// audio's reserve, goes to its simulcast videos: each starts at the lowest
// layer and rises one layer at a time, round robin, while the total fits,
// never above what it asked for, stepping up only with a margin.
func TestBandwidthPicksLayers(t *testing.T) {
	p, videos := bandwidthSubscriber()
	p.est.nextProbe = time.Now().Add(time.Hour) // no probing here
	layers := func() []int32 { return []int32{videos[0].target.Load(), videos[1].target.Load()} }
	for _, tc := range []struct {
		bps  uint64
		want []int32
	}{
		{5_000_000, []int32{layerHigh, layerHigh}},     // 3 Mbps of video fit
		{2_000_000, []int32{layerMedium, layerMedium}}, // 1,936 kbps: both medium, then 1,500 + 500 do not fit
		{1_800_000, []int32{layerMedium, layerMedium}}, // 1,736 kbps: stepping up to high needs 1,950
		{400_000, []int32{layerLow, layerLow}},         // 336 kbps: 300 for both low
		{100_000, []int32{layerLow, layerLow}},         // nothing fits: the lowest
		{1_200_000, []int32{layerMedium, layerLow}},    // 1,136: medium needs 650 to step up: 650 + 150 fits, 650 + 650 does not
		{1_300_000, []int32{layerMedium, layerMedium}}, // 1,236: 500 (already there) + 650 fits
	} {
		p.bandwidth(tc.bps)
		if got := layers(); got[0] != tc.want[0] || got[1] != tc.want[1] {
			t.Errorf("%d bps: layers %v, want %v", tc.bps, got, tc.want)
		}
	}
	// Never above what the subscriber asked for.
	videos[1].setWant(layerLow)
	p.bandwidth(5_000_000)
	if got := layers(); got[0] != layerHigh || got[1] != layerLow {
		t.Errorf("second video asked for low, bandwidth for both high: layers %v", got)
	}
}

// TestLayerArrivingBeforeAttach: simulcast layers arrive one by one; a
// down-track created while only the low layer existed, and attached after
// the medium one arrived, still moves to the medium layer it wants (a
// subscriber once stayed on the low layer for a whole W2 run).
func TestLayerArrivingBeforeAttach(t *testing.T) {
	u, _ := testTrack(nil, webrtc.RTPCodecTypeVideo, true, layerLow)
	d := newDownTrack(u) // wants medium; only low exists
	if got := d.target.Load(); got != layerLow {
		t.Fatalf("target %d with only the low layer, want low", got)
	}
	if _, ok := u.addLayer(layerMedium, nil, 101); !ok {
		t.Fatal("add the medium layer")
	}
	if !u.attach(d) {
		t.Fatal("attach")
	}
	if got := d.target.Load(); got != layerMedium {
		t.Errorf("target %d after the medium layer arrived, want medium", got)
	}
}

// TestPausedLayerIsLeft: a browser stops sending its upper layers when its
// CPU or uplink falls short. A subscriber aimed at such a layer moves to one
// still sending (it would otherwise wait for a keyframe that never comes:
// no picture at all), and back when the layer resumes; a whole track that
// pauses and resumes does not move it.
func TestPausedLayerIsLeft(t *testing.T) {
	u, ls := testTrack(nil, webrtc.RTPCodecTypeVideo, true, layerLow, layerMedium, layerHigh)
	low, medium, high := ls[0], ls[1], ls[2]
	d := newDownTrack(u) // a grid tile: medium
	if !u.attach(d) {
		t.Fatal("attach")
	}
	if got := d.target.Load(); got != layerMedium {
		t.Fatalf("target %d, want medium", got)
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2}, Payload: vp8(false, 0)}
	now := time.Now()
	at := func(l *layer, lastAt, since time.Time) {
		l.lastAt.Store(lastAt.UnixNano())
		l.since.Store(since.UnixNano())
	}
	check := func(what string, want int32) {
		t.Helper()
		if got := d.target.Load(); got != want {
			t.Fatalf("%s: target %d, want %d", what, got, want)
		}
	}

	// The whole track paused; the high layer's reader is the first back.
	at(medium, now.Add(-2*layerIdle), now.Add(-time.Minute))
	at(high, now, now)
	d.write(pkt, high)
	check("the high layer resumed first after a pause of all", layerMedium)

	// The medium layer went quiet while the low one kept sending.
	at(low, now, now.Add(-time.Minute))
	d.write(pkt, low)
	check("medium quiet, low sending", layerLow)

	at(medium, time.Now(), time.Now()) // medium is back
	d.write(pkt, medium)
	check("medium back", layerMedium)

	// Asked for low while low is quiet: high stands in, until low is back.
	at(low, now.Add(-2*layerIdle), now.Add(-time.Minute))
	at(high, time.Now(), now.Add(-time.Minute))
	d.setWant(layerLow)
	check("low wanted but quiet", layerMedium)
	at(low, time.Now(), time.Now())
	d.write(pkt, low)
	check("low back", layerLow)

	// A newcomer while the medium layer is quiet aims at low at once.
	at(medium, time.Now().Add(-2*layerIdle), now.Add(-time.Minute))
	if got := newDownTrack(u).target.Load(); got != layerLow {
		t.Errorf("a new subscriber's target %d while medium is quiet, want low", got)
	}
}

// TestRateMeterIgnoresPauses: the rate is measured over continuous flow; a
// pause of the stream does not make it look slower than it is.
func TestRateMeterIgnoresPauses(t *testing.T) {
	var m rateMeter
	t0 := time.Now()
	var rates []uint64
	send := func(from, to time.Duration) { // 1,000 bytes every 10 ms: 800 kbps
		for at := from; at < to; at += 10 * time.Millisecond {
			if r, ok := m.add(1000, t0.Add(at)); ok {
				rates = append(rates, r)
			}
		}
	}
	send(0, 2*time.Second)
	send(5*time.Second, 7*time.Second) // after a 3 s pause
	if len(rates) < 4 {
		t.Fatalf("rates %v: want one per half second of flow", rates)
	}
	for _, r := range rates {
		if r < 750_000 || r > 850_000 {
			t.Errorf("rates %v: want about 800 kbps each, the pause not counted", rates)
			break
		}
	}
}

// TestBandwidthProbes: a receive-side estimate stays near what arrives, so
// a subscriber on low layers is probed one layer up when the estimate is
// well above its incoming rate; the probe is held while the estimate
// grows, dropped with a growing back-off when the estimate falls, and kept
// when the estimate has caught up.
func TestBandwidthProbes(t *testing.T) {
	p, videos := bandwidthSubscriber()
	videos[1].setWant(layerLow) // one video in a small tile
	v := videos[0]
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	step := func(s float64, kbps uint64, want int32, why string) {
		t.Helper()
		p.bandwidthAt(kbps*1000, at(s))
		if got := v.target.Load(); got != want {
			t.Fatalf("t=%gs, %d kbps (%s): layer %d, want %d", s, kbps, why, got, want)
		}
	}
	step(-1, 520, layerLow, "456 kbps for video: medium (650 with the margin) and low do not fit")
	// Incoming now: 150 + 150 + 40 kbps; Chrome caps its estimate near 1.5x.
	step(0, 520, layerMedium, "estimate at its cap: probe medium")
	step(1, 560, layerMedium, "held while the estimate grows")
	step(4, 400, layerLow, "the estimate fell by a quarter: congestion, back to low")
	step(5, 520, layerLow, "backing off 8 s")
	step(11, 520, layerLow, "still backing off")
	step(13, 520, layerMedium, "back-off over: probe again")
	step(18, 380, layerLow, "congested again")
	step(30, 520, layerLow, "backing off 16 s now")
	step(34, 520, layerMedium, "probe again after 16 s")
	step(40, 700, layerMedium, "held")
	step(44, 900, layerMedium, "hold over and medium fits (500 + 150 + 64 audio reserve): kept")
	step(46, 1000, layerMedium, "the next probe waits 3 s")
	step(47, 1000, layerHigh, "estimate at its cap again: probe high")
	step(57, 1100, layerMedium, "hold over and high does not fit: back to medium")
}

// TestLastMedia: the time of a publisher's last media packet follows its
// packets and stays put when they stop (a frozen client), for attendance's
// last evidence of presence.
func TestLastMedia(t *testing.T) {
	s := newTestSFU(t)
	r := s.Room("r")
	a := joinPeer(t, r, "a", true)
	b := joinPeer(t, r, "b", false)
	waitFor(t, "b receives a", func() bool { return b.packets("a", "video") > 10 })
	if last := a.part.LastMedia(); time.Since(last) > 2*time.Second {
		t.Fatalf("last media %v ago while a publishes", time.Since(last))
	}
	close(a.mute) // a stops sending, as a frozen browser does
	stopped := time.Now()
	time.Sleep(1500 * time.Millisecond)
	if last := a.part.LastMedia(); last.After(stopped.Add(500 * time.Millisecond)) { // what was in flight
		t.Errorf("last media %v after a stopped sending", last.Sub(stopped))
	}
	if !b.part.LastMedia().IsZero() {
		t.Errorf("a subscriber that publishes nothing has media at %v", b.part.LastMedia())
	}
}
